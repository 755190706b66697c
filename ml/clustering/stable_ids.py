"""Stable cluster ids across runs, and the agreement with the previous assignment.

K-Means numbers its centres arbitrarily, so a re-fit would shuffle the ids analysts and rule
segments refer to (`cluster_id = 3`). `match_cluster_ids` keeps them:

- **First run** (no previous model): ids 1..k by cluster size in the fitting sample, largest
  first (ties: K-Means order).
- **Later runs**: the previous centroids (kept in log space, i.e. after fill and log1p) are
  standardised with this run's scaler, and the new centroids are matched to them one to one
  with the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) minimising the total
  Euclidean distance over the features both models share. A matched cluster inherits the
  previous id. New clusters beyond the previous count get fresh ids, from the previous
  model's `next_cluster_id` on, largest first; an id whose cluster disappeared is retired,
  never handed to a different cluster later.

`adjusted_rand_from_contingency` gives the adjusted Rand index (Hubert and Arabie) from the
table of (previous id, new id) counts over the customers of both runs, which the pipeline
counts in SQL; it equals `sklearn.metrics.adjusted_rand_score` on the two label vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ml.clustering.features import FeatureScaler
from ml.clustering.model import PreviousModel


@dataclass(frozen=True)
class IdMatch:
    """Stable ids per K-Means centre, the next fresh id, and how each was decided."""

    cluster_ids: tuple[int, ...]
    next_cluster_id: int
    matched: dict[int, float]  # inherited id -> distance between the two centroids
    new_ids: tuple[int, ...]  # ids issued this run
    retired_ids: tuple[int, ...]  # previous ids with no cluster now


def match_cluster_ids(
    centroids: np.ndarray,
    sizes: np.ndarray,
    scaler: FeatureScaler,
    previous: PreviousModel | None,
) -> IdMatch:
    """Stable ids for the new `centroids` (standardised, K-Means order); see module docstring.

    `sizes` are the clusters' sizes in the fitting sample (they order fresh ids).
    """
    centroids = np.asarray(centroids, dtype="float64")
    k = len(centroids)
    by_size = sorted(range(k), key=lambda i: (-int(sizes[i]), i))
    ids: list[int | None] = [None] * k
    matched: dict[int, float] = {}
    next_id = 1
    retired: tuple[int, ...] = ()
    if previous is not None:
        next_id = max(previous.next_cluster_id, max(previous.cluster_ids, default=0) + 1)
        shared = [name for name in scaler.features if name in previous.features]
        if shared and len(previous.cluster_ids):
            new_columns = [scaler.features.index(name) for name in shared]
            old_columns = [previous.features.index(name) for name in shared]
            means = np.asarray(scaler.means)[new_columns]
            scales = np.asarray(scaler.scales)[new_columns]
            old = (previous.centroids_log_space[:, old_columns] - means) / scales
            cost = cdist(centroids[:, new_columns], old)
            rows, columns = linear_sum_assignment(cost)
            for row, column in zip(rows, columns, strict=True):
                cid = previous.cluster_ids[column]
                ids[row] = cid
                matched[cid] = float(cost[row, column])
        retired = tuple(sorted(set(previous.cluster_ids) - set(matched)))
    issued = []
    for i in by_size:
        if ids[i] is None:
            ids[i] = next_id
            issued.append(next_id)
            next_id += 1
    return IdMatch(
        cluster_ids=tuple(int(cid) for cid in ids),
        next_cluster_id=next_id,
        matched=matched,
        new_ids=tuple(issued),
        retired_ids=retired,
    )


def adjusted_rand_from_contingency(counts: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table (rows: one labelling, columns: other)."""
    counts = np.asarray(counts, dtype="float64")
    n = counts.sum()
    if n < 2:
        return 1.0
    pairs = (counts * (counts - 1) / 2).sum()
    rows = counts.sum(axis=1)
    columns = counts.sum(axis=0)
    row_pairs = (rows * (rows - 1) / 2).sum()
    column_pairs = (columns * (columns - 1) / 2).sum()
    expected = row_pairs * column_pairs / (n * (n - 1) / 2)
    maximum = (row_pairs + column_pairs) / 2
    if maximum == expected:
        return 1.0
    return float((pairs - expected) / (maximum - expected))


def adjusted_rand_index(first: np.ndarray, second: np.ndarray) -> float:
    """Adjusted Rand index of two labellings of the same items."""
    first = np.asarray(first)
    second = np.asarray(second)
    if first.shape != second.shape:
        raise ValueError(f"labellings differ in length: {first.shape} and {second.shape}")
    _, a = np.unique(first, return_inverse=True)
    _, b = np.unique(second, return_inverse=True)
    counts = np.zeros((a.max(initial=-1) + 1, b.max(initial=-1) + 1))
    np.add.at(counts, (a, b), 1)
    return adjusted_rand_from_contingency(counts)
