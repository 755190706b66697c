"""Land feed files into DuckDB: validate against the contract, quarantine, dedupe, reconcile.

Plain Python over a DuckDB connection (no Dagster), so it can be tested and run alone:

    python -m ml.landing.loader [--landing data/landing] [--feed crm ...]

For each feed, every file in data/landing/<feed>/ that the ledger (`landing.files`) has not
seen is read, its rows checked against the contract in one set-based query, and each row
ends in exactly one place: the feed's table, `landing.quarantine` (with a reason a person
can act on), or `landing.duplicates` (its key was landed before). A file that cannot be
read at all is quarantined whole. Each file is landed in one transaction, and the ledger
records rows read = loaded + quarantined + duplicate + erased for it.

Erased people stay erased: when `privacy.tombstones` holds salted hashes of erased identifiers
(ml/privacy/erasure.py), a row whose `erase_by` column (feeds.yml) hashes to one of them is
dropped before any other check, so neither the table, the quarantine's raw text nor the
duplicates' key keeps it; `landing.erased_rows` records where it was (no identifiers). Rows
deleted later, by erasure or retention, are counted in `landing.removals`, so a file still
reconciles: loaded = rows in the table + rows removed from it since.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from ml import secrets
from ml.normalise import (
    REFERENCE_KINDS,
    classify_reference,
    normalise_email,
    normalise_phone,
    normalise_unique,
)
from ml.sql import quote_ident, quote_literal

from . import contracts as contracts_module
from .contracts import Column, Contracts, Feed
from .readers import FileUnreadable, ParsedFile, read_file

LEDGER_DDL = """
create schema if not exists landing;
create table if not exists landing.files (
    load_id varchar not null,
    feed varchar not null,
    file varchar not null,
    checksum varchar not null,
    size_bytes bigint not null,
    file_format varchar,
    status varchar not null,
    reason varchar,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    rows_duplicate bigint not null,
    landed_at timestamp not null,
    rows_erased bigint not null default 0
);
alter table landing.files add column if not exists rows_erased bigint default 0;
create table if not exists landing.quarantine (
    load_id varchar not null,
    feed varchar not null,
    file varchar not null,
    row_number bigint,
    reason varchar not null,
    raw_text varchar,
    message varchar not null,
    quarantined_at timestamp not null
);
create table if not exists landing.duplicates (
    load_id varchar not null,
    feed varchar not null,
    file varchar not null,
    row_number bigint not null,
    key varchar not null,
    dropped_at timestamp not null
);
create table if not exists landing.erased_rows (
    load_id varchar not null,
    feed varchar not null,
    file varchar not null,
    row_number bigint,
    erased_at timestamp not null
);
-- Rows deleted after landing, per file: place is where they had been (table, quarantine,
-- duplicates, or quarantine_file for a whole-file entry, which reconciliation does not count),
-- reason is erased (reference: the erasure request) or expired (reference: the retention run).
create table if not exists landing.removals (
    feed varchar not null,
    file varchar not null,
    place varchar not null,
    reason varchar not null,
    rows bigint not null,
    removed_at timestamp not null,
    reference varchar
);
create table if not exists landing.validations (
    load_id varchar not null,
    feed varchar not null,
    suite varchar not null,
    success boolean not null,
    rows_validated bigint not null,
    evaluated integer not null,
    successful integer not null,
    warnings integer not null,
    validated_at timestamp not null
);
"""

# The columns of each table here that name a person (an identifier, a text or key that embeds
# one, a customer id): erasure (ml/privacy/personal_columns.py) deletes a row when one of them
# names an erased person. The ledger tables hold none.
# (The landed feed tables are declared in feeds.yml: `pii` and `erase_by` columns.)
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "landing.quarantine": ("reason", "raw_text", "message"),  # the refused row, quoted
    "landing.duplicates": ("key",),  # e.g. crm_id=C1000001, updated_at=...
    "landing.files": (),
    "landing.erased_rows": (),
    "landing.removals": (),
    "landing.validations": (),
}

# Words in free text that may be an identifier: an email, or a run of [a-z0-9_+] with at least
# one digit, `_` or `+` (crm, loyalty and user ids, cookies, devices, E.164 phones, customer
# ids). Applied to lower-cased text by erasure (in DuckDB) and by the loader (in Python), which
# compare whole words: `ann@x.com` is not found inside `joann@x.com`.
_EMAIL_PART = r"""[^\s"'<>()\[\]{},;:=/\\&?|@*]+"""
IDENTIFIER_TOKEN_PATTERN = rf"{_EMAIL_PART}@{_EMAIL_PART}|[a-z0-9_+]*[0-9_+][a-z0-9_+]*"
_IDENTIFIER_TOKEN = re.compile(IDENTIFIER_TOKEN_PATTERN)


def identifier_tokens(text: str | None) -> set[str]:
    """The identifier-like words of a text, lower-cased, trailing dots dropped."""
    if not text:
        return set()
    return {token.rstrip(".") for token in _IDENTIFIER_TOKEN.findall(text.lower())}


STATUS_LOADED = "loaded"
STATUS_QUARANTINED = "quarantined"
STATUS_SKIPPED = "skipped"


@dataclass
class FileResult:
    feed: str
    file: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    reason: str | None = None
    rows_erased: int = 0


@dataclass
class FeedReport:
    feed: str
    load_id: str
    files: list[FileResult] = field(default_factory=list)

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files)

    @property
    def quarantined_files(self) -> list[FileResult]:
        return [f for f in self.files if f.status == STATUS_QUARANTINED]

    def as_dict(self) -> dict:
        return {
            "feed": self.feed,
            "load_id": self.load_id,
            "files_landed": sum(f.status == STATUS_LOADED for f in self.files),
            "files_quarantined": len(self.quarantined_files),
            "files_skipped": sum(f.status == STATUS_SKIPPED for f in self.files),
            "rows_read": self.total("rows_read"),
            "rows_loaded": self.total("rows_loaded"),
            "rows_quarantined": self.total("rows_quarantined"),
            "rows_duplicate": self.total("rows_duplicate"),
            "rows_erased": self.total("rows_erased"),
            "files": [asdict(f) for f in self.files],
        }


# --------------------------------------------------------------------------- SQL building


def _value(column: Column) -> str:
    """The column's value for checks: trimmed, empty text counts as missing."""
    return f"nullif(trim(cast({quote_ident(column.name)} as varchar)), '')"


def _shown(expression: str, quoted: bool = True) -> str:
    """SQL that renders a value inside a message, shortened and quoted."""
    clipped = f"(case when length({expression}) > 60 then left({expression}, 57) || '...' else {expression} end)"
    return f"'''' || {clipped} || ''''" if quoted else clipped


def rule_checks(column: Column) -> list[str]:
    """SQL expressions, one per rule, each giving a reason text or NULL when the rule holds."""
    v = _value(column)
    name = column.name
    shown = _shown(v)
    checks = []
    if column.required:
        checks.append(f"case when {v} is null then {quote_literal(name + ' is missing')} end")
    typed = None
    if column.type == "integer":
        typed = f"try_cast({v} as bigint)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {quote_literal(name + ' ')} || {shown} || ' is not a whole number' end"
        )
    elif column.type == "decimal":
        typed = f"try_cast({v} as decimal(18, 4))"
        checks.append(
            f"case when {v} is not null and {typed} is null then {quote_literal(name + ' ')} || {shown} || ' is not a decimal number' end"
        )
    elif column.type == "date":
        typed = f"(case when regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') then try_strptime({v}, '%Y-%m-%d')::date end)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {quote_literal(name + ' ')} || {shown} || ' is not a valid date (expected YYYY-MM-DD)' end"
        )
    elif column.type == "timestamp":
        pattern = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
        typed = f"(case when regexp_full_match({v}, {quote_literal(pattern)}) then try_cast({v} as timestamptz) end)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {quote_literal(name + ' ')} || {shown} "
            "|| ' is not a valid timestamp (expected ISO 8601 such as 2026-11-01T10:22:03+00:00)' end"
        )
    elif column.type == "json":
        checks.append(
            f"case when {v} is not null and (not coalesce(json_valid({v}), false) or json_type({v}) <> 'OBJECT') "
            f"then {quote_literal(name + ' is not a JSON object')} end"
        )
    for bound, operator, words in ((column.min, "<", "is below"), (column.max, ">", "is above")):
        if bound is None or typed is None:
            continue
        limit = f"date {quote_literal(bound)}" if column.type == "date" else quote_literal(bound)
        cast = "date" if column.type == "date" else "double"
        checks.append(
            f"case when {typed} is not null and {typed}::{cast} {operator} cast({limit} as {cast}) "
            f"then {quote_literal(name + ' ')} || {_shown(v, quoted=False)} || {quote_literal(f' {words} {bound}')} end"
        )
    if column.allowed:
        values = ", ".join(quote_literal(a) for a in column.allowed)
        checks.append(
            f"case when {v} is not null and {v} not in ({values}) then {quote_literal(name + ' ')} || {shown} "
            f"|| {quote_literal(' is not one of ' + ', '.join(column.allowed))} end"
        )
    if column.pattern:
        checks.append(
            f"case when {v} is not null and not regexp_full_match({v}, {quote_literal(column.pattern)}) "
            f"then {quote_literal(name + ' ')} || {shown} || {quote_literal(' does not match ' + column.pattern)} end"
        )
    return checks


def reason_expression(feed: Feed) -> str:
    checks = [check for column in feed.columns for check in rule_checks(column)]
    return "concat_ws('; ', _py_reason, " + ", ".join(checks) + ")"


def duplicate_key_sql(feed: Feed, alias: str | None = None) -> str:
    """SQL for a row's key as landing.duplicates writes it: `order_id=O1, line_number=1`."""
    prefix = f"{alias}." if alias else ""
    return " || ', ' || ".join(
        f"{quote_literal(k + '=')} || coalesce(cast({prefix}{quote_ident(k)} as varchar), '')"
        for k in feed.key
    )


def target_ddl(feed: Feed) -> str:
    columns = [f"{quote_ident(name)} varchar" for name in feed.column_names + feed.derived_columns]
    columns += [
        "_source_file varchar not null",
        "_row_number bigint not null",
        "_load_id varchar not null",
        "_loaded_at timestamp not null",
    ]
    return (
        f"create schema if not exists {quote_ident(feed.name)};\n"
        f"create table if not exists {quote_ident(feed.name)}.{quote_ident(feed.table)} (\n    "
        + ",\n    ".join(columns)
        + "\n)"
    )


def ensure_ledger(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the landing ledger tables (files, quarantine, duplicates, erased rows, removals)."""
    connection.execute(LEDGER_DDL)


def ensure_tables(connection: duckdb.DuckDBPyConnection, contracts: Contracts) -> None:
    """Create the ledger, quarantine and feed tables; add columns the contract gained since."""
    ensure_ledger(connection)
    for feed in contracts:
        connection.execute(target_ddl(feed))
        existing = {
            row[0]
            for row in connection.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                [feed.name, feed.table],
            ).fetchall()
        }
        for name in feed.column_names + feed.derived_columns:
            if name not in existing:
                connection.execute(
                    f"alter table {quote_ident(feed.name)}.{quote_ident(feed.table)} add column {quote_ident(name)} varchar"
                )


# --------------------------------------------------------------------------- normalisation


def add_normalised_columns(feed: Feed, frame: pd.DataFrame) -> pd.DataFrame:
    """Compute the derived columns of email, phone and reference formats, and their reasons."""
    reasons: list[list[str]] = [[] for _ in range(len(frame))]

    def collect(column: Column, values: Iterable[object], errors: list[str | None]) -> None:
        for i, (value, error) in enumerate(zip(values, errors, strict=True)):
            if error:
                reasons[i].append(f"{column.name} {_quote(value)} {error}")

    for column in feed.columns:
        values = frame[column.name].tolist()
        if column.format == "email":
            normal, errors = normalise_unique(values, normalise_email)
            frame[f"{column.name}_normalised"] = normal
            collect(column, values, errors)
        elif column.format == "phone":
            regions = frame[column.region_from].tolist()
            pairs = [
                (v, r) if v is not None and str(v).strip() else None
                for v, r in zip(values, regions, strict=True)
            ]
            normal, errors = normalise_unique(
                pairs, lambda pair: normalise_phone(pair[0], (pair[1] or "").strip())
            )
            frame[f"{column.name}_e164"] = normal
            collect(column, values, errors)
        elif column.format == "reference":
            kinds = column.kinds or REFERENCE_KINDS
            normal, errors = normalise_unique(
                values, lambda value, kinds=kinds: classify_reference(value, kinds)
            )
            frame[f"{column.name}_normalised"] = [n[0] if n else None for n in normal]
            frame[f"{column.name}_type"] = [n[1] if n else None for n in normal]
            collect(column, values, errors)
    frame["_py_reason"] = ["; ".join(r) if r else None for r in reasons]
    return frame


def _quote(value: object) -> str:
    text = value[0] if isinstance(value, tuple) else str(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"'{text}'"


# --------------------------------------------------------------------------- loading


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_load_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def feed_files(landing: Path, feed: Feed) -> Iterator[tuple[Path, str | None]]:
    """Every file in the feed's folder, in sorted order, with the format that takes it (or None)."""
    folder = landing / feed.name
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        yield path, feed.file_format(path)


TOMBSTONES = "privacy.tombstones"


def has_tombstones(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether `privacy.tombstones` exists and holds at least one hash."""
    exists = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'privacy' and table_name = 'tombstones'"
    ).fetchall()[0][0]
    if not exists:
        return False
    return connection.execute(f"select exists (select 1 from {TOMBSTONES})").fetchall()[0][0]


class Loader:
    """Lands files of the contracted feeds into one DuckDB database.

    `salt` (`Settings.salt`) hashes erase_by values for the tombstone check; it is needed only
    when the warehouse has tombstones.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        landing: Path,
        contracts: Contracts | None = None,
        salt: str | None = None,
    ):
        self.connection = connection
        self.landing = Path(landing)
        self.contracts = contracts or contracts_module.load()
        self.salt = salt
        ensure_tables(connection, self.contracts)

    def _tombstones(self) -> set[str] | None:
        """The tombstoned hashes, or None when there are none; reads the salt when needed."""
        if not has_tombstones(self.connection):
            return None
        self.salt = secrets.validated(self.salt or "")
        return {
            h
            for (h,) in self.connection.execute(
                f"select identifier_hash from {TOMBSTONES}"
            ).fetchall()
        }

    def _is_tombstoned(self, text: str | None, tombstones: set[str] | None) -> bool:
        """Whether any identifier-like word of a raw text hashes to a tombstone."""
        if not tombstones or not text:
            return False
        return any(
            secrets.salted_hash(token, self.salt) in tombstones for token in identifier_tokens(text)
        )

    def land_feed(
        self, feed_name: str, load_id: str | None = None, progress: bool = True
    ) -> FeedReport:
        feed = self.contracts[feed_name]
        report = FeedReport(feed.name, load_id or new_load_id())
        files = list(feed_files(self.landing, feed))
        for path, file_format in tqdm(
            files, desc=f"landing {feed.name}", unit="file", disable=not progress or not files
        ):
            result = self.land_file(feed, path, file_format, report.load_id)
            if result is not None:
                report.files.append(result)
        return report

    def land_all(self, progress: bool = True) -> list[FeedReport]:
        load_id = new_load_id()
        return [self.land_feed(feed.name, load_id, progress) for feed in self.contracts]

    # -- one file

    def land_file(
        self, feed: Feed, path: Path, file_format: str | None, load_id: str
    ) -> FileResult | None:
        """Land one file; None when the ledger has already seen this file with this content."""
        relative = path.relative_to(self.landing).as_posix()
        checksum = sha256(path)
        seen = self.connection.execute(
            "select file from landing.files where checksum = ? order by landed_at",
            [checksum],
        ).fetchall()
        if relative in {row[0] for row in seen}:
            return None
        result = FileResult(feed.name, relative, STATUS_LOADED)
        tombstones = self._tombstones()
        self.connection.execute("begin transaction")
        try:
            if seen:
                result.status = STATUS_SKIPPED
                result.reason = f"same content as {seen[0][0]}, already landed"
            elif file_format is None:
                patterns = ", ".join(feed.formats.values())
                self._quarantine_file(
                    feed,
                    relative,
                    load_id,
                    f"is not a file this feed takes (expected {patterns})",
                    path,
                    tombstones,
                )
                result.status, result.reason = (
                    STATUS_QUARANTINED,
                    f"file name does not match {patterns}",
                )
            else:
                try:
                    parsed = read_file(path, feed, file_format)
                except FileUnreadable as exc:
                    self._quarantine_file(feed, relative, load_id, str(exc), path, tombstones)
                    result.status, result.reason = STATUS_QUARANTINED, str(exc)
                else:
                    self._land_rows(feed, relative, parsed, load_id, result, tombstones)
            self._record(result, checksum, path.stat().st_size, file_format, load_id)
            self.connection.execute("commit")
        except BaseException:
            self.connection.execute("rollback")
            raise
        return result

    def _quarantine_file(
        self,
        feed: Feed,
        relative: str,
        load_id: str,
        reason: str,
        path: Path,
        tombstones: set[str] | None = None,
    ) -> None:
        head: str | None = path.read_bytes()[:500].decode("utf-8", "backslashreplace")
        message = f"{relative}: the whole file {reason}"
        if self._is_tombstoned(head, tombstones):
            head = None
            message += " (its first bytes are not kept: they name an erased person)"
        self.connection.execute(
            "insert into landing.quarantine values (?, ?, ?, null, ?, ?, ?, now()::timestamp)",
            [load_id, feed.name, relative, f"the whole file {reason}", head, message],
        )

    def _record(
        self, result: FileResult, checksum: str, size: int, file_format: str | None, load_id: str
    ) -> None:
        self.connection.execute(
            "insert into landing.files (load_id, feed, file, checksum, size_bytes, file_format, "
            "status, reason, rows_read, rows_loaded, rows_quarantined, rows_duplicate, "
            "rows_erased, landed_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
            [
                load_id,
                result.feed,
                result.file,
                checksum,
                size,
                file_format,
                result.status,
                result.reason,
                result.rows_read,
                result.rows_loaded,
                result.rows_quarantined,
                result.rows_duplicate,
                result.rows_erased,
            ],
        )

    def _erased_expression(self, feed: Feed, tombstones: set[str] | None) -> str:
        """SQL that is true for a row whose erase_by value (normalised or as received) is tombstoned."""
        if not tombstones or not feed.erase_by:
            return "false"
        checks = []
        for column in feed.erase_by:
            for name in dict.fromkeys((column.erase_column, column.name)):
                hashed = secrets.salted_hash_sql(quote_ident(name), self.salt)
                checks.append(
                    f"coalesce({hashed} in (select identifier_hash from {TOMBSTONES}), false)"
                )
        return "(" + " or ".join(checks) + ")"

    def _land_rows(
        self,
        feed: Feed,
        relative: str,
        parsed: ParsedFile,
        load_id: str,
        result: FileResult,
        tombstones: set[str] | None = None,
    ) -> None:
        connection = self.connection
        frame = add_normalised_columns(feed, parsed.frame)
        connection.register("landing_batch", frame)
        try:
            connection.execute(
                f"create or replace temp table landing_checked as "
                f"select *, {reason_expression(feed)} as _reason, "
                f"{self._erased_expression(feed, tombstones)} as _erased from landing_batch"
            )
        finally:
            connection.unregister("landing_batch")

        key_columns = [*feed.key]
        partition = ", ".join(f"trim(cast({quote_ident(k)} as varchar))" for k in key_columns)
        target = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
        if feed.key_scope == "feed":
            join = " and ".join(
                f"trim(landed.{quote_ident(k)}) = trim(cast(ranked.{quote_ident(k)} as varchar))"
                for k in key_columns
            )
            seen_before = f"exists (select 1 from {target} as landed where {join})"
        else:
            seen_before = "false"
        connection.execute(
            f"""
            create or replace temp table landing_ranked as
            with ranked as (
                select *, row_number() over (partition by {partition} order by _row_number) as _rank
                from landing_checked
                where _reason = '' and not _erased
            )
            select *, (_rank > 1 or {seen_before}) as _is_duplicate
            from ranked
            """
        )
        values = [
            f"nullif(cast({quote_ident(n)} as varchar), '')"
            if n in feed.column_names
            else f"cast({quote_ident(n)} as varchar)"
            for n in feed.column_names + feed.derived_columns
        ]
        loaded_at = "now()::timestamp"
        connection.execute(
            f"insert into {target} select {', '.join(values)}, {quote_literal(relative)}, _row_number, "
            f"{quote_literal(load_id)}, {loaded_at} from landing_ranked where not _is_duplicate order by _row_number"
        )
        key_text = duplicate_key_sql(feed)
        connection.execute(
            f"insert into landing.duplicates select {quote_literal(load_id)}, {quote_literal(feed.name)}, {quote_literal(relative)}, "
            f"_row_number, {key_text}, {loaded_at} from landing_ranked where _is_duplicate"
        )

        rejected = connection.execute(
            "select _row_number, _reason from landing_checked where _reason <> '' and not _erased "
            "order by _row_number"
        ).fetchall()
        candidates = [(r.row_number, r.reason, r.raw_text) for r in parsed.rejects]
        candidates += [(number, reason, parsed.raw_text(number)) for number, reason in rejected]
        # A row that cannot be read or checked may still name an erased person in its text.
        erased = [
            number
            for (number,) in connection.execute(
                "select _row_number from landing_checked where _erased"
            ).fetchall()
        ]
        quarantine = []
        for number, reason, raw_text in candidates:
            if self._is_tombstoned(raw_text, tombstones):
                erased.append(number)
            else:
                quarantine.append((number, reason, raw_text))
        if erased:
            rows = pd.DataFrame({"row_number": sorted(erased)}, dtype="int64")
            connection.register("landing_erased", rows)
            try:
                connection.execute(
                    f"insert into landing.erased_rows select {quote_literal(load_id)}, "
                    f"{quote_literal(feed.name)}, {quote_literal(relative)}, row_number, {loaded_at} "
                    "from landing_erased order by row_number"
                )
            finally:
                connection.unregister("landing_erased")
        if quarantine:
            rows = pd.DataFrame(quarantine, columns=["row_number", "reason", "raw_text"])
            rows["message"] = (
                relative + " row " + rows["row_number"].astype(str) + ": " + rows["reason"]
            )
            connection.register("landing_rejects", rows)
            try:
                connection.execute(
                    f"insert into landing.quarantine select {quote_literal(load_id)}, {quote_literal(feed.name)}, "
                    f"{quote_literal(relative)}, row_number, reason, raw_text, message, {loaded_at} "
                    "from landing_rejects order by row_number"
                )
            finally:
                connection.unregister("landing_rejects")

        counts = connection.execute(
            "select count(*) filter (where not _is_duplicate), count(*) filter (where _is_duplicate) from landing_ranked"
        ).fetchone()
        result.rows_read = parsed.rows_read
        result.rows_loaded, result.rows_duplicate = counts
        result.rows_quarantined = len(quarantine)
        result.rows_erased = len(erased)
        if parsed.notes:
            result.reason = "; ".join(parsed.notes)
        accounted = (
            result.rows_loaded
            + result.rows_quarantined
            + result.rows_duplicate
            + result.rows_erased
        )
        if result.rows_read != accounted:
            raise AssertionError(
                f"{relative}: {result.rows_read} rows read but {result.rows_loaded} loaded + "
                f"{result.rows_quarantined} quarantined + {result.rows_duplicate} duplicate + "
                f"{result.rows_erased} erased"
            )
        connection.execute("drop table landing_checked; drop table landing_ranked")


# --------------------------------------------------------------------------- batches

VALIDATION_SAMPLE_ROWS = 250_000


def landed_batch(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    load_id: str,
    limit: int = VALIDATION_SAMPLE_ROWS,
) -> tuple[pd.DataFrame, int]:
    """The rows one load landed for a feed, as a DataFrame, and how many there are in all.

    Above `limit` rows a repeatable random sample of `limit` rows is returned, so validating
    a first load of millions of events stays within memory.
    """
    target = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
    total = connection.execute(
        f"select count(*) from {target} where _load_id = ?", [load_id]
    ).fetchone()[0]
    if total <= limit:
        frame = connection.execute(f"select * from {target} where _load_id = ?", [load_id]).df()
    else:
        frame = connection.execute(
            f"select * from (select * from {target} where _load_id = ?) "
            f"using sample reservoir({int(limit)} rows) repeatable (42)",
            [load_id],
        ).df()
    return frame, total


# --------------------------------------------------------------------------- reconciliation


def reconciliation(connection: duckdb.DuckDBPyConnection, feed: Feed) -> pd.DataFrame:
    """Per file of a feed: the ledger's counts next to the rows actually in each table.

    A file reconciles when rows read = loaded + quarantined + duplicate + erased in the ledger,
    the erased rows are in `landing.erased_rows`, and each of loaded, quarantined and duplicate
    equals the rows its table holds for the file plus the rows removed from it later (by
    erasure or retention, in `landing.removals`).
    """
    ensure_ledger(connection)
    target = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
    return connection.execute(
        f"""
        with landed as (select _source_file as file, count(*) as n from {target} group by all),
        quarantined as (
            select file, count(*) as n from landing.quarantine
            where feed = $feed and row_number is not null group by all
        ),
        duplicates as (
            select file, count(*) as n from landing.duplicates where feed = $feed group by all
        ),
        erased as (
            select file, count(*) as n from landing.erased_rows where feed = $feed group by all
        ),
        removed as (
            select
                file,
                coalesce(sum(rows) filter (where place = 'table'), 0) as from_table,
                coalesce(sum(rows) filter (where place = 'quarantine'), 0) as from_quarantine,
                coalesce(sum(rows) filter (where place = 'duplicates'), 0) as from_duplicates
            from landing.removals
            where feed = $feed
            group by all
        ),
        counted as (
            select
                files.file,
                files.status,
                files.rows_read,
                files.rows_loaded,
                files.rows_quarantined,
                files.rows_duplicate,
                coalesce(files.rows_erased, 0) as rows_erased,
                coalesce(landed.n, 0) as rows_in_table,
                coalesce(quarantined.n, 0) as rows_in_quarantine,
                coalesce(duplicates.n, 0) as rows_in_duplicates,
                coalesce(erased.n, 0) as rows_in_erased,
                coalesce(removed.from_table, 0) as removed_from_table,
                coalesce(removed.from_quarantine, 0) as removed_from_quarantine,
                coalesce(removed.from_duplicates, 0) as removed_from_duplicates
            from landing.files as files
            left join landed using (file)
            left join quarantined using (file)
            left join duplicates using (file)
            left join erased using (file)
            left join removed using (file)
            where files.feed = $feed
        )
        select
            file,
            status,
            rows_read,
            rows_loaded,
            rows_quarantined,
            rows_duplicate,
            rows_erased,
            rows_in_table,
            rows_in_quarantine,
            rows_in_duplicates,
            removed_from_table + removed_from_quarantine + removed_from_duplicates
                as rows_removed_later,
            rows_read = rows_loaded + rows_quarantined + rows_duplicate + rows_erased
                and rows_erased = rows_in_erased
                and rows_loaded = rows_in_table + removed_from_table
                and rows_quarantined = rows_in_quarantine + removed_from_quarantine
                and rows_duplicate = rows_in_duplicates + removed_from_duplicates as reconciles
        from counted
        order by file
        """,
        {"feed": feed.name},
    ).df()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Land the files in data/landing/ into the warehouse."
    )
    parser.add_argument("--landing", type=Path, default=None, help="default: $TEAL_LANDING")
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="DuckDB file (default: $TEAL_WAREHOUSE)"
    )
    parser.add_argument("--feed", action="append", help="land only this feed (repeatable)")
    args = parser.parse_args(argv)
    from ml.settings import Settings

    settings = Settings.from_env()
    if args.warehouse:
        settings = settings.replace(warehouse=args.warehouse)
    if args.landing:
        settings = settings.replace(landing=args.landing)
    with settings.connect() as connection:
        loader = Loader(connection, settings.landing, salt=settings.salt)
        load_id = new_load_id()
        for name in args.feed or list(loader.contracts.feeds):
            report = loader.land_feed(name, load_id)
            totals = report.as_dict()
            print(
                f"{name:12} files {totals['files_landed']} landed, {totals['files_quarantined']} quarantined, "
                f"{totals['files_skipped']} skipped; rows {totals['rows_loaded']} loaded, "
                f"{totals['rows_quarantined']} quarantined, {totals['rows_duplicate']} duplicate, "
                f"{totals['rows_erased']} erased"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
