"""The feature table a clustering run reads: checked, its as_of picked, sampled.

The table (default `marts.customer_features`) must hold customer_id, as_of_at and numeric
feature columns, one row per customer. The fitting sample is the `sample_size` customers with
the smallest md5(customer_id || ':' || seed), so the draw is random, seeded and independent of
the table's row order; only the feature columns are read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import duckdb
import pyarrow as pa

from ml.as_of import cutoff
from ml.clustering.settings import ClusterSettings
from ml.sql import quote_ident

DEFAULT_TABLE = "marts.customer_features"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?)$"
)


def quoted_table(table: str) -> str:
    """`table` ([catalog.][schema.]name) with each part quoted; ValueError when not plain."""
    parts = table.split(".")
    if not 1 <= len(parts) <= 3 or not all(_IDENTIFIER.match(part) for part in parts):
        raise ValueError(
            f"table {table!r} is not a plain [catalog.][schema.]name; pass e.g. {DEFAULT_TABLE!r}"
        )
    return ".".join(quote_ident(part) for part in parts)


def check_columns(
    connection: duckdb.DuckDBPyConnection, table: str, features: tuple[str, ...]
) -> None:
    """Check that the input table exists with customer_id, as_of_at and numeric features."""
    source = quoted_table(table)
    try:
        described = connection.execute(f"describe {source}").fetchall()
    except duckdb.CatalogException:
        raise ValueError(
            f"{table} does not exist; build it first (cd dbt_project && dbt build --select "
            "customer_features) or pass table= the feature table"
        ) from None
    types = {str(name): str(kind).upper() for name, kind, *_ in described}
    for name in ("customer_id", "as_of_at"):
        if name not in types:
            raise ValueError(
                f"{table} has no column {name!r}; it must hold customer_id and as_of_at "
                "beside the features (the customer_features contract)"
            )
    for name in features:
        if name not in types:
            raise ValueError(
                f"{table} has no column {name!r} (listed in ClusterSettings.features); "
                f"remove it from the features or add it to the table"
            )
        if not _NUMERIC.match(types[name]):
            raise ValueError(
                f"{table}.{name} is {types[name]}, not a number; only numeric columns can be "
                "clustered, so remove it from ClusterSettings.features"
            )


def count_customers(
    connection: duckdb.DuckDBPyConnection, table: str, as_of_at: dt.datetime | None
) -> int:
    """Rows of the table as of `as_of_at`, checked to be one per (non-null) customer_id."""
    source = quoted_table(table)
    where, parameters = as_of_filter(as_of_at)
    rows, distinct, missing = connection.execute(
        f"select count(*), count(distinct customer_id), count(*) - count(customer_id) "
        f"from {source} where {where}",
        parameters,
    ).fetchall()[0]
    if missing:
        raise ValueError(
            f"{table} has {missing} row(s) with a null customer_id; every row must name its "
            "customer (fix the model that builds it)"
        )
    if distinct != rows:
        (example,) = connection.execute(
            f"select customer_id from {source} where {where} group by customer_id "
            "having count(*) > 1 order by customer_id limit 1",
            parameters,
        ).fetchall()[0]
        raise ValueError(
            f"{table} has {rows - distinct} duplicate customer_id row(s), e.g. {example!r}; "
            "it must hold one row per customer (deduplicate the model that builds it)"
        )
    if rows == 0:
        raise ValueError(
            f"{table} is empty; build it with customers first (cd dbt_project && dbt build "
            "--select customer_features)"
        )
    return int(rows)


def resolve_as_of(
    connection: duckdb.DuckDBPyConnection, table: str, as_of: dt.datetime | dt.date | str | None
) -> dt.datetime | None:
    """The as_of_at to cluster: `as_of` checked against the table, or the one it holds."""
    source = quoted_table(table)
    held = [
        value
        for (value,) in connection.execute(
            f"select distinct as_of_at from {source} order by as_of_at"
        ).fetchall()
    ]
    shown = ", ".join(str(value) for value in held[:5]) + (", ..." if len(held) > 5 else "")
    if as_of is not None:
        wanted = cutoff(as_of)
        if wanted not in held:
            raise ValueError(
                f"{table} holds no rows as of {wanted:%Y-%m-%d %H:%M:%S} (its as_of_at: "
                f"{shown}); rebuild it with dbt --vars '{{as_of: ...}}' for that cutoff, or "
                "pass as_of=None to cluster what it holds"
            )
        return wanted
    if len(held) > 1:
        raise ValueError(
            f"{table} holds several as_of_at values ({shown}); pass as_of= to pick one"
        )
    return held[0] if held else None


def as_of_filter(as_of_at: dt.datetime | None) -> tuple[str, list[Any]]:
    """The where clause (and its parameters) that selects the rows as of `as_of_at`."""
    if as_of_at is None:
        return "as_of_at is null", []
    return "as_of_at = ?", [as_of_at]


def read_sample(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    features: tuple[str, ...],
    as_of_at: dt.datetime | None,
    settings: ClusterSettings,
) -> pa.Table:
    """The fitting sample: customer_id and the features of `sample_size` hashed customers."""
    source = quoted_table(table)
    columns = ", ".join(f'"{name}"' for name in features)
    where, parameters = as_of_filter(as_of_at)
    return connection.sql(
        f"select customer_id, {columns} from {source} where {where} "
        "order by md5(customer_id || ?), customer_id limit ?",
        params=[*parameters, f":{settings.seed}", settings.sample_size],
    ).to_arrow_table()


__all__ = [
    "DEFAULT_TABLE",
    "as_of_filter",
    "check_columns",
    "count_customers",
    "quoted_table",
    "read_sample",
    "resolve_as_of",
]
