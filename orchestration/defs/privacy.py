"""Privacy asset: erasure requests, processed every run.

(Retention is part of landing: each landing asset purges its feed's expired rows right after
loading, see ml/workflow/landing.py and ml/privacy/retention.py.)

`privacy/erasure_log`: after identity resolution and the dbt part `subjects`, every pending
erasure request is resolved to its person (through int_subjects_resolved, the resolution that
consent and suppression share) and every row about them is deleted from landed tables,
staging inputs, marts, identity and its history, segment history, ML outputs and the export
files; their identifiers become salted tombstones the loader drops later rows by. Identity is
then resolved again without their rows, and the DuckDB file is compacted
(ml/workflow/privacy.py).

Every customer model waits for it (orchestration/defs/transform.py), so they are rebuilt from
what is left.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.settings import Settings
from ml.workflow.privacy import erase_requested
from orchestration.defs.identity import IDENTITY_KEYS
from orchestration.defs.metadata import table_metadata
from orchestration.defs.transform import ERASURE_KEY, teal_dbt_feeds, teal_dbt_subjects

CHECK_NOTHING_LEFT = "erased_people_leave_no_trace"
CHECK_NO_PENDING = "no_request_left_pending"


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
                # who each request is about: the subject resolution consent shares
                get_asset_key_for_model([teal_dbt_subjects], "int_subjects_resolved"),
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
)
def process_erasure_requests(
    context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]
):
    """Erase every person with a pending request, everywhere; tombstone their identifiers."""
    step = erase_requested(settings, run_id=context.run_id)
    summary = step.outcome.as_dict()
    context.log.info(f"erasure: {summary}")
    if step.identity_after is not None:
        context.log.info(f"identity resolved again after erasure: {step.identity_after.as_dict()}")
    metadata = {
        "requests_processed": summary["requests"],
        "rows_removed": summary["rows_removed"],
        "requests": table_metadata(step.outcome.requests_frame()),
    }
    if step.compacted is not None:
        metadata["file_bytes_before"], metadata["file_bytes_after"] = step.compacted
    yield dg.MaterializeResult(asset_key=ERASURE_KEY, metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key=ERASURE_KEY,
        check_name=CHECK_NO_PENDING,
        passed=step.requests_pending == 0,
        metadata={"pending": step.requests_pending},
    )
    yield dg.AssetCheckResult(
        asset_key=ERASURE_KEY,
        check_name=CHECK_NOTHING_LEFT,
        passed=step.traces.empty,
        metadata={"traces": table_metadata(step.traces)},
    )


defs = dg.Definitions(assets=[process_erasure_requests])
