"""Resources shared by every asset: the DuckDB warehouse and the dbt CLI."""

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from orchestration.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR, WAREHOUSE_ENV

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

warehouse = DuckDBResource(database=dg.EnvVar(WAREHOUSE_ENV))
dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)

defs = dg.Definitions(resources={"warehouse": warehouse, "dbt": dbt})
