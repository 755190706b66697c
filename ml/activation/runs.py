"""The record of export runs in schema `activation`: `export_runs` and `export_members`.

Every export run gets one `export_runs` row, status `written` (with its members, treatment
and holdout, in `export_members`), `blocked` (the check refused it; no members) or, later,
`amended` (erasure changed its files). Writing an export again for the same day replaces
that day's rows, also of earlier runs of the day, so a day is never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from ml.activation.candidates import CANDIDATES, CANDIDATES_DDL, SCHEMA
from ml.activation.config import ExportConfig
from ml.segments.rules import Segment

RUNS = f"{SCHEMA}.export_runs"
MEMBERS = f"{SCHEMA}.export_members"
STATUSES = ("written", "blocked", "amended")

TABLES_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {RUNS} (
    run_id varchar not null,
    export_name varchar not null,
    segment_name varchar not null,
    definition_hash varchar not null,
    consent_purpose varchar not null,
    as_of timestamp not null,
    export_date date not null,
    generated_at timestamp not null,
    directory varchar not null,
    rows_exported bigint not null,
    rows_holdout bigint not null,
    left_out json not null,
    holdout_percent double not null,
    measurement_window_days integer not null,
    status varchar not null
);
create table if not exists {MEMBERS} (
    run_id varchar not null,
    export_name varchar not null,
    segment_name varchar not null,
    export_date date not null,
    as_of timestamp not null,
    customer_id varchar not null,
    group_name varchar not null
)
"""
# The columns of each table here that name a person: erasure (ml/privacy/personal_columns.py)
# deletes a row when one of them names an erased person. A table with none holds no personal data.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {RUNS: (), MEMBERS: ("customer_id",)}


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create schema activation and its tables (candidates, runs, members) when absent."""
    connection.execute(CANDIDATES_DDL)
    connection.execute(TABLES_DDL)


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block in one transaction: committed when it ends, rolled back if it raises."""
    connection.begin()
    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def insert_run_row(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    moment: datetime,
    day: date,
    generated: datetime,
    directory: Path,
    summary: Mapping[str, Any],
    status: str,
) -> None:
    """Insert the run's export_runs row; a blocked run counts no exported or holdout rows."""
    written = status == "written"
    connection.execute(
        f"insert into {RUNS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            config.name,
            segment.name,
            segment.definition_hash,
            segment.consent_purpose,
            moment,
            day,
            generated,
            str(directory),
            summary["export"] if written else 0,
            summary["holdout"] if written else 0,
            json.dumps(summary["left_out"]),
            config.holdout_percent,
            config.measurement_window_days,
            status,
        ],
    )


def record_written_run(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    moment: datetime,
    day: date,
    generated: datetime,
    directory: Path,
    summary: Mapping[str, Any],
) -> None:
    """Replace the run's (and the day's) rows in export_runs and export_members."""
    connection.execute(TABLES_DDL)
    keys = {"run_id": run_id, "export_name": config.name, "export_date": day}
    for table in (RUNS, MEMBERS):
        connection.execute(
            f"delete from {table} where export_name = $export_name "
            "and (run_id = $run_id or export_date = $export_date)",
            keys,
        )
    insert_run_row(
        connection, config, segment, run_id, moment, day, generated, directory, summary, "written"
    )
    connection.execute(
        f"""
        insert into {MEMBERS}
        select
            run_id,
            export_name,
            segment_name,
            $export_date as export_date,
            $as_of as as_of,
            customer_id,
            case outcome when 'export' then 'treatment' else 'holdout' end as group_name
        from {CANDIDATES}
        where run_id = $run_id and export_name = $export_name
            and outcome in ('export', 'holdout')
        """,
        {**keys, "as_of": moment},
    )


def record_blocked_run(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    moment: datetime,
    day: date,
    generated: datetime,
    directory: Path,
    summary: Mapping[str, Any],
) -> None:
    """Replace the run's export_runs row with one of status 'blocked' (members untouched)."""
    connection.execute(TABLES_DDL)
    connection.execute(
        f"delete from {RUNS} where run_id = $run_id and export_name = $export_name",
        {"run_id": run_id, "export_name": config.name},
    )
    insert_run_row(
        connection, config, segment, run_id, moment, day, generated, directory, summary, "blocked"
    )


__all__ = [
    "MEMBERS",
    "PERSONAL_COLUMNS",
    "RUNS",
    "STATUSES",
    "TABLES_DDL",
    "ensure_tables",
    "insert_run_row",
    "record_blocked_run",
    "record_written_run",
    "transaction",
]
