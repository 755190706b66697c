"""Land feed files into DuckDB: validate against the contract, quarantine, dedupe, reconcile.

Plain Python over a DuckDB connection (no Dagster), so it can be tested and run alone:

    python -m orchestration.landing.loader [--landing data/landing] [--feed crm ...]

For each feed, every file in data/landing/<feed>/ that the ledger (`landing.files`) has not
seen is read, its rows checked against the contract in one set-based query, and each row
ends in exactly one place: the feed's table, `landing.quarantine` (with a reason a person
can act on), or `landing.duplicates` (its key was landed before). A file that cannot be
read at all is quarantined whole. Each file is landed in one transaction, and the ledger
records rows read = loaded + quarantined + duplicate for it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from ml.normalise import (
    REFERENCE_KINDS,
    classify_reference,
    normalise_email,
    normalise_phone,
    normalise_unique,
)

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
    landed_at timestamp not null
);
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
            "files": [asdict(f) for f in self.files],
        }


# --------------------------------------------------------------------------- SQL building


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _value(column: Column) -> str:
    """The column's value for checks: trimmed, empty text counts as missing."""
    return f"nullif(trim(cast({ident(column.name)} as varchar)), '')"


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
        checks.append(f"case when {v} is null then {literal(name + ' is missing')} end")
    typed = None
    if column.type == "integer":
        typed = f"try_cast({v} as bigint)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {literal(name + ' ')} || {shown} || ' is not a whole number' end"
        )
    elif column.type == "decimal":
        typed = f"try_cast({v} as decimal(18, 4))"
        checks.append(
            f"case when {v} is not null and {typed} is null then {literal(name + ' ')} || {shown} || ' is not a decimal number' end"
        )
    elif column.type == "date":
        typed = f"(case when regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') then try_strptime({v}, '%Y-%m-%d')::date end)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {literal(name + ' ')} || {shown} || ' is not a valid date (expected YYYY-MM-DD)' end"
        )
    elif column.type == "timestamp":
        pattern = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
        typed = f"(case when regexp_full_match({v}, {literal(pattern)}) then try_cast({v} as timestamptz) end)"
        checks.append(
            f"case when {v} is not null and {typed} is null then {literal(name + ' ')} || {shown} "
            "|| ' is not a valid timestamp (expected ISO 8601 such as 2026-11-01T10:22:03+00:00)' end"
        )
    elif column.type == "json":
        checks.append(
            f"case when {v} is not null and (not coalesce(json_valid({v}), false) or json_type({v}) <> 'OBJECT') "
            f"then {literal(name + ' is not a JSON object')} end"
        )
    for bound, operator, words in ((column.min, "<", "is below"), (column.max, ">", "is above")):
        if bound is None or typed is None:
            continue
        limit = f"date {literal(bound)}" if column.type == "date" else literal(bound)
        cast = "date" if column.type == "date" else "double"
        checks.append(
            f"case when {typed} is not null and {typed}::{cast} {operator} cast({limit} as {cast}) "
            f"then {literal(name + ' ')} || {_shown(v, quoted=False)} || {literal(f' {words} {bound}')} end"
        )
    if column.allowed:
        values = ", ".join(literal(a) for a in column.allowed)
        checks.append(
            f"case when {v} is not null and {v} not in ({values}) then {literal(name + ' ')} || {shown} "
            f"|| {literal(' is not one of ' + ', '.join(column.allowed))} end"
        )
    if column.pattern:
        checks.append(
            f"case when {v} is not null and not regexp_full_match({v}, {literal(column.pattern)}) "
            f"then {literal(name + ' ')} || {shown} || {literal(' does not match ' + column.pattern)} end"
        )
    return checks


def reason_expression(feed: Feed) -> str:
    checks = [check for column in feed.columns for check in rule_checks(column)]
    return "concat_ws('; ', _py_reason, " + ", ".join(checks) + ")"


def target_ddl(feed: Feed) -> str:
    columns = [f"{ident(name)} varchar" for name in feed.column_names + feed.derived_columns]
    columns += [
        "_source_file varchar not null",
        "_row_number bigint not null",
        "_load_id varchar not null",
        "_loaded_at timestamp not null",
    ]
    return (
        f"create schema if not exists {ident(feed.name)};\n"
        f"create table if not exists {ident(feed.name)}.{ident(feed.table)} (\n    "
        + ",\n    ".join(columns)
        + "\n)"
    )


def ensure_tables(connection: duckdb.DuckDBPyConnection, contracts: Contracts) -> None:
    """Create the ledger, quarantine and feed tables; add columns the contract gained since."""
    connection.execute(LEDGER_DDL)
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
                    f"alter table {ident(feed.name)}.{ident(feed.table)} add column {ident(name)} varchar"
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


class Loader:
    """Lands files of the contracted feeds into one DuckDB database."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        landing: Path,
        contracts: Contracts | None = None,
    ):
        self.connection = connection
        self.landing = Path(landing)
        self.contracts = contracts or contracts_module.load()
        ensure_tables(connection, self.contracts)

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
                )
                result.status, result.reason = (
                    STATUS_QUARANTINED,
                    f"file name does not match {patterns}",
                )
            else:
                try:
                    parsed = read_file(path, feed, file_format)
                except FileUnreadable as exc:
                    self._quarantine_file(feed, relative, load_id, str(exc), path)
                    result.status, result.reason = STATUS_QUARANTINED, str(exc)
                else:
                    self._land_rows(feed, relative, parsed, load_id, result)
            self._record(result, checksum, path.stat().st_size, file_format, load_id)
            self.connection.execute("commit")
        except BaseException:
            self.connection.execute("rollback")
            raise
        return result

    def _quarantine_file(
        self, feed: Feed, relative: str, load_id: str, reason: str, path: Path
    ) -> None:
        head = path.read_bytes()[:500].decode("utf-8", "backslashreplace")
        self.connection.execute(
            "insert into landing.quarantine values (?, ?, ?, null, ?, ?, ?, now()::timestamp)",
            [
                load_id,
                feed.name,
                relative,
                f"the whole file {reason}",
                head,
                f"{relative}: the whole file {reason}",
            ],
        )

    def _record(
        self, result: FileResult, checksum: str, size: int, file_format: str | None, load_id: str
    ) -> None:
        self.connection.execute(
            "insert into landing.files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
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
            ],
        )

    def _land_rows(
        self, feed: Feed, relative: str, parsed: ParsedFile, load_id: str, result: FileResult
    ) -> None:
        connection = self.connection
        frame = add_normalised_columns(feed, parsed.frame)
        connection.register("landing_batch", frame)
        try:
            connection.execute(
                f"create or replace temp table landing_checked as "
                f"select *, {reason_expression(feed)} as _reason from landing_batch"
            )
        finally:
            connection.unregister("landing_batch")

        key_columns = [*feed.key]
        partition = ", ".join(f"trim(cast({ident(k)} as varchar))" for k in key_columns)
        target = f"{ident(feed.name)}.{ident(feed.table)}"
        if feed.key_scope == "feed":
            join = " and ".join(
                f"trim(landed.{ident(k)}) = trim(cast(ranked.{ident(k)} as varchar))"
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
                where _reason = ''
            )
            select *, (_rank > 1 or {seen_before}) as _is_duplicate
            from ranked
            """
        )
        values = [
            f"nullif(cast({ident(n)} as varchar), '')"
            if n in feed.column_names
            else f"cast({ident(n)} as varchar)"
            for n in feed.column_names + feed.derived_columns
        ]
        loaded_at = "now()::timestamp"
        connection.execute(
            f"insert into {target} select {', '.join(values)}, {literal(relative)}, _row_number, "
            f"{literal(load_id)}, {loaded_at} from landing_ranked where not _is_duplicate order by _row_number"
        )
        key_text = " || ', ' || ".join(
            f"{literal(k + '=')} || coalesce(cast({ident(k)} as varchar), '')" for k in key_columns
        )
        connection.execute(
            f"insert into landing.duplicates select {literal(load_id)}, {literal(feed.name)}, {literal(relative)}, "
            f"_row_number, {key_text}, {loaded_at} from landing_ranked where _is_duplicate"
        )

        rejected = connection.execute(
            "select _row_number, _reason from landing_checked where _reason <> '' order by _row_number"
        ).fetchall()
        quarantine = [(r.row_number, r.reason, r.raw_text) for r in parsed.rejects]
        quarantine += [(number, reason, parsed.raw_text(number)) for number, reason in rejected]
        if quarantine:
            rows = pd.DataFrame(quarantine, columns=["row_number", "reason", "raw_text"])
            rows["message"] = (
                relative + " row " + rows["row_number"].astype(str) + ": " + rows["reason"]
            )
            connection.register("landing_rejects", rows)
            try:
                connection.execute(
                    f"insert into landing.quarantine select {literal(load_id)}, {literal(feed.name)}, "
                    f"{literal(relative)}, row_number, reason, raw_text, message, {loaded_at} "
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
        if parsed.notes:
            result.reason = "; ".join(parsed.notes)
        if result.rows_read != result.rows_loaded + result.rows_quarantined + result.rows_duplicate:
            raise AssertionError(
                f"{relative}: {result.rows_read} rows read but {result.rows_loaded} loaded + "
                f"{result.rows_quarantined} quarantined + {result.rows_duplicate} duplicate"
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
    target = f"{ident(feed.name)}.{ident(feed.table)}"
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

    A file reconciles when rows read = loaded + quarantined + duplicate in the ledger and
    each of those equals the rows the tables hold for the file.
    """
    target = f"{ident(feed.name)}.{ident(feed.table)}"
    return connection.execute(
        f"""
        with landed as (select _source_file as file, count(*) as n from {target} group by all),
        quarantined as (
            select file, count(*) as n from landing.quarantine
            where feed = ? and row_number is not null group by all
        ),
        duplicates as (select file, count(*) as n from landing.duplicates where feed = ? group by all)
        select
            files.file,
            files.status,
            files.rows_read,
            files.rows_loaded,
            files.rows_quarantined,
            files.rows_duplicate,
            coalesce(landed.n, 0) as rows_in_table,
            coalesce(quarantined.n, 0) as rows_in_quarantine,
            coalesce(duplicates.n, 0) as rows_in_duplicates,
            files.rows_read = files.rows_loaded + files.rows_quarantined + files.rows_duplicate
                and files.rows_loaded = coalesce(landed.n, 0)
                and files.rows_quarantined = coalesce(quarantined.n, 0)
                and files.rows_duplicate = coalesce(duplicates.n, 0) as reconciles
        from landing.files as files
        left join landed using (file)
        left join quarantined using (file)
        left join duplicates using (file)
        where files.feed = ?
        order by files.file
        """,
        [feed.name, feed.name, feed.name],
    ).df()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Land the files in data/landing/ into the warehouse."
    )
    parser.add_argument(
        "--landing", type=Path, default=contracts_module.REPO_ROOT / "data" / "landing"
    )
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="DuckDB file (default: $TEAL_WAREHOUSE)"
    )
    parser.add_argument("--feed", action="append", help="land only this feed (repeatable)")
    args = parser.parse_args(argv)
    from orchestration.settings import warehouse_path

    with duckdb.connect(str(args.warehouse or warehouse_path())) as connection:
        loader = Loader(connection, args.landing)
        load_id = new_load_id()
        for name in args.feed or list(loader.contracts.feeds):
            report = loader.land_feed(name, load_id)
            totals = report.as_dict()
            print(
                f"{name:12} files {totals['files_landed']} landed, {totals['files_quarantined']} quarantined, "
                f"{totals['files_skipped']} skipped; rows {totals['rows_loaded']} loaded, "
                f"{totals['rows_quarantined']} quarantined, {totals['rows_duplicate']} duplicate"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
