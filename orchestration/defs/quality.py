"""Data-quality checks: references between feeds that do not resolve are findings, not failures.

dbt counts them in marts.fct_unresolved_references (macros/incoming_references.sql lists the
references) and stops the run only when one fails for more than
`unresolved_reference_error_percent` of its rows. This check warns whenever any reference fails,
with the counts and the first examples, so a person sees it without reading SQL.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.settings import Settings
from ml.workflow.quality import describe_finding, unresolved_references
from orchestration.defs.metadata import table_metadata
from orchestration.defs.transform import teal_dbt_feeds

FINDINGS_KEY = get_asset_key_for_model([teal_dbt_feeds], "fct_unresolved_references")


@dg.asset_check(
    asset=FINDINGS_KEY,
    name="references_resolve",
    description="Every order line, event and consent event names a product and a crm id that "
    "exist (a warning with the first examples when some do not; the rows are kept).",
)
def references_resolve(settings: dg.ResourceParam[Settings]) -> dg.AssetCheckResult:
    findings = unresolved_references(settings)
    failing = findings[findings["rows_unresolved"] > 0]
    return dg.AssetCheckResult(
        passed=failing.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_unresolved": int(findings["rows_unresolved"].sum()),
            "findings": dg.MetadataValue.md(
                "\n".join(f"- {describe_finding(row)}" for row in failing.itertuples()) or "(none)"
            ),
            "counts": table_metadata(findings.drop(columns=["example_values"])),
        },
    )


defs = dg.Definitions(asset_checks=[references_resolve])
