"""ML customer clusters: recovery of planted groups, determinism, stable ids, ARI, labels,
outliers, batching, charts and the ml.* tables, on real DuckDB files."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from clustering_builders import AS_OF, feature_frame, write_features
from sklearn.metrics import adjusted_rand_score

from ml.clustering import ClusterSettings, cluster_customers, load_model
from ml.clustering.charts import rfm_grid_chart, segment_sizes_chart
from ml.clustering.features import FeatureScaler
from ml.clustering.model import PreviousModel
from ml.clustering.profiles import label_clusters
from ml.clustering.stable_ids import (
    adjusted_rand_from_contingency,
    adjusted_rand_index,
    match_cluster_ids,
)

FAST = ClusterSettings(k_max=6, n_init=4)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def warehouse(
    tmp_path: Path, frame: pd.DataFrame, name: str = "warehouse"
) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    write_features(connection, frame)
    return connection


def assignment(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return connection.execute("select * from ml.customer_clusters order by customer_id").df()


def group_to_id(frame: pd.DataFrame, groups: np.ndarray, clusters: pd.DataFrame) -> dict[int, int]:
    """Planted group -> the cluster id most of its customers got."""
    merged = pd.DataFrame({"customer_id": frame["customer_id"], "group": groups}).merge(
        clusters, on="customer_id"
    )
    merged = merged[merged["group"] >= 0]
    return {int(g): int(part["cluster_id"].mode().iloc[0]) for g, part in merged.groupby("group")}


# --- planted groups ---------------------------------------------------------------------


def test_planted_clusters_recovered_with_exact_k(tmp_path: Path) -> None:
    frame, groups = feature_frame(2_000, groups=4, seed=1)
    connection = warehouse(tmp_path, frame)

    run = cluster_customers(connection, model_dir=tmp_path / "models")

    assert run.chosen_k == 4 and run.k == 4
    assert max(run.silhouette_by_k, key=run.silhouette_by_k.get) == 4
    assert sorted(run.silhouette_by_k) == [3, 4, 5, 6, 7, 8]
    assert sorted(run.inertia_by_k) == [3, 4, 5, 6, 7, 8]
    inertia = [run.inertia_by_k[k] for k in range(3, 9)]
    assert inertia == sorted(inertia, reverse=True)
    clusters = assignment(connection)
    assert len(clusters) == 2_000
    assert adjusted_rand_score(groups, clusters["cluster_id"]) >= 0.99
    assert run.sample_size == 2_000 and run.rows == 2_000
    # the labels say what was planted: group 0 are the champions
    champions = group_to_id(frame, groups, clusters)[0]
    assert run.labels[champions] == "recent, frequent, clicking emails"


def test_sample_smaller_than_table_still_recovers_every_customer(tmp_path: Path) -> None:
    frame, groups = feature_frame(3_000, groups=3, seed=2)
    connection = warehouse(tmp_path, frame)
    settings = ClusterSettings(sample_size=400, silhouette_sample_size=300, k_max=5, n_init=4)

    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=settings)

    assert run.k == 3 and run.sample_size == 400 and run.rows == 3_000
    assert adjusted_rand_score(groups, assignment(connection)["cluster_id"]) >= 0.99


def test_forced_n_clusters_is_used_and_best_silhouette_still_reported(tmp_path: Path) -> None:
    frame, _ = feature_frame(900, groups=3, seed=3)
    connection = warehouse(tmp_path, frame)
    settings = ClusterSettings(k_max=5, n_init=4, n_clusters=6)  # outside the range

    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=settings)

    assert (run.k, run.chosen_k) == (6, 3)
    assert sorted(run.sizes) == [1, 2, 3, 4, 5, 6]
    assert list(run.silhouette_by_k) == [3, 4, 5, 6] and list(run.inertia_by_k) == [3, 4, 5, 6]
    assert connection.execute("select k, chosen_k from ml.cluster_runs").fetchall() == [(6, 3)]


# --- determinism and stable ids ---------------------------------------------------------


def test_deterministic_with_a_seed(tmp_path: Path) -> None:
    frame, _ = feature_frame(1_200, groups=4, outliers=3, seed=4)
    now = dt.datetime(2026, 11, 21, 6)
    runs, tables = [], []
    for name in ("one", "two"):
        connection = warehouse(tmp_path, frame, name)
        runs.append(
            cluster_customers(connection, model_dir=tmp_path / name, settings=FAST, now=now)
        )
        tables.append(
            (assignment(connection), connection.execute("select * from ml.cluster_profiles").df())
        )

    pd.testing.assert_frame_equal(tables[0][0], tables[1][0])
    pd.testing.assert_frame_equal(tables[0][1], tables[1][1])
    assert runs[0].model_version == runs[1].model_version
    assert runs[0].silhouette_by_k == runs[1].silhouette_by_k


def test_ids_identical_on_rerun_and_on_shuffled_rows(tmp_path: Path) -> None:
    frame, _ = feature_frame(1_500, groups=4, seed=5)
    connection = warehouse(tmp_path, frame)
    settings = ClusterSettings(sample_size=600, silhouette_sample_size=400, k_max=6, n_init=4)
    first = cluster_customers(
        connection, model_dir=tmp_path / "models", settings=settings, now=dt.datetime(2026, 1, 1)
    )
    before = assignment(connection)

    again = cluster_customers(
        connection, model_dir=tmp_path / "models", settings=settings, now=dt.datetime(2026, 1, 2)
    )
    assert again.previous_model_version == first.model_version
    assert again.adjusted_rand_vs_previous == 1.0
    pd.testing.assert_frame_equal(
        assignment(connection).drop(columns="model_version"), before.drop(columns="model_version")
    )

    write_features(connection, frame.sample(frac=1.0, random_state=9))
    shuffled = cluster_customers(
        connection, model_dir=tmp_path / "models", settings=settings, now=dt.datetime(2026, 1, 3)
    )
    assert shuffled.previous_model_version == again.model_version
    assert shuffled.labels == first.labels
    pd.testing.assert_frame_equal(
        assignment(connection).drop(columns="model_version"), before.drop(columns="model_version")
    )


def test_ids_follow_the_groups_when_sizes_and_seed_change(tmp_path: Path) -> None:
    small_first = (0.4, 0.3, 0.2, 0.1)
    frame_a, groups_a = feature_frame(1_200, groups=4, seed=6, weights=small_first)
    frame_b, groups_b = feature_frame(1_200, groups=4, seed=7, weights=small_first[::-1])
    connection = warehouse(tmp_path, frame_a)
    cluster_customers(connection, model_dir=tmp_path / "models", settings=FAST)
    ids_a = group_to_id(frame_a, groups_a, assignment(connection))
    assert ids_a == {0: 1, 1: 2, 2: 3, 3: 4}  # first run: ids by size, largest first

    write_features(connection, frame_b)
    other_seed = ClusterSettings(k_max=6, n_init=4, seed=11)
    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=other_seed)

    assert group_to_id(frame_b, groups_b, assignment(connection)) == ids_a
    assert run.new_cluster_ids == () and run.retired_cluster_ids == ()
    # without the previous model the same data would be numbered by size: ids would move
    fresh = warehouse(tmp_path, frame_b, "fresh")
    cluster_customers(fresh, model_dir=tmp_path / "fresh_models", settings=other_seed)
    assert group_to_id(frame_b, groups_b, assignment(fresh)) == {0: 4, 1: 3, 2: 2, 3: 1}


def test_previous_model_found_in_model_dir_for_a_new_warehouse(tmp_path: Path) -> None:
    frame, _ = feature_frame(900, groups=3, seed=19)
    models = tmp_path / "models"
    first = cluster_customers(
        warehouse(tmp_path, frame, "old"),
        model_dir=models,
        settings=FAST,
        now=dt.datetime(2026, 1, 1),
    )
    rebuilt = warehouse(tmp_path, frame, "rebuilt")  # no ml.cluster_runs yet

    second = cluster_customers(
        rebuilt, model_dir=models, settings=FAST, now=dt.datetime(2026, 1, 2)
    )

    assert second.previous_model_version == first.model_version
    assert second.labels == first.labels and second.new_cluster_ids == ()
    assert second.adjusted_rand_vs_previous is None  # no previous assignment in this warehouse
    assert load_model(models, first.model_version).model_version == first.model_version
    with pytest.raises(
        FileNotFoundError, match="no model.joblib under .*v0; run cluster_customers"
    ):
        load_model(models, "v0")


def test_new_cluster_gets_a_fresh_id_and_retired_ids_are_not_reused(tmp_path: Path) -> None:
    frame3, groups3 = feature_frame(900, groups=3, seed=8)
    frame4, groups4 = feature_frame(1_200, groups=4, seed=9)
    settings = ClusterSettings(k_max=5, n_init=4)
    connection = warehouse(tmp_path, frame3)
    models = tmp_path / "models"
    stamps = iter(dt.datetime(2026, 1, day) for day in range(1, 10))

    first = cluster_customers(connection, model_dir=models, settings=settings, now=next(stamps))
    ids3 = group_to_id(frame3, groups3, assignment(connection))
    assert first.k == 3 and sorted(ids3.values()) == [1, 2, 3]

    write_features(connection, frame4)
    second = cluster_customers(connection, model_dir=models, settings=settings, now=next(stamps))
    ids4 = group_to_id(frame4, groups4, assignment(connection))
    assert second.k == 4 and second.new_cluster_ids == (4,)
    assert ids4 == {**ids3, 3: 4}

    write_features(connection, frame3)
    third = cluster_customers(connection, model_dir=models, settings=settings, now=next(stamps))
    assert third.k == 3 and third.retired_cluster_ids == (4,)
    assert group_to_id(frame3, groups3, assignment(connection)) == ids3

    write_features(connection, frame4)
    fourth = cluster_customers(connection, model_dir=models, settings=settings, now=next(stamps))
    assert fourth.new_cluster_ids == (5,)
    assert group_to_id(frame4, groups4, assignment(connection)) == {**ids3, 3: 5}


def test_match_cluster_ids_on_hand_made_centroids() -> None:
    scaler = FeatureScaler(("a", "b"), (False, False), (0.0, 0.0), (0.0, 0.0), (1.0, 1.0))
    previous = PreviousModel(
        model_version="v1",
        features=("b", "a"),  # another order: matched by name
        cluster_ids=(7, 3, 9),
        centroids_log_space=np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 10.0]]),
        next_cluster_id=12,
    )
    centroids = np.array([[10.1, 0.0], [0.0, 0.2], [5.0, 4.9], [-8.0, -8.0]])

    match = match_cluster_ids(centroids, np.array([5, 6, 7, 8]), scaler, previous)

    assert match.cluster_ids == (9, 7, 3, 12)
    assert match.new_ids == (12,) and match.next_cluster_id == 13
    assert match.matched == pytest.approx({9: 0.1, 7: 0.2, 3: 0.1})

    first = match_cluster_ids(centroids, np.array([5, 6, 8, 8]), scaler, None)
    assert first.cluster_ids == (4, 3, 1, 2) and first.next_cluster_id == 5

    fewer = match_cluster_ids(centroids[:2], np.array([1, 1]), scaler, previous)
    assert fewer.cluster_ids == (9, 7) and fewer.retired_ids == (3,)


# --- adjusted Rand index ----------------------------------------------------------------


def test_adjusted_rand_index_exact_and_equal_to_sklearn() -> None:
    # contingency [[2, 0, 0], [0, 1, 1]]: index 1, expected 1/3, maximum 3/2 -> 4/7
    assert adjusted_rand_index(np.array([0, 0, 1, 1]), np.array([5, 5, 6, 7])) == pytest.approx(
        4 / 7
    )
    assert adjusted_rand_from_contingency(np.array([[2, 0, 0], [0, 1, 1]])) == pytest.approx(4 / 7)
    assert adjusted_rand_index(np.array([1, 1, 2]), np.array([8, 8, 3])) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, 300), rng.integers(0, 6, 300)
        b[:150] = a[:150]
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


def test_adjusted_rand_reported_over_customers_in_both_runs(tmp_path: Path) -> None:
    frame, _ = feature_frame(1_000, groups=4, seed=10)
    connection = warehouse(tmp_path, frame)
    first = cluster_customers(connection, model_dir=tmp_path / "models", settings=FAST)
    assert first.adjusted_rand_vs_previous is None
    before = assignment(connection)[["customer_id", "cluster_id"]]

    newcomers, _ = feature_frame(500, groups=2, seed=11, id_offset=10_000)
    changed = pd.concat([frame.iloc[:700], newcomers], ignore_index=True)
    write_features(connection, changed)
    merged = ClusterSettings(k_max=6, n_init=4, seed=3, n_clusters=2)  # groups must merge
    second = cluster_customers(connection, model_dir=tmp_path / "models", settings=merged)

    after = assignment(connection)[["customer_id", "cluster_id"]]
    both = before.merge(after, on="customer_id", suffixes=("_before", "_after"))
    assert len(both) == 700
    expected = adjusted_rand_score(both["cluster_id_before"], both["cluster_id_after"])
    assert 0.1 < expected < 0.9
    assert second.adjusted_rand_vs_previous == pytest.approx(expected, abs=1e-12)
    stored = connection.execute(
        "select adjusted_rand_vs_previous from ml.cluster_runs order by fitted_at, model_version"
    ).fetchall()
    assert stored[0][0] is None
    assert stored[-1][0] == pytest.approx(expected, abs=1e-12)


# --- labels -----------------------------------------------------------------------------


def z_frame(rows: dict[int, list[float]]) -> pd.DataFrame:
    columns = ["days_since_last_order", "frequency", "monetary_gbp", "tenure_days"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def test_labels_name_the_strongest_features_in_feature_order() -> None:
    z = z_frame(
        {
            1: [-0.5, 1.0, 2.0, 0.1],  # strongest: spend, frequency, recency
            2: [1.5, -0.9, -0.3, 0.2],
            3: [0.1, -0.2, 0.24, 0.0],  # nothing reaches 0.25
            4: [0.0, 0.0, 0.0, -3.0],
        }
    )

    assert label_clusters(z) == {
        1: "recent, frequent, high spend",
        2: "lapsed, infrequent, low spend",
        3: "average",
        4: "new",
    }
    assert label_clusters(z, words=1) == {1: "high spend", 2: "lapsed", 3: "average", 4: "new"}
    assert label_clusters(z, min_z=1.0) == {
        1: "frequent, high spend",
        2: "lapsed",
        3: "average",
        4: "new",
    }


def test_labels_grow_until_unique_then_name_the_cluster() -> None:
    z = z_frame(
        {
            1: [-1.0, 0.5, 0.0, 0.0],
            2: [-1.1, -0.6, 0.0, 0.0],
            3: [0.9, 0.0, 0.0, 0.3],
            4: [0.9, 0.0, 0.0, 0.3],
            5: [0.0, 0.0, 0.0, 0.0],
            6: [0.0, 0.1, 0.0, 0.0],
        }
    )

    assert label_clusters(z, words=1) == {
        1: "recent, frequent",
        2: "recent, infrequent",
        3: "lapsed, long-standing (cluster 3)",
        4: "lapsed, long-standing (cluster 4)",
        5: "average (cluster 5)",
        6: "average (cluster 6)",
    }


def test_label_words_for_windowed_and_unknown_features() -> None:
    z = pd.DataFrame(
        {"sessions_7d": [1.0, -1.0], "cart_adds_90d": [0.5, 0.0], "loyalty_points": [0.0, -2.0]},
        index=[1, 2],
    )
    assert label_clusters(z) == {
        1: "active online this week, adding to cart this quarter",
        2: "rarely online this week, low loyalty_points",
    }


# --- feature preparation ----------------------------------------------------------------


def test_feature_preparation_fills_logs_and_standardises_exactly() -> None:
    features = ("days_since_last_order", "refund_rate", "age_years", "monetary_gbp")
    raw = np.array(
        [
            [1.0, 0.5, 30.0, 0.0],
            [9.0, np.nan, np.nan, 3.0],
            [np.nan, 0.1, 50.0, -5.0],
        ]
    )
    scaler = FeatureScaler.fit(raw, features)

    assert scaler.fill_values == (10.0, 0.0, 40.0, 0.0)  # longest + 1, 0, median, 0
    assert scaler.logged == (True, False, False, True)
    logspace = scaler.to_log_space(raw)
    expected = np.array(
        [
            [math.log(2), 0.5, 30.0, 0.0],
            [math.log(10), 0.0, 40.0, math.log(4)],
            [math.log(11), 0.1, 50.0, 0.0],  # a negative amount counts as 0
        ]
    )
    np.testing.assert_allclose(logspace, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scaler.means, expected.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scaler.scales, expected.std(axis=0), rtol=0, atol=1e-12)
    standardised = scaler.transform(raw)
    np.testing.assert_allclose(standardised.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaler.unscale(standardised), expected, atol=1e-12)
    # a constant feature keeps scale 1; a later batch is filled with the sample's values
    constant = FeatureScaler.fit(np.array([[2.0], [2.0]]), ("refund_rate",))
    assert constant.scales == (1.0,)
    np.testing.assert_allclose(
        scaler.to_log_space(np.array([[np.nan] * 4]))[0], [math.log(11), 0, 40, 0]
    )


# --- outliers, batches ------------------------------------------------------------------


def test_planted_extreme_rows_are_flagged(tmp_path: Path) -> None:
    frame, groups = feature_frame(2_000, groups=4, outliers=5, seed=12)
    connection = warehouse(tmp_path, frame)

    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=FAST)

    clusters = assignment(connection).set_index("customer_id")
    planted = frame["customer_id"][groups == -1]
    assert clusters.loc[planted, "is_outlier"].all()
    assert run.outliers == int(clusters["is_outlier"].sum())
    assert run.outliers <= 40  # about contamination (1%) of 2,000


def test_small_batches_give_the_same_result_as_one_batch(tmp_path: Path) -> None:
    frame, _ = feature_frame(1_000, groups=4, outliers=4, seed=13)
    now = dt.datetime(2026, 11, 21, 6)
    results = []
    for name, batch_size in (("small", 37), ("one", 1_000_000)):
        connection = warehouse(tmp_path, frame, name)
        settings = ClusterSettings(k_max=6, n_init=4, batch_size=batch_size)
        run = cluster_customers(connection, model_dir=tmp_path / name, settings=settings, now=now)
        profiles = connection.execute("select * from ml.cluster_profiles").df()
        results.append((run, assignment(connection), profiles))

    (run_small, small, small_profiles), (run_one, one, one_profiles) = results
    exact = ["customer_id", "cluster_id", "cluster_label", "is_outlier", "as_of_at"]
    pd.testing.assert_frame_equal(small[exact], one[exact])
    np.testing.assert_allclose(small["distance"], one["distance"], rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(small_profiles, one_profiles, rtol=1e-12, atol=1e-12)
    assert run_small.sizes == run_one.sizes and run_small.labels == run_one.labels
    # batch_size does not change the model, so not its version either
    assert run_small.model_version == run_one.model_version


# --- tables, model files, charts --------------------------------------------------------


def test_tables_have_the_contract_columns(tmp_path: Path) -> None:
    frame, _ = feature_frame(800, groups=3, seed=14)
    connection = warehouse(tmp_path, frame)
    settings = ClusterSettings(features=("days_since_last_order", "frequency"), k_max=4, n_init=2)
    cluster_customers(connection, model_dir=tmp_path / "models", settings=settings)
    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=settings)

    def columns(table: str) -> list[tuple[str, str]]:
        return [
            (name, kind) for name, kind, *_ in connection.execute(f"describe {table}").fetchall()
        ]

    assert columns("ml.customer_clusters") == [
        ("customer_id", "VARCHAR"),
        ("cluster_id", "INTEGER"),
        ("cluster_label", "VARCHAR"),
        ("is_outlier", "BOOLEAN"),
        ("distance", "DOUBLE"),
        ("model_version", "VARCHAR"),
        ("as_of_at", "TIMESTAMP"),
    ]
    assert columns("ml.cluster_profiles") == [
        ("model_version", "VARCHAR"),
        ("cluster_id", "INTEGER"),
        ("cluster_label", "VARCHAR"),
        ("size", "INTEGER"),
        ("share", "DOUBLE"),
        ("mean_days_since_last_order", "DOUBLE"),
        ("mean_frequency", "DOUBLE"),
        ("z_days_since_last_order", "DOUBLE"),
        ("z_frequency", "DOUBLE"),
    ]
    assert columns("ml.cluster_runs") == [
        ("model_version", "VARCHAR"),
        ("fitted_at", "TIMESTAMP"),
        ("as_of_at", "TIMESTAMP"),
        ("k", "INTEGER"),
        ("silhouette_by_k", "JSON"),
        ("inertia_by_k", "JSON"),
        ("chosen_k", "INTEGER"),
        ("adjusted_rand_vs_previous", "DOUBLE"),
        ("sample_size", "INTEGER"),
        ("seed", "INTEGER"),
        ("features", "JSON"),
        ("parameters", "JSON"),
    ]
    # replaced, replaced, appended
    assert connection.execute("select count(*) from ml.customer_clusters").fetchall() == [(800,)]
    assert connection.execute(
        "select count(*), sum(size), sum(share) from ml.cluster_profiles"
    ).fetchall() == [(3, 800, pytest.approx(1.0))]
    assert connection.execute("select count(*) from ml.cluster_runs").fetchall() == [(2,)]
    row = connection.execute(
        "select model_version, as_of_at, k, silhouette_by_k, features, parameters, seed, "
        "sample_size from ml.cluster_runs order by fitted_at desc, model_version desc limit 1"
    ).fetchall()[0]
    assert row[0] == run.model_version and row[1] == AS_OF and row[2] == 3
    assert sorted(json.loads(row[3])) == ["3", "4"]
    assert json.loads(row[4]) == ["days_since_last_order", "frequency"]
    assert json.loads(row[5])["previous_model_version"] is not None
    assert (row[6], row[7]) == (42, 800)
    # mean_ leaves nulls out (never bought), z_ is the standardised cluster mean
    by_sql = connection.execute(
        "select clusters.cluster_id, avg(features.days_since_last_order) "
        "from ml.customer_clusters as clusters inner join marts.customer_features as features "
        "using (customer_id) group by all order by 1"
    ).fetchall()
    profiles = connection.execute(
        "select cluster_id, mean_days_since_last_order from ml.cluster_profiles order by 1"
    ).fetchall()
    for (cid, mean), (pid, pmean) in zip(by_sql, profiles, strict=True):
        assert cid == pid
        assert (mean is None and pmean is None) or pmean == pytest.approx(mean, rel=1e-12)


def test_model_files_are_versioned_and_loadable(tmp_path: Path) -> None:
    frame, _ = feature_frame(800, groups=3, seed=15)
    connection = warehouse(tmp_path, frame)
    run = cluster_customers(
        connection,
        model_dir=tmp_path / "models",
        settings=FAST,
        now=dt.datetime(2026, 11, 21, 6, 30),
    )

    assert run.model_version.startswith("20261121T063000Z-")
    folder = tmp_path / "models" / run.model_version
    assert sorted(p.name for p in folder.iterdir()) == [
        "cluster_profiles.png",
        "metrics.json",
        "model.joblib",
        "params.json",
        "silhouette_elbow.png",
    ]
    params = json.loads((folder / "params.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert params["k"] == run.k and params["next_cluster_id"] == run.k + 1
    assert params["features"]["monetary_gbp"]["log1p"] is True
    assert params["features"]["refund_rate"]["log1p"] is False
    assert {c["cluster_id"]: c["label"] for c in params["clusters"]} == run.labels
    assert metrics["chosen_k"] == run.chosen_k and metrics["adjusted_rand_vs_previous"] is None
    model = load_model(tmp_path / "models")
    assert model.model_version == run.model_version
    raw = frame[list(FAST.features)].astype("float64").to_numpy()
    _, ids, outlier, distance = model.assign(raw)
    clusters = assignment(connection)
    np.testing.assert_array_equal(ids, clusters["cluster_id"])
    np.testing.assert_array_equal(outlier, clusters["is_outlier"])
    np.testing.assert_allclose(distance, clusters["distance"], rtol=1e-12)


def assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_charts_are_written_as_png(tmp_path: Path) -> None:
    frame, _ = feature_frame(600, groups=3, seed=16)
    connection = warehouse(tmp_path, frame)
    run = cluster_customers(connection, model_dir=tmp_path / "models", settings=FAST)

    assert sorted(run.charts) == ["cluster_profiles", "silhouette_elbow"]
    for path in run.charts.values():
        assert path.parent == run.model_path
        assert_png(path)

    grid = pd.DataFrame(
        {
            "r_score": [5, 5, 1, 1, 3],
            "f_score": [5, 5, 1, 2, 3],
            "rfm_segment": ["Champions", "Loyal", "Lost", "Hibernating", "Need Attention"],
            "customers": [120, 30, 400, 80, 55],
        }
    )
    assert_png(rfm_grid_chart(grid, tmp_path / "charts" / "rfm_grid.png"))
    per_customer = grid.loc[grid.index.repeat(grid["customers"])].drop(columns="customers")
    assert_png(rfm_grid_chart(per_customer, tmp_path / "rfm_rows.png", segment_column=None))
    sizes = pd.DataFrame(
        {
            "snapshot_date": pd.to_datetime(["2026-11-18", "2026-11-19", "2026-11-20"] * 2),
            "segment_name": ["champions"] * 3 + ["lapsed"] * 3,
            "members": [10, 12, 15, 40, 38, 41],
        }
    )
    assert_png(segment_sizes_chart(sizes, tmp_path / "sizes.png"))
    with pytest.raises(
        KeyError, match=r"segment_sizes_chart: the frame lacks column\(s\) \['size'\]"
    ):
        segment_sizes_chart(sizes, tmp_path / "bad.png", size_column="size")


# --- input checks and as_of -------------------------------------------------------------


def test_errors_name_the_table_the_column_and_what_to_do(tmp_path: Path) -> None:
    frame, _ = feature_frame(50, groups=2, seed=17)
    connection = warehouse(tmp_path, frame)
    models = tmp_path / "models"

    with pytest.raises(ValueError) as missing:
        cluster_customers(
            connection, model_dir=models, settings=ClusterSettings(features=("frequency", "ltv"))
        )
    assert str(missing.value) == (
        "marts.customer_features has no column 'ltv' (listed in ClusterSettings.features); "
        "remove it from the features or add it to the table"
    )
    with pytest.raises(ValueError) as text:
        cluster_customers(
            connection, model_dir=models, settings=ClusterSettings(features=("region",))
        )
    assert str(text.value).startswith("marts.customer_features.region is VARCHAR, not a number")
    with pytest.raises(ValueError, match=r"^marts.missing does not exist; build it first"):
        cluster_customers(connection, model_dir=models, table="marts.missing")
    with pytest.raises(ValueError, match=r"is not a plain \[catalog.\]\[schema.\]name"):
        cluster_customers(connection, model_dir=models, table="marts.x; drop table y")

    write_features(connection, pd.concat([frame, frame.iloc[[3]]]))
    with pytest.raises(ValueError) as duplicate:
        cluster_customers(connection, model_dir=models)
    assert str(duplicate.value) == (
        "marts.customer_features has 1 duplicate customer_id row(s), e.g. 'cus_00000003'; "
        "it must hold one row per customer (deduplicate the model that builds it)"
    )
    with pytest.raises(
        ValueError, match=r"^ClusterSettings.k_max must be a whole number >= k_min \(5\), got 4$"
    ):
        ClusterSettings(k_min=5, k_max=4)


def test_as_of_must_match_the_table(tmp_path: Path) -> None:
    frame, _ = feature_frame(300, groups=3, seed=18)
    earlier = frame.assign(as_of_at=pd.Timestamp("2026-11-20"))
    connection = warehouse(tmp_path, frame)

    with pytest.raises(ValueError) as wrong:
        cluster_customers(connection, model_dir=tmp_path / "m", as_of=dt.datetime(2026, 11, 19))
    assert str(wrong.value) == (
        "marts.customer_features holds no rows as of 2026-11-19 00:00:00 (its as_of_at: "
        "2026-11-21 00:00:00); rebuild it with dbt --vars '{as_of: ...}' for that cutoff, or "
        "pass as_of=None to cluster what it holds"
    )
    # a bare date is the end of that day: 2026-11-20 is the cutoff 2026-11-21 00:00
    run = cluster_customers(
        connection, model_dir=tmp_path / "m", settings=FAST, as_of=dt.date(2026, 11, 20)
    )
    assert run.as_of_at == AS_OF

    connection.register("_earlier", earlier)
    connection.execute("insert into marts.customer_features select * from _earlier")
    connection.unregister("_earlier")
    with pytest.raises(
        ValueError, match=r"holds several as_of_at values .*; pass as_of= to pick one"
    ):
        cluster_customers(connection, model_dir=tmp_path / "m", settings=FAST)
