"""The audience hub's snapshot: the last step of a run publishes what the hub shows.

`hub/snapshot` waits for every end of the graph (campaign lift, export runs and members, the
segments, the charts, the clusters, erasure) and then copies what the hub needs out of the
warehouse into Parquet files beside the export files and charts, swapped in atomically
(ml/hub/snapshot.py). A run that fails before this step leaves the previous snapshot in place,
and the hub never opens the warehouse, so DuckDB's single writer lock never stands between a
marketer and a download.
"""

import dagster as dg

from ml.hub.snapshot import SnapshotError, publish_snapshot
from ml.settings import Settings
from orchestration.defs.activation import LIFT_KEY, MEMBERS_KEY, RUNS_KEY
from orchestration.defs.audiences import CLUSTERS_KEY, SEGMENT_KEYS
from orchestration.defs.resources import run_as_of
from orchestration.defs.transform import ERASURE_KEY

HUB_SNAPSHOT_KEY = dg.AssetKey(["hub", "snapshot"])


@dg.asset(
    key=HUB_SNAPSHOT_KEY,
    group_name="activation",
    kinds={"python", "parquet"},
    deps=[
        LIFT_KEY,
        RUNS_KEY,
        MEMBERS_KEY,
        *SEGMENT_KEYS.values(),
        CLUSTERS_KEY,
        dg.AssetKey(["reports", "audience_charts"]),
        ERASURE_KEY,
    ],
    description="The audience hub's read-only snapshot (data/hub/snapshots/current): segments, "
    "exports and their files, lift, clusters, consent, erasure and audit logs, published when "
    "everything before it succeeded.",
)
def hub_snapshot(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Publish what the audience hub shows, swapped in atomically at the end of the run."""
    try:
        published = publish_snapshot(
            settings, run_id=context.run_id, as_of=run_as_of(context, settings)
        )
    except SnapshotError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error
    return dg.MaterializeResult(
        metadata={
            "folder": str(published.folder),
            "published_at": published.published_at.isoformat(timespec="seconds") + "Z",
            "export_files": published.export_files,
            "charts": len(published.charts),
            "rows": dg.MetadataValue.json(published.tables),
            "removed_snapshots": dg.MetadataValue.json(published.removed),
        }
    )


defs = dg.Definitions(assets=[hub_snapshot])
