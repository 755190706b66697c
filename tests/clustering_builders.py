"""Synthetic marts.customer_features tables with planted customer groups, for the clustering tests.

`feature_frame(n, groups=4, outliers=0, seed=0)` builds n customers, each drawn into one of
`groups` planted groups (champions, lapsed one-timers, browsers who never bought, bargain
hunters, new big spenders) whose default clustering features differ by a lot and vary by a
little, plus `outliers` extreme rows (group -1). Every column of the contract is present
with its type. It is vectorised, so a million rows take seconds.
`write_features(connection, frame)` writes it as marts.customer_features (exact types).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

AS_OF = dt.datetime(2026, 11, 21)

# The contract's columns of marts.customer_features, in order, with their types.
COLUMNS: dict[str, str] = {
    "customer_id": "varchar",
    "as_of_at": "timestamp",
    "days_since_last_order": "integer",
    "first_order_at": "timestamp",
    "last_order_at": "timestamp",
    "lifetime_orders": "integer",
    "lifetime_revenue_gbp": "double",
    "frequency": "integer",
    "monetary_gbp": "double",
    "orders_30d": "integer",
    "orders_90d": "integer",
    "orders_365d": "integer",
    "revenue_30d_gbp": "double",
    "revenue_90d_gbp": "double",
    "revenue_365d_gbp": "double",
    "average_order_value_gbp": "double",
    "tenure_days": "integer",
    "refund_rate": "double",
    "discount_share": "double",
    "sessions_7d": "integer",
    "sessions_30d": "integer",
    "sessions_90d": "integer",
    "page_views_7d": "integer",
    "page_views_30d": "integer",
    "page_views_90d": "integer",
    "product_views_7d": "integer",
    "product_views_30d": "integer",
    "product_views_90d": "integer",
    "cart_adds_7d": "integer",
    "cart_adds_30d": "integer",
    "cart_adds_90d": "integer",
    "average_session_seconds_30d": "double",
    "cart_abandonments_30d": "integer",
    "cart_abandonment_rate_30d": "double",
    "email_opens_30d": "integer",
    "email_clicks_30d": "integer",
    "favourite_category": "varchar",
    "preferred_channel": "varchar",
    "age_years": "integer",
    "age_band": "varchar",
    "gender": "varchar",
    "country_code": "varchar",
    "region": "varchar",
}

NAN = float("nan")
# Planted groups: centre of each default feature (NaN: null, e.g. never bought).
GROUP_NAMES = ("champions", "lapsed", "browsers", "bargain", "big_new")
CENTRES: dict[str, tuple[float, ...]] = {
    #                           champ   lapsed browsers bargain big_new
    "days_since_last_order": (5, 300, NAN, 40, 10),
    "frequency": (12, 1, 0, 4, 1),
    "monetary_gbp": (1500, 40, 0, 200, 600),
    "average_order_value_gbp": (120, 40, NAN, 50, 600),
    "tenure_days": (900, 700, 60, 400, 20),
    "refund_rate": (0.02, 0.0, NAN, 0.3, 0.0),
    "discount_share": (0.05, 0.3, NAN, 0.6, 0.0),
    "sessions_30d": (12, 0, 8, 3, 2),
    "product_views_30d": (40, 0, 30, 10, 5),
    "cart_adds_30d": (8, 0, 4, 2, 1),
    "cart_abandonment_rate_30d": (0.1, NAN, 0.9, 0.5, 0.0),
    "email_clicks_30d": (6, 0, 1, 3, 0),
}
RATES = {"refund_rate", "discount_share", "cart_abandonment_rate_30d"}
INTEGERS = {name for name, kind in COLUMNS.items() if kind == "integer"}
# Extreme values of the planted outliers.
EXTREME = {
    "days_since_last_order": 0,
    "frequency": 400,
    "monetary_gbp": 900_000.0,
    "average_order_value_gbp": 2_250.0,
    "tenure_days": 5,
    "refund_rate": 0.9,
    "discount_share": 0.95,
    "sessions_30d": 300,
    "product_views_30d": 3_000,
    "cart_adds_30d": 500,
    "cart_abandonment_rate_30d": 0.99,
    "email_clicks_30d": 200,
}


def feature_frame(
    n: int,
    *,
    groups: int = 4,
    outliers: int = 0,
    seed: int = 0,
    weights: tuple[float, ...] | None = None,
    noise: float = 0.12,
    id_offset: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """n customers (the last `outliers` extreme) of `groups` planted groups; (frame, groups).

    `weights` are the groups' shares (default equal); group -1 marks an outlier. Customer
    ids are `cus_<8 digits>` from `id_offset` on.
    """
    if not 1 <= groups <= len(GROUP_NAMES):
        raise ValueError(f"groups must be 1..{len(GROUP_NAMES)}")
    rng = np.random.default_rng(seed)
    share = np.full(groups, 1 / groups) if weights is None else np.asarray(weights, float)
    group = rng.choice(groups, size=n, p=share / share.sum())
    if outliers:
        group[n - outliers :] = -1
    columns: dict[str, np.ndarray] = {}
    for name, centres in CENTRES.items():
        centre = np.append(np.asarray(centres[:groups], float), EXTREME[name])[group]
        if name in RATES:
            values = np.clip(centre + rng.normal(0, noise / 4, n), 0, 1)
        else:
            values = centre * rng.lognormal(0, noise, n)
        values[group == -1] = EXTREME[name]
        columns[name] = np.round(values) if name in INTEGERS else values
    frequency = columns["frequency"]
    bought = ~np.isnan(columns["days_since_last_order"])
    days = columns["days_since_last_order"]
    tenure = columns["tenure_days"]
    as_of = np.datetime64(AS_OF, "us")
    last_order = np.where(
        bought,
        as_of - (np.nan_to_num(days) * 86_400e6).astype("timedelta64[us]"),
        np.datetime64("NaT"),
    )
    first_order = np.where(
        bought,
        last_order - (np.nan_to_num(tenure) * 0.5 * 86_400e6).astype("timedelta64[us]"),
        np.datetime64("NaT"),
    )
    age = rng.integers(18, 85, n).astype(float)
    age[rng.random(n) < 0.1] = np.nan
    bands = pd.cut(
        age,
        [17, 24, 34, 44, 54, 64, 200],
        labels=["18-24", "25-34", "35-44", "45-54", "55-64", "65+"],
    )
    ids = pd.Series(np.arange(id_offset, id_offset + n)).map("cus_{:08d}".format)
    data = {
        "customer_id": ids.to_numpy(),
        "as_of_at": np.full(n, as_of),
        "days_since_last_order": days,
        "first_order_at": first_order,
        "last_order_at": last_order,
        "lifetime_orders": frequency + bought,
        "lifetime_revenue_gbp": columns["monetary_gbp"] * 1.2,
        "frequency": frequency,
        "monetary_gbp": columns["monetary_gbp"],
        "orders_30d": np.round(frequency / 12),
        "orders_90d": np.round(frequency / 4),
        "orders_365d": frequency,
        "revenue_30d_gbp": columns["monetary_gbp"] / 12,
        "revenue_90d_gbp": columns["monetary_gbp"] / 4,
        "revenue_365d_gbp": columns["monetary_gbp"],
        "average_order_value_gbp": columns["average_order_value_gbp"],
        "tenure_days": tenure,
        "refund_rate": columns["refund_rate"],
        "discount_share": columns["discount_share"],
        "sessions_7d": np.round(columns["sessions_30d"] / 4),
        "sessions_30d": columns["sessions_30d"],
        "sessions_90d": columns["sessions_30d"] * 3,
        "page_views_7d": np.round(columns["product_views_30d"] / 2),
        "page_views_30d": columns["product_views_30d"] * 2,
        "page_views_90d": columns["product_views_30d"] * 6,
        "product_views_7d": np.round(columns["product_views_30d"] / 4),
        "product_views_30d": columns["product_views_30d"],
        "product_views_90d": columns["product_views_30d"] * 3,
        "cart_adds_7d": np.round(columns["cart_adds_30d"] / 4),
        "cart_adds_30d": columns["cart_adds_30d"],
        "cart_adds_90d": columns["cart_adds_30d"] * 3,
        "average_session_seconds_30d": np.where(columns["sessions_30d"] > 0, 300.0, np.nan),
        "cart_abandonments_30d": np.round(
            columns["cart_adds_30d"] * np.nan_to_num(columns["cart_abandonment_rate_30d"])
        ),
        "cart_abandonment_rate_30d": columns["cart_abandonment_rate_30d"],
        "email_opens_30d": columns["email_clicks_30d"] * 2,
        "email_clicks_30d": columns["email_clicks_30d"],
        "favourite_category": np.where(
            bought, np.array(["Women", "Men", "Home"])[rng.integers(0, 3, n)], None
        ),
        "preferred_channel": np.where(
            bought, np.array(["web", "store"])[rng.integers(0, 2, n)], None
        ),
        "age_years": age,
        "age_band": np.asarray(bands.astype(object)),
        "gender": np.array(["F", "M", "X", "U"])[rng.integers(0, 4, n)],
        "country_code": np.full(n, "GB"),
        "region": np.array(["London", "Scotland", "Wales"])[rng.integers(0, 3, n)],
    }
    frame = pd.DataFrame(data)
    for name in INTEGERS:
        frame[name] = frame[name].astype("Int64")
    return frame[list(COLUMNS)], group


def write_features(
    connection: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    table: str = "marts.customer_features",
) -> None:
    """(Re)create `table` with the contract's exact column types and insert `frame`."""
    schema = table.split(".")[0] if "." in table else None
    if schema:
        connection.execute(f"create schema if not exists {schema}")
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    connection.execute(f"create or replace table {table} ({columns})")
    connection.register("_features_frame", frame[list(COLUMNS)])
    try:
        connection.execute(f"insert into {table} select * from _features_frame")
    finally:
        connection.unregister("_features_frame")
