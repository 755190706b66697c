"""Resources shared by every asset: the DuckDB warehouse and the dbt CLI; the run's as_of."""

import os

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from ml.as_of import naive_utc
from orchestration.settings import AS_OF_ENV, DBT_EXECUTABLE, DBT_PROJECT_DIR, WAREHOUSE_ENV

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

warehouse = DuckDBResource(database=dg.EnvVar(WAREHOUSE_ENV))
dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def run_as_of(context: dg.OpExecutionContext) -> str:
    """The as_of of this run (see ml/as_of.py): $TEAL_AS_OF when set, else the moment the run
    was created, so every asset of one run (dbt and Python alike) shares one cutoff."""
    configured = os.environ.get(AS_OF_ENV, "").strip()
    if configured:
        return configured
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record else None
    if created is None:
        raise dg.Failure(f"run {context.run_id} has no creation time; set ${AS_OF_ENV}")
    return naive_utc(created).isoformat(sep=" ", timespec="seconds")


defs = dg.Definitions(resources={"warehouse": warehouse, "dbt": dbt})
