"""MovieLens 100k (GroupLens; 100,000 ratings of 1,682 films by 943 users, 1997-98) as the
RecBole package ships it on PyPI, read into recommend()'s shapes: the public data set every
method is checked on (`make bench-recommend` fetches it into data/benchmarks/ml-100k/).

Every rating counts as an interaction of weight 1 (implicit feedback); the catalogue gives
each film a "category path" of its genres in the file's order, its release decade as the
"brand", and no price.

    python -m ml.recommend.movielens data/benchmarks/ml-100k    # metrics of every method
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ml.recommend.settings import RecommendSettings

FILES = ("ml-100k.inter", "ml-100k.item")
# Ratings are not purchases: anything a user rated is never recommended to them again.
MOVIELENS_SETTINGS = RecommendSettings(exclude_days=None)


def read_movielens(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items) from RecBole's atomic files in `folder`."""
    folder = Path(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing: run `make bench-recommend` (it fetches MovieLens "
                "100k from the RecBole wheel on PyPI into data/benchmarks/ml-100k/)"
            )
    ratings = pd.read_csv(folder / "ml-100k.inter", sep="\t", encoding="latin-1")
    ratings.columns = [column.split(":")[0] for column in ratings.columns]
    interactions = pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype(str),
            "item_id": ratings["item_id"].astype(str),
            "timestamp": pd.to_datetime(ratings["timestamp"], unit="s"),
            "weight": 1.0,
        }
    )
    films = pd.read_csv(folder / "ml-100k.item", sep="\t", encoding="latin-1")
    films.columns = [column.split(":")[0] for column in films.columns]
    year = pd.to_numeric(films["release_year"], errors="coerce")
    items = pd.DataFrame(
        {
            "item_id": films["item_id"].astype(str),
            "title": films["movie_title"].astype(str),
            "category_path": films["class"].fillna("").astype(str).str.split().str.join(" > "),
            "brand": (year // 10 * 10).map(
                lambda decade: f"{decade:.0f}s" if decade == decade else ""
            ),
        }
    )
    return interactions, items


def main(argv: list[str] | None = None) -> None:
    from ml.recommend.evaluate import evaluate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="data/benchmarks/ml-100k")
    parser.add_argument("--holdout-days", type=float, default=30)
    parser.add_argument("--k", type=int, default=10)
    arguments = parser.parse_args(argv)
    interactions, items = read_movielens(arguments.folder)
    for warm_only in (False, True):
        table = evaluate(
            interactions,
            items,
            k=arguments.k,
            holdout_days=arguments.holdout_days,
            warm_only=warm_only,
            settings=MOVIELENS_SETTINGS,
        )
        who = "users with ratings before the split" if warm_only else "every user"
        print(
            f"MovieLens 100k, last {arguments.holdout_days:g} days held out, k = {arguments.k}, {who}"
        )
        print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))


if __name__ == "__main__":
    main()
