"""The audit log: every export, erasure, rewritten landing file and retention purge, in
`privacy.audit_log`.

One row per action: when, what kind, which export or erasure request, which files, how many
rows, and a JSON object with the details (rows left out by reason, rows removed per table).
It holds no personal data: targets are export names and request ids, never identifiers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

AUDIT_TABLE = "privacy.audit_log"
ACTIONS = (
    "export",
    "export_blocked",
    "export_amended",
    "erasure",
    "erasure_verified",
    "landing_file_rewritten",
    "retention",
)

AUDIT_DDL = f"""
create schema if not exists privacy;
create table if not exists {AUDIT_TABLE} (
    audit_id varchar not null,
    occurred_at timestamp not null,
    action varchar not null,
    target varchar not null,
    run_id varchar,
    files varchar[] not null,
    row_count bigint not null,
    details json
)
"""


def record(
    connection: duckdb.DuckDBPyConnection,
    action: str,
    target: str,
    *,
    run_id: str | None = None,
    files: Sequence[str] = (),
    rows: int = 0,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Append one audit row and return its id."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
    connection.execute(AUDIT_DDL)
    audit_id = uuid.uuid4().hex
    connection.execute(
        f"insert into {AUDIT_TABLE} values (?, now()::timestamp, ?, ?, ?, ?, ?, ?)",
        [
            audit_id,
            action,
            target,
            run_id,
            [str(f) for f in files],
            int(rows),
            json.dumps(dict(details or {}), sort_keys=True, default=str),
        ],
    )
    return audit_id
