"""Privacy asset: erasure requests, processed every run.

(Retention is part of landing: each landing asset purges its feed's expired rows right after
loading, see orchestration/defs/landing.py and ml/privacy/retention.py.)

`privacy/erasure_log`: after identity resolution, every pending erasure request is resolved to
its person and every row about them is deleted from landed tables, staging inputs, marts,
identity and its history, segment history, ML outputs and the export files; their identifiers
become salted tombstones the loader drops later rows by (ml/privacy/erasure.py). Identity is
then resolved again without their rows (a link or shared flag they caused goes), and the DuckDB
file is compacted.

Every customer model waits for it (orchestration/defs/transform.py), so they are rebuilt from
what is left.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.defs.identity import IDENTITY_KEYS
from orchestration.defs.landing import _markdown
from orchestration.defs.transform import ERASURE_KEY, teal_dbt_feeds
from orchestration.settings import warehouse_path

CHECK_NOTHING_LEFT = "erased_people_leave_no_trace"
CHECK_NO_PENDING = "no_request_left_pending"


def exports_root():
    from ml.activation.files import export_root

    return export_root()


@dg.multi_asset(
    name="process_erasure_requests",
    specs=[
        dg.AssetSpec(
            ERASURE_KEY,
            description="privacy.erasure_log: every erasure request, when it was completed and "
            "how many rows it removed (per table in privacy.erasure_removals).",
            group_name="privacy",
            kinds={"python", "duckdb"},
            deps=[
                *IDENTITY_KEYS.values(),
                get_asset_key_for_model([teal_dbt_feeds], "stg_erasure__requests"),
            ],
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NO_PENDING,
            asset=ERASURE_KEY,
            description="Every landed erasure request has been processed.",
        ),
        dg.AssetCheckSpec(
            CHECK_NOTHING_LEFT,
            asset=ERASURE_KEY,
            description="No table holds a salted identifier of an erased person "
            "(every erase_by column of every landed table checked against the tombstones).",
        ),
    ],
    required_resource_keys={"warehouse"},
)
def process_erasure_requests(context: dg.AssetExecutionContext):
    """Erase every person with a pending request, everywhere; tombstone their identifiers."""
    from ml.identity.pipeline import resolve_warehouse
    from ml.privacy.erasure import compact_warehouse, process_erasure_requests, traces_left
    from ml.privacy.secrets import check_salt

    with context.resources.warehouse.get_connection() as connection:
        salt = check_salt(connection)
        outcome = process_erasure_requests(
            connection, exports_root=exports_root(), salt=salt, run_id=context.run_id
        )
        if outcome.anything_removed:
            # identity's links and shared flags were decided with the erased rows in view:
            # decide them again without them, so nothing derived from those rows remains
            rerun = resolve_warehouse(connection, run_id=f"{context.run_id}-after-erasure")
            context.log.info(f"identity resolved again after erasure: {rerun.as_dict()}")
    compacted = None
    if outcome.rows_removed:
        # no connection is open here: the file can be rewritten without the deleted rows
        compacted = compact_warehouse(warehouse_path())
    with context.resources.warehouse.get_connection() as connection:
        pending = connection.execute(
            "select count(*) from erasure.requests as requests where not exists ("
            "select 1 from privacy.erasure_log as log "
            "where log.erasure_request_id = requests.request_id)"
        ).fetchone()[0]
        traces = traces_left(connection, salt)
    summary = outcome.as_dict()
    context.log.info(f"erasure: {summary}")
    metadata = {
        "requests_processed": summary["requests"],
        "rows_removed": summary["rows_removed"],
        "requests": dg.MetadataValue.md(_markdown(outcome.requests_frame())),
    }
    if compacted is not None:
        metadata["file_bytes_before"] = compacted[0]
        metadata["file_bytes_after"] = compacted[1]
    yield dg.MaterializeResult(asset_key=ERASURE_KEY, metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key=ERASURE_KEY,
        check_name=CHECK_NO_PENDING,
        passed=pending == 0,
        metadata={"pending": pending},
    )
    yield dg.AssetCheckResult(
        asset_key=ERASURE_KEY,
        check_name=CHECK_NOTHING_LEFT,
        passed=traces.empty,
        metadata={"traces": dg.MetadataValue.md(_markdown(traces))},
    )


defs = dg.Definitions(assets=[process_erasure_requests])
