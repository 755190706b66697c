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

Modules: `inputs` checks and samples the feature table, `assignment` streams the
assignments, `tables` writes the ml.* tables (described there), `result` is the `ClusterRun`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from sklearn.ensemble import IsolationForest

from ml.as_of import naive_utc
from ml.clustering import charts
from ml.clustering.assignment import assign_batches
from ml.clustering.features import FeatureScaler, raw_matrix
from ml.clustering.inputs import (
    DEFAULT_TABLE,
    check_columns,
    count_customers,
    quoted_table,
    read_sample,
    resolve_as_of,
)
from ml.clustering.model import (
    ClusterModel,
    KSelection,
    PreviousModel,
    fit_outliers,
    model_version,
    previous_model,
    sample_digest,
    save_model,
    select_k,
)
from ml.clustering.profiles import ProfileAccumulator, label_clusters, z_matrix
from ml.clustering.result import ClusterRun
from ml.clustering.settings import ClusterSettings
from ml.clustering.stable_ids import IdMatch, match_cluster_ids
from ml.clustering.tables import (
    PERSONAL_COLUMNS,
    RUNS_DDL,
    SCHEMA,
    adjusted_rand_vs_previous,
    write_tables,
)

CHART_FILES = {
    "silhouette_elbow": "silhouette_elbow.png",
    "cluster_profiles": "cluster_profiles.png",
}


@dataclass(frozen=True)
class SampleFit:
    """What was fitted on the sample: the scaler, the k selection (with its K-Means models),
    the Isolation Forest, and the sample's customer ids and digest."""

    sample_ids: list[str]
    digest: str
    scaler: FeatureScaler
    selection: KSelection
    forest: IsolationForest


def fit_on_sample(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    as_of_at: dt.datetime | None,
    settings: ClusterSettings,
    seconds: dict[str, float],
    *,
    progress: bool = False,
) -> SampleFit:
    """Draw the fitting sample, fit the scaling, K-Means for each k and the Isolation Forest;
    time the "sample" and "fit" steps into `seconds`. The sample is not kept."""
    features = settings.features
    clock = time.perf_counter()
    sample = read_sample(connection, table, features, as_of_at, settings)
    sample_ids = sample.column("customer_id").to_pylist()
    raw = raw_matrix(sample, features)
    seconds["sample"] = time.perf_counter() - clock

    clock = time.perf_counter()
    scaler = FeatureScaler.fit(raw, features)
    matrix = scaler.transform(raw)
    selection = select_k(matrix, settings, progress=progress)
    forest = fit_outliers(matrix, settings)
    seconds["fit"] = time.perf_counter() - clock
    return SampleFit(sample_ids, sample_digest(sample_ids, raw), scaler, selection, forest)


def build_model(
    connection: duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    fit: SampleFit,
    settings: ClusterSettings,
    table: str,
    fitted_at: dt.datetime,
    as_of_at: dt.datetime | None,
    rows: int,
) -> tuple[ClusterModel, PreviousModel | None, IdMatch]:
    """The new model, with cluster ids matched to the previous model's (found in `model_dir`
    or named by ml.cluster_runs) and a version hashed from what it was fitted on."""
    previous = previous_model(connection, model_dir)
    kmeans = fit.selection.models[fit.selection.k]
    sample_sizes = np.bincount(kmeans.labels_, minlength=fit.selection.k)
    ids = match_cluster_ids(kmeans.cluster_centers_, sample_sizes, fit.scaler, previous)
    version = model_version(
        fitted_at,
        {
            "settings": {k: v for k, v in settings.to_dict().items() if k != "batch_size"},
            "table": table,
            "previous_model_version": previous.model_version if previous else None,
            "as_of_at": as_of_at,
            "rows": rows,
            "sample": fit.digest,
        },
    )
    model = ClusterModel(
        model_version=version,
        settings=settings,
        scaler=fit.scaler,
        kmeans=kmeans,
        outliers=fit.forest,
        cluster_ids=ids.cluster_ids,
        next_cluster_id=ids.next_cluster_id,
        fitted_at=fitted_at,
        as_of_at=as_of_at,
    )
    return model, previous, ids


def describe_run(
    connection: duckdb.DuckDBPyConnection,
    model: ClusterModel,
    previous: PreviousModel | None,
    ids: IdMatch,
    fit: SampleFit,
    accumulator: ProfileAccumulator,
    assigned: pa.Table,
    rows: int,
    model_dir: str | Path,
    seconds: dict[str, float],
) -> ClusterRun:
    """Profile and label the clusters (the labels also go on `model`), compare with the
    previous assignment, and return the run (charts not drawn yet)."""
    settings = model.settings
    profiles = accumulator.profiles(model.cluster_ids)
    labels = label_clusters(
        z_matrix(profiles, settings.features),
        words=settings.label_words,
        min_z=settings.label_min_z,
    )
    model.labels = labels
    profiles.insert(0, "model_version", model.model_version)
    profiles.insert(2, "cluster_label", profiles["cluster_id"].map(labels))
    selection = fit.selection
    return ClusterRun(
        model_version=model.model_version,
        previous_model_version=previous.model_version if previous else None,
        fitted_at=model.fitted_at,
        as_of_at=model.as_of_at,
        rows=rows,
        sample_size=len(fit.sample_ids),
        k=selection.k,
        chosen_k=selection.chosen_k,
        silhouette_by_k=selection.silhouette_by_k,
        inertia_by_k=selection.inertia_by_k,
        adjusted_rand_vs_previous=adjusted_rand_vs_previous(connection, assigned),
        outliers=int(profiles["outliers"].sum()),
        sizes={
            int(c): int(s) for c, s in zip(profiles["cluster_id"], profiles["size"], strict=True)
        },
        labels=labels,
        new_cluster_ids=ids.new_ids,
        retired_cluster_ids=ids.retired_ids,
        model_path=Path(model_dir) / model.model_version,
        charts={},
        profiles=profiles,
        seconds=seconds,
    )


def draw_charts(
    run: ClusterRun, selection: KSelection, features: tuple[str, ...]
) -> dict[str, Path]:
    """Draw the silhouette/elbow chart and the profile heatmap into the model folder."""
    folder = run.model_path
    return {
        "silhouette_elbow": charts.silhouette_elbow_chart(
            selection.silhouette_by_k,
            selection.inertia_by_k,
            selection.chosen_k,
            folder / CHART_FILES["silhouette_elbow"],
            used_k=selection.k,
        ),
        "cluster_profiles": charts.profile_heatmap(
            run.profiles, features, folder / CHART_FILES["cluster_profiles"]
        ),
    }


def save_model_with_metrics(
    model: ClusterModel, model_dir: str | Path, run: ClusterRun, ids: IdMatch
) -> None:
    """Save the model folder with metrics.json: the run, the id matching, outliers by cluster."""
    metrics = run.as_dict()
    metrics["matched_cluster_ids"] = {str(cid): d for cid, d in ids.matched.items()}
    metrics["outliers_by_cluster"] = {
        str(int(c)): int(o)
        for c, o in zip(run.profiles["cluster_id"], run.profiles["outliers"], strict=True)
    }
    save_model(model, model_dir, metrics)


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
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    source = quoted_table(table)
    check_columns(connection, table, settings.features)
    as_of_at = resolve_as_of(connection, table, as_of)
    rows = count_customers(connection, table, as_of_at)
    seconds["check"] = time.perf_counter() - clock

    fit = fit_on_sample(connection, table, as_of_at, settings, seconds, progress=progress)
    model, previous, ids = build_model(
        connection, model_dir, fit, settings, table, fitted_at, as_of_at, rows
    )

    clock = time.perf_counter()
    assigned, accumulator = assign_batches(
        connection, source, model, as_of_at, settings.batch_size, rows=rows, progress=progress
    )
    seconds["assign"] = time.perf_counter() - clock

    clock = time.perf_counter()
    run = describe_run(
        connection, model, previous, ids, fit, accumulator, assigned, rows, model_dir, seconds
    )
    run.charts = draw_charts(run, fit.selection, settings.features)
    seconds["profile"] = time.perf_counter() - clock
    save_model_with_metrics(model, model_dir, run, ids)

    clock = time.perf_counter()
    write_tables(connection, run, assigned, fit.scaler, settings, ids)
    seconds["write"] = time.perf_counter() - clock
    return run


__all__ = [
    "CHART_FILES",
    "DEFAULT_TABLE",
    "PERSONAL_COLUMNS",
    "RUNS_DDL",
    "SCHEMA",
    "ClusterRun",
    "SampleFit",
    "adjusted_rand_vs_previous",
    "build_model",
    "check_columns",
    "cluster_customers",
    "count_customers",
    "describe_run",
    "draw_charts",
    "fit_on_sample",
    "read_sample",
    "resolve_as_of",
    "save_model_with_metrics",
    "write_tables",
]
