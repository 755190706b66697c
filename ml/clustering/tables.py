"""The ml.* tables a clustering run writes, and the previous run's assignments it reads.

- `ml.customer_clusters`: customer_id varchar, cluster_id integer, cluster_label varchar,
  is_outlier boolean, distance double (to the cluster centre, standardised units),
  model_version varchar, as_of_at timestamp. One row per customer, by customer_id.
- `ml.cluster_profiles`: model_version varchar, cluster_id integer, cluster_label varchar,
  size integer, share double, mean_<feature> double..., z_<feature> double... (see
  `profiles`). One row per cluster.
- `ml.cluster_runs` (appended): model_version varchar, fitted_at timestamp, as_of_at
  timestamp, k integer (clusters of the model), silhouette_by_k json ({"3": 0.41, ...}),
  inertia_by_k json, chosen_k integer (best silhouette; differs from k only when
  `n_clusters` forces k), adjusted_rand_vs_previous double (null on a first run or without
  customers in common), sample_size integer, seed integer, features json (the feature
  names, in order), parameters json (settings, per-feature scaling, previous model version,
  id matching, rows, outliers).

`write_tables` replaces the first two and appends to the third in one transaction.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from ml.clustering.features import FeatureScaler
from ml.clustering.result import ClusterRun, json_by_k
from ml.clustering.settings import ClusterSettings
from ml.clustering.stable_ids import IdMatch, adjusted_rand_from_contingency
from ml.warehouse import table_exists

SCHEMA = "ml"

RUNS_DDL = f"""
create table if not exists {SCHEMA}.cluster_runs (
    model_version varchar not null,
    fitted_at timestamp not null,
    as_of_at timestamp,
    k integer not null,
    silhouette_by_k json,
    inertia_by_k json,
    chosen_k integer,
    adjusted_rand_vs_previous double,
    sample_size integer,
    seed integer,
    features json,
    parameters json
)
"""

# The columns of each table here that name a person: erasure (ml/privacy/personal_columns.py)
# deletes a row when one of them names an erased person. A table with none holds no personal data.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f"{SCHEMA}.customer_clusters": ("customer_id",),
    f"{SCHEMA}.cluster_profiles": (),
    f"{SCHEMA}.cluster_runs": (),
}


def adjusted_rand_vs_previous(
    connection: duckdb.DuckDBPyConnection, assigned: pa.Table
) -> float | None:
    """ARI between ml.customer_clusters (last run) and `assigned`, over customers in both."""
    if not table_exists(connection, SCHEMA, "customer_clusters"):
        return None
    connection.register("_clusters_assigned", assigned)
    try:
        counts = connection.execute(
            f"select previous.cluster_id, assigned.cluster_id, count(*) "
            f"from {SCHEMA}.customer_clusters as previous "
            "inner join _clusters_assigned as assigned using (customer_id) "
            "where previous.cluster_id is not null group by all"
        ).fetchall()
    finally:
        connection.unregister("_clusters_assigned")
    if not counts:
        return None
    frame = pd.DataFrame(counts, columns=["previous", "assigned", "customers"])
    table = frame.pivot_table(
        index="previous", columns="assigned", values="customers", aggfunc="sum", fill_value=0
    )
    return adjusted_rand_from_contingency(table.to_numpy())


def profile_columns_sql(features: tuple[str, ...]) -> str:
    """The select list of ml.cluster_profiles: the fixed columns, then mean_ and z_ of each
    feature, each cast to its column type."""
    return ", ".join(
        [
            "cast(model_version as varchar) as model_version",
            "cast(cluster_id as integer) as cluster_id",
            "cast(cluster_label as varchar) as cluster_label",
            "cast(size as integer) as size",
            "cast(share as double) as share",
            *(f'cast("mean_{name}" as double) as "mean_{name}"' for name in features),
            *(f'cast("z_{name}" as double) as "z_{name}"' for name in features),
        ]
    )


def run_parameters(
    run: ClusterRun, scaler: FeatureScaler, settings: ClusterSettings, ids: IdMatch
) -> dict[str, Any]:
    """ml.cluster_runs.parameters: the settings (less the features), the per-feature scaling,
    the previous model version, the id matching, rows and outliers."""
    return {
        **{key: value for key, value in settings.to_dict().items() if key != "features"},
        "scaling": scaler.to_dict(),
        "previous_model_version": run.previous_model_version,
        "matched_cluster_ids": {str(cid): d for cid, d in ids.matched.items()},
        "new_cluster_ids": list(ids.new_ids),
        "retired_cluster_ids": list(ids.retired_ids),
        "rows": run.rows,
        "outliers": run.outliers,
    }


def _replace_customer_clusters(connection: duckdb.DuckDBPyConnection, run: ClusterRun) -> None:
    """ml.customer_clusters from the registered _clusters_assigned and _clusters_labels."""
    connection.execute(
        f"create or replace table {SCHEMA}.customer_clusters as "
        "select cast(assigned.customer_id as varchar) as customer_id, "
        "cast(assigned.cluster_id as integer) as cluster_id, "
        "cast(labels.cluster_label as varchar) as cluster_label, "
        "cast(assigned.is_outlier as boolean) as is_outlier, "
        "cast(assigned.distance as double) as distance, "
        "cast(? as varchar) as model_version, cast(? as timestamp) as as_of_at "
        "from _clusters_assigned as assigned "
        "inner join _clusters_labels as labels using (cluster_id) "
        "order by assigned.customer_id",
        [run.model_version, run.as_of_at],
    )


def _append_cluster_run(
    connection: duckdb.DuckDBPyConnection,
    run: ClusterRun,
    settings: ClusterSettings,
    parameters: dict[str, Any],
) -> None:
    """Append the run's row to ml.cluster_runs (created when absent)."""
    connection.execute(RUNS_DDL)
    connection.execute(
        f"insert into {SCHEMA}.cluster_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.model_version,
            run.fitted_at,
            run.as_of_at,
            run.k,
            json_by_k(run.silhouette_by_k),
            json_by_k(run.inertia_by_k),
            run.chosen_k,
            run.adjusted_rand_vs_previous,
            run.sample_size,
            settings.seed,
            json.dumps(list(settings.features)),
            json.dumps(parameters),
        ],
    )


def write_tables(
    connection: duckdb.DuckDBPyConnection,
    run: ClusterRun,
    assigned: pa.Table,
    scaler: FeatureScaler,
    settings: ClusterSettings,
    ids: IdMatch,
) -> None:
    """Replace ml.customer_clusters and ml.cluster_profiles, append to ml.cluster_runs."""
    labels = pd.DataFrame(
        {"cluster_id": list(run.labels), "cluster_label": list(run.labels.values())}
    ).astype({"cluster_id": "int32"})
    profile_columns = profile_columns_sql(settings.features)
    parameters = run_parameters(run, scaler, settings, ids)
    connection.execute(f"create schema if not exists {SCHEMA}")
    connection.register("_clusters_assigned", assigned)
    connection.register("_clusters_labels", labels)
    connection.register("_clusters_profiles", run.profiles)
    connection.execute("begin transaction")
    try:
        _replace_customer_clusters(connection, run)
        connection.execute(
            f"create or replace table {SCHEMA}.cluster_profiles as "
            f"select {profile_columns} from _clusters_profiles order by cluster_id"
        )
        _append_cluster_run(connection, run, settings, parameters)
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise
    finally:
        for name in ("_clusters_assigned", "_clusters_labels", "_clusters_profiles"):
            connection.unregister(name)


__all__ = [
    "PERSONAL_COLUMNS",
    "RUNS_DDL",
    "SCHEMA",
    "adjusted_rand_vs_previous",
    "profile_columns_sql",
    "run_parameters",
    "write_tables",
]
