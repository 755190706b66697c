"""How good a probability is: ROC AUC, PR AUC, Brier score, deciles and calibration bins.

Deciles rank customers by score, highest first, ties broken by customer id, so decile 1 is
the tenth most likely; lift is a decile's rate of positives over the overall rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def deciles(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Decile 1..10 of each score, 1 for the highest tenth (ties broken by `tiebreak`)."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = (np.arange(n) if tiebreak is None else np.asarray(tiebreak), -scores)
    order = np.lexsort(keys)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return 1 + (10 * rank) // n


def decile_table(labels: np.ndarray, scores: np.ndarray, tiebreak=None) -> pd.DataFrame:
    """Per decile: customers, positives, rate, mean score, lift, and the share of all positives
    captured by this decile and the ones above it."""
    labels = np.asarray(labels, dtype=float)
    frame = pd.DataFrame({"decile": deciles(scores, tiebreak), "label": labels, "score": scores})
    table = (
        frame.groupby("decile")
        .agg(customers=("label", "size"), positives=("label", "sum"), mean_score=("score", "mean"))
        .reset_index()
    )
    overall = labels.mean() if len(labels) else 0.0
    table["rate"] = table["positives"] / table["customers"]
    table["lift"] = table["rate"] / overall if overall > 0 else np.nan
    total = table["positives"].sum()
    table["cumulative_capture"] = table["positives"].cumsum() / total if total > 0 else np.nan
    table["positives"] = table["positives"].astype(int)
    return table[
        ["decile", "customers", "positives", "rate", "mean_score", "lift", "cumulative_capture"]
    ]


def calibration_table(labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Customers, mean predicted probability and observed rate per decile of the predictions,
    lowest first (the points of the calibration curve)."""
    frame = pd.DataFrame({"label": np.asarray(labels, float), "p": np.asarray(probabilities)})
    frame["bin"] = deciles(frame["p"].to_numpy())
    table = frame.groupby("bin").agg(
        customers=("label", "size"), predicted=("p", "mean"), observed=("label", "mean")
    )
    return table.sort_values("predicted").reset_index(drop=True)


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """ROC AUC, PR AUC (average precision), Brier score, base rate, top-decile lift."""
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    both = labels.min() != labels.max() if len(labels) else False
    table = decile_table(labels, probabilities)
    return {
        "customers": int(len(labels)),
        "positives": int(labels.sum()),
        "base_rate": float(labels.mean()) if len(labels) else float("nan"),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, probabilities)) if both else float("nan"),
        "brier": float(brier_score_loss(labels, probabilities)) if len(labels) else float("nan"),
        "top_decile_lift": float(table["lift"].iloc[0]) if len(table) else float("nan"),
    }
