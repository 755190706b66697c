"""Retention per feed: landed rows older than the feed's retention period are purged every run.

`ml/landing/feeds.yml` gives a feed `retention: {days: N, column: <timestamp column>}`
(clickstream: 395 days after `occurred_at`, orders: 2557 days after `ordered_at`; no retention
means kept without a time limit: CRM profiles, proof of consent, erasure requests, products).
`purge_expired` deletes a landed row when its timestamp, read the way staging reads it (an
offset in the text wins, otherwise the feed's timezone), is before `cutoff(as_of) - N days`.
A row whose text cannot be read as a timestamp is kept (landed rows were validated, so there
are none in practice). The feed's quarantined rows and duplicates go by the same cutoff on
when they were quarantined or dropped, so raw text of old rows does not outlive the rows.

Every purge is counted per file in `landing.removals` (reason `expired`), so the landing
reconciliation still adds up; `privacy.retention_log` gets one row per feed with a retention
period and run, also when nothing was old enough; `privacy.audit_log` gets an entry only for
a feed where rows were purged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from ml import audit
from ml.as_of import cutoff as as_of_cutoff
from ml.landing.contracts import Contracts, Feed
from ml.landing.ledger import ensure_ledger
from ml.sql import quote_ident, quote_literal
from ml.warehouse import table_exists

RETENTION_LOG_DDL = """
create schema if not exists privacy;
create table if not exists privacy.retention_log (
    run_at timestamp not null,
    feed varchar not null,
    table_name varchar not null,
    column_name varchar not null,
    cutoff timestamp not null,
    rows_purged bigint not null,
    quarantine_rows_purged bigint not null default 0,
    duplicate_rows_purged bigint not null default 0,
    run_id varchar
)
"""

_OFFSET = r"[T ][0-9:.]+([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"


def utc_timestamp_sql(column: str, timezone: str) -> str:
    """SQL reading landed timestamp text as naive UTC, as dbt's `to_utc_timestamp` macro does.

    Text with an offset (or Z) is converted with it; text without one is read in `timezone`.
    Unlike the macro it never fails: text that is not a timestamp gives NULL.
    """
    value = f"nullif(trim(cast({column} as varchar)), '')"
    with_offset = f"timezone('UTC', try_cast(upper({value}) as timestamptz))"
    if timezone.upper() == "UTC":
        local = f"try_cast({value} as timestamp)"
    else:
        local = (
            f"timezone('UTC', timezone({quote_literal(timezone)}, try_cast({value} as timestamp)))"
        )
    return (
        f"(case when regexp_matches({value}, {quote_literal(_OFFSET)}) then {with_offset} "
        f"else {local} end)"
    )


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create privacy.retention_log and the landing ledger (landing.removals) if missing."""
    connection.execute(RETENTION_LOG_DDL)
    ensure_ledger(connection)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _per_file(
    connection: duckdb.DuckDBPyConnection, table: str, file_column: str, condition: str
) -> list[tuple[str, int]]:
    return connection.execute(
        f"select {file_column}, count(*) from {table} where {condition} group by all order by 1"
    ).fetchall()


def _purge_feed(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    limit: datetime,
    reference: str,
    removed_at: datetime,
) -> dict[str, int]:
    """Delete one feed's expired rows; record them in landing.removals; return the counts."""
    assert feed.retention is not None
    target = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
    stamp = utc_timestamp_sql(quote_ident(feed.retention.column), feed.timezone)
    places = {
        "table": (target, "_source_file", f"{stamp} < {quote_literal(limit)}::timestamp", None),
        "quarantine": (
            "landing.quarantine",
            "file",
            f"feed = {quote_literal(feed.name)} and quarantined_at < {quote_literal(limit)}::timestamp",
            "row_number",
        ),
        "duplicates": (
            "landing.duplicates",
            "file",
            f"feed = {quote_literal(feed.name)} and dropped_at < {quote_literal(limit)}::timestamp",
            None,
        ),
    }
    counts = {}
    for place, (table, file_column, condition, row_number) in places.items():
        rows = []
        if row_number is None:
            rows = [
                (place, file, n) for file, n in _per_file(connection, table, file_column, condition)
            ]
        else:  # whole-file quarantine entries have no row number and are not counted per row
            for kind, extra in (("quarantine", "is not null"), ("quarantine_file", "is null")):
                rows += [
                    (kind, file, n)
                    for file, n in _per_file(
                        connection, table, file_column, f"{condition} and {row_number} {extra}"
                    )
                ]
        for kind, file, n in rows:
            connection.execute(
                "insert into landing.removals values (?, ?, ?, 'expired', ?, ?, ?)",
                [feed.name, file, kind, n, removed_at, reference],
            )
        if rows:
            connection.execute(f"delete from {table} where {condition}")
        counts[place] = sum(n for _, _, n in rows)
    return counts


def purge_expired(
    connection: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    as_of: str | date | datetime,
    *,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Purge every feed's landed rows older than its retention; one dict per feed with one.

    Each dict: feed, table, column, days, cutoff (naive UTC: rows before it were purged),
    rows_purged (from the landed table), quarantine_rows_purged, duplicate_rows_purged.
    """
    ensure_tables(connection)
    run_id = run_id or f"retention-{uuid.uuid4().hex[:12]}"
    run_at = _now()
    end = as_of_cutoff(as_of)
    results = []
    connection.execute("begin transaction")
    try:
        for feed in contracts:
            if feed.retention is None or not table_exists(connection, feed.name, feed.table):
                continue
            limit = end - timedelta(days=feed.retention.days)
            counts = _purge_feed(connection, feed, limit, run_id, run_at)
            row = {
                "feed": feed.name,
                "table": feed.qualified_table,
                "column": feed.retention.column,
                "days": feed.retention.days,
                "cutoff": limit,
                "rows_purged": counts["table"],
                "quarantine_rows_purged": counts["quarantine"],
                "duplicate_rows_purged": counts["duplicates"],
            }
            connection.execute(
                "insert into privacy.retention_log values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_at,
                    feed.name,
                    feed.qualified_table,
                    feed.retention.column,
                    limit,
                    counts["table"],
                    counts["quarantine"],
                    counts["duplicates"],
                    run_id,
                ],
            )
            total = sum(counts.values())
            if total:
                audit.record(
                    connection,
                    "retention",
                    feed.name,
                    run_id=run_id,
                    rows=total,
                    details={k: v for k, v in row.items() if k != "feed"},
                )
            results.append(row)
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    return results
