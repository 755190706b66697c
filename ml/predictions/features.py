"""customer_features as of past cutoffs, from the SQL dbt compiled, without running dbt again.

The models learn from past cutoffs: the features as of T-30 beside the orders of (T-30, T].
Rebuilding the feature marts with dbt for every cutoff would cost a dbt invocation each (and
would overwrite marts.customer_features), and writing the features again in Python would make a
second copy of their rules. Instead Teal takes the SQL dbt compiled for `customer_features`
in this run (`<dbt target>/compiled/teal/models/marts/features/customer_features.sql`, whose
cutoff is one timestamp literal, `cast('2026-11-21 00:00:00.000000' as timestamp)`, repeated),
swaps that literal for the past cutoff and runs the query in DuckDB. One definition of every
feature, in dbt; any cutoff, in seconds.

What the past rows still owe to the present: the customer profile comes from today's golden
record (as customer_features documents) and identity is today's graph; sessions
(fct_sessions) are cut at the run's cutoff, so a session that straddles a past cutoff keeps
its full length in `average_session_seconds_30d`. Customers first seen after a past cutoff
(tenure_days null) did not exist then and are left out of that cutoff.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pandas as pd

COMPILED_FEATURES = Path("compiled/teal/models/marts/features/customer_features.sql")
_CUTOFF_LITERAL = re.compile(r"cast\('(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})' as timestamp\)")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class FeatureSqlError(ValueError):
    """The compiled customer_features SQL is not what this module can move to another cutoff."""


def read_compiled_features(target: Path) -> str:
    """The compiled customer_features SQL in dbt's target folder; FileNotFoundError says how to
    make it."""
    path = Path(target) / COMPILED_FEATURES
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the predictions read the SQL dbt compiled for customer_features. "
            "Build the customer models first (the `customers` dbt part of the run), or compile "
            "them into that target folder: cd dbt_project && ../.venv/bin/dbt compile --select "
            "customer_features --target-path <folder>"
        )
    return path.read_text(encoding="utf-8")


def compiled_cutoff(sql: str) -> dt.datetime:
    """The one cutoff the compiled SQL was compiled as of."""
    found = set(_CUTOFF_LITERAL.findall(sql))
    if len(found) != 1:
        raise FeatureSqlError(
            "the compiled customer_features SQL should hold one cutoff literal "
            f"(cast('YYYY-MM-DD HH:MM:SS.ffffff' as timestamp)), found {sorted(found) or 'none'}: "
            "has the as_of_cutoff macro changed? Update ml/predictions/features.py with it"
        )
    return dt.datetime.strptime(found.pop(), TIMESTAMP_FORMAT)


def sql_as_of(sql: str, cutoff: dt.datetime) -> str:
    """The same SQL with its cutoff moved to `cutoff`."""
    compiled_cutoff(sql)  # exactly one cutoff, or an error naming the problem
    literal = f"cast('{cutoff.strftime(TIMESTAMP_FORMAT)}' as timestamp)"
    return _CUTOFF_LITERAL.sub(lambda _: literal, sql)


def features_as_of(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    cutoff: dt.datetime,
    columns: tuple[str, ...],
    *,
    share: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """customer_id, as_of_at and `columns` of every customer who existed at `cutoff`, by
    customer_id; with `share`, of that share of customers only (see `sampled_sql`)."""
    select = ", ".join(["customer_id", "as_of_at", *_quoted(columns)])
    moved = sql_as_of(sql, cutoff)
    if share is not None and share < 1:
        moved = sampled_sql(connection, moved, share, seed)
    query = f"select {select} from ({moved}) as features where tenure_days is not null"
    frame = connection.execute(query).df()
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


_RELATION = re.compile(r'"([^"]+)"\."([^"]+)"\."([^"]+)"')


def sampled_sql(connection: duckdb.DuckDBPyConnection, sql: str, share: float, seed: int) -> str:
    """The SQL reading, from every relation with a customer_id, only the customers whose
    hash(customer_id || ':' || seed) falls in the first `share` of its range: the same
    customers at every cutoff, and every count about them still whole, at a fraction of the
    cost (DuckDB's hash, so a draw is fixed for a DuckDB version)."""
    bound = int(share * 1_000_000)

    def restrict(match: re.Match) -> str:
        catalog, schema, table = match.groups()
        has_customer = connection.execute(
            "select count(*) from information_schema.columns where table_catalog = ? "
            "and table_schema = ? and table_name = ? and column_name = 'customer_id'",
            [catalog, schema, table],
        ).fetchone()[0]
        if not has_customer:
            return match.group(0)
        return (
            f"(select * from {match.group(0)} where customer_id is not null and "
            f"hash(customer_id || ':{int(seed)}') % 1000000 < {bound})"
        )

    return _RELATION.sub(restrict, sql)


def completed_orders_between(
    connection: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """customer_id and orders: completed orders with start <= ordered_at < end, per customer
    (customers without one are absent)."""
    return connection.execute(
        """
        select customer_id, count(*) as orders
        from marts.fct_orders
        where is_completed and customer_id is not null and ordered_at >= ? and ordered_at < ?
        group by customer_id
        """,
        [start, end],
    ).df()


def _quoted(columns: tuple[str, ...]) -> list[str]:
    return ['"' + name.replace('"', '""') + '"' for name in columns]
