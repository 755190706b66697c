"""Offline evaluation on a time split: what each method would have recommended before the last
`holdout_days`, against what the users then bought.

- precision@k: hits in the list / k; recall@k: hits / items the user bought in the holdout;
- NDCG@k: sum over hits of 1 / log2(rank + 1), over the same for a perfect list;
- MAP@k: mean over users of (sum over hits of precision at that rank) / min(bought, k);
- coverage: share of the recommendable catalogue that appears in at least one list;
- novelty: mean over recommended items of -log2(share of training users who touched the item)
  (higher: less obvious items).

Users evaluated: those with a purchase in the holdout (at most `max_users`, a seeded sample;
with `warm_only`, only those who also had an interaction before the split).
Their lists are made from the training interactions only, with the usual exclusions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.errors import NotEnoughData
from ml.recommend.data import PURCHASE
from ml.recommend.recommender import Recommender
from ml.recommend.settings import METHODS, RecommendSettings

METRICS = ("precision", "recall", "ndcg", "map", "coverage", "novelty")


def time_split(
    interactions: pd.DataFrame, holdout_days: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Rows before the split (last timestamp minus `holdout_days`) and rows from it on."""
    timestamps = pd.to_datetime(interactions["timestamp"], utc=True).dt.tz_localize(None)
    split = timestamps.max() - pd.Timedelta(days=holdout_days)
    before = (timestamps < split).to_numpy()
    return interactions.loc[before], interactions.loc[~before], split


def relevant_pairs(test: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_id, item_id) bought in the holdout (every row when there is no event)."""
    rows = test if "event" not in test else test[test["event"].astype(str) == PURCHASE]
    return rows.loc[:, ["user_id", "item_id"]].astype(str).drop_duplicates()


def ranking_metrics(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int,
    item_share: pd.Series,
    recommendable_items: int,
    trained_users: int,
) -> dict[str, float]:
    """The metrics of one method's lists (see the module docstring); `item_share` is the share
    of the `trained_users` who touched each item id (an item nobody touched counts as touched
    by one user more than there were)."""
    users = relevant["user_id"].unique()
    lists = recommendations[recommendations["rank"] <= k].astype({"user_id": str, "item_id": str})
    lists = lists[lists["user_id"].isin(users)]
    marked = lists.merge(relevant.assign(hit=1), on=["user_id", "item_id"], how="left")
    marked["hit"] = marked["hit"].fillna(0)
    marked = marked.sort_values(["user_id", "rank"])
    marked["hits_so_far"] = marked.groupby("user_id")["hit"].cumsum()
    marked["gain"] = marked["hit"] / np.log2(marked["rank"] + 1)
    marked["precision_at_hit"] = marked["hit"] * marked["hits_so_far"] / marked["rank"]
    per_user = marked.groupby("user_id").agg(
        hits=("hit", "sum"), dcg=("gain", "sum"), ap=("precision_at_hit", "sum")
    )
    bought = relevant.groupby("user_id").size()
    per_user = per_user.reindex(users, fill_value=0.0)
    bought = bought.reindex(users)
    ideal_ranks = np.minimum(bought.to_numpy(), k)
    discounts = np.cumsum(1 / np.log2(np.arange(2, k + 2)))
    ideal = discounts[ideal_ranks - 1]
    shares = lists["item_id"].map(item_share).fillna(0.0).to_numpy()
    floor = 1.0 / (1.0 + max(trained_users, 1))
    return {
        "users": int(len(users)),
        "precision": float((per_user["hits"] / k).mean()),
        "recall": float((per_user["hits"].to_numpy() / bought.to_numpy()).mean()),
        "ndcg": float((per_user["dcg"].to_numpy() / ideal).mean()),
        "map": float((per_user["ap"].to_numpy() / ideal_ranks).mean()),
        "coverage": float(lists["item_id"].nunique() / max(recommendable_items, 1)),
        "novelty": float(np.mean(-np.log2(np.maximum(shares, floor))))
        if len(shares)
        else float("nan"),
    }


def evaluate(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    *,
    k: int = 10,
    holdout_days: float = 30,
    methods: tuple[str, ...] = METHODS,
    settings: RecommendSettings | None = None,
    max_users: int | None = None,
    warm_only: bool = False,
    seed: int = 42,
) -> pd.DataFrame:
    """One row per method: users evaluated and every metric, on the time split
    (`warm_only`: only users with an interaction before the split)."""
    settings = settings or RecommendSettings()
    train, test, split = time_split(interactions, holdout_days)
    relevant = relevant_pairs(test)
    if warm_only:
        relevant = relevant[relevant["user_id"].isin(train["user_id"].astype(str))]
    users = relevant["user_id"].unique()
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
        relevant = relevant[relevant["user_id"].isin(users)]
    if len(users) == 0:
        raise NotEnoughData(
            f"nobody bought anything in the last {holdout_days} days of the interactions: "
            "nothing to evaluate against; choose a longer holdout"
        )
    recommender = Recommender(
        train, items, users=users, as_of=split, methods=tuple(methods), settings=settings
    )
    prepared = recommender.prepared
    trained_users = max(int(prepared.history_users.sum()), 1)
    item_share = pd.Series(prepared.item_users / trained_users, index=prepared.item_ids.astype(str))
    rows = []
    for method in methods:
        lists = recommender.recommend(method, k, users=users)
        metrics = ranking_metrics(
            lists, relevant, k, item_share, int(prepared.recommendable.sum()), trained_users
        )
        rows.append({"method": method, **metrics})
    table = pd.DataFrame(rows)
    table.attrs["split_at"] = split
    return table
