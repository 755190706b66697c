"""What erasure did: the outcome of a run, and its record in the warehouse.

Each request gets a row in `privacy.erasure_log` (when it was requested, processed and
completed, its status, how many identifiers and rows it erased), its rows per table, export
file, hub snapshot copy and landing file in `privacy.erasure_removals`, one row per store
searched in `privacy.erasure_stores` (the warehouse's tables, the export files, the hub's
snapshots, the landing files; then, after the transaction, the warehouse file, the run
artefacts and Dagster's run history: `record_store_searches`), and entries in the audit log
(ml/audit.py: `erasure`, then `erasure_verified`). None of them holds an identifier or a
customer id: the log proves erasure without keeping who.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from ml import audit

STATUS_ERASED = "erased"
STATUS_NO_MATCH = "no_match"

ERASURE_LOG_DDL = """
create schema if not exists privacy;
create table if not exists privacy.erasure_log (
    erasure_request_id varchar not null,
    requested_at timestamp,
    processed_at timestamp not null,
    completed_at timestamp not null,
    status varchar not null,
    identifiers_erased integer not null,
    rows_removed bigint not null,
    run_id varchar
);
create table if not exists privacy.erasure_removals (
    erasure_request_id varchar not null,
    table_name varchar not null,
    rows_removed bigint not null
);
create table if not exists privacy.erasure_stores (
    erasure_request_id varchar not null,
    store varchar not null,
    searched bigint not null,
    searched_unit varchar not null,
    removed bigint not null,
    note varchar,
    run_id varchar,
    recorded_at timestamp not null
);
"""

# Every place personal data can live, in the order erasure goes through them (the report's
# rows; docs/activation-and-privacy.md lists them).
STORE_TABLES = "warehouse tables"
STORE_EXPORTS = "export files"
STORE_HUB = "hub snapshots"
STORE_LANDING = "landing files"
STORE_FILE = "warehouse file"
STORE_DERIVED = "run artefacts"  # GX results and Data Docs, dbt target and logs, reports
STORE_DAGSTER = "dagster run history"


@dataclass(frozen=True)
class StoreSearch:
    """What erasure searched in one store and removed from it, per request."""

    store: str
    searched: int  # how many things were searched
    unit: str  # what they are: tables, files, folders, runs
    removed: dict[str, int] = field(default_factory=dict)  # request -> rows or files removed
    note: str = ""

    def describe(self, request_id: str) -> dict[str, Any]:
        return {
            "searched": self.searched,
            "unit": self.unit,
            "removed": self.removed.get(request_id, 0),
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class RequestOutcome:
    """What erasure did for one request (no identifiers, no customer ids)."""

    request_id: str
    requested_at: datetime | None
    status: str
    customers: int = 0
    identifiers_erased: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)  # table or export file -> rows

    @property
    def total_rows(self) -> int:
        return sum(self.rows_removed.values())


@dataclass
class ErasureOutcome:
    """What one erasure run did."""

    run_id: str
    requests: list[RequestOutcome] = field(default_factory=list)
    rows_removed_by_table: dict[str, int] = field(default_factory=dict)
    export_files_amended: list[str] = field(default_factory=list)
    tombstones_added: int = 0
    stores: list[StoreSearch] = field(default_factory=list)
    landing_files_rewritten: int = 0  # this run, for these requests or earlier ones
    seconds: dict[str, float] = field(default_factory=dict)  # per phase (ml/timing.py)

    @property
    def rows_removed(self) -> int:
        """Rows deleted in all, tables and export files (each row once)."""
        return sum(self.rows_removed_by_table.values())

    @property
    def anything_removed(self) -> bool:
        return self.rows_removed > 0

    def requests_frame(self) -> pd.DataFrame:
        """One row per request: id, status, identifiers erased, rows removed."""
        return pd.DataFrame(
            [
                {
                    "erasure_request_id": r.request_id,
                    "status": r.status,
                    "identifiers_erased": r.identifiers_erased,
                    "rows_removed": r.total_rows,
                }
                for r in self.requests
            ],
            columns=["erasure_request_id", "status", "identifiers_erased", "rows_removed"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requests": len(self.requests),
            "erased": sum(r.status == STATUS_ERASED for r in self.requests),
            "no_match": sum(r.status == STATUS_NO_MATCH for r in self.requests),
            "rows_removed": self.rows_removed,
            "rows_removed_by_table": dict(sorted(self.rows_removed_by_table.items())),
            "export_files_amended": list(self.export_files_amended),
            "tombstones_added": self.tombstones_added,
            "landing_files_rewritten": self.landing_files_rewritten,
            "stores_searched": {s.store: f"{s.searched} {s.unit}" for s in self.stores},
            "seconds": dict(self.seconds),
        }


def write_erasure_log(
    connection: duckdb.DuckDBPyConnection,
    outcome: ErasureOutcome,
    processed_at: datetime,
    completed_at: datetime,
) -> None:
    """privacy.erasure_log and erasure_removals rows, and one audit entry, per request."""
    log = pd.DataFrame(
        [
            {
                "erasure_request_id": r.request_id,
                "requested_at": r.requested_at,
                "processed_at": processed_at,
                "completed_at": completed_at,
                "status": r.status,
                "identifiers_erased": r.identifiers_erased,
                "rows_removed": r.total_rows,
                "run_id": outcome.run_id,
            }
            for r in outcome.requests
        ]
    )
    removals = pd.DataFrame(
        [
            (r.request_id, table, rows)
            for r in outcome.requests
            for table, rows in sorted(r.rows_removed.items())
        ],
        columns=["erasure_request_id", "table_name", "rows_removed"],
    )
    connection.register("erasure_log_rows", log)
    connection.register("erasure_removal_rows", removals)
    try:
        connection.execute(
            "insert into privacy.erasure_log select erasure_request_id, "
            "cast(requested_at as timestamp), cast(processed_at as timestamp), "
            "cast(completed_at as timestamp), status, identifiers_erased, rows_removed, run_id "
            "from erasure_log_rows order by erasure_request_id"
        )
        connection.execute(
            "insert into privacy.erasure_removals select erasure_request_id, table_name, "
            "rows_removed from erasure_removal_rows order by erasure_request_id, table_name"
        )
    finally:
        connection.unregister("erasure_log_rows")
        connection.unregister("erasure_removal_rows")
    _insert_store_rows(
        connection, [r.request_id for r in outcome.requests], outcome.stores, outcome.run_id
    )
    for request in outcome.requests:
        audit.record(
            connection,
            "erasure",
            request.request_id,
            run_id=outcome.run_id,
            files=[
                f for f in outcome.export_files_amended if f"exports/{f}" in request.rows_removed
            ],
            rows=request.total_rows,
            details={
                "status": request.status,
                "identifiers_erased": request.identifiers_erased,
                "rows_removed_by_table": dict(sorted(request.rows_removed.items())),
                "stores": {s.store: s.describe(request.request_id) for s in outcome.stores},
            },
        )


def record_store_searches(
    connection: duckdb.DuckDBPyConnection,
    request_ids: list[str],
    stores: list[StoreSearch],
    run_id: str,
) -> None:
    """The stores searched after erasure's transaction (the warehouse file once compacted, the
    run artefacts, Dagster's run history): their rows in privacy.erasure_stores and one audit
    row per request (`erasure_verified`)."""
    if not request_ids or not stores:
        return
    connection.execute(ERASURE_LOG_DDL)
    _insert_store_rows(connection, request_ids, stores, run_id)
    for request_id in request_ids:
        audit.record(
            connection,
            "erasure_verified",
            request_id,
            run_id=run_id,
            rows=sum(s.removed.get(request_id, 0) for s in stores),
            details={"stores": {s.store: s.describe(request_id) for s in stores}},
        )


def _insert_store_rows(
    connection: duckdb.DuckDBPyConnection,
    request_ids: list[str],
    stores: list[StoreSearch],
    run_id: str,
) -> None:
    rows = [
        (r, s.store, s.searched, s.unit, s.removed.get(r, 0), s.note or None, run_id)
        for r in request_ids
        for s in stores
    ]
    if rows:
        connection.executemany(
            "insert into privacy.erasure_stores values (?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
            rows,
        )
