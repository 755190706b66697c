"""Where things live. One environment variable, TEAL_WAREHOUSE, names the DuckDB file for
dbt (profiles.yml) and Dagster (the DuckDB resource) alike. No Dagster import here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_WAREHOUSE = REPO_ROOT / "data" / "warehouse.duckdb"
WAREHOUSE_ENV = "TEAL_WAREHOUSE"
# dbt from the same environment as this Python, whether or not that environment is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
LANDING_ENV = "TEAL_LANDING"
# The moment features and segments are computed as of (ml/as_of.py): unset means the run's start.
AS_OF_ENV = "TEAL_AS_OF"


def warehouse_path() -> Path:
    """The DuckDB file: $TEAL_WAREHOUSE, else data/warehouse.duckdb."""
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE).resolve()


def landing_path() -> Path:
    """The landing folder: $TEAL_LANDING, else data/landing/."""
    return Path(os.environ.get(LANDING_ENV) or REPO_ROOT / "data" / "landing").resolve()


def reports_path() -> Path:
    """Where run reports (dbt results, charts) are written: data/reports/ beside the warehouse."""
    return warehouse_path().parent / "reports"


def quiet_telemetry() -> None:
    """Turn off the usage reporting of dbt and Great Expectations for this process and its children."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


# The dbt project runs in parts because Python sits between them:
# - feeds: the staging models and the identifiers identity resolution reads;
# - customers: after identity (orchestration/defs/identity.py) and erasure
#   (orchestration/defs/privacy.py), the customer models, features, RFM, the consent ledger
#   and the suppression list;
# - audiences: the audience model, after the ML clusters (orchestration/defs/audiences.py);
# - activation: campaign outcomes, after the exports (orchestration/defs/activation.py).
DBT_SELECTIONS = {
    "feeds": {
        "select": "path:models/staging path:models/intermediate/identity",
        "exclude": "path:models/staging/identity path:models/staging/ml "
        "path:models/staging/activation",
    },
    "customers": {
        "select": "path:models/staging/identity path:models/intermediate/customers "
        "path:models/intermediate/behaviour path:models/marts/customers "
        "path:models/marts/features path:models/intermediate/consent "
        "path:models/marts/consent path:seeds",
    },
    "audiences": {
        "select": "path:models/staging/ml path:models/marts/audiences",
    },
    "activation": {"select": "path:models/staging/activation path:models/marts/activation"},
}
