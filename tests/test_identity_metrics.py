"""Pairwise and cluster metrics of an entity resolution, on tiny examples counted by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.identity.metrics import cluster_metrics, pairwise_metrics

# truth: {a, b, c} one person, {d, e} another, {f} alone -> 3 + 1 = 4 true pairs
TRUTH = pd.Series({"a": 1, "b": 1, "c": 1, "d": 2, "e": 2, "f": 3})
# predicted: {a, b} together, c alone, {d, e, f} together -> 1 + 3 = 4 predicted pairs, of which
# a-b and d-e are right (2 true positives)
PREDICTED = pd.Series({"a": "x", "b": "x", "c": "y", "d": "z", "e": "z", "f": "z"})


def test_pairwise_metrics_from_cluster_sizes() -> None:
    result = pairwise_metrics(PREDICTED, TRUTH)
    assert result == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "true_positives": 2,
        "false_positives": 2,
        "false_negatives": 2,
        "predicted_pairs": 4,
        "true_pairs": 4,
    }


def test_pairwise_metrics_perfect_and_empty() -> None:
    assert pairwise_metrics(TRUTH, TRUTH)["f1"] == 1.0
    singletons = pd.Series({k: k for k in TRUTH.index})
    result = pairwise_metrics(singletons, TRUTH)
    assert (result["precision"], result["recall"], result["true_positives"]) == (1.0, 0.0, 0)


def test_pairwise_metrics_treat_missing_records_as_singletons() -> None:
    partial = PREDICTED.drop(["e", "f"])  # d alone now: only a-b predicted
    result = pairwise_metrics(partial, TRUTH)
    assert (result["predicted_pairs"], result["true_positives"], result["true_pairs"]) == (1, 1, 4)


def test_cluster_metrics() -> None:
    result = cluster_metrics(PREDICTED, TRUTH)
    assert result["exact_share"] == 0.0  # no person reproduced exactly
    assert result["exact_share_duplicated"] == 0.0
    assert result["impure_clusters"] == 1  # {d, e, f}
    assert result["split_people"] == 1  # person 1 over {a, b} and {c}
    assert (result["predicted_clusters"], result["true_clusters"]) == (3, 3)
    # ARI = (2 - 4*4/15) / ((4 + 4)/2 - 4*4/15) = 7/22
    assert result["adjusted_rand_index"] == pytest.approx(7 / 22)


def test_cluster_metrics_exact_reproduction() -> None:
    predicted = pd.Series({"a": 9, "b": 9, "c": 9, "d": 7, "e": 8, "f": 6})
    result = cluster_metrics(predicted, TRUTH)
    assert result["exact_share"] == pytest.approx(2 / 3)  # {a, b, c} and {f}
    assert result["exact_share_duplicated"] == 0.5
    assert (result["impure_clusters"], result["split_people"]) == (0, 1)


def test_duplicate_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="one label"):
        pairwise_metrics(pd.Series([1, 2], index=["a", "a"]), TRUTH)


def test_integer_labels_without_missing_records() -> None:
    # integer ids and labels, nobody unlabelled: nothing to pad, still scored
    predicted = pd.Series([1, 1, 2, 2])
    truth = pd.Series([7, 7, 7, 8])
    figures = pairwise_metrics(predicted, truth)
    assert (figures["true_positives"], figures["predicted_pairs"], figures["true_pairs"]) == (
        1,
        2,
        3,
    )
