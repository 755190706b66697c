"""Settings of the customer clustering: which features, which k, how big a sample.

`ClusterSettings()` holds the defaults the pipeline uses; every field is described below.
The Dagster asset turns its `dg.Config` into one of these with `ClusterSettings(**config)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The features clustered by default: one per behaviour an analyst would name (recency,
# frequency, spend, basket size, tenure, refunds, discounts, web activity, carts, email),
# leaving out near-duplicates (orders_365d beside frequency) that would weigh one behaviour
# twice. Any numeric column of customer_features may be listed instead.
DEFAULT_FEATURES: tuple[str, ...] = (
    "days_since_last_order",
    "frequency",
    "monetary_gbp",
    "average_order_value_gbp",
    "tenure_days",
    "refund_rate",
    "discount_share",
    "sessions_30d",
    "product_views_30d",
    "cart_adds_30d",
    "cart_abandonment_rate_30d",
    "email_clicks_30d",
)


@dataclass(frozen=True)
class ClusterSettings:
    """Hyperparameters of `cluster_customers`; the defaults are what the pipeline uses."""

    features: tuple[str, ...] = field(
        default=DEFAULT_FEATURES,
        metadata={
            "description": "Numeric columns of customer_features to cluster on, in the order "
            "they appear in profiles, charts and labels."
        },
    )
    k_min: int = field(
        default=3, metadata={"description": "Smallest number of clusters tried (at least 2)."}
    )
    k_max: int = field(
        default=8, metadata={"description": "Largest number of clusters tried (at least k_min)."}
    )
    n_clusters: int | None = field(
        default=None,
        metadata={
            "description": "Force this many clusters instead of the best silhouette; the "
            "silhouette and inertia over k_min..k_max are still computed and reported."
        },
    )
    sample_size: int = field(
        default=20_000,
        metadata={
            "description": "Customers drawn (by a seeded hash of customer_id, so the draw does "
            "not depend on row order) to fit the scaler, K-Means and the Isolation Forest."
        },
    )
    silhouette_sample_size: int = field(
        default=10_000,
        metadata={
            "description": "Customers of the fitting sample on which the silhouette is "
            "computed for each k (the silhouette costs the square of this)."
        },
    )
    seed: int = field(
        default=42,
        metadata={"description": "Seed of the sample, K-Means and the Isolation Forest."},
    )
    n_init: int = field(
        default=10, metadata={"description": "K-Means restarts per k; the best inertia wins."}
    )
    max_iter: int = field(
        default=300, metadata={"description": "Most K-Means iterations per restart."}
    )
    batch_size: int = field(
        default=100_000,
        metadata={
            "description": "Customers read and assigned at a time; bounds memory at "
            "about batch_size x features x 8 bytes, whatever the table's size."
        },
    )
    contamination: float = field(
        default=0.01,
        metadata={
            "description": "Expected share of outliers for the Isolation Forest, in (0, 0.5]: "
            "about this share of customers gets is_outlier."
        },
    )
    outlier_trees: int = field(
        default=100, metadata={"description": "Trees of the Isolation Forest."}
    )
    label_words: int = field(
        default=3,
        metadata={
            "description": "Most features named in a cluster label (more only when needed to "
            "tell two clusters apart)."
        },
    )
    label_min_z: float = field(
        default=0.25,
        metadata={
            "description": "A feature names a cluster only when its cluster mean lies at least "
            "this many standard deviations from the average customer."
        },
    )

    def __post_init__(self) -> None:
        features = tuple(self.features)
        object.__setattr__(self, "features", features)
        if not features:
            raise ValueError("ClusterSettings.features is empty; list at least one column")
        seen: set[str] = set()
        for name in features:
            if not isinstance(name, str) or not name:
                raise ValueError(f"ClusterSettings.features holds {name!r}; list column names")
            if name in seen:
                raise ValueError(f"ClusterSettings.features lists {name!r} twice; keep one")
            seen.add(name)
        _at_least(self.k_min, 2, "k_min")
        _at_least(self.k_max, self.k_min, "k_max", "k_min")
        if self.n_clusters is not None:
            _at_least(self.n_clusters, 2, "n_clusters")
        _at_least(self.sample_size, 2, "sample_size")
        _at_least(self.silhouette_sample_size, 2, "silhouette_sample_size")
        _at_least(self.n_init, 1, "n_init")
        _at_least(self.max_iter, 1, "max_iter")
        _at_least(self.batch_size, 1, "batch_size")
        _at_least(self.outlier_trees, 1, "outlier_trees")
        _at_least(self.label_words, 1, "label_words")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ClusterSettings.seed must be a whole number >= 0, got {self.seed!r}")
        if not 0 < float(self.contamination) <= 0.5:
            raise ValueError(
                f"ClusterSettings.contamination must lie in (0, 0.5], got {self.contamination!r}"
            )
        if float(self.label_min_z) < 0:
            raise ValueError(f"ClusterSettings.label_min_z must be >= 0, got {self.label_min_z!r}")

    @property
    def k_range(self) -> tuple[int, ...]:
        """The k tried, k_min..k_max inclusive."""
        return tuple(range(self.k_min, self.k_max + 1))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (features as a list)."""
        values = asdict(self)
        values["features"] = list(self.features)
        return values

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name -> description (for a Dagster Config or docs)."""
        return {
            name: spec.metadata["description"] for name, spec in cls.__dataclass_fields__.items()
        }


def _at_least(value: Any, minimum: int, name: str, minimum_name: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = f"{minimum_name} ({minimum})" if minimum_name else str(minimum)
        raise ValueError(f"ClusterSettings.{name} must be a whole number >= {bound}, got {value!r}")
