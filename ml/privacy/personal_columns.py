"""Where personal data lives: which columns of which warehouse tables can name a person.

Erasure (ml/privacy/table_rows.py) deletes a row when one of these columns names an erased
person. No column is listed here by name; each table is declared by whoever owns it:

- landed feed tables: the `pii` and `erase_by` columns of their contract (ml/landing/feeds.yml)
  and the columns the loader derives from them (`email_normalised`, `phone_e164`, ...);
- tables Teal's Python writes (landing.quarantine and duplicates, identity.*, segments.*, ml.*,
  activation.*): the `PERSONAL_COLUMNS` of the module that owns the table, beside its DDL;
- dbt models and seeds: the columns their yml marks personal (`meta: {pii: true}` or a `pii`
  tag), read from dbt's manifest, and the customer id (`customer_id`): it is pseudonymous, so
  no yml marks it personal, yet a row that carries it is about that customer;
- any other table (an analyst's scratch table, a model newer than the manifest): every text
  column, since nobody said which ones hold identifiers. Likewise, a text column that a feed
  contract or a dbt yml does not describe (added since) is searched.

Erasure's own schema, `privacy` (what was erased and when, never an identifier), is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ml.landing.contracts import Contracts
from ml.settings import DBT_PROJECT_DIR
from ml.sql import quote_ident

DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# The customer id's column in every dbt model (the project's `<object>_id` naming).
CUSTOMER_ID = "customer_id"
SKIPPED_SCHEMAS = frozenset({"privacy"})
_DBT_TABLES = ("model", "seed", "snapshot")


@dataclass(frozen=True)
class PersonalTable:
    """A base table of the warehouse and the columns that may name a person in it."""

    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass(frozen=True)
class Declaration:
    """What a table's owner says: its personal columns, and every column it describes (None
    when the owner describes the whole table, as Teal's Python modules do)."""

    personal: frozenset[str]
    described: frozenset[str] | None = None

    def searched(self, columns: Mapping[str, str]) -> tuple[str, ...]:
        """The columns (name -> DuckDB type) to search: the personal ones, and text columns the
        owner does not describe."""
        return tuple(
            name
            for name, data_type in columns.items()
            if name in self.personal
            or (self.described is not None and name not in self.described and is_text(data_type))
        )


def is_text(data_type: str) -> bool:
    """A DuckDB type that can hold an identifier: text, JSON, or lists and structs of text."""
    return "VARCHAR" in data_type or data_type == "JSON"


def find_personal_tables(
    connection: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    dbt_manifest: Path = DBT_MANIFEST,
) -> list[PersonalTable]:
    """Every base table that may hold personal rows, with the columns to search in it."""
    declarations = {
        **dbt_declarations(dbt_manifest),
        **python_declarations(),
        **feed_declarations(contracts),
    }
    tables = []
    for (schema, name), columns in base_tables(connection).items():
        if schema in SKIPPED_SCHEMAS:
            continue
        declaration = declarations.get(f"{schema}.{name}")
        if declaration is None:
            searched = tuple(column for column, kind in columns.items() if is_text(kind))
        else:
            searched = declaration.searched(columns)
        if searched:
            tables.append(PersonalTable(schema, name, searched))
    return tables


def base_tables(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], dict[str, str]]:
    """(schema, table) -> {column: DuckDB type} for every base table of the warehouse."""
    rows = connection.execute(
        """
        select columns.table_schema, columns.table_name, columns.column_name, columns.data_type
        from information_schema.columns as columns
        inner join information_schema.tables as tables
            on tables.table_catalog = columns.table_catalog
            and tables.table_schema = columns.table_schema
            and tables.table_name = columns.table_name
        where tables.table_type = 'BASE TABLE'
            and tables.table_catalog = current_database()
        order by columns.table_schema, columns.table_name, columns.ordinal_position
        """
    ).fetchall()
    tables: dict[tuple[str, str], dict[str, str]] = {}
    for schema, name, column, data_type in rows:
        tables.setdefault((schema, name), {})[column] = data_type
    return tables


def feed_declarations(contracts: Contracts) -> dict[str, Declaration]:
    """Each landed feed table: its contract's `pii` and `erase_by` columns and their derived ones."""
    declarations = {}
    for feed in contracts:
        personal = [column for column in feed.columns if column.pii or column.erase_by]
        names = {column.name for column in personal}
        names |= {derived for column in personal for derived in column.derived}
        declarations[feed.qualified_table] = Declaration(
            frozenset(names), frozenset(feed.landed_columns)
        )
    return declarations


def python_declarations() -> dict[str, Declaration]:
    """Each table Teal's Python writes, as the module that owns it declares it."""
    # imported here: the owners pull in the matcher, clustering and activation code
    from ml.activation import candidates, measurement, runs
    from ml.clustering import tables as clustering
    from ml.identity import pipeline as identity
    from ml.landing import ledger
    from ml.segments import membership

    owners = (ledger, identity, membership, clustering, candidates, runs, measurement)
    return {
        table: Declaration(frozenset(columns))
        for owner in owners
        for table, columns in owner.PERSONAL_COLUMNS.items()
    }


def dbt_declarations(dbt_manifest: Path = DBT_MANIFEST) -> dict[str, Declaration]:
    """Each dbt model, seed and snapshot: the columns its yml marks personal, and the customer id."""
    if not dbt_manifest.is_file():
        raise FileNotFoundError(
            f"{dbt_manifest} is missing: erasure reads from dbt's manifest which model columns "
            "hold personal data. Run `make run` once, or `cd dbt_project && ../.venv/bin/dbt "
            "parse`, then erase again."
        )
    manifest = json.loads(dbt_manifest.read_text(encoding="utf-8"))
    declarations = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") not in _DBT_TABLES:
            continue
        columns = node.get("columns") or {}
        personal = {name for name, column in columns.items() if is_marked_personal(column)}
        relation = f"{node['schema']}.{node.get('alias') or node['name']}"
        declarations[relation] = Declaration(
            frozenset(personal | {CUSTOMER_ID}), frozenset(columns)
        )
    return declarations


def is_marked_personal(column: Mapping[str, Any]) -> bool:
    """Whether a dbt column is marked personal: `meta: {pii: true}` (at the column or under
    its `config:`) or a `pii` tag."""
    config = column.get("config") or {}
    meta = {**(column.get("meta") or {}), **(config.get("meta") or {})}
    tags = {*(column.get("tags") or ()), *(config.get("tags") or ())}
    return bool(meta.get("pii")) or "pii" in tags
