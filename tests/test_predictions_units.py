"""Deciles, metrics, PSI, the point-in-time SQL, the classifier and the settings, on data
whose answers are known."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.errors import NotEnoughData
from ml.predictions import PredictionSettings, drift
from ml.predictions.features import (
    FeatureSqlError,
    compiled_cutoff,
    features_as_of,
    sql_as_of,
)
from ml.predictions.metrics import binary_metrics, calibration_table, decile_table, deciles
from ml.predictions.model import RecencyBaseline, fit_score_model


def test_deciles_rank_the_highest_scores_first_and_break_ties_by_id() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.5, 0.3, 0.8, 0.2, 0.7, 0.6, 0.4])
    assert deciles(scores).tolist() == [1, 10, 5, 6, 8, 2, 9, 3, 4, 7]
    # two equal scores: the smaller tiebreak value gets the better decile
    ids = np.array(["j", "a", "d", "c", "e", "b", "f", "g", "h", "i"])
    assert deciles(scores, ids)[[2, 3]].tolist() == [6, 5]
    assert deciles(np.arange(20.0)).tolist() == [
        10,
        10,
        9,
        9,
        8,
        8,
        7,
        7,
        6,
        6,
        5,
        5,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    ]


def test_decile_table_counts_lift_and_capture() -> None:
    scores = np.arange(20.0)[::-1]  # customer 0 scores highest
    labels = np.array([1, 1, 1, 0] + [0] * 15 + [1])
    table = decile_table(labels, scores)
    assert table["customers"].tolist() == [2] * 10
    assert table["positives"].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table["lift"].iloc[0] == pytest.approx(1.0 / 0.2)
    assert table["cumulative_capture"].tolist() == pytest.approx([0.5, 0.75] + [0.75] * 7 + [1.0])


def test_binary_metrics_on_a_known_ranking() -> None:
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    metrics = binary_metrics(labels, scores)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert metrics["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert metrics["base_rate"] == 0.5


def test_calibration_table_is_sorted_by_prediction() -> None:
    probabilities = np.linspace(0.05, 0.95, 100)
    labels = (np.arange(100) % 2).astype(int)
    table = calibration_table(labels, probabilities)
    assert len(table) == 10
    assert table["predicted"].is_monotonic_increasing
    assert table["customers"].sum() == 100


def test_psi_is_zero_for_the_same_distribution_and_matches_the_formula() -> None:
    values = np.arange(1000, dtype=float)
    reference = drift.reference(values)
    assert len(reference["edges"]) == 9
    assert drift.psi_against(reference, values) == pytest.approx(0.0, abs=1e-12)
    # everyone moves into the top bin (and 10% were there): sum (a - e) ln(a / e)
    shifted = np.full(1000, 5000.0)
    expected = 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1) + (1 - 0.1) * np.log(1 / 0.1)
    assert drift.psi_against(reference, shifted) == pytest.approx(expected)
    # nulls are a bin of their own
    with_nulls = drift.reference(np.array([1.0, 2.0, np.nan, np.nan]))
    assert with_nulls["shares"][-1] == 0.5


def test_retrain_rule_names_every_drifted_column() -> None:
    retrain, reasons = drift.retrain_decision(
        {"score": 0.25, "orders_30d": 0.05, "sessions_7d": 0.4}, 0.2
    )
    assert retrain
    assert reasons == ["sessions_7d PSI 0.400 > 0.2", "score PSI 0.250 > 0.2"]
    assert drift.retrain_decision({"score": 0.1}, 0.2) == (False, [])


COMPILED = """
with orders as (select * from "memory"."main"."orders")
select
    customer_id,
    cast('2026-11-21 00:00:00.000000' as timestamp) as as_of_at,
    count(*) filter (where ordered_at < cast('2026-11-21 00:00:00.000000' as timestamp)) as lifetime_orders,
    case when min(ordered_at) < cast('2026-11-21 00:00:00.000000' as timestamp) then 1 end as tenure_days
from orders
group by customer_id
"""


def test_the_compiled_features_run_as_of_any_cutoff() -> None:
    assert compiled_cutoff(COMPILED) == dt.datetime(2026, 11, 21)
    moved = sql_as_of(COMPILED, dt.datetime(2026, 10, 1, 12, 30))
    assert "2026-11-21" not in moved
    assert moved.count("cast('2026-10-01 12:30:00.000000' as timestamp)") == 3
    connection = duckdb.connect()
    connection.execute(
        "create table orders as select * from (values ('c1', timestamp '2026-09-01'), "
        "('c1', timestamp '2026-11-01'), ('c2', timestamp '2026-11-10')) as t(customer_id, ordered_at)"
    )
    frame = features_as_of(connection, COMPILED, dt.datetime(2026, 10, 1), ("lifetime_orders",))
    # c2 was first seen after the cutoff: absent
    assert frame.to_dict(orient="list") == {
        "customer_id": ["c1"],
        "as_of_at": [pd.Timestamp("2026-10-01")],
        "lifetime_orders": [1],
    }
    now = features_as_of(connection, COMPILED, dt.datetime(2026, 11, 21), ("lifetime_orders",))
    assert now["lifetime_orders"].tolist() == [2, 1]


def test_compiled_sql_with_no_or_two_cutoffs_is_refused() -> None:
    with pytest.raises(FeatureSqlError, match="found none"):
        compiled_cutoff("select 1")
    two = COMPILED.replace(
        "cast('2026-11-21 00:00:00.000000' as timestamp) as as_of_at",
        "cast('2026-11-20 00:00:00.000000' as timestamp) as as_of_at",
    )
    with pytest.raises(FeatureSqlError, match="2026-11-20"):
        sql_as_of(two, dt.datetime(2026, 1, 1))


def _simulated_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers whose chance to buy rises with their order rate and falls with recency."""
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(-1.0, 1.0, size=n)
    tenure = rng.integers(60, 700, size=n)
    orders = rng.poisson(rate * tenure / 120)
    days = np.where(orders > 0, rng.integers(0, 200, size=n) // np.maximum(orders, 1), np.nan)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "lifetime_orders": orders,
            "tenure_days": tenure,
            "days_since_last_order": days,
            "sessions_30d": rng.poisson(rate * 2),
        }
    )
    probability = 1 - np.exp(-rate / 4)
    return frame, (rng.random(n) < probability).astype(int)


def test_the_classifier_beats_recency_is_calibrated_and_explains_itself() -> None:
    settings = PredictionSettings(
        features=("lifetime_orders", "tenure_days", "days_since_last_order", "sessions_30d"),
        reason_features=3,
        importance_sample=2_000,
    )
    train, labels = _simulated_customers(20_000, 1)
    test, test_labels = _simulated_customers(10_000, 2)
    model = fit_score_model("propensity", train, labels, settings)
    scores = model.probability(model.matrix(test))
    ours = binary_metrics(test_labels, scores)
    baseline = binary_metrics(test_labels, RecencyBaseline.fit(train, labels).probability(test))
    assert ours["roc_auc"] > baseline["roc_auc"] + 0.03
    assert ours["top_decile_lift"] > baseline["top_decile_lift"]
    assert scores.mean() == pytest.approx(test_labels.mean(), abs=0.01)
    assert set(model.reason_features) <= set(settings.features)
    reasons = model.reasons(model.matrix(test.head(3)), 2)
    assert all(1 <= text.count("=") <= 2 for text in reasons)
    assert all(text.endswith(")") for text in reasons)
    # the same seed and data give the same scores
    again = fit_score_model("propensity", train, labels, settings)
    np.testing.assert_array_equal(again.probability(again.matrix(test)), scores)


def test_a_training_set_the_model_cannot_learn_from_is_not_enough_data() -> None:
    """Not enough data is its own error (the pipeline skips the model and leaves its columns
    empty), never a crash: no customer, one outcome, or too few of one to fit and calibrate."""
    settings = PredictionSettings(features=("lifetime_orders",))
    train, labels = _simulated_customers(500, 3)
    with pytest.raises(NotEnoughData, match="churn: every training customer has the same label"):
        fit_score_model("churn", train, np.zeros_like(labels), settings)
    with pytest.raises(NotEnoughData, match="propensity: no customer to learn from"):
        fit_score_model("propensity", train.head(0), labels[:0], settings)
    one_buyer = np.zeros_like(labels)
    one_buyer[7] = 1
    with pytest.raises(NotEnoughData, match="500 training customers, 1 with the outcome"):
        fit_score_model("propensity", train, one_buyer, settings)
    assert issubclass(NotEnoughData, ValueError)


def test_settings_refuse_values_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="calibration_share"):
        PredictionSettings(calibration_share=0.6)
    with pytest.raises(ValueError, match="training_cutoffs"):
        PredictionSettings(training_cutoffs=0)
    assert PredictionSettings().to_dict()["features"][0] == "days_since_last_order"


def test_a_share_of_customers_reads_their_whole_history_at_every_cutoff() -> None:
    connection = duckdb.connect()
    connection.execute(
        "create table orders as select 'c' || (i % 400) as customer_id, "
        "timestamp '2026-01-01' + to_days(cast(i % 300 as integer)) as ordered_at from range(4000) as t(i)"
    )
    whole = features_as_of(connection, COMPILED, dt.datetime(2026, 11, 21), ("lifetime_orders",))
    half = features_as_of(
        connection, COMPILED, dt.datetime(2026, 11, 21), ("lifetime_orders",), share=0.5, seed=7
    )
    earlier = features_as_of(
        connection, COMPILED, dt.datetime(2026, 6, 1), ("lifetime_orders",), share=0.5, seed=7
    )
    assert len(whole) == 400
    assert 150 < len(half) < 250
    # the same customers at every cutoff, each with every one of their orders counted
    assert set(earlier["customer_id"]) <= set(half["customer_id"])
    merged = half.merge(whole, on="customer_id", suffixes=("", "_whole"))
    assert (merged["lifetime_orders"] == merged["lifetime_orders_whole"]).all()
    other = features_as_of(
        connection, COMPILED, dt.datetime(2026, 11, 21), ("lifetime_orders",), share=0.5, seed=8
    )
    assert set(other["customer_id"]) != set(half["customer_id"])
