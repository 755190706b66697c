"""Cluster profiles and readable labels.

A profile per cluster (`ml.cluster_profiles`, one row per cluster id):

- `size`, `share` (of all customers assigned);
- `mean_<feature>`: the cluster's mean of the raw column, nulls left out (as SQL `avg`), e.g.
  `mean_days_since_last_order` over the customers who ever bought;
- `z_<feature>`: the cluster's mean of the standardised feature (after fill and log1p), i.e.
  how many standard deviations the cluster sits above (+) or below (-) the average customer.

Profiles are accumulated batch by batch (`ProfileAccumulator`), so they cover every customer
without holding them all.

Labels (`label_clusters`) name a cluster by its strongest standardised features: the
`words` features with the largest |z| that reach `min_z`, each written as its high or low
word (`FEATURE_WORDS`: low `days_since_last_order` is "recent", high `frequency` is
"frequent", high `monetary_gbp` is "high spend") and listed in feature order, e.g.
"recent, frequent, high spend". A cluster with no feature reaching `min_z` is "average".
Labels are unique: clusters whose labels collide take more words, one at a time, while they
have features reaching `min_z`; any still alike end with " (cluster <id>)".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_WINDOWS = {"7d": " this week", "30d": "", "90d": " this quarter"}
_WINDOWED = {
    "sessions": ("active online", "rarely online"),
    "page_views": ("page browsing", "little page browsing"),
    "product_views": ("product browsing", "little product browsing"),
    "cart_adds": ("adding to cart", "few cart adds"),
}

# feature -> (word when the cluster is high, word when it is low)
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "days_since_last_order": ("lapsed", "recent"),
    "lifetime_orders": ("many orders", "few orders"),
    "lifetime_revenue_gbp": ("high lifetime value", "low lifetime value"),
    "frequency": ("frequent", "infrequent"),
    "monetary_gbp": ("high spend", "low spend"),
    "orders_30d": ("buying this month", "not buying this month"),
    "orders_90d": ("buying this quarter", "not buying this quarter"),
    "orders_365d": ("buying this year", "not buying this year"),
    "revenue_30d_gbp": ("high spend this month", "low spend this month"),
    "revenue_90d_gbp": ("high spend this quarter", "low spend this quarter"),
    "revenue_365d_gbp": ("high spend this year", "low spend this year"),
    "average_order_value_gbp": ("big baskets", "small baskets"),
    "tenure_days": ("long-standing", "new"),
    "refund_rate": ("refund-prone", "rarely refunding"),
    "discount_share": ("discount-driven", "full-price"),
    "average_session_seconds_30d": ("long sessions", "short sessions"),
    "cart_abandonments_30d": ("abandoning carts", "few abandoned carts"),
    "cart_abandonment_rate_30d": ("cart abandoners", "cart completers"),
    "email_opens_30d": ("opening emails", "not opening emails"),
    "email_clicks_30d": ("clicking emails", "not clicking emails"),
    "age_years": ("older", "younger"),
}
for _stem, (_high, _low) in _WINDOWED.items():
    for _window, _suffix in _WINDOWS.items():
        FEATURE_WORDS[f"{_stem}_{_window}"] = (_high + _suffix, _low + _suffix)

AVERAGE_LABEL = "average"


def feature_word(feature: str, z: float) -> str:
    """The word for a cluster whose `feature` sits at `z` (high when z > 0)."""
    high, low = FEATURE_WORDS.get(feature, (f"high {feature}", f"low {feature}"))
    return high if z > 0 else low


def label_clusters(z: pd.DataFrame, *, words: int = 3, min_z: float = 0.25) -> dict[int, str]:
    """Cluster id -> readable label from the z-scores (see module docstring).

    `z` has one row per cluster (index: cluster id) and one column per feature, in feature
    order. Ties in |z| go to the earlier feature.
    """
    features = list(z.columns)
    ranked: dict[int, list[int]] = {}
    for cid, row in z.iterrows():
        values = row.to_numpy(dtype="float64")
        strength = np.abs(np.nan_to_num(values))
        order = sorted(range(len(features)), key=lambda j: (-strength[j], j))
        ranked[int(cid)] = [j for j in order if strength[j] >= min_z and strength[j] > 0]
    taken = {cid: min(words, len(order)) for cid, order in ranked.items()}

    def text(cid: int) -> str:
        chosen = sorted(ranked[cid][: taken[cid]])
        if not chosen:
            return AVERAGE_LABEL
        row = z.loc[cid]
        return ", ".join(feature_word(features[j], float(row.iloc[j])) for j in chosen)

    while True:
        labels = {cid: text(cid) for cid in ranked}
        groups: dict[str, list[int]] = {}
        for cid, label in labels.items():
            groups.setdefault(label, []).append(cid)
        grown = False
        for members in groups.values():
            if len(members) < 2:
                continue
            for cid in members:
                if taken[cid] < len(ranked[cid]):
                    taken[cid] += 1
                    grown = True
        if not grown:
            break
    counts = pd.Series(list(labels.values())).value_counts()
    return {
        cid: label if counts[label] == 1 else f"{label} (cluster {cid})"
        for cid, label in labels.items()
    }


class ProfileAccumulator:
    """Sums per cluster over batches: sizes, raw sums and non-null counts, standardised sums."""

    def __init__(self, k: int, features: Sequence[str]) -> None:
        self.k = k
        self.features = tuple(features)
        width = len(self.features)
        self.sizes = np.zeros(k, dtype="int64")
        self.outliers = np.zeros(k, dtype="int64")
        self.raw_sums = np.zeros((k, width))
        self.raw_counts = np.zeros((k, width), dtype="int64")
        self.z_sums = np.zeros((k, width))

    def add(
        self, index: np.ndarray, raw: np.ndarray, standardised: np.ndarray, outlier: np.ndarray
    ) -> None:
        """Add a batch: K-Means index per row, raw matrix (NaN = null), standardised matrix."""
        k = self.k
        self.sizes += np.bincount(index, minlength=k)
        self.outliers += np.bincount(index, weights=outlier.astype("float64"), minlength=k).astype(
            "int64"
        )
        present = ~np.isnan(raw)
        filled = np.where(present, raw, 0.0)
        for j in range(len(self.features)):
            self.raw_sums[:, j] += np.bincount(index, weights=filled[:, j], minlength=k)
            self.raw_counts[:, j] += np.bincount(
                index, weights=present[:, j].astype("float64"), minlength=k
            ).astype("int64")
            self.z_sums[:, j] += np.bincount(index, weights=standardised[:, j], minlength=k)

    def profiles(self, cluster_ids: Sequence[int]) -> pd.DataFrame:
        """cluster_id, size, share, outliers, mean_<feature>..., z_<feature>... by cluster id.

        Clusters that no customer was assigned to get size 0 and null means.
        """
        total = int(self.sizes.sum())
        sizes = self.sizes.astype("float64")[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self.raw_counts > 0, self.raw_sums / self.raw_counts, np.nan)
            zs = np.where(sizes > 0, self.z_sums / sizes, np.nan)
        frame = pd.DataFrame(
            {
                "cluster_id": np.asarray(cluster_ids, dtype="int32"),
                "size": self.sizes,
                "share": self.sizes / total if total else np.zeros(self.k),
                "outliers": self.outliers,
            }
        )
        for j, name in enumerate(self.features):
            frame[f"mean_{name}"] = means[:, j]
        for j, name in enumerate(self.features):
            frame[f"z_{name}"] = zs[:, j]
        return frame.sort_values("cluster_id", kind="stable").reset_index(drop=True)


def z_matrix(profiles: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The z-scores of a profiles frame: index cluster_id, one column per feature."""
    z = profiles.set_index("cluster_id")[[f"z_{name}" for name in features]]
    z.columns = list(features)
    return z
