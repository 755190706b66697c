"""The values a user's overrides supply or rewrite, applied to the rows as read.

After the readers have left a batch's records in `landing_rows` (every value as text, NULL for
a contract column the file does not have) and before any rule looks at them, the column rules
of feeds.local.yml (ml/landing/overrides.py) change them, in this order:

1. `values`: a value written the file's way becomes the contract's (`C` -> `cancelled`),
   matched exactly once trimmed; other values stay as written, so the rules still refuse them;
2. `default`: every row of a file that does not have the column gets the constant (a CSV
   header or Parquet schema without it; in JSON Lines and XML, a line or item without it);
3. `derive: {concat: [a, b]}`: where the file does not have the column, the trimmed values of
   `a` and `b` joined by `-` (missing when any of them is missing);
4. `derive: sequence`: where the file does not have the column, the rows that share the rest
   of the key (the same order) numbered 1, 2, ... in the order of the file.

A file that has the column keeps its own values: defaults and derivations only fill a column
the export lacks. The landed table, the quarantine's reasons, Great Expectations and dbt all
see the supplied values; the quarantine's raw text stays the line as the file wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ml.sql import quote_ident, quote_literal

from .contracts import Column, Feed
from .overrides import CONCAT_SEPARATOR, DERIVE_SEQUENCE
from .readers import ROWS, Reading

PER_ROW_FORMATS = ("jsonl", "merchant_xml")  # formats whose lines may each lack a column


@dataclass
class Supplied:
    """What the overrides did to a batch, for the dry run: rows per column (and per value)."""

    defaults: dict[str, int] = field(default_factory=dict)  # column -> rows given the default
    derived: dict[str, int] = field(default_factory=dict)  # column -> rows derived
    mapped: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)

    def describe(self, feed: Feed) -> list[str]:
        """One line per column the overrides changed: what, and for how many rows."""
        lines = []
        for name, pairs in self.mapped.items():
            changes = ", ".join(
                f"{theirs!r} -> {ours} ({n:,})" for (theirs, ours), n in pairs.items()
            )
            lines.append(f"{name}: values mapped: {changes}")
        for name, rows in self.defaults.items():
            default = feed.column(name).default
            shown = repr(default) if default else "empty"
            lines.append(f"{name}: not in the file; default {shown} on {rows:,} rows")
        for name, rows in self.derived.items():
            derive = feed.column(name).derive
            if derive == DERIVE_SEQUENCE:
                within = ", ".join(k for k in feed.key if k != name)
                how = f"numbered within each {within} in file order"
            else:
                how = f"joined from {' + '.join(derive or ())}"
            lines.append(f"{name}: not in the file; {how} on {rows:,} rows")
        return lines


def supply_columns(
    connection: duckdb.DuckDBPyConnection, feed: Feed, readings: dict[int, Reading]
) -> Supplied:
    """Apply the feed's value maps, defaults and derivations to `landing_rows` (see above)."""
    supplied = Supplied()
    if not readings:
        return supplied
    for column in feed.columns:
        if column.values:
            counts = _map_values(connection, column)
            if counts:
                supplied.mapped[column.name] = counts
    for column in feed.columns:
        if column.default is not None:
            value = quote_literal(column.default) if column.default else "null::varchar"
            rows = _fill(connection, column, readings, value)
            if rows:
                supplied.defaults[column.name] = rows
    for column in feed.columns:
        if isinstance(column.derive, tuple):
            parts = [f"nullif(trim({quote_ident(s)}), '')" for s in column.derive]
            joined = f" || {quote_literal(CONCAT_SEPARATOR)} || ".join(parts)
            rows = _fill(connection, column, readings, joined)
            if rows:
                supplied.derived[column.name] = rows
    for column in feed.columns:
        if column.derive == DERIVE_SEQUENCE:
            rows = _number_rows(connection, feed, column, readings)
            if rows:
                supplied.derived[column.name] = rows
    return supplied


def _lacking(column: Column, readings: dict[int, Reading]) -> str:
    """SQL over `landing_rows`: the row's file does not have the column (or, in a JSON Lines
    or XML file, the row has no value for it); rows that could not be read are left alone."""
    whole = [i for i, r in readings.items() if column.name not in r.columns]
    per_row = [
        i
        for i, r in readings.items()
        if column.name in r.columns and r.source.file_format in PER_ROW_FORMATS
    ]
    conditions = []
    if whole:
        conditions.append(f"_file in ({', '.join(map(str, whole))})")
    if per_row:
        conditions.append(
            f"(_file in ({', '.join(map(str, per_row))}) and {quote_ident(column.name)} is null)"
        )
    if not conditions:
        return "false"
    return f"_parse_reason is null and ({' or '.join(conditions)})"


def _fill(
    connection: duckdb.DuckDBPyConnection,
    column: Column,
    readings: dict[int, Reading],
    value_sql: str,
) -> int:
    (rows,) = connection.execute(
        f"update {ROWS} set {quote_ident(column.name)} = {value_sql} "
        f"where {_lacking(column, readings)}"
    ).fetchone()
    return rows


def _number_rows(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    column: Column,
    readings: dict[int, Reading],
) -> int:
    within = ", ".join(f"trim({quote_ident(k)})" for k in feed.key if k != column.name)
    connection.execute(
        f"create or replace temp table landing_sequence as "
        f"select _file, _row_number, row_number() over ("
        f"partition by _file, {within} order by _row_number) as number "
        f"from {ROWS} where {_lacking(column, readings)}"
    )
    try:
        (rows,) = connection.execute(
            f"update {ROWS} set {quote_ident(column.name)} = cast(s.number as varchar) "
            f"from landing_sequence as s "
            f"where {ROWS}._file = s._file and {ROWS}._row_number = s._row_number"
        ).fetchone()
    finally:
        connection.execute("drop table if exists temp.landing_sequence")
    return rows


def _map_values(
    connection: duckdb.DuckDBPyConnection, column: Column
) -> dict[tuple[str, str], int]:
    """Replace the column's values written the file's way by the contract's; rows per pair."""
    pairs = pa.table(
        {
            "theirs": pa.array([t for t, _ in column.values or ()], pa.string()),
            "ours": pa.array([o for _, o in column.values or ()], pa.string()),
        }
    )
    name = quote_ident(column.name)
    connection.register("landing_value_map", pairs)
    try:
        counts = connection.execute(
            f"select m.theirs, m.ours, count(*) from {ROWS} "
            f"join landing_value_map as m on trim({ROWS}.{name}) = m.theirs "
            f"group by all order by count(*) desc, m.theirs"
        ).fetchall()
        if counts:
            connection.execute(
                f"update {ROWS} set {name} = m.ours from landing_value_map as m "
                f"where trim({ROWS}.{name}) = m.theirs"
            )
    finally:
        connection.unregister("landing_value_map")
    return {(theirs, ours): rows for theirs, ours, rows in counts}
