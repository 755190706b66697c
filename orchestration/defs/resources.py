"""Resources shared by every asset: Teal's settings and the dbt CLI; the run's as_of."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from ml.as_of import naive_utc
from ml.settings import AS_OF_ENV, DBT_EXECUTABLE, DBT_PROJECT_DIR, Settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# Assets ask for the settings by this parameter name: `settings: dg.ResourceParam[Settings]`.
SETTINGS = "settings"


def resources(settings: Settings) -> dict[str, object]:
    """The code location's resources for one set of settings (built once, in definitions.py)."""
    return {
        SETTINGS: settings,
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
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
