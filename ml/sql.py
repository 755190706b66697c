"""The one way Teal writes names and values into SQL text.

Values are bound as parameters (`?`) wherever DuckDB allows it; these are for the places it
does not (identifiers, DDL, `read_csv(...)` arguments, set-based queries built from config).
"""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier: `order` -> `"order"`, `a"b` -> `"a""b"`."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """A single-quoted SQL string literal: `O'Neil` -> `'O''Neil'`."""
    return "'" + str(value).replace("'", "''") + "'"


def qualified(schema: str, table: str) -> str:
    """`schema.table` with both parts quoted."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"
