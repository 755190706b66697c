"""Recommendations for every customer from the warehouse, with their offline evaluation.

    from ml.recommend.pipeline import recommend_customers
    run = recommend_customers(connection, as_of_at=cutoff, model_dir=..., reports_dir=...)

Interactions before the cutoff: order lines of completed orders (marts.fct_order_items,
event "purchase", weight 1), product views (weight 0.2) and cart adds (weight 0.5) of
marts.fct_clickstream_events, of known customers. Catalogue: the latest snapshot of
staging.stg_products__products (title, category path, brand, price, in stock). Every customer
of marts.customer_features gets a list, those without history too (popularity).

The hybrid's top `k` per customer, with reasons, replace ml.customer_recommendations. The
evaluation (evaluate.py) holds out the last `holdout_days` and scores every method against
popularity, on the histories of at most about `evaluation_history_users` customers; its table, a chart and a model card go to <models>/recommendations/<version>/
and <reports>/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml.errors import NotEnoughData
from ml.recommend.charts import metrics_chart
from ml.recommend.evaluate import METRICS, evaluate
from ml.recommend.recommender import RankedLists, Recommender
from ml.recommend.settings import METHODS, RecommendSettings

SCHEMA = "ml"
EVENT_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.5, "product_view": 0.2}
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f"{SCHEMA}.customer_recommendations": ("customer_id",)
}
RECOMMENDATION_COLUMNS: dict[str, tuple[str, str]] = {
    "customer_id": ("varchar", "The customer."),
    "recommendation_rank": ("integer", "1 = the best recommendation."),
    "product_id": ("varchar", "The recommended product."),
    "product_title": ("varchar", "Its title in the latest catalogue."),
    "score": ("double", "The hybrid score (weighted sum of 0-1 scaled method scores)."),
    "reason": (
        "varchar",
        "Why: 'bought together with X', 'viewed together with X', 'similar to X', "
        "'liked by customers with similar tastes' or 'popular in Z'.",
    ),
    "as_of_at": ("timestamp", "The cutoff: only interactions before it were used."),
    "model_version": (
        "varchar",
        "The recommendations run (data/models/recommendations/<version>/).",
    ),
}


@dataclass
class RecommendationRun:
    """What a recommendations run did (no personal data)."""

    model_version: str
    as_of_at: dt.datetime
    customers: int
    customers_served: int
    rows: int
    evaluation: pd.DataFrame
    charts: dict[str, Path]
    report: Path
    folder: Path
    seconds: dict[str, float] = field(default_factory=dict)
    # why there is no offline evaluation (e.g. no purchase in the holdout), None when there is
    evaluation_skipped: str | None = None


def read_interactions(connection: duckdb.DuckDBPyConnection, as_of_at: dt.datetime) -> pd.DataFrame:
    """Purchases, cart adds and product views of known customers before the cutoff."""
    return connection.execute(
        f"""
        select customer_id as user_id, product_id as item_id, ordered_at as timestamp,
            {EVENT_WEIGHTS["purchase"]} as weight, 'purchase' as event
        from marts.fct_order_items
        where is_completed and customer_id is not null and product_id is not null
            and ordered_at < $cutoff
        union all
        select customer_id, product_id, occurred_at,
            case event_type when 'add_to_cart' then {EVENT_WEIGHTS["add_to_cart"]}
                else {EVENT_WEIGHTS["product_view"]} end,
            event_type
        from marts.fct_clickstream_events
        where event_type in ('product_view', 'add_to_cart') and customer_id is not null
            and product_id is not null and occurred_at < $cutoff
        """,
        {"cutoff": as_of_at},
    ).df()


def read_catalogue(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The latest catalogue snapshot: one row per product."""
    return connection.execute(
        """
        select product_id as item_id, any_value(title) as title,
            any_value(category_path) as category_path, any_value(brand) as brand,
            cast(any_value(price) as double) as price, bool_and(is_in_stock) as in_stock
        from staging.stg_products__products
        where is_in_latest_snapshot
        group by product_id
        order by product_id
        """
    ).df()


def recommend_customers(
    connection: duckdb.DuckDBPyConnection,
    *,
    as_of_at: dt.datetime,
    model_dir: str | Path,
    reports_dir: str | Path,
    settings: RecommendSettings | None = None,
    k: int = 10,
    holdout_days: int = 30,
    evaluation_users: int = 20_000,
    evaluation_history_users: int = 100_000,
    progress: bool = False,
) -> RecommendationRun:
    """Evaluate every method, then write the hybrid's lists for every customer."""
    settings = settings or RecommendSettings()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    interactions = read_interactions(connection, as_of_at)
    catalogue = read_catalogue(connection)
    customers = connection.execute(
        "select customer_id from marts.customer_features order by customer_id"
    ).df()["customer_id"]
    seconds["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    # stock is today's: held-out purchases of products out of stock now still count
    skipped = None
    try:
        evaluation = evaluate(
            evaluation_interactions(interactions, evaluation_history_users, settings.seed),
            catalogue.drop(columns=["in_stock"]),
            k=k,
            holdout_days=holdout_days,
            settings=settings,
            max_users=evaluation_users,
            seed=settings.seed,
        )
    except NotEnoughData as reason:  # no purchase to evaluate against: lists are still served
        skipped = f"evaluation: {reason}"
        evaluation = pd.DataFrame(columns=["method", "users", *METRICS])
    seconds["evaluate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    recommender = Recommender(
        interactions,
        catalogue,
        users=customers,
        as_of=as_of_at,
        methods=("hybrid",),
        settings=settings,
    )
    seconds["fit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    ranked = recommender.ranked("hybrid", k, users=customers, reasons=True, progress=progress)
    seconds["recommend"] = time.perf_counter() - clock

    fitted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    digest = hashlib.sha256(
        json.dumps(
            {"settings": settings.to_dict(), "as_of_at": str(as_of_at), "rows": len(interactions)},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:8]
    version = f"{fitted_at:%Y%m%dT%H%M%S}Z-{digest}"
    clock = time.perf_counter()
    table = recommendation_table(recommender, ranked, customers, catalogue, as_of_at, version)
    write_recommendations(connection, table)
    folder, charts, report = save_run(
        Path(model_dir) / "recommendations" / version,
        Path(reports_dir),
        evaluation,
        settings,
        as_of_at,
        holdout_days,
        k,
        interactions,
        skipped,
    )
    seconds["save"] = time.perf_counter() - clock
    return RecommendationRun(
        model_version=version,
        as_of_at=as_of_at,
        customers=int(len(customers)),
        customers_served=int(ranked.kept.any(axis=1).sum()),
        rows=int(table.num_rows),
        evaluation=evaluation,
        charts=charts,
        report=report,
        folder=folder,
        seconds=seconds,
        evaluation_skipped=skipped,
    )


def evaluation_interactions(interactions: pd.DataFrame, users: int, seed: int) -> pd.DataFrame:
    """The whole history of about `users` customers (a seeded hash of the id picks them): the
    offline evaluation fits every method on them, which a million customers would not need."""
    distinct = interactions["user_id"].nunique()
    if distinct <= users:
        return interactions
    ids = interactions["user_id"].astype(str) + f":{seed}"
    share = pd.util.hash_array(ids.to_numpy(dtype=object), categorize=True) % 1_000_003
    return interactions.loc[share < users / distinct * 1_000_003]


def recommendation_table(
    recommender: Recommender,
    ranked: RankedLists,
    customers: pd.Series,
    catalogue: pd.DataFrame,
    as_of_at: dt.datetime,
    version: str,
) -> pa.Table:
    """The rows of ml.customer_recommendations (RECOMMENDATION_COLUMNS), in the order of
    `customers` (the users `ranked` was made for) and rank. Every text column is a dictionary
    array over its distinct values (customers, products, titles, reasons), so ten million
    rows are built from integer codes without a Python string each."""
    kept = ranked.kept
    rows = int(kept.sum())
    customer = np.repeat(np.arange(len(ranked.rows), dtype=np.int32), kept.sum(axis=1))
    items = ranked.items[kept]
    item_ids = recommender.prepared.item_ids.astype(str)
    titles = catalogue.drop_duplicates("item_id", keep="last").set_index("item_id")["title"]

    def coded(codes: np.ndarray, values) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32)), pa.array(values, pa.string())
        )

    return pa.table(
        {
            "customer_id": coded(customer, pd.Series(customers).astype(str).to_numpy()),
            "recommendation_rank": pa.array(
                np.broadcast_to(np.arange(1, kept.shape[1] + 1, dtype=np.int32), kept.shape)[kept]
            ),
            "product_id": coded(items, item_ids),
            "product_title": coded(items, [_text(title) for title in titles.reindex(item_ids)]),
            "score": pa.array(ranked.scores[kept].astype(np.float64)),
            "reason": coded(ranked.reasons[kept], recommender.reason_texts().astype(str)),
            "as_of_at": pa.array(np.full(rows, np.datetime64(as_of_at, "us"))),
            "model_version": coded(np.zeros(rows, np.int32), [version]),
        }
    )


def _text(value) -> str | None:
    return None if pd.isna(value) else str(value)


def write_recommendations(connection: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Replace ml.customer_recommendations with `table` (its rows in customer and rank order:
    DuckDB keeps the insertion order)."""
    columns = ", ".join(
        f"cast({name} as {kind}) as {name}" for name, (kind, _) in RECOMMENDATION_COLUMNS.items()
    )
    connection.execute(f"create schema if not exists {SCHEMA}")
    connection.register("_recommendations_frame", table)
    try:
        connection.execute(
            f"create or replace table {SCHEMA}.customer_recommendations as select {columns} "
            "from _recommendations_frame"
        )
    finally:
        connection.unregister("_recommendations_frame")


def save_run(
    folder: Path,
    reports: Path,
    evaluation: pd.DataFrame,
    settings: RecommendSettings,
    as_of_at: dt.datetime,
    holdout_days: int,
    k: int,
    interactions: pd.DataFrame,
    skipped: str | None = None,
) -> tuple[Path, dict[str, Path], Path]:
    """parameters.json, metrics.json and model_card.md in the model folder; the chart and
    recommendations.md in the reports folder (`skipped`: why there is no evaluation)."""
    folder.mkdir(parents=True, exist_ok=True)
    window = {
        "as_of_at": str(as_of_at),
        "split_at": str(evaluation.attrs.get("split_at")),
        "holdout_days": holdout_days,
        "k": k,
        "interactions": int(len(interactions)),
        "event_weights": EVENT_WEIGHTS,
    }
    (folder / "parameters.json").write_text(
        json.dumps({"settings": settings.to_dict(), "window": window}, indent=2) + "\n",
        encoding="utf-8",
    )
    (folder / "metrics.json").write_text(
        json.dumps(evaluation.to_dict(orient="records"), indent=2) + "\n", encoding="utf-8"
    )
    table = f"Not evaluated: {skipped}." if skipped else markdown_table(evaluation)
    (folder / "model_card.md").write_text(
        f"""# Product recommendations ({folder.name})

**What it predicts.** The {k} products each customer is most likely to want next: a hybrid of
item-kNN (co-purchase and co-view), implicit ALS, content similarity (category path, brand,
price band) and popularity, which alone serves customers without history.

**Data used.** Completed order lines (weight 1), cart adds (0.5) and product views (0.2) of
known customers before {as_of_at}; the latest catalogue. Never recommended: what the customer
bought in the last {settings.exclude_days} days, products out of stock, excluded categories
({", ".join(settings.excluded_categories) or "none"}).

**Offline evaluation** (the last {holdout_days} days held out, split at {window["split_at"]}):

{table}

**Limits.** Offline metrics reward what people bought anyway; a lift test (an export with a
holdout) measures what a list changes. Popularity is hard to beat where tastes are weak or data
thin. Scores compare products for one customer, not customers with each other.
""",
        encoding="utf-8",
    )
    chart = metrics_chart(evaluation, reports / "charts" / "recommendation_metrics.png", k)
    report = reports / "recommendations.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        f"# Recommendations: offline evaluation ({folder.name})\n\n"
        f"Last {holdout_days} days held out (split at {window['split_at']}), k = {k}.\n\n{table}\n",
        encoding="utf-8",
    )
    return folder, {"recommendation_metrics": chart}, report


def markdown_table(evaluation: pd.DataFrame) -> str:
    columns = ["method", "users", *METRICS]
    header = "| " + " | ".join(columns) + " |\n|---|" + "---:|" * (len(columns) - 1)
    rows = [
        "| "
        + " | ".join(
            [str(row["method"]), f"{int(row['users']):,}"]
            + [f"{row[name]:.4f}" for name in METRICS]
        )
        + " |"
        for _, row in evaluation.iterrows()
    ]
    return "\n".join([header, *rows])


def describe_evaluation(evaluation: pd.DataFrame) -> dict[str, Any]:
    """Per method, NDCG@k and its difference from popularity's (for logs and metadata)."""
    by_method = evaluation.set_index("method")
    base = float(by_method.loc["popularity", "ndcg"]) if "popularity" in by_method.index else 0.0
    return {
        method: {
            "ndcg": round(float(row["ndcg"]), 4),
            "vs_popularity": round(float(row["ndcg"]) - base, 4),
        }
        for method, row in by_method.iterrows()
        if method in METHODS
    }
