"""The job that refreshes everything, its daily schedule, and the new-files sensor."""

import hashlib
import json
from pathlib import Path

import dagster as dg

from ml.landing import contracts
from ml.memory import release_unused
from ml.settings import Settings

EXCLUSIVE_TAG = "teal/exclusive"


@dg.success_hook(name="hand_back_memory")
def hand_back_memory(context: dg.HookContext) -> None:
    """After a step: what it let go of goes back to the system before the next step starts."""
    release_unused()


@dg.failure_hook(name="hand_back_memory_after_failure")
def hand_back_memory_after_failure(context: dg.HookContext) -> None:
    """The same after a failed step, whose frames are freed with its exception."""
    release_unused()


refresh_all = dg.define_asset_job(
    name="refresh_all",
    selection=dg.AssetSelection.all(),
    description="Land every feed, build and test every dbt model, validate every batch.",
    # One process: DuckDB allows a single writer, and landing and dbt take turns.
    executor_def=dg.in_process_executor,
    # One run at a time: dagster.yaml limits runs with this tag to one, so a run started from
    # the UI, the schedule or the sensor waits in the queue while another is in progress
    # (a run started by `make run` holds the warehouse's lock instead, ml/runlock.py).
    tags={EXCLUSIVE_TAG: "warehouse"},
    # The steps share the process, and Python, Arrow and glibc keep what a step freed for the
    # process unless told to hand it back (erasure at 200,000 customers: the process held
    # 1,046 MB after the step, 495 MB once handed back), under the next step's peak
    hooks={hand_back_memory, hand_back_memory_after_failure},
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_all,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/London",
    description="Every morning at 06:00 London time.",
)


def landing_fingerprint(root: Path) -> dict[str, list[int]]:
    """Every file under the feeds' folders in `root`, with its size and modification time."""
    listing: dict[str, list[int]] = {}
    for feed in contracts.load():
        folder = root / feed.name
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                stat = path.stat()
                listing[path.relative_to(root).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return listing


@dg.sensor(
    name="new_landing_files",
    job=refresh_all,
    minimum_interval_seconds=60,
    description="Starts refresh_all when files appear in (or change under) data/landing/.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_landing_files(context: dg.SensorEvaluationContext, settings: dg.ResourceParam[Settings]):
    """Request a run when the landing folder holds files the last evaluation had not seen."""
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    current = landing_fingerprint(settings.landing)
    new = sorted(path for path, stamp in current.items() if previous.get(path) != stamp)
    if not new:
        return dg.SkipReason(f"no new files among {len(current)} in {settings.landing}")
    run_key = hashlib.sha256(
        json.dumps({p: current[p] for p in new}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                tags={"teal/new_files": str(len(new)), "teal/first_new_file": new[0]},
            )
        ],
        cursor=json.dumps(current, sort_keys=True),
    )


defs = dg.Definitions(jobs=[refresh_all], schedules=[daily_refresh], sensors=[new_landing_files])
