"""Privacy asset: erasure requests, processed every run.

(Retention is part of landing: each landing asset purges its feed's expired rows right after
loading, see ml/workflow/landing.py and ml/privacy/retention.py.)

`privacy/erasure_log`: after identity resolution and the dbt part `subjects`, every pending
erasure request is resolved to its person (through int_subjects_resolved, the resolution that
consent and suppression share) and every row about them is deleted from landed tables,
staging inputs, marts, identity and its history, segment history, ML outputs, the export
files and the hub's copies of them, and the landing files; their identifiers become salted
tombstones the loader drops later rows by. Identity is then resolved again without their rows,
the DuckDB file is compacted, the run artefacts are searched (ml/workflow/privacy.py), and
so is Dagster's own run history (here: only the code location can read it). Every store
searched is in the erasure report (privacy.erasure_stores and the audit log).

Every customer model waits for it (orchestration/defs/transform.py), so they are rebuilt from
what is left.
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.privacy.artefacts import search_artefacts
from ml.privacy.erasure_log import STORE_DAGSTER, StoreSearch
from ml.privacy.tombstones import ErasedWords
from ml.settings import Settings
from ml.timing import Stopwatch
from ml.workflow.privacy import erase_requested, record_run_history_search
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
            "(every erase_by column of every landed table checked against the tombstones), "
            "and no event of Dagster's run history names one.",
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
    history = None
    if step.words is not None:
        with Stopwatch(step.outcome.seconds).phase("run history"):
            history = search_run_history(context.instance, step.words)
        record_run_history_search(settings, step, history.store)
    metadata = {
        "requests_processed": summary["requests"],
        "rows_removed": summary["rows_removed"],
        "landing_files_rewritten": summary["landing_files_rewritten"],
        "requests": table_metadata(step.outcome.requests_frame()),
        "stores_searched": dg.MetadataValue.json(summary["stores_searched"]),
        # a list, so that the phases keep the order they ran in (a JSON object's keys are sorted)
        "seconds_by_phase": dg.MetadataValue.json(
            [{"phase": name, "seconds": seconds} for name, seconds in step.outcome.seconds.items()]
        ),
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
    events_naming = history.events_naming if history else 0
    yield dg.AssetCheckResult(
        asset_key=ERASURE_KEY,
        check_name=CHECK_NOTHING_LEFT,
        passed=step.traces.empty and events_naming == 0,
        metadata={
            "traces": table_metadata(step.traces),
            "run_history_events_naming_erased": events_naming,
            "run_history_runs": dg.MetadataValue.json(history.runs_naming if history else []),
        },
    )


@dataclass
class RunHistorySearch:
    """Dagster's run history searched for this run's erased people."""

    store: StoreSearch
    events_naming: int  # events that name an erased person (none is deleted: say so)
    runs_naming: list[str]  # the runs holding them


def search_run_history(instance: dg.DagsterInstance, words: ErasedWords) -> RunHistorySearch:
    """Every event of every run this instance keeps (log lines, metadata, check results,
    failures), serialised as Dagster stores it, and the compute logs under its storage,
    searched for the erased people by their tombstones. Teal writes no personal value to
    Dagster, so nothing is expected; a compute log that names one is deleted, an event is
    reported (by run) and fails the check `erased_people_leave_no_trace`."""
    runs = instance.get_runs()
    events = 0
    naming: dict[str, int] = {}
    runs_naming: list[str] = []
    for run in runs:
        found = 0
        for entry in instance.all_logs(run.run_id):
            events += 1
            request_id = words.request_named(dg.serialize_value(entry))
            if request_id is not None:
                naming[request_id] = naming.get(request_id, 0) + 1
                found += 1
        if found:
            runs_naming.append(run.run_id)
    root = getattr(instance, "root_directory", None)
    logs = search_artefacts({"compute logs": Path(root) / "storage"}, words) if root else None
    note = (
        f"{events:,} events of {len(runs):,} runs searched, {sum(naming.values()):,} name an "
        "erased person"
        + (f"; {logs.searched:,} compute log files searched" if logs else "")
        + (f", {sum(logs.removed.values())} removed" if logs and logs.removed else "")
    )
    store = StoreSearch(STORE_DAGSTER, len(runs), "runs", dict(logs.removed) if logs else {}, note)
    return RunHistorySearch(store, sum(naming.values()), runs_naming)


defs = dg.Definitions(assets=[process_erasure_requests])
