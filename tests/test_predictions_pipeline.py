"""Predictions and recommendations in the whole job, on the default sample (the shared
`sample_run`): every customer scored and served, the propensity model better than recency on
the held-out month, the CLV fitted and checked, model cards and charts written, the drift
check in Dagster, and the scores usable by segments."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(sample_run):
    return sample_run


@pytest.fixture(scope="module")
def warehouse(run):
    with duckdb.connect(str(run.warehouse), read_only=True) as connection:
        yield connection


def checks(result) -> dict[tuple[str, str], tuple[bool, object]]:
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            found[(data.asset_key.to_user_string(), data.check_name)] = (data.passed, data.severity)
    return found


def test_every_customer_is_scored_by_the_rules_of_each_score(warehouse):
    counts = (
        warehouse.execute(
            """
        select
            count(*) as customers,
            count(predictions.customer_id) as scored,
            count(*) filter (where purchase_propensity not between 0 and 1) as bad_propensity,
            count(*) filter (where (churn_risk is null) <> (features.lifetime_orders = 0)) as bad_churn,
            count(*) filter (where (clv_12m_gbp is null) <> (features.lifetime_orders = 0)) as bad_clv,
            count(*) filter (where p_alive not between 0 and 1) as bad_alive,
            count(distinct purchase_propensity_decile) as deciles,
            count(*) filter (where purchase_propensity_reasons = '') as no_reasons
        from marts.customer_features as features
        left join ml.customer_predictions as predictions using (customer_id)
        """
        )
        .df()
        .iloc[0]
    )
    assert counts["customers"] == counts["scored"] > 5000
    assert counts[["bad_propensity", "bad_churn", "bad_clv", "bad_alive"]].sum() == 0
    assert counts["deciles"] == 10
    assert counts["no_reasons"] < counts["customers"] * 0.05


def test_propensity_beats_the_recency_baseline_on_the_held_out_month(warehouse):
    (metrics,) = warehouse.execute(
        "select metrics from ml.prediction_runs order by fitted_at desc limit 1"
    ).fetchone()
    metrics = json.loads(metrics)
    model, baseline = metrics["propensity"]["model"], metrics["propensity"]["recency_baseline"]
    assert model["customers"] == baseline["customers"] > 4000
    assert model["roc_auc"] > baseline["roc_auc"]
    assert model["top_decile_lift"] > baseline["top_decile_lift"]
    assert model["pr_auc"] > baseline["pr_auc"]
    assert 0 < model["brier"] < model["base_rate"]
    assert metrics["churn"]["model"]["roc_auc"] > 0.55
    clv = metrics["clv"]
    assert all(value > 0 for value in clv["parameters"]["bgnbd"].values())
    holdout = clv["holdout"]
    assert holdout["predicted_purchases"] == pytest.approx(holdout["actual_purchases"], rel=0.25)


def test_every_recommender_beats_popularity_on_the_held_out_month(run, warehouse):
    """The sample's shoppers have tastes (ml/synthetic/tastes.py): each personal method and
    the hybrid rank what they bought in the held-out 30 days better than popularity."""
    (version,) = warehouse.execute(
        "select distinct model_version from ml.customer_recommendations"
    ).fetchone()
    metrics = json.loads(
        (run.settings.models / "recommendations" / version / "metrics.json").read_text()
    )
    ndcg = {row["method"]: row["ndcg"] for row in metrics}
    assert sorted(ndcg) == ["als", "content", "hybrid", "item_knn", "popularity"]
    assert {row["users"] for row in metrics} == {278}
    for method in ("item_knn", "als", "content", "hybrid"):
        assert ndcg[method] > ndcg["popularity"] * 1.5, ndcg
    assert ndcg["hybrid"] == max(ndcg.values()), ndcg


def test_models_are_versioned_with_cards_and_the_report_has_charts(run, warehouse):
    (version,) = warehouse.execute(
        "select distinct model_version from ml.customer_predictions"
    ).fetchone()
    for model in ("propensity", "churn", "clv"):
        folder = run.settings.models / model / version
        for name in ("parameters.json", "metrics.json", "model_card.md"):
            assert (folder / name).is_file(), folder / name
    assert (run.settings.models / "propensity" / version / "model.joblib").is_file()
    card = (run.settings.models / "propensity" / version / "model_card.md").read_text()
    assert "What it predicts" in card and "recency baseline" in card and "Limits" in card
    parameters = json.loads(
        (run.settings.models / "churn" / version / "parameters.json").read_text()
    )
    assert parameters["window"]["horizon_days"] == 90
    for chart in (
        "predictions_calibration.png",
        "predictions_decile_lift.png",
        "recommendation_metrics.png",
    ):
        assert (run.settings.reports / "charts" / chart).stat().st_size > 5000
    report = (run.settings.reports / "predictions.md").read_text()
    assert "Fairness" in report and "age_band" in report and "gender" in report
    (recommendation_version,) = warehouse.execute(
        "select distinct model_version from ml.customer_recommendations"
    ).fetchone()
    assert (
        run.settings.models / "recommendations" / recommendation_version / "model_card.md"
    ).is_file()


def test_drift_is_a_warning_check_and_every_customer_is_served(run):
    found = checks(run.second)
    passed, severity = found[("ml/customer_predictions", "feature_and_score_drift")]
    assert severity == dg.AssetCheckSeverity.WARN
    assert found[("ml/customer_recommendations", "every_customer_served")][0] is True
    assert run.second.success


def test_recommendations_serve_every_customer_with_reasons(warehouse):
    counts = (
        warehouse.execute(
            """
        with served as (
            select customer_id, count(*) as products, count(distinct product_id) as distinct_products,
                count(*) filter (where reason is null or reason = '') as without_reason
            from ml.customer_recommendations group by customer_id
        )
        select count(*) as customers, count(served.customer_id) as served,
            min(products) as fewest, max(products) as most,
            sum(products - distinct_products) as repeated, sum(without_reason) as without_reason,
            count(*) filter (where features.lifetime_orders = 0 and features.product_views_90d = 0
                and served.customer_id is not null) as cold_served
        from marts.customer_features as features left join served using (customer_id)
        """
        )
        .df()
        .iloc[0]
    )
    assert counts["customers"] == counts["served"]
    assert (counts["fewest"], counts["most"]) == (10, 10)
    assert counts["repeated"] == 0 and counts["without_reason"] == 0
    assert counts["cold_served"] > 1000
    out_of_stock = warehouse.execute(
        """
        select count(*) from ml.customer_recommendations as recommendations
        inner join staging.stg_products__products as products using (product_id)
        where products.is_in_latest_snapshot and not products.is_in_stock
        """
    ).fetchone()[0]
    assert out_of_stock == 0


def test_segments_and_the_audience_model_see_the_predictions(warehouse):
    attributes = warehouse.execute(
        """
        select count(*), count(purchase_propensity), count(recommended_product_3),
            count(*) filter (where purchase_propensity_decile <= 2)
        from marts.dim_customer_attributes
        """
    ).fetchone()
    assert attributes[0] == attributes[1] == attributes[2]
    sizes = dict(
        warehouse.execute(
            """
            select segment_name, members from segments.segment_sizes
            where segment_name in ('likely_buyers_this_month', 'high_value_at_risk_predicted')
            and snapshot_date = (select max(snapshot_date) from segments.segment_sizes)
            """
        ).fetchall()
    )
    assert sizes["likely_buyers_this_month"] == attributes[3]
    assert 0 < sizes["high_value_at_risk_predicted"] < sizes["likely_buyers_this_month"]


def test_the_export_carries_the_top_three_recommended_products(run, warehouse):
    import csv

    folder = run.settings.exports / "likely_buyers_this_month" / "latest"
    with open(folder / "audience.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "the export wrote nobody"
    header = list(rows[0])
    assert header[-4:] == [
        "recommended_product_1",
        "recommended_product_2",
        "recommended_product_3",
        "purchase_propensity_decile",
    ]
    expected = dict(
        warehouse.execute(
            "select customer_id, product_id from ml.customer_recommendations where recommendation_rank = 1"
        ).fetchall()
    )
    assert all(row["recommended_product_1"] == expected[row["customer_id"]] for row in rows)
    assert {row["purchase_propensity_decile"] for row in rows} <= {"1", "2"}
