"""Run a Dagster job once from the command line, recorded in the project's instance.

    python -m orchestration.run [--job refresh_all] [--log-level INFO]

The run is stored under $DAGSTER_HOME, so it shows in the Dagster UI (`make dev`) like a run
started there. Logs go to the console at INFO by default (DEBUG shows every engine event).
The exit status is 0 when the run succeeded, 1 when a step failed; the failing steps and
asset checks are listed at the end. When another run is using the warehouse, nothing starts:
the command says which run and since when, and exits with status 75 (try again later).
"""

from __future__ import annotations

import argparse
import sys
import uuid

import dagster as dg

from ml.runlock import RunInProgress, warehouse_lock
from ml.settings import Settings
from orchestration.defs import build_definitions

DEFAULT_JOB = "refresh_all"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
BUSY = 75  # EX_TEMPFAIL: another run holds the warehouse


def run_job(
    name: str = DEFAULT_JOB, log_level: str = "INFO", settings: Settings | None = None
) -> dg.ExecuteInProcessResult:
    """Execute the job in this process against the instance in $DAGSTER_HOME, holding the
    warehouse's run lock from before the run is created (RunInProgress when it is held)."""
    settings = settings or Settings.from_env()
    defs = build_definitions(settings)
    job = defs.resolve_job_def(name)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    run_id = str(uuid.uuid4())
    with warehouse_lock(settings.warehouse, run_id), dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False, run_id=run_id
        )


def problems(result: dg.ExecuteInProcessResult) -> list[str]:
    """Failed steps and failed error-severity asset checks, one line each."""
    lines = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            lines.append(f"step {event.step_key} failed: {error.message.strip() if error else ''}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                lines.append(
                    f"check {check.check_name} on {check.asset_key.to_user_string()} failed"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=DEFAULT_JOB, help=f"job name (default {DEFAULT_JOB})")
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, help="console log level")
    args = parser.parse_args(argv)
    try:
        result = run_job(args.job, args.log_level)
    except RunInProgress as busy:
        print(f"Not started: {busy}", file=sys.stderr)
        return BUSY
    found = problems(result)
    if found:
        print(f"\nRun {result.run_id} of {args.job} found problems:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
    if not result.success:
        print(f"Run {result.run_id} of {args.job} failed; see it in the Dagster UI (make dev).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
