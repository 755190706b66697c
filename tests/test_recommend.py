"""recommend(): exact similarities and metrics on hand-made data, exclusions, cold start, ALS
against a direct solve, and every method against popularity on interactions whose tastes are
known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from ml.recommend import METHODS, Recommender, RecommendSettings, evaluate, recommend
from ml.recommend.als import solve_rows
from ml.recommend.data import InteractionsError
from ml.recommend.evaluate import ranking_metrics
from ml.recommend.models import item_similarity

DAY = pd.Timestamp("2026-01-01")


def frame(rows: list[tuple]) -> pd.DataFrame:
    """(user, item, day[, event]) rows as interactions."""
    records = [
        {
            "user_id": row[0],
            "item_id": row[1],
            "timestamp": DAY + pd.Timedelta(days=row[2]),
            "event": row[3] if len(row) > 3 else "purchase",
        }
        for row in rows
    ]
    return pd.DataFrame(records)


def test_item_similarity_is_the_cosine_with_shrink_and_popularity_discount() -> None:
    # users x items: u0 {a, b}, u1 {a, b}, u2 {a, c}
    weights = sparse.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=float))
    cosine = item_similarity(weights, RecommendSettings(shrink=0.0, neighbours=5)).toarray()
    assert cosine[0, 1] == pytest.approx(2 / np.sqrt(3 * 2))
    assert cosine[0, 2] == pytest.approx(1 / np.sqrt(3 * 1))
    assert cosine[1, 2] == 0.0
    assert np.diag(cosine).tolist() == [0.0, 0.0, 0.0]
    shrunk = item_similarity(weights, RecommendSettings(shrink=1.0, neighbours=5)).toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (np.sqrt(6) + 1))
    # e = 1: sim(i -> j) = co / n_j, so the popular item a is discounted most
    discounted = item_similarity(
        weights, RecommendSettings(shrink=0.0, popularity_exponent=1.0)
    ).toarray()
    assert discounted[1, 0] == pytest.approx(2 / 3)
    assert discounted[0, 1] == pytest.approx(2 / 2)
    one = item_similarity(weights, RecommendSettings(shrink=0.0, neighbours=1)).toarray()
    assert (one > 0).sum(axis=1).tolist() == [1, 1, 1]


def test_ranking_metrics_on_hand_made_lists() -> None:
    lists = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u2"],
            "item_id": ["a", "b", "c", "d", "e", "f"],
            "rank": [1, 2, 3, 1, 2, 3],
            "score": [3, 2, 1, 3, 2, 1],
        }
    )
    relevant = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "c", "x"]})
    share = pd.Series({"a": 0.5, "b": 0.25, "c": 0.25, "d": 0.125, "e": 0.125, "f": 1.0})
    metrics = ranking_metrics(lists, relevant, 3, share, recommendable_items=12, trained_users=8)
    assert metrics["users"] == 2
    assert metrics["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["recall"] == pytest.approx((1.0 + 0) / 2)
    ideal = 1 + 1 / np.log2(3)
    assert metrics["ndcg"] == pytest.approx(((1 + 1 / np.log2(4)) / ideal) / 2)
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert metrics["coverage"] == pytest.approx(6 / 12)
    assert metrics["novelty"] == pytest.approx(np.mean([1, 2, 2, 3, 3, 0]))


def test_exclusions_recent_purchases_stock_and_categories() -> None:
    interactions = frame(
        [
            ("u1", "a", 0),
            ("u1", "b", 50),
            ("u2", "a", 1),
            ("u2", "b", 2),
            ("u2", "c", 3),
            ("u3", "d", 4),
        ]
    )
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "category_path": [
                "Men > Shoes",
                "Men > Shoes",
                "Gift Cards",
                "Women > Bags",
                "Men > Shirts",
            ],
            "in_stock": [True, True, True, False, True],
        }
    )
    settings = RecommendSettings(exclude_days=30, excluded_categories=("Gift Cards",))
    lists = recommend(
        interactions, 10, "popularity", items, settings=settings, as_of=DAY + pd.Timedelta(days=60)
    )
    u1 = lists[lists["user_id"] == "u1"]["item_id"].tolist()
    # b bought 10 days ago: out; a bought 60 days ago: allowed again; c an excluded category;
    # d out of stock; e never seen but in the catalogue
    assert sorted(u1) == ["a", "e"]
    assert lists.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2], [1, 2, 3], [1, 2, 3]]
    every = recommend(
        interactions, 10, "popularity", items, settings=RecommendSettings(exclude_days=None)
    )
    assert "a" not in every[every["user_id"] == "u1"]["item_id"].tolist()


def test_cold_start_customers_are_served_with_reasons() -> None:
    interactions = frame(
        [("u1", "a", 0), ("u1", "b", 1), ("u2", "a", 2), ("u2", "b", 3), ("u3", "a", 4)]
    )
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Red Shoe", "Blue Shoe", "Hat"],
            "category_path": ["Men > Shoes", "Men > Shoes", "Men > Hats"],
        }
    )
    lists = recommend(interactions, 2, "hybrid", items, users=["u3", "new"], reasons=True)
    assert sorted(lists["user_id"].unique()) == ["new", "u3"]
    new = lists[lists["user_id"] == "new"]
    assert new["reason"].str.startswith("popular in Men").all()
    u3 = lists[lists["user_id"] == "u3"].set_index("item_id")
    assert u3.loc["b", "reason"] == "bought together with Red Shoe"
    with pytest.raises(ValueError, match="unknown method"):
        recommend(interactions, 2, "magic")
    with pytest.raises(InteractionsError, match="timestamp"):
        recommend(interactions.drop(columns=["timestamp"]))


def test_als_rows_solve_the_weighted_normal_equations() -> None:
    rng = np.random.default_rng(0)
    confidence = sparse.random(6, 4, density=0.5, random_state=1, format="csr") * 5
    fixed = rng.normal(size=(4, 3))
    solved = solve_rows(confidence.tocsr(), fixed, 0.1)
    dense = confidence.toarray()
    for row in range(6):
        c = 1 + dense[row]
        p = (dense[row] > 0).astype(float)
        system = fixed.T @ np.diag(c) @ fixed + 0.1 * np.eye(3)
        np.testing.assert_allclose(
            solved[row], np.linalg.solve(system, fixed.T @ (c * p)), rtol=1e-8, atol=1e-10
        )


def taste_interactions(seed: int, users: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shoppers with one favourite category (known to the generator) who buy mostly there,
    view before they buy, and whose products come in pairs bought together."""
    rng = np.random.default_rng(seed)
    categories, per_category = 8, 15
    items = pd.DataFrame(
        {
            "item_id": [f"i{c:02d}{k:02d}" for c in range(categories) for k in range(per_category)],
            "category_path": [
                f"Dept > C{c}" for c in range(categories) for _ in range(per_category)
            ],
            "brand": [
                f"B{(c * 3 + k) % 5}" for c in range(categories) for k in range(per_category)
            ],
            "price": [10.0 + 5 * k for _ in range(categories) for k in range(per_category)],
        }
    )
    popular = np.exp(-np.arange(per_category) / 5.0)
    rows = []
    for user in range(users):
        favourite = rng.integers(categories)
        for _ in range(rng.integers(3, 9)):
            category = favourite if rng.random() < 0.8 else rng.integers(categories)
            item = rng.choice(per_category, p=popular / popular.sum())
            day = rng.uniform(0, 120)
            rows.append((f"u{user}", f"i{category:02d}{item:02d}", day, "product_view", 0.2))
            rows.append((f"u{user}", f"i{category:02d}{item:02d}", day + 0.01, "purchase", 1.0))
            if rng.random() < 0.5:  # its companion product
                rows.append(
                    (
                        f"u{user}",
                        f"i{category:02d}{(item + 1) % per_category:02d}",
                        day + 0.02,
                        "purchase",
                        1.0,
                    )
                )
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "day", "event", "weight"])
    interactions["timestamp"] = DAY + pd.to_timedelta(interactions.pop("day"), unit="D")
    return interactions, items


def test_every_method_beats_popularity_where_tastes_exist() -> None:
    interactions, items = taste_interactions(5)
    table = evaluate(
        interactions, items, k=10, holdout_days=20, settings=RecommendSettings(exclude_days=0)
    ).set_index("method")
    assert list(table.index) == list(METHODS)
    for method in METHODS:
        if method != "popularity":
            assert table.loc[method, "ndcg"] > table.loc["popularity", "ndcg"], method
    assert table.loc["popularity", "coverage"] < table.loc["hybrid", "coverage"]


def test_the_hybrid_serves_everyone_and_scores_are_reproducible() -> None:
    interactions, items = taste_interactions(6, users=300)
    customers = [f"u{n}" for n in range(320)]  # twenty without any history
    recommender = Recommender(interactions, items, users=customers)
    first = recommender.recommend("hybrid", 10, users=customers, reasons=True)
    assert first["user_id"].nunique() == 320
    assert (first.groupby("user_id").size() == 10).all()
    again = Recommender(interactions, items, users=customers).recommend(
        "hybrid", 10, users=customers, reasons=True
    )
    pd.testing.assert_frame_equal(first, again)
    assert (
        first["reason"]
        .str.match(r"^(bought|viewed) together with |^similar to |^liked by |^popular in ")
        .all()
    )
