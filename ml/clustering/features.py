"""Feature preparation: from customer_features columns to a standardised matrix.

Three steps, fitted once on the sample and then applied unchanged to every batch
(`FeatureScaler.fit` learns them, `FeatureScaler.transform` applies them):

1. **Fill nulls.** customer_features leaves a value null only where it does not exist:

   - `days_since_last_order` (never bought) is filled with one day more than the longest
     recency in the fitting sample, so a customer who never bought ranks as the least
     recent of all rather than as "bought today";
   - `age_years` (unknown) is filled with the sample's median age;
   - every other feature is filled with 0: `average_order_value_gbp`, `refund_rate`,
     `discount_share` null means no completed order (nothing spent, refunded or discounted),
     `average_session_seconds_30d` no session, `cart_abandonment_rate_30d` no cart add
     (nothing abandoned); counts and money are never null in the table.

   The filled values are part of the model (`fill_values`), so a batch is filled with the
   sample's values, not its own.
2. **log1p** of the skewed money, count and duration features (`LOG1P_FEATURES`: order and
   revenue counts, monetary, average order value, recency and tenure in days, sessions,
   page and product views, cart adds and abandonments, email opens and clicks, session
   seconds). Negative values (a credit note) are clipped to 0 first. Rates and shares
   (`refund_rate`, `discount_share`, `cart_abandonment_rate_30d`) and `age_years` stay as
   they are: they are bounded and not skewed.
3. **Standardise** to mean 0 and standard deviation 1 over the sample; a feature constant in
   the sample keeps scale 1 (it contributes nothing to distances).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Numeric columns of marts.customer_features (the contract) and their SQL types.
NUMERIC_COLUMNS: dict[str, str] = {
    "days_since_last_order": "INTEGER",
    "lifetime_orders": "INTEGER",
    "lifetime_revenue_gbp": "DOUBLE",
    "frequency": "INTEGER",
    "monetary_gbp": "DOUBLE",
    "orders_30d": "INTEGER",
    "orders_90d": "INTEGER",
    "orders_365d": "INTEGER",
    "revenue_30d_gbp": "DOUBLE",
    "revenue_90d_gbp": "DOUBLE",
    "revenue_365d_gbp": "DOUBLE",
    "average_order_value_gbp": "DOUBLE",
    "tenure_days": "INTEGER",
    "refund_rate": "DOUBLE",
    "discount_share": "DOUBLE",
    "sessions_7d": "INTEGER",
    "sessions_30d": "INTEGER",
    "sessions_90d": "INTEGER",
    "page_views_7d": "INTEGER",
    "page_views_30d": "INTEGER",
    "page_views_90d": "INTEGER",
    "product_views_7d": "INTEGER",
    "product_views_30d": "INTEGER",
    "product_views_90d": "INTEGER",
    "cart_adds_7d": "INTEGER",
    "cart_adds_30d": "INTEGER",
    "cart_adds_90d": "INTEGER",
    "average_session_seconds_30d": "DOUBLE",
    "cart_abandonments_30d": "INTEGER",
    "cart_abandonment_rate_30d": "DOUBLE",
    "email_opens_30d": "INTEGER",
    "email_clicks_30d": "INTEGER",
    "age_years": "INTEGER",
}

# Not log-transformed: bounded rates and shares, and age.
_NOT_LOGGED = {"refund_rate", "discount_share", "cart_abandonment_rate_30d", "age_years"}
LOG1P_FEATURES: frozenset[str] = frozenset(set(NUMERIC_COLUMNS) - _NOT_LOGGED)

# How a null is filled (see the module docstring); features not listed are filled with 0.
FILL_LONGEST = "longest_plus_one"
FILL_MEDIAN = "median"
FILL_RULES: dict[str, str] = {"days_since_last_order": FILL_LONGEST, "age_years": FILL_MEDIAN}

FrameLike = pd.DataFrame | pa.Table | pa.RecordBatch


def raw_matrix(frame: FrameLike, features: Sequence[str]) -> np.ndarray:
    """The features of `frame` as a float64 matrix (rows x features), NaN where null.

    `frame` is a pandas DataFrame, an Arrow table or an Arrow record batch holding at least
    the `features` columns (numeric).
    """
    columns = []
    names = list(frame.columns) if isinstance(frame, pd.DataFrame) else frame.schema.names
    for name in features:
        if name not in names:
            raise KeyError(
                f"the feature column {name!r} is missing from the frame; it holds {names}"
            )
        if isinstance(frame, pd.DataFrame):
            values = pd.to_numeric(frame[name], errors="raise")
            columns.append(np.asarray(values, dtype="float64"))
        else:
            column = pc.cast(frame.column(name), pa.float64())
            columns.append(column.to_numpy(zero_copy_only=False))
    if not columns:
        return np.empty((len(frame), 0))
    return np.column_stack(columns).astype("float64", copy=False)


@dataclass(frozen=True)
class FeatureScaler:
    """The fitted fill values, log1p flags and standardisation of the features."""

    features: tuple[str, ...]
    logged: tuple[bool, ...]
    fill_values: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]

    @classmethod
    def fit(cls, raw: np.ndarray, features: Sequence[str]) -> FeatureScaler:
        """Learn fills, log flags and mean/scale from the sample's raw matrix (NaN = null)."""
        features = tuple(features)
        raw = np.asarray(raw, dtype="float64")
        fills = []
        for j, name in enumerate(features):
            observed = raw[:, j][~np.isnan(raw[:, j])]
            rule = FILL_RULES.get(name)
            if rule == FILL_LONGEST and observed.size:
                fills.append(float(observed.max()) + 1.0)
            elif rule == FILL_MEDIAN and observed.size:
                fills.append(float(np.median(observed)))
            else:
                fills.append(0.0)
        logged = tuple(name in LOG1P_FEATURES for name in features)
        unscaled = cls(
            features, logged, tuple(fills), (0.0,) * len(features), (1.0,) * len(features)
        )
        logspace = unscaled.to_log_space(raw)
        means = logspace.mean(axis=0) if len(logspace) else np.zeros(len(features))
        scales = logspace.std(axis=0) if len(logspace) else np.ones(len(features))
        scales = np.where(scales > 1e-12, scales, 1.0)
        return cls(
            features,
            logged,
            tuple(fills),
            tuple(float(v) for v in means),
            tuple(float(v) for v in scales),
        )

    def to_log_space(self, raw: np.ndarray) -> np.ndarray:
        """Steps 1 and 2: fill the nulls and log1p the skewed features (not standardised)."""
        values = np.array(raw, dtype="float64", copy=True)
        if values.ndim != 2 or values.shape[1] != len(self.features):
            raise ValueError(
                f"expected a matrix of {len(self.features)} feature columns "
                f"({', '.join(self.features)}), got shape {values.shape}"
            )
        nulls = np.isnan(values)
        if nulls.any():
            values[nulls] = np.broadcast_to(np.asarray(self.fill_values), values.shape)[nulls]
        logged = np.asarray(self.logged, dtype=bool)
        if logged.any():
            values[:, logged] = np.log1p(np.clip(values[:, logged], 0.0, None))
        return values

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """All three steps: the standardised matrix the model sees."""
        return (self.to_log_space(raw) - np.asarray(self.means)) / np.asarray(self.scales)

    def unscale(self, standardised: np.ndarray) -> np.ndarray:
        """Standardised coordinates (e.g. centroids) back to log space."""
        return np.asarray(standardised) * np.asarray(self.scales) + np.asarray(self.means)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, per feature: fill value, log1p flag, mean and scale."""
        return {
            name: {
                "fill_value": self.fill_values[j],
                "log1p": self.logged[j],
                "mean": self.means[j],
                "scale": self.scales[j],
            }
            for j, name in enumerate(self.features)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> FeatureScaler:
        """Inverse of `to_dict`."""
        features = tuple(data)
        return cls(
            features,
            tuple(bool(data[name]["log1p"]) for name in features),
            tuple(float(data[name]["fill_value"]) for name in features),
            tuple(float(data[name]["mean"]) for name in features),
            tuple(float(data[name]["scale"]) for name in features),
        )
