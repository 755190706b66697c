"""One run at a time per warehouse: a second run stops at once, naming the run in progress."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ml.runlock import RunInProgress, holder_of, lock_path, warehouse_lock

REPO_ROOT = Path(__file__).resolve().parents[1]


def hold_lock_in_another_process(warehouse: Path, run_id: str) -> subprocess.Popen:
    """A process that holds the warehouse's lock until its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from ml.runlock import warehouse_lock
        with warehouse_lock({str(warehouse)!r}, {run_id!r}):
            print("held", flush=True)
            sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)


def test_a_second_holder_is_refused_with_the_first_ones_run_id(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = hold_lock_in_another_process(warehouse, "run-first")
    try:
        with pytest.raises(RunInProgress) as refused, warehouse_lock(warehouse, "run-second"):
            pass
        assert refused.value.holder.run_id == "run-first"
        assert refused.value.holder.pid == holder.pid
        assert "run run-first (process" in str(refused.value)
        assert str(warehouse) in str(refused.value)
    finally:
        release(holder)
    # released with its process: the next run gets it, and the file names the new holder
    with warehouse_lock(warehouse, "run-third"):
        assert holder_of(warehouse).run_id == "run-third"
    assert holder_of(warehouse) is None


def test_the_lock_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_lock(warehouse, "outer"), warehouse_lock(warehouse, "inner"):
        assert holder_of(warehouse).run_id == "outer"
    assert lock_path(warehouse).exists()
    assert holder_of(warehouse) is None
    with warehouse_lock(warehouse, "again"):
        assert holder_of(warehouse).run_id == "again"


def test_a_crashed_holder_leaves_no_stale_lock(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = hold_lock_in_another_process(warehouse, "run-crashed")
    holder.kill()
    holder.wait(timeout=30)
    # the file still names the dead run, but the operating system released its lock
    assert holder_of(warehouse).run_id == "run-crashed"
    with warehouse_lock(warehouse, "run-next"):
        assert holder_of(warehouse).run_id == "run-next"


@pytest.mark.integration
def test_make_run_while_another_run_holds_the_warehouse_stops_at_once(tmp_path, dbt_manifest):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = hold_lock_in_another_process(warehouse, "run-in-progress")
    environment = {
        **os.environ,
        "TEAL_WAREHOUSE": str(warehouse),
        "TEAL_LANDING": str(tmp_path / "landing"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "TEAL_SALT": "7e57" * 16,
    }
    (tmp_path / "dagster_home").mkdir()
    try:
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "orchestration.run"],
            env=environment,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
    finally:
        release(holder)
    assert second.returncode == 75, second.stderr[-2000:]
    assert "Not started: run run-in-progress (process" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    # nothing of the second run happened: no warehouse, no run in the Dagster instance
    assert not warehouse.exists()
    assert list((tmp_path / "dagster_home").iterdir()) == []
    assert seconds < 120


@pytest.mark.integration
def test_a_job_run_while_the_warehouse_is_held_fails_before_any_step(tmp_path, definitions):
    import dagster as dg
    from teal_testing import settings_for

    settings = settings_for(tmp_path)
    holder = hold_lock_in_another_process(settings.warehouse, "run-in-progress")
    try:
        job = definitions(settings).resolve_job_def("refresh_all")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
    finally:
        release(holder)
    assert not result.success
    started = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started == []
    messages = " ".join(
        str(e.event_specific_data) for e in result.all_events if e.event_specific_data
    )
    assert "run-in-progress" in messages
    assert not settings.warehouse.exists()
