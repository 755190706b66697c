"""Quality of an entity resolution against the truth, without enumerating pairs.

Both inputs map record → cluster label (a Series indexed by record id). Pair counts come from
the contingency table of (predicted, true) labels: a cluster of k records holds k(k-1)/2 pairs,
so true positives are the pairs inside each (predicted, true) cell. Records present on one side
only are compared as singletons on the other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score


def _pairs(sizes: np.ndarray) -> int:
    sizes = np.asarray(sizes, dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _align(predicted: pd.Series, truth: pd.Series) -> pd.DataFrame:
    """Predicted and true labels side by side over the union of records (as text)."""
    if predicted.index.has_duplicates or truth.index.has_duplicates:
        raise ValueError("each record may have only one label (duplicate index values)")
    index = predicted.index.union(truth.index)
    frame = pd.DataFrame(
        {
            "predicted": predicted.reindex(index).astype(object),
            "truth": truth.reindex(index).astype(object),
        },
        index=index,
    )
    for column, prefix in (("predicted", "\0p:"), ("truth", "\0t:")):
        empty = frame[column].isna()
        frame[column] = frame[column].map(str)
        if empty.any():  # an unlabelled record is a cluster of its own
            frame.loc[empty, column] = [prefix + str(key) for key in index[empty.to_numpy()]]
    return frame


def pairwise_metrics(predicted: pd.Series, truth: pd.Series) -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of the record pairs put together.

    precision = pairs together in both / pairs together in `predicted` (1.0 when it puts no pair
    together); recall = pairs together in both / pairs together in `truth` (1.0 when there are
    none); F1 their harmonic mean. Also returns the counts: ``true_positives``,
    ``false_positives``, ``false_negatives``, ``predicted_pairs``, ``true_pairs``.
    """
    frame = _align(predicted, truth)
    together = _pairs(frame.groupby(["predicted", "truth"]).size().to_numpy())
    predicted_pairs = _pairs(frame.groupby("predicted").size().to_numpy())
    true_pairs = _pairs(frame.groupby("truth").size().to_numpy())
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": together,
        "false_positives": predicted_pairs - together,
        "false_negatives": true_pairs - together,
        "predicted_pairs": predicted_pairs,
        "true_pairs": true_pairs,
    }


def cluster_metrics(predicted: pd.Series, truth: pd.Series) -> dict[str, float | int]:
    """How well whole people are reproduced.

    * ``exact_share``: share of true clusters (people) whose records form exactly one predicted
      cluster; ``exact_share_duplicated``: the same over people with two or more records.
    * ``impure_clusters``: predicted clusters mixing records of different people.
    * ``split_people``: people whose records are spread over more than one predicted cluster.
    * ``adjusted_rand_index``: scikit-learn's ARI of the two labellings.
    * ``predicted_clusters``, ``true_clusters``: the counts.
    """
    frame = _align(predicted, truth)
    cells = frame.groupby(["predicted", "truth"]).size().rename("both").reset_index()
    predicted_sizes = frame.groupby("predicted").size()
    true_sizes = frame.groupby("truth").size()
    cells["predicted_size"] = cells["predicted"].map(predicted_sizes)
    cells["true_size"] = cells["truth"].map(true_sizes)
    exact = cells[
        (cells["both"] == cells["predicted_size"]) & (cells["both"] == cells["true_size"])
    ]
    duplicated = int((true_sizes > 1).sum())
    exact_duplicated = int((exact["true_size"] > 1).sum())
    truths_per_prediction = cells.groupby("predicted")["truth"].nunique()
    predictions_per_truth = cells.groupby("truth")["predicted"].nunique()
    return {
        "exact_share": len(exact) / len(true_sizes) if len(true_sizes) else 1.0,
        "exact_share_duplicated": exact_duplicated / duplicated if duplicated else 1.0,
        "impure_clusters": int((truths_per_prediction > 1).sum()),
        "split_people": int((predictions_per_truth > 1).sum()),
        "adjusted_rand_index": float(adjusted_rand_score(frame["truth"], frame["predicted"])),
        "predicted_clusters": len(predicted_sizes),
        "true_clusters": len(true_sizes),
    }
