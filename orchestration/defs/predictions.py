"""Prediction assets: propensity, churn risk, CLV and P(alive) per customer, and product
recommendations, with their model reports, charts and drift check.

Both tables are dbt sources (`ml.customer_predictions`, `ml.customer_recommendations`), so the
audience model (dim_customer_attributes), and with it segments and exports, waits for them.
"""

import json

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.predictions import PredictionSettings
from ml.recommend import RecommendSettings
from ml.recommend.pipeline import describe_evaluation
from ml.settings import Settings
from ml.workflow import StepError
from ml.workflow.predictions import predict, recommend_products
from orchestration.defs.metadata import image_markdown, table_metadata
from orchestration.defs.resources import run_as_of, step_failure
from orchestration.defs.transform import teal_dbt_customers, teal_dbt_feeds

PREDICTIONS_KEY = dg.AssetKey(["ml", "customer_predictions"])
RECOMMENDATIONS_KEY = dg.AssetKey(["ml", "customer_recommendations"])
CHECK_DRIFT = "feature_and_score_drift"
CHECK_SERVED = "every_customer_served"


def _json(value) -> dg.MetadataValue:
    """JSON metadata of a value that may hold timestamps (written as ISO text)."""
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def _field(library, name: str):
    """A config field whose default and description are the library settings' own."""
    spec = library.__dataclass_fields__[name]
    return Field(default=spec.default, description=spec.metadata["description"])


class PredictionConfig(dg.Config):
    """Hyperparameters of the predictions (defaults from ml/predictions/settings.py)."""

    propensity_days: int = _field(PredictionSettings, "propensity_days")
    churn_days: int = _field(PredictionSettings, "churn_days")
    training_cutoffs: int = _field(PredictionSettings, "training_cutoffs")
    training_sample: int = _field(PredictionSettings, "training_sample")
    max_iter: int = _field(PredictionSettings, "max_iter")
    learning_rate: float = _field(PredictionSettings, "learning_rate")
    max_leaf_nodes: int = _field(PredictionSettings, "max_leaf_nodes")
    min_samples_leaf: int = _field(PredictionSettings, "min_samples_leaf")
    clv_months: int = _field(PredictionSettings, "clv_months")
    clv_sample: int = _field(PredictionSettings, "clv_sample")
    psi_threshold: float = _field(PredictionSettings, "psi_threshold")
    seed: int = _field(PredictionSettings, "seed")


class RecommendConfig(dg.Config):
    """Hyperparameters of the recommendations (defaults from ml/recommend/settings.py)."""

    neighbours: int = _field(RecommendSettings, "neighbours")
    shrink: float = _field(RecommendSettings, "shrink")
    popularity_exponent: float = _field(RecommendSettings, "popularity_exponent")
    factors: int = _field(RecommendSettings, "factors")
    als_iterations: int = _field(RecommendSettings, "als_iterations")
    hybrid_item_knn: float = _field(RecommendSettings, "hybrid_item_knn")
    hybrid_als: float = _field(RecommendSettings, "hybrid_als")
    hybrid_content: float = _field(RecommendSettings, "hybrid_content")
    hybrid_popularity: float = _field(RecommendSettings, "hybrid_popularity")
    exclude_days: int | None = _field(RecommendSettings, "exclude_days")
    excluded_categories: list[str] = Field(
        default=[],
        description=RecommendSettings.__dataclass_fields__["excluded_categories"].metadata[
            "description"
        ],
    )
    seed: int = _field(RecommendSettings, "seed")


@dg.asset(
    key=PREDICTIONS_KEY,
    group_name="predictions",
    kinds={"python", "scikitlearn", "duckdb"},
    deps=[
        get_asset_key_for_model([teal_dbt_customers], "customer_features"),
        get_asset_key_for_model([teal_dbt_customers], "fct_orders"),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_DRIFT,
            asset=PREDICTIONS_KEY,
            description="PSI of every model feature and score against the last training run "
            "stays at or below the threshold (else: retrain, see docs/predictions.md).",
        )
    ],
)
def customer_predictions(
    context: dg.AssetExecutionContext,
    config: PredictionConfig,
    settings: dg.ResourceParam[Settings],
):
    """Purchase propensity, churn risk, 12-month CLV and P(alive) of every customer."""
    try:
        run = predict(
            settings,
            as_of=run_as_of(context, settings),
            prediction_settings=PredictionSettings(**config.model_dump()),
        )
    except StepError as error:
        raise step_failure(error) from error
    for reason in run.skipped.values():
        context.log.warning(f"not fitted, its columns are empty: {reason}")
    summary = run.summary_metrics()
    context.log.info(
        f"predictions {run.model_version}: {run.customers} customers; "
        + "; ".join(
            f"{name} AUC {values['model']['roc_auc']:.3f} (recency {values['recency_baseline']['roc_auc']:.3f})"
            for name, values in summary.items()
            if name != "clv"
        )
    )
    rows = [
        {
            "model": f"{name} {label}",
            "roc_auc": round(metrics["roc_auc"], 4),
            "pr_auc": round(metrics["pr_auc"], 4),
            "brier": round(metrics["brier"], 4),
            "top_decile_lift": round(metrics["top_decile_lift"], 2),
        }
        for name, result in run.classifiers.items()
        for label, metrics in (("model", result.metrics), ("recency baseline", result.baseline))
    ]
    metadata = {
        "model_version": run.model_version,
        "customers": run.customers,
        "held_out_metrics": table_metadata(pd.DataFrame(rows)),
        "clv_parameters": _json(run.clv_parameters),
        "clv_holdout": _json(run.clv_metrics.get("holdout", {})),
        "fairness": table_metadata(run.fairness.round(4)),
        "retrain": _json(run.retrain),
        "not_fitted": _json(run.skipped),
        "report": str(run.report),
        "model_folders": dg.MetadataValue.json({k: str(v) for k, v in run.model_folders.items()}),
        "seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in run.seconds.items()}),
    }
    for name, path in run.charts.items():
        metadata[f"chart_{name}"] = image_markdown(path, name.replace("_", " "))
    yield dg.MaterializeResult(metadata=metadata)
    worst = {
        model: max(values.items(), key=lambda item: item[1]) for model, values in run.drift.items()
    }
    yield dg.AssetCheckResult(
        asset_key=PREDICTIONS_KEY,
        check_name=CHECK_DRIFT,
        passed=not run.retrain["retrain"],
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(run.retrain["reasons"][:10]) or "no drift above the threshold",
        metadata={
            "threshold": run.retrain["threshold"],
            "worst": _json({m: {"column": c, "psi": v} for m, (c, v) in worst.items()}),
            "compared_with": dg.MetadataValue.json(run.drift_against),
        },
    )


@dg.asset(
    key=RECOMMENDATIONS_KEY,
    group_name="predictions",
    kinds={"python", "scipy", "duckdb"},
    deps=[
        get_asset_key_for_model([teal_dbt_customers], "customer_features"),
        get_asset_key_for_model([teal_dbt_customers], "fct_order_items"),
        get_asset_key_for_model([teal_dbt_customers], "fct_clickstream_events"),
        get_asset_key_for_model([teal_dbt_feeds], "stg_products__products"),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_SERVED,
            asset=RECOMMENDATIONS_KEY,
            description="Every customer of customer_features has recommendations (cold start included).",
        )
    ],
)
def customer_recommendations(
    context: dg.AssetExecutionContext, config: RecommendConfig, settings: dg.ResourceParam[Settings]
):
    """Top 10 products per customer (hybrid), with reasons, and every method's offline metrics."""
    values = config.model_dump()
    values["excluded_categories"] = tuple(values["excluded_categories"])
    try:
        run = recommend_products(
            settings,
            as_of=run_as_of(context, settings),
            recommend_settings=RecommendSettings(**values),
        )
    except StepError as error:
        raise step_failure(error) from error
    if run.evaluation_skipped:
        context.log.warning(f"recommendations not evaluated: {run.evaluation_skipped}")
    context.log.info(
        f"recommendations {run.model_version}: {run.customers_served} of {run.customers} customers "
        f"served; NDCG vs popularity {describe_evaluation(run.evaluation)}"
    )
    yield dg.MaterializeResult(
        metadata={
            "model_version": run.model_version,
            "customers": run.customers,
            "rows": run.rows,
            "evaluation": table_metadata(run.evaluation.round(4))
            if len(run.evaluation)
            else dg.MetadataValue.text(f"not evaluated: {run.evaluation_skipped}"),
            "chart_recommendation_metrics": image_markdown(
                run.charts["recommendation_metrics"], "recommendation metrics by method"
            ),
            "report": str(run.report),
            "model_folder": str(run.folder),
            "seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in run.seconds.items()}),
        }
    )
    yield dg.AssetCheckResult(
        asset_key=RECOMMENDATIONS_KEY,
        check_name=CHECK_SERVED,
        passed=run.customers_served == run.customers,
        metadata={"customers": run.customers, "served": run.customers_served},
    )


defs = dg.Definitions(assets=[customer_predictions, customer_recommendations])
