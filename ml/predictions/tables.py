"""The ml.* tables a predictions run writes.

- `ml.customer_predictions` (replaced each run): one row per customer of
  marts.customer_features, see `PREDICTION_COLUMNS`.
- `ml.prediction_runs` (appended): model_version, fitted_at, as_of_at, metrics json (held-out
  metrics of both classifiers and their baselines, the CLV fit and holdout check), drift json
  (PSI per column), retrain json (the rule's decision and reasons), parameters json.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import pandas as pd

SCHEMA = "ml"

# name -> (DuckDB type, description); the dbt source yml repeats the descriptions
PREDICTION_COLUMNS: dict[str, tuple[str, str]] = {
    "customer_id": ("varchar", "The customer."),
    "as_of_at": ("timestamp", "The cutoff of the features the scores were computed from."),
    "purchase_propensity": (
        "double",
        "Calibrated probability of a completed order within the propensity horizon (30 days).",
    ),
    "purchase_propensity_decile": ("integer", "1 = the tenth most likely to buy, 10 = least."),
    "purchase_propensity_reasons": (
        "varchar",
        "The features that move this customer's propensity most, 'feature=value (+change)'.",
    ),
    "churn_risk": (
        "double",
        "Calibrated probability of no completed order within the churn horizon (90 days); "
        "null for customers who never bought.",
    ),
    "churn_risk_decile": ("integer", "1 = the tenth most at risk among buyers; null if none."),
    "churn_risk_reasons": ("varchar", "The features that move this customer's churn risk most."),
    "p_alive": (
        "double",
        "BG/NBD probability that the customer is still active; null if never bought.",
    ),
    "expected_orders_12m": ("double", "BG/NBD expected purchase days in the CLV horizon."),
    "expected_order_value_gbp": (
        "double",
        "Gamma-Gamma expected net value of a purchase day, GBP.",
    ),
    "clv_12m_gbp": ("double", "Expected net revenue in the CLV horizon (12 months), GBP."),
    "clv_decile": (
        "integer",
        "1 = the tenth of buyers with the highest CLV; null if never bought.",
    ),
    "model_version": (
        "varchar",
        "The predictions run (models under data/models/<model>/<version>/).",
    ),
}

RUNS_DDL = f"""
create table if not exists {SCHEMA}.prediction_runs (
    model_version varchar not null,
    fitted_at timestamp not null,
    as_of_at timestamp not null,
    metrics json,
    drift json,
    retrain json,
    parameters json
)
"""

# The columns of each table here that name a person (read by erasure).
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f"{SCHEMA}.customer_predictions": ("customer_id",),
    f"{SCHEMA}.prediction_runs": (),
}


def write_predictions(
    connection: duckdb.DuckDBPyConnection,
    predictions: pd.DataFrame,
    run: dict[str, Any],
) -> None:
    """Replace ml.customer_predictions and append the run to ml.prediction_runs, in one
    transaction."""
    columns = ", ".join(
        f"cast({name} as {kind}) as {name}" for name, (kind, _) in PREDICTION_COLUMNS.items()
    )
    connection.execute(f"create schema if not exists {SCHEMA}")
    connection.execute(RUNS_DDL)
    connection.register("_predictions_frame", predictions)
    try:
        connection.execute("begin transaction")
        connection.execute(
            f"create or replace table {SCHEMA}.customer_predictions as "
            f"select {columns} from _predictions_frame order by customer_id"
        )
        connection.execute(
            f"insert into {SCHEMA}.prediction_runs values (?, ?, ?, ?, ?, ?, ?)",
            [
                run["model_version"],
                run["fitted_at"],
                run["as_of_at"],
                json.dumps(run["metrics"], default=_json_default),
                json.dumps(run["drift"], default=_json_default),
                json.dumps(run["retrain"], default=_json_default),
                json.dumps(run["parameters"], default=_json_default),
            ],
        )
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise
    finally:
        connection.unregister("_predictions_frame")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
