"""Settings of the customer predictions: horizons, training cutoffs, model sizes, thresholds.

`PredictionSettings()` holds the defaults the pipeline uses; every field is described below.
The Dagster asset turns its `dg.Config` into one of these with `PredictionSettings(**config)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Behavioural columns of customer_features the propensity and churn models learn from. Left out
# on purpose: identifiers and timestamps, and the person's age, gender, country and region,
# which the fairness report looks at but no model may use.
MODEL_FEATURES: tuple[str, ...] = (
    "days_since_last_order",
    "lifetime_orders",
    "lifetime_revenue_gbp",
    "frequency",
    "monetary_gbp",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "revenue_30d_gbp",
    "revenue_90d_gbp",
    "revenue_365d_gbp",
    "average_order_value_gbp",
    "tenure_days",
    "refund_rate",
    "discount_share",
    "sessions_7d",
    "sessions_30d",
    "sessions_90d",
    "page_views_7d",
    "page_views_30d",
    "page_views_90d",
    "product_views_7d",
    "product_views_30d",
    "product_views_90d",
    "cart_adds_7d",
    "cart_adds_30d",
    "cart_adds_90d",
    "average_session_seconds_30d",
    "cart_abandonments_30d",
    "cart_abandonment_rate_30d",
    "email_opens_30d",
    "email_clicks_30d",
)


def _described(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class PredictionSettings:
    """Hyperparameters of `predict_customers`; the defaults are what the pipeline uses."""

    propensity_days: int = _described(
        30, "Horizon of the purchase propensity: a completed order within this many days."
    )
    churn_days: int = _described(
        90,
        "Horizon of churn risk: a customer who bought before is churned when no completed "
        "order follows within this many days.",
    )
    training_cutoffs: int = _described(
        2,
        "Past cutoffs stacked to train each model (one horizon apart): more rows, more "
        "seasons, more feature computations.",
    )
    training_sample: int = _described(
        100_000,
        "Most rows each classifier fit learns from (its past cutoffs together). Each past "
        "cutoff reads about this many customers (a seeded hash of customer_id picks the same "
        "share at every cutoff, and only their rows are read); when the stacked rows are "
        "more, a sample stratified by the label (the same share of each outcome, by the same "
        "hash) keeps this many.",
    )
    max_iter: int = _described(
        100,
        "Most boosting iterations (trees) of each gradient boosting model: the evaluation fit "
        "stops earlier when its loss on the calibration customers has not improved for "
        "`early_stopping_rounds`; the scoring fit grows as many trees as it kept.",
    )
    early_stopping_rounds: int = _described(
        10, "Iterations without improvement of the validation loss before boosting stops."
    )
    learning_rate: float = _described(0.1, "Learning rate of the gradient boosting.")
    max_leaf_nodes: int = _described(7, "Leaves per tree.")
    min_samples_leaf: int = _described(100, "Fewest training rows in a leaf.")
    l2_regularization: float = _described(1.0, "L2 penalty on leaf values.")
    calibration_share: float = _described(
        0.2,
        "Share of the training customers held back to calibrate the probabilities (Platt "
        "scaling on the model's log-odds).",
    )
    importance_sample: int = _described(
        5_000, "Held-out rows the permutation importances are computed on."
    )
    importance_repeats: int = _described(3, "Shuffles per feature for permutation importance.")
    reason_features: int = _described(
        8,
        "The most important features (by permutation importance) tried as reasons behind "
        "each customer's score.",
    )
    reasons: int = _described(3, "Reasons kept per customer and score.")
    dependence_sample: int = _described(
        1_000, "Calibration customers the partial dependence behind the reasons averages over."
    )
    clv_months: int = _described(12, "Horizon of the customer lifetime value, in months.")
    clv_sample: int = _described(
        50_000, "Most customers the BG/NBD and Gamma-Gamma likelihoods are fitted on."
    )
    psi_threshold: float = _described(
        0.2,
        "Population stability index above which a feature or score has drifted since the "
        "last training run (the Dagster check warns).",
    )
    batch_size: int = _described(
        250_000, "Customers scored at a time; bounds memory whatever the table's size."
    )
    threads: int = _described(
        1,
        "OpenMP threads of the gradient boosting (the pipeline passes $TEAL_DUCKDB_THREADS). "
        "On a machine other work shares, one thread can be faster: idle OpenMP threads spin.",
    )
    seed: int = _described(42, "Seed of the samples, the splits and the models.")
    features: tuple[str, ...] = _described(
        MODEL_FEATURES, "Numeric columns of customer_features the models learn from."
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        whole = {
            "propensity_days": 1,
            "churn_days": 1,
            "training_cutoffs": 1,
            "training_sample": 100,
            "max_iter": 1,
            "early_stopping_rounds": 1,
            "max_leaf_nodes": 2,
            "min_samples_leaf": 1,
            "importance_sample": 10,
            "importance_repeats": 1,
            "reason_features": 1,
            "reasons": 1,
            "dependence_sample": 1,
            "clv_months": 1,
            "clv_sample": 100,
            "batch_size": 1,
            "threads": 1,
            "seed": 0,
        }
        for name, minimum in whole.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"PredictionSettings.{name} must be a whole number >= {minimum}, got {value!r}"
                )
        if not 0 < float(self.calibration_share) < 0.5:
            raise ValueError(
                "PredictionSettings.calibration_share must lie in (0, 0.5), "
                f"got {self.calibration_share!r}"
            )
        if not 0 < float(self.learning_rate) <= 1:
            raise ValueError(
                f"PredictionSettings.learning_rate must lie in (0, 1], got {self.learning_rate!r}"
            )
        if float(self.psi_threshold) <= 0:
            raise ValueError(
                f"PredictionSettings.psi_threshold must be > 0, got {self.psi_threshold!r}"
            )
        if not self.features:
            raise ValueError("PredictionSettings.features is empty; list at least one column")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (features as a list)."""
        values = asdict(self)
        values["features"] = list(self.features)
        return values
