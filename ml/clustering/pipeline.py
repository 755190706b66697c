"""Cluster every customer of marts.customer_features and write the ml.* tables.

    from ml.clustering import cluster_customers
    run = cluster_customers(connection, model_dir="data/models/clusters")
    run.k, run.labels, run.adjusted_rand_vs_previous, run.charts

Steps, all on one DuckDB connection (Dagster calls this from the lead's ML asset):

1. check the table (columns present and numeric, one row per customer_id) and pick its
   `as_of_at` (the one it holds, or `as_of` when given);
2. draw the fitting sample: the `sample_size` customers with the smallest
   md5(customer_id || ':' || seed), so the draw is random, seeded and independent of the
   table's row order; only the feature columns are read;
3. fit fill/log1p/standardisation (`features`), K-Means for each k with its silhouette and
   inertia (`model.select_k`), and the Isolation Forest (`model.fit_outliers`);
4. match the new centroids to the previous model's to keep cluster ids (`stable_ids`);
5. stream the table in Arrow record batches of `batch_size` rows (customer_id and the
   features only), assign each customer (cluster, distance, outlier flag) and add the batch
   to the profile sums (`profiles.ProfileAccumulator`): memory is bounded by the batch and
   the small per-customer result (id, cluster, flag, distance), never the whole table;
6. profiles and labels, the adjusted Rand index against the previous ml.customer_clusters
   (counted in SQL over the customers in both), charts and the model folder
   (`model.save_model`), then in one transaction: replace ml.customer_clusters and
   ml.cluster_profiles, append to ml.cluster_runs.

Tables (schema `ml`, created if absent):

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
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from ml.as_of import cutoff, naive_utc
from ml.clustering import charts
from ml.clustering.features import FeatureScaler, raw_matrix
from ml.clustering.model import (
    ClusterModel,
    fit_outliers,
    model_version,
    previous_model,
    sample_digest,
    save_model,
    select_k,
)
from ml.clustering.profiles import ProfileAccumulator, label_clusters, z_matrix
from ml.clustering.settings import ClusterSettings
from ml.clustering.stable_ids import IdMatch, adjusted_rand_from_contingency, match_cluster_ids
from ml.sql import quote_ident
from ml.warehouse import table_exists

DEFAULT_TABLE = "marts.customer_features"
SCHEMA = "ml"
CHART_FILES = {
    "silhouette_elbow": "silhouette_elbow.png",
    "cluster_profiles": "cluster_profiles.png",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?)$"
)

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


@dataclass
class ClusterRun:
    """What one clustering run did; `as_dict()` gives it as plain JSON-able values.

    `profiles` holds the rows written to ml.cluster_profiles plus `outliers` (flagged
    customers per cluster); `charts` maps "silhouette_elbow" and "cluster_profiles" to the
    PNG files in `model_path`; `seconds` times each step.
    """

    model_version: str
    previous_model_version: str | None
    fitted_at: dt.datetime
    as_of_at: dt.datetime | None
    rows: int
    sample_size: int
    k: int
    chosen_k: int
    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    adjusted_rand_vs_previous: float | None
    outliers: int
    sizes: dict[int, int]
    labels: dict[int, str]
    new_cluster_ids: tuple[int, ...]
    retired_cluster_ids: tuple[int, ...]
    model_path: Path
    charts: dict[str, Path]
    profiles: pd.DataFrame = field(repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Dagster metadata, metrics.json and logs); profiles left out."""
        return {
            "model_version": self.model_version,
            "previous_model_version": self.previous_model_version,
            "fitted_at": self.fitted_at.isoformat(),
            "as_of_at": self.as_of_at.isoformat() if self.as_of_at else None,
            "rows": self.rows,
            "sample_size": self.sample_size,
            "k": self.k,
            "chosen_k": self.chosen_k,
            "silhouette_by_k": json.loads(_json_by_k(self.silhouette_by_k)),
            "inertia_by_k": json.loads(_json_by_k(self.inertia_by_k)),
            "adjusted_rand_vs_previous": self.adjusted_rand_vs_previous,
            "outliers": self.outliers,
            "sizes": {str(k): v for k, v in self.sizes.items()},
            "labels": {str(k): v for k, v in self.labels.items()},
            "new_cluster_ids": list(self.new_cluster_ids),
            "retired_cluster_ids": list(self.retired_cluster_ids),
            "model_path": str(self.model_path),
            "charts": {name: str(path) for name, path in self.charts.items()},
            "seconds": self.seconds,
        }


def cluster_customers(
    connection: duckdb.DuckDBPyConnection,
    *,
    model_dir: str | Path,
    settings: ClusterSettings | None = None,
    table: str = DEFAULT_TABLE,
    as_of: dt.datetime | dt.date | str | None = None,
    progress: bool = False,
    now: dt.datetime | None = None,
) -> ClusterRun:
    """Fit, assign, profile, label and write the clusters (see module docstring).

    `model_dir` holds one folder per model version; the previous model found there (or
    named by ml.cluster_runs) keeps cluster ids stable. `as_of` (the cutoff; naive = UTC; a
    bare date is the end of that day) must equal the table's `as_of_at`; None takes the one
    the table holds. `now` stamps `fitted_at` (default: the current UTC time).
    """
    settings = settings or ClusterSettings()
    # to the microsecond: two runs in one second still order (the newest is the previous model)
    fitted_at = naive_utc(now or dt.datetime.now(dt.UTC))
    features = settings.features
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    source = _quoted_table(table)
    check_columns(connection, table, features)
    as_of_at = resolve_as_of(connection, table, as_of)
    rows = count_customers(connection, table, as_of_at)
    seconds["check"] = time.perf_counter() - clock

    clock = time.perf_counter()
    sample = read_sample(connection, table, features, as_of_at, settings)
    sample_ids = sample.column("customer_id").to_pylist()
    raw = raw_matrix(sample, features)
    seconds["sample"] = time.perf_counter() - clock

    clock = time.perf_counter()
    scaler = FeatureScaler.fit(raw, features)
    matrix = scaler.transform(raw)
    selection = select_k(matrix, settings, progress=progress)
    kmeans = selection.models[selection.k]
    forest = fit_outliers(matrix, settings)
    seconds["fit"] = time.perf_counter() - clock

    previous = previous_model(connection, model_dir)
    sample_sizes = np.bincount(kmeans.labels_, minlength=selection.k)
    ids = match_cluster_ids(kmeans.cluster_centers_, sample_sizes, scaler, previous)
    version = model_version(
        fitted_at,
        {
            "settings": {k: v for k, v in settings.to_dict().items() if k != "batch_size"},
            "table": table,
            "previous_model_version": previous.model_version if previous else None,
            "as_of_at": as_of_at,
            "rows": rows,
            "sample": sample_digest(sample_ids, raw),
        },
    )
    model = ClusterModel(
        model_version=version,
        settings=settings,
        scaler=scaler,
        kmeans=kmeans,
        outliers=forest,
        cluster_ids=ids.cluster_ids,
        next_cluster_id=ids.next_cluster_id,
        fitted_at=fitted_at,
        as_of_at=as_of_at,
    )
    del sample, raw, matrix

    clock = time.perf_counter()
    assigned, accumulator = assign_batches(
        connection, source, model, as_of_at, settings.batch_size, rows=rows, progress=progress
    )
    seconds["assign"] = time.perf_counter() - clock

    clock = time.perf_counter()
    profiles = accumulator.profiles(model.cluster_ids)
    labels = label_clusters(
        z_matrix(profiles, features), words=settings.label_words, min_z=settings.label_min_z
    )
    model.labels = labels
    profiles.insert(0, "model_version", version)
    profiles.insert(2, "cluster_label", profiles["cluster_id"].map(labels))
    ari = adjusted_rand_vs_previous(connection, assigned)
    sizes = {int(c): int(s) for c, s in zip(profiles["cluster_id"], profiles["size"], strict=True)}
    outliers = int(profiles["outliers"].sum())

    run = ClusterRun(
        model_version=version,
        previous_model_version=previous.model_version if previous else None,
        fitted_at=fitted_at,
        as_of_at=as_of_at,
        rows=rows,
        sample_size=len(sample_ids),
        k=selection.k,
        chosen_k=selection.chosen_k,
        silhouette_by_k=selection.silhouette_by_k,
        inertia_by_k=selection.inertia_by_k,
        adjusted_rand_vs_previous=ari,
        outliers=outliers,
        sizes=sizes,
        labels=labels,
        new_cluster_ids=ids.new_ids,
        retired_cluster_ids=ids.retired_ids,
        model_path=Path(model_dir) / version,
        charts={},
        profiles=profiles,
        seconds=seconds,
    )
    folder = Path(model_dir) / version
    run.charts = {
        "silhouette_elbow": charts.silhouette_elbow_chart(
            selection.silhouette_by_k,
            selection.inertia_by_k,
            selection.chosen_k,
            folder / CHART_FILES["silhouette_elbow"],
            used_k=selection.k,
        ),
        "cluster_profiles": charts.profile_heatmap(
            profiles, features, folder / CHART_FILES["cluster_profiles"]
        ),
    }
    seconds["profile"] = time.perf_counter() - clock
    metrics = run.as_dict()
    metrics["matched_cluster_ids"] = {str(cid): d for cid, d in ids.matched.items()}
    metrics["outliers_by_cluster"] = {
        str(int(c)): int(o)
        for c, o in zip(profiles["cluster_id"], profiles["outliers"], strict=True)
    }
    save_model(model, model_dir, metrics)

    clock = time.perf_counter()
    write_tables(connection, run, assigned, scaler, settings, ids)
    seconds["write"] = time.perf_counter() - clock
    return run


def _quoted_table(table: str) -> str:
    parts = table.split(".")
    if not 1 <= len(parts) <= 3 or not all(_IDENTIFIER.match(part) for part in parts):
        raise ValueError(
            f"table {table!r} is not a plain [catalog.][schema.]name; pass e.g. {DEFAULT_TABLE!r}"
        )
    return ".".join(quote_ident(part) for part in parts)


def check_columns(
    connection: duckdb.DuckDBPyConnection, table: str, features: tuple[str, ...]
) -> None:
    """Check that the input table exists with customer_id, as_of_at and numeric features."""
    source = _quoted_table(table)
    try:
        described = connection.execute(f"describe {source}").fetchall()
    except duckdb.CatalogException:
        raise ValueError(
            f"{table} does not exist; build it first (cd dbt_project && dbt build --select "
            "customer_features) or pass table= the feature table"
        ) from None
    types = {str(name): str(kind).upper() for name, kind, *_ in described}
    for name in ("customer_id", "as_of_at"):
        if name not in types:
            raise ValueError(
                f"{table} has no column {name!r}; it must hold customer_id and as_of_at "
                "beside the features (the customer_features contract)"
            )
    for name in features:
        if name not in types:
            raise ValueError(
                f"{table} has no column {name!r} (listed in ClusterSettings.features); "
                f"remove it from the features or add it to the table"
            )
        if not _NUMERIC.match(types[name]):
            raise ValueError(
                f"{table}.{name} is {types[name]}, not a number; only numeric columns can be "
                "clustered, so remove it from ClusterSettings.features"
            )


def count_customers(
    connection: duckdb.DuckDBPyConnection, table: str, as_of_at: dt.datetime | None
) -> int:
    """Rows of the table as of `as_of_at`, checked to be one per (non-null) customer_id."""
    source = _quoted_table(table)
    where, parameters = _as_of_filter(as_of_at)
    rows, distinct, missing = connection.execute(
        f"select count(*), count(distinct customer_id), count(*) - count(customer_id) "
        f"from {source} where {where}",
        parameters,
    ).fetchall()[0]
    if missing:
        raise ValueError(
            f"{table} has {missing} row(s) with a null customer_id; every row must name its "
            "customer (fix the model that builds it)"
        )
    if distinct != rows:
        (example,) = connection.execute(
            f"select customer_id from {source} where {where} group by customer_id "
            "having count(*) > 1 order by customer_id limit 1",
            parameters,
        ).fetchall()[0]
        raise ValueError(
            f"{table} has {rows - distinct} duplicate customer_id row(s), e.g. {example!r}; "
            "it must hold one row per customer (deduplicate the model that builds it)"
        )
    if rows == 0:
        raise ValueError(
            f"{table} is empty; build it with customers first (cd dbt_project && dbt build "
            "--select customer_features)"
        )
    return int(rows)


def resolve_as_of(
    connection: duckdb.DuckDBPyConnection, table: str, as_of: dt.datetime | dt.date | str | None
) -> dt.datetime | None:
    """The as_of_at to cluster: `as_of` checked against the table, or the one it holds."""
    source = _quoted_table(table)
    held = [
        value
        for (value,) in connection.execute(
            f"select distinct as_of_at from {source} order by as_of_at"
        ).fetchall()
    ]
    shown = ", ".join(str(value) for value in held[:5]) + (", ..." if len(held) > 5 else "")
    if as_of is not None:
        wanted = cutoff(as_of)
        if wanted not in held:
            raise ValueError(
                f"{table} holds no rows as of {wanted:%Y-%m-%d %H:%M:%S} (its as_of_at: "
                f"{shown}); rebuild it with dbt --vars '{{as_of: ...}}' for that cutoff, or "
                "pass as_of=None to cluster what it holds"
            )
        return wanted
    if len(held) > 1:
        raise ValueError(
            f"{table} holds several as_of_at values ({shown}); pass as_of= to pick one"
        )
    return held[0] if held else None


def _as_of_filter(as_of_at: dt.datetime | None) -> tuple[str, list[Any]]:
    if as_of_at is None:
        return "as_of_at is null", []
    return "as_of_at = ?", [as_of_at]


def read_sample(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    features: tuple[str, ...],
    as_of_at: dt.datetime | None,
    settings: ClusterSettings,
) -> pa.Table:
    """The fitting sample: customer_id and the features of `sample_size` hashed customers."""
    source = _quoted_table(table)
    columns = ", ".join(f'"{name}"' for name in features)
    where, parameters = _as_of_filter(as_of_at)
    return connection.sql(
        f"select customer_id, {columns} from {source} where {where} "
        "order by md5(customer_id || ?), customer_id limit ?",
        params=[*parameters, f":{settings.seed}", settings.sample_size],
    ).to_arrow_table()


def assign_batches(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    model: ClusterModel,
    as_of_at: dt.datetime | None,
    batch_size: int,
    *,
    rows: int | None = None,
    progress: bool = False,
) -> tuple[pa.Table, ProfileAccumulator]:
    """Assign every customer batch by batch: (customer_id, cluster_id, is_outlier, distance).

    Reads only customer_id and the features, `batch_size` rows at a time, from an Arrow
    record batch reader; returns the per-customer result and the profile sums.
    """
    columns = ", ".join(f'"{name}"' for name in model.features)
    where, parameters = _as_of_filter(as_of_at)
    reader = connection.sql(
        f"select customer_id, {columns} from {source} where {where}", params=parameters
    ).to_arrow_reader(batch_size)
    accumulator = ProfileAccumulator(len(model.cluster_ids), model.features)
    ids = np.asarray(model.cluster_ids, dtype="int32")
    parts: list[pa.RecordBatch] = []
    bar = tqdm(desc="assign clusters", unit="customer", total=rows, disable=not progress)
    try:
        for batch in reader:
            bar.update(batch.num_rows)
            if not batch.num_rows:
                continue
            raw = raw_matrix(batch, model.features)
            standardised = model.scaler.transform(raw)
            index, distance, outlier = model.assign_standardised(standardised)
            accumulator.add(index, raw, standardised, outlier)
            parts.append(
                pa.RecordBatch.from_arrays(
                    [
                        batch.column("customer_id"),
                        pa.array(ids[index], pa.int32()),
                        pa.array(outlier, pa.bool_()),
                        pa.array(distance, pa.float64()),
                    ],
                    names=["customer_id", "cluster_id", "is_outlier", "distance"],
                )
            )
    finally:
        reader.close()
        bar.close()
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("cluster_id", pa.int32()),
            ("is_outlier", pa.bool_()),
            ("distance", pa.float64()),
        ]
    )
    parts = [part.cast(schema) if part.schema != schema else part for part in parts]
    return pa.Table.from_batches(parts, schema=schema), accumulator


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


def _json_by_k(values: dict[int, float]) -> str:
    """{"3": 0.41, ...}; NaN (a k whose silhouette is undefined) becomes null."""
    return json.dumps(
        {str(k): (None if v is None or math.isnan(v) else v) for k, v in values.items()}
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
    features = settings.features
    labels = pd.DataFrame(
        {"cluster_id": list(run.labels), "cluster_label": list(run.labels.values())}
    ).astype({"cluster_id": "int32"})
    profile_columns = ", ".join(
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
    parameters = {
        **{key: value for key, value in settings.to_dict().items() if key != "features"},
        "scaling": scaler.to_dict(),
        "previous_model_version": run.previous_model_version,
        "matched_cluster_ids": {str(cid): d for cid, d in ids.matched.items()},
        "new_cluster_ids": list(ids.new_ids),
        "retired_cluster_ids": list(ids.retired_ids),
        "rows": run.rows,
        "outliers": run.outliers,
    }
    connection.execute(f"create schema if not exists {SCHEMA}")
    connection.register("_clusters_assigned", assigned)
    connection.register("_clusters_labels", labels)
    connection.register("_clusters_profiles", run.profiles)
    connection.execute("begin transaction")
    try:
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
        connection.execute(
            f"create or replace table {SCHEMA}.cluster_profiles as "
            f"select {profile_columns} from _clusters_profiles order by cluster_id"
        )
        connection.execute(RUNS_DDL)
        connection.execute(
            f"insert into {SCHEMA}.cluster_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.model_version,
                run.fitted_at,
                run.as_of_at,
                run.k,
                _json_by_k(run.silhouette_by_k),
                _json_by_k(run.inertia_by_k),
                run.chosen_k,
                run.adjusted_rand_vs_previous,
                run.sample_size,
                settings.seed,
                json.dumps(list(features)),
                json.dumps(parameters),
            ],
        )
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise
    finally:
        for name in ("_clusters_assigned", "_clusters_labels", "_clusters_profiles"):
            connection.unregister(name)
