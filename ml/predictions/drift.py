"""Population stability index: has a feature or a score moved since the model was trained?

The reference of a column is its distribution in the training run: the edges of ten
equal-count bins (deciles of the non-null values) and the share of rows in each bin, with the
nulls as an eleventh bin. PSI = sum over bins of (current - reference) * ln(current /
reference), shares floored at 0.0001 so an empty bin stays finite. Reading it (the usual rule
of thumb): below 0.1 stable, 0.1 to 0.2 a moderate shift worth watching, above 0.2 a shift
that calls for retraining (`PredictionSettings.psi_threshold`, see `retrain_decision`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 10
_FLOOR = 1e-4


def reference(values: np.ndarray) -> dict[str, Any]:
    """Bin edges and shares of a column in the training data (JSON-able)."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    if len(present) == 0:
        edges: list[float] = []
    else:
        edges = sorted(set(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]).tolist()))
    return {"edges": edges, "shares": shares(values, edges).tolist()}


def shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of rows in each bin: len(edges) + 1 bins split at the edges (a value equal to an
    edge goes right), then the nulls."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), values[~missing], side="right"),
        minlength=len(edges) + 1,
    ).astype(np.float64)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors of the same bins."""
    expected = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_against(reference_bins: dict[str, Any], values: np.ndarray) -> float:
    """PSI of `values` against a column's `reference`."""
    return psi(np.asarray(reference_bins["shares"]), shares(values, reference_bins["edges"]))


def retrain_decision(drift: dict[str, float], threshold: float) -> tuple[bool, list[str]]:
    """The written retrain rule: retrain when the score or any feature has a PSI above the
    threshold against the last training run; the reasons name each column and its PSI."""
    drifted = [
        f"{column} PSI {value:.3f} > {threshold}"
        for column, value in sorted(drift.items(), key=lambda item: -item[1])
        if value > threshold
    ]
    return bool(drifted), drifted
