"""Compact the DuckDB file so that deleted rows do not linger on disk.

DuckDB marks deleted rows and reuses free blocks, but a row group that still holds live rows
keeps the deleted ones in the file, and `VACUUM` does not rewrite it. The documented way to
compact (DuckDB 2.0, "Reclaiming space") is to copy the database into a fresh file:

    ATTACH 'old.duckdb' AS old (READ_ONLY); ATTACH 'new.duckdb' AS new;
    COPY FROM DATABASE old TO new;

`compact_warehouse` does that, checks the copy has every table with the same row counts, then
swaps it in with `os.replace` and removes any write-ahead log. Call it with no other
connection open on the file (erasure's Dagster asset calls it after closing its own).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from ml.sql import quote_ident, quote_literal


def _size(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def _row_counts(connection: duckdb.DuckDBPyConnection, database: str) -> dict[str, int]:
    tables = connection.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? order by all",
        [database],
    ).fetchall()
    return {
        f"{schema}.{table}": connection.execute(
            f"select count(*) from {quote_ident(database)}.{quote_ident(schema)}.{quote_ident(table)}"
        ).fetchall()[0][0]
        for schema, table in tables
    }


def compact_warehouse(path: Path | str, config: dict | None = None) -> tuple[int, int]:
    """Rewrite the DuckDB file at `path` without free blocks; (bytes before, bytes after).

    `config` is DuckDB's configuration (`Settings.duckdb_config()`). Sizes count the file and its write-ahead log. Raises RuntimeError, leaving the original
    file untouched, when the copy does not hold the same tables and rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no DuckDB file to compact")
    with duckdb.connect(str(path), config=config or {}) as connection:
        connection.execute("checkpoint")  # fold the write-ahead log into the file first
    before = _size(path)
    temporary = path.with_name(f".{path.name}.compacting")
    for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
        leftover.unlink(missing_ok=True)
    # The source keeps its own name so views that name their database still resolve.
    source, target = path.stem or "warehouse", "compacted"
    if source == target:
        target = "compacted_copy"
    try:
        with duckdb.connect(config=config or {}) as connection:
            connection.execute(f"attach {quote_literal(path)} as {quote_ident(source)} (read_only)")
            connection.execute(f"attach {quote_literal(temporary)} as {quote_ident(target)}")
            connection.execute(f"copy from database {quote_ident(source)} to {quote_ident(target)}")
            connection.execute(f"checkpoint {quote_ident(target)}")
            expected, copied = _row_counts(connection, source), _row_counts(connection, target)
            connection.execute(f"detach {quote_ident(target)}")
            connection.execute(f"detach {quote_ident(source)}")
        if copied != expected:
            missing = sorted(set(expected) - set(copied))
            differ = sorted(t for t in expected if t in copied and copied[t] != expected[t])
            raise RuntimeError(
                f"{path}: the compacted copy differs from the original (missing tables "
                f"{missing}, row counts differ in {differ}); the original was left as it was"
            )
        os.replace(temporary, path)
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
            leftover.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return before, _size(path)
