"""Reports rebuilt once at the end of a run: the Great Expectations Data Docs site.

Every landing batch is validated by its own check (orchestration/defs/landing.py), which
stores the result; the Data Docs site that renders all stored results and suites is rebuilt
here, once, rather than after each batch (its index re-renders every stored result, seconds a
time). It sits at the end of the graph so the run's validations are all stored by then.
"""

import dagster as dg

from ml.settings import Settings
from orchestration.defs.activation import LIFT_KEY

DATA_DOCS_KEY = dg.AssetKey(["reports", "data_docs"])


@dg.asset(
    key=DATA_DOCS_KEY,
    group_name="reports",
    kinds={"python"},
    deps=[LIFT_KEY],
    description="The Great Expectations Data Docs site (<gx project>/gx/uncommitted/data_docs/): "
    "every feed's suite and the stored validation results, rebuilt once per run.",
)
def data_docs(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    """Rebuild the Data Docs site from the suites and the stored validation results."""
    from expectations.docs import build_docs

    index = build_docs(settings.gx_project)
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})


defs = dg.Definitions(assets=[data_docs])
