"""recommend() on a public data set: MovieLens 100k as the RecBole wheel on PyPI ships it
(`make bench-recommend` or `make test` fetch it into data/benchmarks/ml-100k/), and our
item-kNN against a standard implementation, implicit's CosineRecommender (a benchmark-only
dependency in requirements/dev.in), on the same time split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.recommend import Recommender, RecommendSettings, recommend
from ml.recommend.evaluate import ranking_metrics, relevant_pairs, time_split
from ml.recommend.movielens import MOVIELENS_SETTINGS, read_movielens

FOLDER = Path(__file__).resolve().parents[1] / "data" / "benchmarks" / "ml-100k"
pytestmark = pytest.mark.skipif(
    not (FOLDER / "ml-100k.inter").is_file(),
    reason="MovieLens 100k is not fetched: run `make bench-recommend`",
)


@pytest.fixture(scope="module")
def movielens() -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_movielens(FOLDER)


def test_every_method_serves_every_user_of_movielens(movielens) -> None:
    interactions, items = movielens
    assert len(interactions) == 100_000
    assert interactions["user_id"].nunique() == 943
    assert len(items) == 1682
    for method in ("popularity", "item_knn", "content", "hybrid"):
        lists = recommend(interactions, 10, method, items, settings=MOVIELENS_SETTINGS)
        assert lists["user_id"].nunique() == 943, method
        assert (lists.groupby("user_id").size() == 10).all(), method
        seen = lists.merge(interactions, on=["user_id", "item_id"])
        assert seen.empty, f"{method} recommended a film the user had rated"


def test_item_knn_matches_implicit_cosine_precision_at_10(movielens) -> None:
    implicit_neighbours = pytest.importorskip("implicit.nearest_neighbours")
    interactions, _ = movielens
    train, test, split = time_split(interactions, 60)
    relevant = relevant_pairs(test)
    relevant = relevant[relevant["user_id"].isin(train["user_id"])]
    users = relevant["user_id"].unique()
    assert len(users) == 130
    settings = RecommendSettings(
        neighbours=50, shrink=0.0, popularity_exponent=0.5, exclude_days=None
    )
    recommender = Recommender(
        train, users=users, as_of=split, methods=("item_knn",), settings=settings
    )
    prepared = recommender.prepared
    trained = int(prepared.history_users.sum())
    share = pd.Series(prepared.item_users / trained, index=prepared.item_ids.astype(str))
    items = int(prepared.recommendable.sum())
    ours = ranking_metrics(
        recommender.recommend("item_knn", 10, users=users), relevant, 10, share, items, trained
    )

    standard = implicit_neighbours.CosineRecommender(K=50)
    standard.fit(prepared.weights.tocsr(), show_progress=False)
    rows = pd.Index(prepared.user_ids).get_indexer(users)
    ids, scores = standard.recommend(
        rows, prepared.weights[rows].tocsr(), N=10, filter_already_liked_items=True
    )
    lists = pd.DataFrame(
        {
            "user_id": np.repeat(users, 10),
            "item_id": prepared.item_ids[ids.ravel()],
            "rank": np.tile(np.arange(1, 11), len(users)),
            "score": scores.ravel(),
        }
    )
    theirs = ranking_metrics(lists, relevant, 10, share, items, trained)
    print(
        f"\nMovieLens 100k, last 60 days held out, {len(users)} users with earlier ratings: "
        f"precision@10 ours {ours['precision']:.4f}, implicit CosineRecommender {theirs['precision']:.4f}; "
        f"NDCG@10 {ours['ndcg']:.4f} vs {theirs['ndcg']:.4f}"
    )
    assert abs(ours["precision"] - theirs["precision"]) <= 0.01
    assert ours["precision"] >= theirs["precision"] - 0.01
