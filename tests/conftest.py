"""Shared fixtures, and the split between unit and integration tests.

A test module that runs real components end to end (Dagster jobs, dbt, the landing of
generated feeds) sets `pytestmark = pytest.mark.integration`; every other test is marked
`unit` here, so `make test-fast` (`pytest -m unit`) runs them alone in a couple of minutes.
`make test` runs everything on two workers; the tests that share the sample run stay together.

Settings are passed, never set: each test builds its own `Settings` (see `settings_for`) with
the fixed test salt and as_of, so no test reads or writes the process's environment.
The expensive fixture, the default sample (5,000 customers) run twice through the whole job,
is built once per test session and shared (`sample_run`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from teal_testing import SAMPLE_CUSTOMERS, SAMPLE_SEED, SampleRun, settings_for, table_counts

from ml.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


def pytest_itemcollected(item: pytest.Item) -> None:
    # `make test` runs two workers (pytest-xdist, --dist loadgroup): every test that reads
    # the shared sample run goes to one worker, so the run is built once, not once a worker.
    # Marked as each test is collected: xdist reads the marks in its own
    # pytest_collection_modifyitems, which runs before a conftest's.
    if "sample_run" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group("sample_run"))


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The dbt manifest the Dagster code location reads (made by `make`; parsed here if absent)."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_PROJECT_DIR)],
            cwd=DBT_PROJECT_DIR,
            check=True,
        )
    return manifest


@pytest.fixture(scope="session")
def definitions(dbt_manifest):
    """A builder of the code location's Definitions for given settings."""
    from orchestration.defs import build_definitions

    return build_definitions


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, definitions) -> SampleRun:
    """The whole job on the default sample, run twice (the second run must change nothing).

    Shared by every test that reads the result; a test that changes the warehouse or the
    landing folder works on a copy (`copy_of_sample_run`)."""
    import dagster as dg

    from ml.synthetic import generate

    root = tmp_path_factory.mktemp("sample")
    settings = settings_for(root)
    generate(settings.landing, root / "truth", customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)
    job = definitions(settings).resolve_job_def("refresh_all")
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(instance=instance, raise_on_error=False)
        after_first = table_counts(settings.warehouse)
        second = job.execute_in_process(instance=instance, raise_on_error=False)
        after_second = table_counts(settings.warehouse)
    return SampleRun(root, settings, root / "truth", first, second, after_first, after_second)
