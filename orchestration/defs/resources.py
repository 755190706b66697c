"""Resources shared by every asset: Teal's settings and the dbt CLI; the run's as_of."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from ml.as_of import naive_utc
from ml.runlock import warehouse_lock
from ml.settings import AS_OF_ENV, DBT_EXECUTABLE, DBT_PROJECT_DIR, Settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class TealDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without two costs Teal does not need, paid at every step:
    - it runs `dbt --version` in a subprocess (5 s) to tell dbt Core from the Fusion engine;
      Teal runs the dbt Core installed beside this Python, whose version it can read;
    - it opens a dbt adapter in this process (3 s) for row counts and column metadata of
      materialized models, which Teal does not ask for (no `fetch_row_counts()`).
    Everything else, the subprocess that runs dbt and the events it streams, is dagster-dbt's.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args):
        return None


# Assets ask for the settings by this parameter name: `settings: dg.ResourceParam[Settings]`.
SETTINGS = "settings"


def settings_resource(settings: Settings) -> dg.ResourceDefinition:
    """The settings as a resource. A run holds its warehouse's run lock (ml/runlock.py) from
    the moment its resources start to its end, so no two runs ever write one warehouse at
    once; a run that finds the lock held fails before any step, naming the run that holds it.
    Sensors and schedules get the settings without the lock."""

    @dg.resource(description="Teal's settings (ml/settings.py); a run holds the warehouse's lock.")
    def teal_settings(init_context: dg.InitResourceContext) -> Iterator[Settings]:
        run = init_context.dagster_run
        if run is None:
            yield settings
            return
        with warehouse_lock(settings.warehouse, run.run_id):
            yield settings

    return teal_settings


def resources(settings: Settings) -> dict[str, object]:
    """The code location's resources for one set of settings (built once, in definitions.py)."""
    return {
        SETTINGS: settings_resource(settings),
        "dbt": TealDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    }


def run_as_of(context: dg.OpExecutionContext, settings: Settings) -> str:
    """The as_of of this run (see ml/as_of.py): `settings.as_of` ($TEAL_AS_OF) when set, else
    the moment the run was created, so every asset of one run (dbt and Python) shares one cutoff."""
    if settings.as_of:
        return settings.as_of
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record else None
    if created is None:
        raise dg.Failure(f"run {context.run_id} has no creation time; set ${AS_OF_ENV}")
    return naive_utc(created).isoformat(sep=" ", timespec="seconds")


def step_failure(error: Exception) -> dg.Failure:
    """A workflow StepError as a Dagster failure: the message, no traceback to read."""
    return dg.Failure(description=str(error), allow_retries=False)
