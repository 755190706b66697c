"""Helpers the tests share: settings for a test folder, table counts, the sample run's shape."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ml.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# A fixed salt, so holdouts and tombstones in tests are the same on every machine.
TEST_SALT = "7e57" * 16
# Features and segments as of the sample data's last day (the generator's default end date).
AS_OF = "2026-11-20"
# the default sample of `make run`: the figures the README promises
SAMPLE_CUSTOMERS = 5000
SAMPLE_SEED = 42


def settings_for(root: Path, **overrides) -> Settings:
    """Settings with everything under `root`, the test salt and the sample's as_of."""
    # the GX project (stores, Data Docs) under the test folder too: tests never share one
    values = {"salt": TEST_SALT, "as_of": AS_OF, "duckdb_threads": 2, "gx_project": root}
    values.update(overrides)
    return Settings.for_root(root, **values)


@dataclass
class SampleRun:
    """The default sample landed and run through `refresh_all` twice, in one folder."""

    root: Path
    settings: Settings
    truth: Path
    first: object  # dg.ExecuteInProcessResult
    second: object
    tables_after_first: dict[str, int]
    tables_after_second: dict[str, int]

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse


def table_counts(warehouse: Path) -> dict[str, int]:
    """Rows of every table and view in a DuckDB file."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables order by all"
        ).fetchall()
        return {
            f"{schema}.{name}": connection.execute(
                f'select count(*) from "{schema}"."{name}"'
            ).fetchone()[0]
            for schema, name in tables
        }


def copy_of_sample_run(sample: SampleRun, destination: Path) -> Settings:
    """A copy of the sample run's folder (landing, warehouse, exports, reports, models, truth)
    for a test that changes things; its settings point at the copy."""
    shutil.copytree(sample.root, destination, symlinks=True)
    # export folders' `latest` links are relative, so they point inside the copy too
    return settings_for(destination)


def run_dbt(command: str, warehouse: Path, target: Path, select: str, exclude: str = "") -> None:
    """`dbt <command>` (run or build) of a selection on `warehouse` as of AS_OF, in a subprocess
    as the pipeline runs it. Its artifacts, the manifest included, go to `target`, never to the
    project's own target/ that the code location reads. Fails with dbt's output."""
    import json
    import subprocess

    from ml.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR

    command_line = [DBT_EXECUTABLE, command, "--quiet", "--target-path", str(target)]
    command_line += ["--profiles-dir", str(DBT_PROJECT_DIR)]
    command_line += ["--vars", json.dumps({"warehouse": str(warehouse), "as_of": AS_OF})]
    command_line += ["--select", *select.split()]
    if exclude:
        command_line += ["--exclude", *exclude.split()]
    done = subprocess.run(command_line, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


# Dagster's console logger at ERROR: a whole run's debug lines would drown a failure's report
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def failed_steps(result) -> list[str]:
    """The steps of a Dagster run that failed, with the first line of their error."""
    return [
        f"{event.step_key}: {event.step_failure_data.error.message.strip().splitlines()[0]}"
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data.error
    ]


def run_refresh_all(definitions, settings: Settings):
    """Run the real `refresh_all` job on `settings` in a fresh instance; it must succeed (the
    assertion names each failed step)."""
    import dagster as dg

    job = definitions(settings).resolve_job_def("refresh_all")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
    assert result.success, failed_steps(result)
    return result
