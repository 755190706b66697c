"""Settings of the recommenders: neighbours, factors, blend weights and exclusions.

`RecommendSettings()` holds the defaults `recommend()` and the pipeline use; every field is
described below. The Dagster asset turns its `dg.Config` into one of these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

METHODS = ("popularity", "item_knn", "als", "content", "hybrid")


def _described(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class RecommendSettings:
    """Hyperparameters of `recommend`; the defaults are what the pipeline uses."""

    neighbours: int = _described(
        50, "Item-kNN: most similar items kept per item (the rest count as 0)."
    )
    shrink: float = _described(
        10.0,
        "Item-kNN: added to the similarity's denominator, so pairs seen together once or "
        "twice count less than pairs seen together often.",
    )
    popularity_exponent: float = _described(
        0.5,
        "Item-kNN: sim(i -> j) = co(i, j) / (n_i^(1 - e) n_j^e + shrink), n the users of an "
        "item. 0.5 is the cosine; above 0.5 popular recommended items are discounted more.",
    )
    factors: int = _described(16, "ALS: latent factors per user and item.")
    als_iterations: int = _described(8, "ALS: alternating passes over users and items.")
    als_regularization: float = _described(0.1, "ALS: L2 penalty on the factors.")
    als_confidence: float = _described(
        20.0, "ALS: confidence of an interaction is 1 + this x its weight (Hu, Koren, Volinsky)."
    )
    als_sample_users: int = _described(
        50_000,
        "ALS: most users (by a seeded hash of the id) the item factors are fitted on; every "
        "user's factors are then solved once against them.",
    )
    category_weight: float = _described(1.0, "Content: weight of the category path.")
    brand_weight: float = _described(0.6, "Content: weight of the brand.")
    price_weight: float = _described(0.4, "Content: weight of the price band.")
    price_bands: int = _described(5, "Content: equal-count price bands of the catalogue.")
    hybrid_item_knn: float = _described(1.0, "Hybrid: weight of item-kNN (scores scaled to 0-1).")
    hybrid_als: float = _described(0.7, "Hybrid: weight of ALS.")
    hybrid_content: float = _described(0.4, "Hybrid: weight of content similarity.")
    hybrid_popularity: float = _described(
        0.3, "Hybrid: weight of popularity; alone it serves customers with no history."
    )
    popularity_days: int = _described(
        90, "Popularity counts the users of each item over this many days before the cutoff."
    )
    exclude_days: int | None = _described(
        30,
        "Never recommend what the user bought in this many days before the cutoff (None: "
        "anything they ever bought).",
    )
    excluded_categories: tuple[str, ...] = _described(
        (), "Category paths (or their first levels) never recommended, e.g. 'Gift Cards'."
    )
    batch_size: int = _described(20_000, "Users scored at a time; bounds memory.")
    seed: int = _described(42, "Seed of the ALS start and the samples.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded_categories", tuple(self.excluded_categories))
        for name, minimum in (
            ("neighbours", 1),
            ("factors", 1),
            ("als_iterations", 1),
            ("als_sample_users", 1),
            ("price_bands", 1),
            ("popularity_days", 1),
            ("batch_size", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"RecommendSettings.{name} must be a whole number >= {minimum}, got {value!r}"
                )
        if self.exclude_days is not None and (
            isinstance(self.exclude_days, bool)
            or not isinstance(self.exclude_days, int)
            or self.exclude_days < 0
        ):
            raise ValueError(
                f"RecommendSettings.exclude_days must be None or a whole number >= 0, "
                f"got {self.exclude_days!r}"
            )
        for name in (
            "shrink",
            "als_regularization",
            "als_confidence",
            "category_weight",
            "brand_weight",
            "price_weight",
            "hybrid_item_knn",
            "hybrid_als",
            "hybrid_content",
            "hybrid_popularity",
        ):
            if float(getattr(self, name)) < 0:
                raise ValueError(
                    f"RecommendSettings.{name} must be >= 0, got {getattr(self, name)!r}"
                )
        if not 0 <= float(self.popularity_exponent) <= 1:
            raise ValueError(
                "RecommendSettings.popularity_exponent must lie in [0, 1], "
                f"got {self.popularity_exponent!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["excluded_categories"] = list(self.excluded_categories)
        return values
