"""Erasure (GDPR article 17): delete every row about a person, everywhere, and keep them out.

    outcome = process_erasure_requests(connection, exports_root=..., salt=..., run_id=...)

One call processes every pending request (a row of the landed `erasure.requests` whose id is
not in `privacy.erasure_log` yet), all of them in one sweep per table:

1. Resolve the subject (an email or a crm id) through `identity.identifiers` to customer ids.
   The person's identifiers are every identifier identity links to those customers (crm ids,
   emails, phones, loyalty and user ids, cookies, devices), the customer ids and the subject.
   An identifier identity marks as shared or never-link, or that also belongs to a customer
   not being erased (a family phone or device), is left out: erasing it would delete someone
   else's rows. A subject nobody resolves to still erases the rows that carry it, unless
   identity marks it shared; with nothing found the request is logged as `no_match`.
2. Delete every row about the person from every base table of every schema (landed feeds,
   quarantine, duplicates, staging inputs, marts, identity and its history, segment history,
   ML outputs, activation), except `privacy.*` and the landing ledger (`landing.files`,
   `removals`, `erased_rows`, `validations`, which hold no identifiers). A row goes when a
   VARCHAR column, trimmed and lower-cased, equals one of the identifiers, or when a free-text
   column (raw text, messages, keys such as `crm:C1000001`, JSON, lists; found by name, type and
   a sample of the values) contains one as a whole word. A duplicate whose key is the key of a
   deleted feed row goes too. Rows removed from landed tables, the quarantine and the
   duplicates are counted per file in `landing.removals`, so the landing reconciliation holds.
3. Remove the person's rows from every export under `exports_root` (`<export>/<date>/`, not the
   `latest` links): audience.csv and audience.parquet by customer id (and email), the Google and
   Meta files by their hashed Email/Phone, normalised by each platform's rules. Files are
   rewritten in their own format, manifest.json gets the new rows, sha256 and size and an
   amendment, `activation.export_runs.status` becomes `amended`, and the audit log says so.
4. Tombstone the salted hashes of the identifiers that name one person (crm id, email,
   loyalty id, user id, cookie, and the subject) in `privacy.tombstones`; the loader drops later
   rows that carry them. Phones and devices never get a tombstone: they are shared or recycled.
5. Log each request in `privacy.erasure_log` and its rows per table (and export file) in
   `privacy.erasure_removals`, with no identifier or customer id, and audit it.

`compact_warehouse` (ml/privacy/compact.py) then rewrites the DuckDB file so that the deleted
rows do not linger in free blocks; `traces_left` checks that nothing erased is left.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml import audit, secrets
from ml.activation import hashing
from ml.landing import contracts as contracts_module
from ml.landing.contracts import Contracts
from ml.landing.loader import (
    IDENTIFIER_TOKEN_PATTERN,
    duplicate_key_sql,
    ensure_ledger,
    identifier_tokens,
)
from ml.privacy.compact import compact_warehouse
from ml.privacy.retention import utc_timestamp_sql
from ml.sql import quote_ident, quote_literal
from ml.warehouse import table_exists

__all__ = [
    "ErasureOutcome",
    "RequestOutcome",
    "compact_warehouse",
    "ensure_tables",
    "process_erasure_requests",
    "traces_left",
]

STATUS_ERASED = "erased"
STATUS_NO_MATCH = "no_match"

# Identifier kinds whose salted hash becomes a tombstone: each names one person's rows.
TOMBSTONE_KINDS = ("crm_id", "email", "loyalty_id", "user_id", "anonymous_id", "subject")

# Tables that hold no identifiers and must keep every row: the landing ledger.
LEDGER_TABLES = {
    ("landing", "files"),
    ("landing", "removals"),
    ("landing", "erased_rows"),
    ("landing", "validations"),
}
SKIPPED_SCHEMAS = {"privacy"}
# No identifier is this short; a shorter value ("0", "n/a") would match strangers' rows.
MIN_IDENTIFIER_LENGTH = 5

# Columns that embed identifiers in longer text, whatever a sample of their values shows.
TEXT_COLUMNS = {
    "raw_text",
    "message",
    "key",
    "record_key",
    "anchor",
    "cluster_id",
    "cluster_id_l",
    "cluster_id_r",
    "session_owner",
    "reason",
    "properties",
    "url",
    "page_url",
    "landing_page",
    "details",
    "model",
}
# A VARCHAR value with one of these characters (after trimming) is text, not a single value.
_TEXT_HINT = r"[^A-Za-z0-9_.@+%-]"
# ... unless it is only a timestamp or a number, which cannot hold an identifier.
_NOT_TEXT = r"[0-9TZtz :.+-]+"
# Lineage columns hold file paths and load ids: compared whole, never searched word by word.
LINEAGE_COLUMNS = {"_source_file", "_load_id"}
TEXT_SAMPLE_ROWS = 20_000

ERASURE_DDL = """
create schema if not exists privacy;
create table if not exists privacy.tombstones (
    identifier_hash varchar not null,
    erasure_request_id varchar not null,
    tombstoned_at timestamp not null
);
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
"""

EXPORT_FILES = ("audience.csv", "google_customer_match.csv", "meta_custom_audience.csv")
PARQUET_FILE = "audience.parquet"
MANIFEST = "manifest.json"


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
        }


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the privacy tables erasure writes and the landing ledger it counts removals in."""
    connection.execute(ERASURE_DDL)
    ensure_ledger(connection)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- who is erased


def _pending(connection: duckdb.DuckDBPyConnection, contracts: Contracts) -> pd.DataFrame:
    """Pending requests into the temp table erasure_pending; returned as a frame."""
    feed = contracts["erasure"]
    table = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
    if not table_exists(connection, feed.name, feed.table):
        connection.execute(
            "create or replace temp table erasure_pending "
            "(request_id varchar, subject varchar, requested_at timestamp)"
        )
    else:
        connection.execute(
            f"""
            create or replace temp table erasure_pending as
            select
                request_id,
                lower(trim(coalesce(nullif(trim(subject_normalised), ''), subject))) as subject,
                min({utc_timestamp_sql("requested_at", feed.timezone)}) as requested_at
            from {table} as requests
            where not exists (
                select 1 from privacy.erasure_log as log
                where log.erasure_request_id = requests.request_id
            )
            group by all
            """
        )
    return connection.execute(
        "select request_id, subject, requested_at from erasure_pending order by request_id"
    ).df()


def _resolve(connection: duckdb.DuckDBPyConnection) -> None:
    """Fill erasure_customers (request -> customer id) and erasure_values (request, kind, value)."""
    has_identity = table_exists(connection, "identity", "identifiers")
    if has_identity:
        connection.execute(
            """
            create or replace temp table erasure_customers as
            select distinct pending.request_id, identifiers.customer_id
            from erasure_pending as pending
            inner join identity.identifiers as identifiers
                on lower(trim(identifiers.id_value)) = pending.subject
            where identifiers.customer_id is not null
            """
        )
        person = """
            select customers.request_id, identifiers.id_type as kind,
                lower(trim(identifiers.id_value)) as value
            from erasure_customers as customers
            inner join identity.identifiers as identifiers using (customer_id)
            where identifiers.status = 'linked' and nullif(trim(identifiers.id_value), '') is not null
            union all
            select request_id, 'customer_id', lower(trim(customer_id)) from erasure_customers
            union all
        """
        # Someone else's too: marked shared or never-link, or linked to a customer not erased now.
        guard = """
            where not exists (
                select 1 from identity.identifiers as other
                where lower(trim(other.id_value)) = candidates.value
                    and (
                        other.status <> 'linked'
                        or (
                            other.customer_id is not null
                            and other.customer_id not in (
                                select customer_id from erasure_customers
                            )
                        )
                    )
            )
        """
    else:
        connection.execute(
            "create or replace temp table erasure_customers "
            "(request_id varchar, customer_id varchar)"
        )
        person, guard = "", ""
    connection.execute(
        f"""
        create or replace temp table erasure_values as
        with candidates as (
            {person}
            select request_id, 'subject' as kind, subject as value
            from erasure_pending
            where nullif(subject, '') is not null
        )
        select distinct request_id, kind, value
        from candidates
        {guard}
        {"and" if guard else "where"} length(value) >= {MIN_IDENTIFIER_LENGTH}
        """
    )


def _known_elsewhere(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Requests resolved to a customer identity saw in a source other than the erasure feed."""
    if not table_exists(connection, "identity", "records"):
        return set()
    return {
        request_id
        for (request_id,) in connection.execute(
            """
            select distinct customers.request_id
            from erasure_customers as customers
            inner join identity.records as records using (customer_id)
            where records.source <> 'erasure'
            """
        ).fetchall()
    }


# --------------------------------------------------------------------------- the sweep


@dataclass
class _Table:
    schema: str
    name: str
    equal: list[str]  # VARCHAR columns compared whole
    text: list[str]  # columns searched word by word (text, JSON, lists, structs)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


def _tables(connection: duckdb.DuckDBPyConnection) -> list[_Table]:
    """Every base table of the warehouse that may hold personal rows, with its searchable columns."""
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
    found: dict[tuple[str, str], _Table] = {}
    for schema, name, column, data_type in rows:
        if schema in SKIPPED_SCHEMAS or (schema, name) in LEDGER_TABLES:
            continue
        table = found.setdefault((schema, name), _Table(schema, name, [], []))
        if data_type == "VARCHAR":
            table.equal.append(column)
            if column in TEXT_COLUMNS:
                table.text.append(column)
        elif "VARCHAR" in data_type or data_type == "JSON":
            table.text.append(column)
    tables = [t for t in found.values() if t.equal or t.text]
    for table in tables:
        _find_text_columns(connection, table)
    return tables


def _find_text_columns(connection: duckdb.DuckDBPyConnection, table: _Table) -> None:
    """Add the VARCHAR columns whose sampled values are longer text (spaces, `:`, `=`, ...)."""
    candidates = [c for c in table.equal if c not in table.text and c not in LINEAGE_COLUMNS]
    if not candidates:
        return
    flags = ", ".join(
        f"coalesce(bool_or(regexp_matches(trim({quote_ident(c)}), {quote_literal(_TEXT_HINT)}) "
        f"and not regexp_full_match(trim({quote_ident(c)}), {quote_literal(_NOT_TEXT)})), false)"
        for c in candidates
    )
    columns = ", ".join(quote_ident(c) for c in candidates)
    found = connection.execute(
        f"select {flags} from (select {columns} from {table.sql} "
        f"using sample {TEXT_SAMPLE_ROWS} rows)"
    ).fetchall()[0]
    table.text += [c for c, is_text in zip(candidates, found, strict=True) if is_text]


def _hits_sql(table: _Table, odd_values: bool, keys_feed: bool) -> str:
    """SQL for (row_id, request_id) of every row of the table that names an erased person."""
    parts = [
        f"select source.rowid as row_id, erased.request_id from {table.sql} as source "
        f"inner join erasure_sweep as erased on lower(trim(source.{quote_ident(c)})) = erased.value"
        for c in table.equal
    ]
    for c in table.text:
        text = f"lower(cast(source.{quote_ident(c)} as varchar))"
        parts.append(
            f"select words.row_id, erased.request_id from ("
            f"select source.rowid as row_id, "
            f"unnest(regexp_extract_all({text}, {quote_literal(IDENTIFIER_TOKEN_PATTERN)})) as word "
            f"from {table.sql} as source where source.{quote_ident(c)} is not null) as words "
            f"inner join erasure_sweep as erased on rtrim(words.word, '.') = erased.value"
        )
        if odd_values:  # identifiers the word pattern cannot cut out whole (rare characters)
            parts.append(
                f"select source.rowid as row_id, erased.request_id from {table.sql} as source "
                f"inner join erasure_odd_values as erased on contains({text}, erased.value)"
            )
    if keys_feed:
        parts.append(
            "select source.rowid as row_id, erased.request_id from landing.duplicates as source "
            "inner join erasure_keys as erased on source.feed = erased.feed "
            "and regexp_replace(source.key, '\\s', '', 'g') = erased.key"
        )
    return "\nunion all\n".join(parts)


def _sweep(
    connection: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    removed_at: datetime,
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Delete every row naming an erased person; (request -> table -> rows, table -> rows)."""
    connection.execute(
        "create or replace temp table erasure_sweep as "
        "select distinct request_id, value from erasure_values"
    )
    values = [
        v for (v,) in connection.execute("select distinct value from erasure_sweep").fetchall()
    ]
    odd = [v for v in values if identifier_tokens(v) != {v}]
    connection.execute(
        "create or replace temp table erasure_odd_values as "
        "select * from erasure_sweep where list_contains(?::varchar[], value)",
        [odd],
    )
    connection.execute(
        "create or replace temp table erasure_keys (feed varchar, key varchar, request_id varchar)"
    )
    feeds = {(feed.name, feed.table): feed for feed in contracts}
    tables = _tables(connection)
    # Landed feed tables first: the keys of their deleted rows find the duplicates.
    tables.sort(
        key=lambda t: ((t.schema, t.name) not in feeds, t.qualified == "landing.duplicates")
    )
    per_request: dict[str, dict[str, int]] = defaultdict(dict)
    per_table: dict[str, int] = {}
    for table in tables:
        is_duplicates = table.qualified == "landing.duplicates"
        connection.execute(
            "create or replace temp table erasure_hits as "
            "select row_id, min(request_id) as request_id from ("
            + _hits_sql(table, bool(odd), is_duplicates)
            + ") group by row_id"
        )
        total = connection.execute("select count(*) from erasure_hits").fetchall()[0][0]
        if not total:
            continue
        per_table[table.qualified] = total
        for request_id, n in connection.execute(
            "select request_id, count(*) from erasure_hits group by all"
        ).fetchall():
            per_request[request_id][table.qualified] = n
        feed = feeds.get((table.schema, table.name))
        if feed is not None:
            connection.execute(
                f"insert into erasure_keys select {quote_literal(feed.name)}, "
                f"regexp_replace({duplicate_key_sql(feed, 'source')}, '\\s', '', 'g'), "
                f"hits.request_id from {table.sql} as source "
                "inner join erasure_hits as hits on source.rowid = hits.row_id"
            )
            _record_removals(
                connection, table, "_source_file", f"{quote_literal(feed.name)}", removed_at
            )
        elif table.qualified == "landing.quarantine":
            _record_removals(connection, table, "file", "source.feed", removed_at, quarantine=True)
        elif is_duplicates:
            _record_removals(connection, table, "file", "source.feed", removed_at)
        connection.execute(
            f"delete from {table.sql} where rowid in (select row_id from erasure_hits)"
        )
    return per_request, per_table


def _record_removals(
    connection: duckdb.DuckDBPyConnection,
    table: _Table,
    file_column: str,
    feed_sql: str,
    removed_at: datetime,
    quarantine: bool = False,
) -> None:
    """Count the rows about to be deleted per feed, file and request in landing.removals."""
    if quarantine:
        place = "case when source.row_number is null then 'quarantine_file' else 'quarantine' end"
    else:
        place = "'duplicates'" if table.qualified == "landing.duplicates" else "'table'"
    connection.execute(
        f"""
        insert into landing.removals
        select {feed_sql}, source.{quote_ident(file_column)}, {place}, 'erased', count(*),
            {quote_literal(removed_at)}::timestamp, hits.request_id
        from {table.sql} as source
        inner join erasure_hits as hits on source.rowid = hits.row_id
        group by all
        """
    )


# --------------------------------------------------------------------------- export files


# The identifier columns of each platform file: (email, phone, first name, last name).
PLATFORM_COLUMNS = {
    "google_customer_match.csv": ("Email", "Phone", "First Name", "Last Name"),
    "meta_custom_audience.csv": ("email", "phone", "fn", "ln"),
}
PLATFORM_RULES = {
    "google_customer_match.csv": (
        hashing.GOOGLE_FIELDS["Email"],
        hashing.GOOGLE_FIELDS["Phone"],
        hashing.GOOGLE_FIELDS["First Name"],
        hashing.GOOGLE_FIELDS["Last Name"],
    ),
    "meta_custom_audience.csv": (
        hashing.META_FIELDS["email"],
        hashing.META_FIELDS["phone"],
        hashing.META_FIELDS["fn"],
        hashing.META_FIELDS["ln"],
    ),
}


@dataclass
class _Person:
    """What identifies the erased people in export files, each value mapped to its request.

    In the platform files a row is theirs when its hashed email or own phone is one of
    theirs, or when it has their shared (family) phone and also their first and last name:
    the phone alone would take the rest of the family with them.
    """

    customer_ids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)  # plain, lower-cased
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> hash -> request
    # file -> (phone hash, first name hash, last name hash) -> request
    family: dict[str, dict[tuple[str, str, str], str]] = field(default_factory=dict)


def _hash(rule: hashing.Rule, value: object) -> str | None:
    return hashing.prepare(rule, value) if value is not None else None


def _person(connection: duckdb.DuckDBPyConnection) -> _Person:
    rows = connection.execute(
        "select request_id, kind, value from erasure_values order by request_id, kind, value"
    ).fetchall()
    person = _Person(
        hashes={name: {} for name in PLATFORM_RULES}, family={name: {} for name in PLATFORM_RULES}
    )
    for request_id, kind, value in rows:
        if kind == "email" or (kind == "subject" and "@" in value):
            person.emails.setdefault(value, request_id)
            position = 0
        elif kind == "phone":
            position = 1
        else:
            continue
        for name, rules in PLATFORM_RULES.items():
            hashed = _hash(rules[position], value)
            if hashed:
                person.hashes[name].setdefault(hashed, request_id)
    # customer ids as written (erasure_values holds them lower-cased)
    person.customer_ids = {
        customer_id: request_id
        for customer_id, request_id in connection.execute(
            "select customer_id, min(request_id) from erasure_customers group by all"
        ).fetchall()
    }
    profile = "marts.dim_customers"
    if table_exists(connection, "marts", "dim_customers") and {
        "customer_id",
        "phone",
        "first_name",
        "last_name",
    } <= {
        c
        for (c,) in connection.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'dim_customers'"
        ).fetchall()
    }:
        profiles = connection.execute(
            f"select customers.request_id, profile.phone, profile.first_name, profile.last_name "
            f"from {profile} as profile inner join erasure_customers as customers "
            "using (customer_id) where profile.phone is not null order by all"
        ).fetchall()
        for request_id, phone, first_name, last_name in profiles:
            for name, (_, phone_rule, first_rule, last_rule) in PLATFORM_RULES.items():
                key = (
                    _hash(phone_rule, phone),
                    _hash(first_rule, first_name),
                    _hash(last_rule, last_name),
                )
                if all(key):
                    person.family[name].setdefault(key, request_id)
    return person


class _Lines:
    """An iterator over lines that remembers how many the csv reader has taken."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.lines[self.taken - 1]


def _csv_records(text: str) -> list[tuple[str, list[str]]]:
    """(raw text with its line ending, parsed fields) per CSV record, the header first."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    source = _Lines(lines)
    records = []
    start = 0
    for fields in csv.reader(source):
        records.append(("".join(lines[start : source.taken]), fields))
        start = source.taken
    return records


def _matcher(name: str, header: list[str], person: _Person):
    """A function from a record's fields to the request it belongs to (or None)."""
    position = {column: i for i, column in enumerate(header)}

    def cell(fields: list[str], column: str) -> str | None:
        i = position.get(column)
        if i is None or i >= len(fields):
            return None
        value = fields[i].strip()
        return value[1:] if value.startswith("'") else value  # spreadsheet formula guard

    if name in PLATFORM_COLUMNS:
        wanted, family = person.hashes[name], person.family[name]
        email, phone, first_name, last_name = PLATFORM_COLUMNS[name]

        def hashed(fields: list[str]) -> str | None:
            for column in (email, phone):
                value = (cell(fields, column) or "").lower()
                if value in wanted:
                    return wanted[value]
            key = tuple((cell(fields, c) or "").lower() for c in (phone, first_name, last_name))
            return family.get(key)

        return hashed

    def plain(fields: list[str]) -> str | None:
        customer = cell(fields, "customer_id")
        if customer in person.customer_ids:
            return person.customer_ids[customer]
        email = (cell(fields, "email") or "").lower()
        return person.emails.get(email)

    return plain


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.erasure-tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _amend_csv(path: Path, person: _Person) -> tuple[int, dict[str, int], int]:
    """Drop the person's records; (rows removed, per request, rows left). Bytes kept as they were."""
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw[3:].decode("utf-8") if bom else raw.decode("utf-8")
    records = _csv_records(text)
    if not records:
        return 0, {}, 0
    (header_text, header), body = records[0], records[1:]
    belongs = _matcher(path.name, [h.strip() for h in header], person)
    kept = [header_text]
    removed: dict[str, int] = defaultdict(int)
    for record_text, fields in body:
        request_id = belongs(fields)
        if request_id is None:
            kept.append(record_text)
        else:
            removed[request_id] += 1
    count = sum(removed.values())
    if count:
        _write_atomically(path, (b"\xef\xbb\xbf" if bom else b"") + "".join(kept).encode("utf-8"))
    return count, dict(removed), len(body) - count


def _amend_parquet(path: Path, person: _Person) -> tuple[int, dict[str, int], int]:
    """Drop the person's rows (by customer_id) from a Parquet file, keeping schema and codec."""
    parquet = pq.ParquetFile(path)
    table = parquet.read()
    if "customer_id" not in table.column_names or not person.customer_ids:
        return 0, {}, table.num_rows
    ids = pa.array(list(person.customer_ids), pa.string())
    column = pc.cast(table["customer_id"], pa.string())
    hit = pc.fill_null(pc.is_in(column, value_set=ids), False)
    count = pc.sum(hit).as_py() or 0
    if not count:
        return 0, {}, table.num_rows
    removed: dict[str, int] = defaultdict(int)
    for value in pc.filter(column, hit).to_pylist():
        removed[person.customer_ids[value]] += 1
    metadata = parquet.metadata
    codec = (
        metadata.row_group(0).column(0).compression.lower()
        if metadata.num_row_groups and metadata.num_columns
        else "snappy"
    )
    temporary = path.with_name(f".{path.name}.erasure-tmp")
    pq.write_table(table.filter(pc.invert(hit)), temporary, compression=codec)
    os.replace(temporary, path)
    return count, dict(removed), table.num_rows - count


def _file_facts(path: Path, rows: int) -> dict[str, Any]:
    data = path.read_bytes()
    return {"rows": rows, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _export_folders(exports_root: Path) -> list[Path]:
    """Every <export>/<date>/ folder with a manifest, never through a `latest` link."""
    if not exports_root.is_dir():
        return []
    folders = []
    for export in sorted(exports_root.iterdir()):
        if export.is_symlink() or not export.is_dir():
            continue
        for dated in sorted(export.iterdir()):
            if dated.is_symlink() or not dated.is_dir():
                continue
            if (dated / MANIFEST).is_file() or any((dated / n).exists() for n in EXPORT_FILES):
                folders.append(dated)
    return folders


def _amend_exports(
    connection: duckdb.DuckDBPyConnection,
    exports_root: Path,
    person: _Person,
    run_id: str,
    at: datetime,
) -> tuple[dict[str, dict[str, int]], dict[str, int], list[str]]:
    """Remove the person from every export folder; (request -> file -> rows, file -> rows, files)."""
    per_request: dict[str, dict[str, int]] = defaultdict(dict)
    per_file: dict[str, int] = {}
    amended_files: list[str] = []
    for folder in _export_folders(exports_root):
        changed: dict[str, int] = {}
        rows_left: dict[str, int] = {}
        requests: set[str] = set()
        for name in (*EXPORT_FILES, PARQUET_FILE):
            path = folder / name
            if not path.is_file() or path.is_symlink():
                continue
            amend = _amend_parquet if name == PARQUET_FILE else _amend_csv
            count, by_request, left = amend(path, person)
            rows_left[name] = left
            if not count:
                continue
            relative = path.relative_to(exports_root).as_posix()
            label = f"exports/{relative}"
            changed[name] = count
            per_file[label] = count
            amended_files.append(relative)
            requests |= set(by_request)
            for request_id, n in by_request.items():
                per_request[request_id][label] = n
        if changed:
            _amend_manifest(
                connection, folder, exports_root, changed, rows_left, requests, run_id, at
            )
    return per_request, per_file, amended_files


def _people_removed(changed: dict[str, int]) -> int:
    """Exported rows removed: from the audience files, else the most from any one file."""
    for audience in ("audience.csv", PARQUET_FILE):
        if audience in changed:
            return changed[audience]
    return max(changed.values())


def _amend_manifest(
    connection: duckdb.DuckDBPyConnection,
    folder: Path,
    exports_root: Path,
    changed: dict[str, int],
    rows_left: dict[str, int],
    requests: set[str],
    run_id: str,
    at: datetime,
) -> None:
    """Rewrite manifest.json for the amended files, flag the export run, and audit it."""
    path = folder / MANIFEST
    manifest: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    )
    files = manifest.setdefault("files", {})
    for name, left in rows_left.items():
        if name in changed or name not in files:
            files[name] = _file_facts(folder / name, left)
    for audience in ("audience.csv", PARQUET_FILE):  # the exported rows, whichever is written
        if audience in rows_left:
            manifest["rows"] = rows_left[audience]
            break
    amendments = manifest.setdefault("amendments", [])
    amendments.append(
        {
            "at": at.isoformat(sep=" ", timespec="seconds"),
            "reason": "erasure",
            "request_count": len(requests),
            "rows_removed": _people_removed(changed),
            "rows_removed_by_file": dict(sorted(changed.items())),
        }
    )
    _write_atomically(
        path, (json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n").encode()
    )
    export_name = manifest.get("export_name") or folder.parent.name
    export_run = manifest.get("run_id")
    if export_run and table_exists(connection, "activation", "export_runs"):
        connection.execute(
            "update activation.export_runs set status = 'amended' "
            "where run_id = ? and export_name = ?",
            [export_run, export_name],
        )
    audit.record(
        connection,
        "export_amended",
        export_name,
        run_id=run_id,
        files=[(folder / n).relative_to(exports_root).as_posix() for n in sorted(changed)],
        rows=_people_removed(changed),
        details={
            "export_run_id": export_run,
            "folder": folder.relative_to(exports_root).as_posix(),
            "request_count": len(requests),
            "rows_removed_by_file": dict(sorted(changed.items())),
        },
    )


# --------------------------------------------------------------------------- tombstones, logs


def _tombstone(connection: duckdb.DuckDBPyConnection, salt: str, at: datetime) -> int:
    kinds = ", ".join(quote_literal(k) for k in TOMBSTONE_KINDS)
    before = connection.execute("select count(*) from privacy.tombstones").fetchall()[0][0]
    connection.execute(
        f"""
        insert into privacy.tombstones
        select identifier_hash, min(request_id), {quote_literal(at)}::timestamp
        from (
            select {secrets.salted_hash_sql("value", salt)} as identifier_hash, request_id
            from erasure_values
            where kind in ({kinds})
        )
        where identifier_hash not in (select identifier_hash from privacy.tombstones)
        group by identifier_hash
        """
    )
    return connection.execute("select count(*) from privacy.tombstones").fetchall()[0][0] - before


def process_erasure_requests(
    connection: duckdb.DuckDBPyConnection,
    *,
    exports_root: Path | str,
    salt: str,
    run_id: str,
    contracts: Contracts | None = None,
) -> ErasureOutcome:
    """Erase every person with a pending request, everywhere (see the module docstring)."""
    contracts = contracts or contracts_module.load()
    salt = secrets.validated(salt)
    exports_root = Path(exports_root)
    ensure_tables(connection)
    outcome = ErasureOutcome(run_id=run_id)
    processed_at = _now()
    connection.execute("begin transaction")
    try:
        pending = _pending(connection, contracts)
        if pending.empty:
            connection.execute("commit")
            return outcome
        _resolve(connection)
        person = _person(connection)
        identifiers = dict(
            connection.execute(
                "select request_id, count(distinct value) from erasure_values group by all"
            ).fetchall()
        )
        customers = dict(
            connection.execute(
                "select request_id, count(distinct customer_id) from erasure_customers group by all"
            ).fetchall()
        )
        known = _known_elsewhere(connection)
        removed, by_table = _sweep(connection, contracts, processed_at)
        in_files, by_file, amended = _amend_exports(
            connection, exports_root, person, run_id, processed_at
        )
        outcome.tombstones_added = _tombstone(connection, salt, processed_at)
        outcome.rows_removed_by_table = {**by_table, **by_file}
        outcome.export_files_amended = amended
        completed_at = _now()
        own_traces = {contracts["erasure"].qualified_table}
        data_tables = {feed.qualified_table for feed in contracts} - own_traces
        for row in pending.itertuples(index=False):
            rows = {**removed.get(row.request_id, {}), **in_files.get(row.request_id, {})}
            # Found: the person had data beyond the request itself and what identity made of it.
            found = row.request_id in known or any(
                t in data_tables or t.startswith("exports/") for t in rows
            )
            requested_at = None if pd.isna(row.requested_at) else row.requested_at.to_pydatetime()
            result = RequestOutcome(
                request_id=row.request_id,
                requested_at=requested_at,
                status=STATUS_ERASED if found else STATUS_NO_MATCH,
                customers=customers.get(row.request_id, 0),
                identifiers_erased=identifiers.get(row.request_id, 0),
                rows_removed=rows,
            )
            outcome.requests.append(result)
        _log(connection, outcome.requests, processed_at, completed_at, run_id, amended)
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    finally:
        for temp in ("pending", "customers", "values", "sweep", "odd_values", "keys", "hits"):
            connection.execute(f"drop table if exists temp.erasure_{temp}")
    return outcome


def _log(
    connection: duckdb.DuckDBPyConnection,
    results: list[RequestOutcome],
    processed_at: datetime,
    completed_at: datetime,
    run_id: str,
    amended: list[str],
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
                "run_id": run_id,
            }
            for r in results
        ]
    )
    removals = pd.DataFrame(
        [(r.request_id, table, n) for r in results for table, n in sorted(r.rows_removed.items())],
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
    for result in results:
        audit.record(
            connection,
            "erasure",
            result.request_id,
            run_id=run_id,
            files=[f for f in amended if f"exports/{f}" in result.rows_removed],
            rows=result.total_rows,
            details={
                "status": result.status,
                "identifiers_erased": result.identifiers_erased,
                "rows_removed_by_table": dict(sorted(result.rows_removed.items())),
            },
        )


# --------------------------------------------------------------------------- checks


def traces_left(
    connection: duckdb.DuckDBPyConnection,
    salt: str,
    contracts: Contracts | None = None,
) -> pd.DataFrame:
    """Rows that still carry a tombstoned identifier: table, column, rows (empty when none).

    Looks at every erase_by column of every landed feed table (as received and normalised),
    at the identifiers of identity.identifiers, and at the words of the quarantine's raw text.
    """
    columns = ["table", "column", "rows"]
    if not table_exists(connection, "privacy", "tombstones"):
        return pd.DataFrame(columns=columns)
    salt = secrets.validated(salt)
    contracts = contracts or contracts_module.load()
    tombstoned = "(select identifier_hash from privacy.tombstones)"
    checks: list[tuple[str, str, str]] = []
    for feed in contracts:
        if not feed.erase_by or not table_exists(connection, feed.name, feed.table):
            continue
        for column in feed.erase_by:
            for name in dict.fromkeys((column.erase_column, column.name)):
                checks.append(
                    (
                        feed.qualified_table,
                        name,
                        f"select count(*) from {quote_ident(feed.name)}.{quote_ident(feed.table)} "
                        f"where {secrets.salted_hash_sql(quote_ident(name), salt)} in {tombstoned}",
                    )
                )
    if table_exists(connection, "identity", "identifiers"):
        checks.append(
            (
                "identity.identifiers",
                "id_value",
                "select count(*) from identity.identifiers "
                f"where {secrets.salted_hash_sql('id_value', salt)} in {tombstoned}",
            )
        )
    if table_exists(connection, "landing", "quarantine"):
        words = f"regexp_extract_all(lower(raw_text), {quote_literal(IDENTIFIER_TOKEN_PATTERN)})"
        hashed = secrets.salted_hash_sql("rtrim(word, '.')", salt)
        checks.append(
            (
                "landing.quarantine",
                "raw_text",
                "select count(distinct row_id) from ("
                f"select rowid as row_id, unnest({words}) as word from landing.quarantine"
                f") where {hashed} in {tombstoned}",
            )
        )
    found = []
    for table, column, sql in checks:
        (count,) = connection.execute(sql).fetchall()[0]
        if count:
            found.append({"table": table, "column": column, "rows": count})
    return pd.DataFrame(found, columns=columns)
