"""Land feed files into DuckDB: validate against the contract, quarantine, dedupe, erase.

Plain Python over a DuckDB connection (no Dagster), so it can be tested and run alone
(`python -m ml.landing land`, see ml/landing/__main__.py).

For each feed, the files in data/landing/<feed>/ that the ledger (`landing.files`) has not
seen are read in batches (ml/landing/batch.py: set-based, in DuckDB), and each row ends in
exactly one place: the feed's table, `landing.quarantine` (with a reason a person can act on),
`landing.duplicates` (its key was landed before), or `landing.erased_rows` (it names an erased
person). A file that cannot be read at all is quarantined whole; a file with the content of
one landed before is skipped. A batch is landed in one transaction, so each of its files lands
whole with its ledger row, which records rows read = loaded + quarantined + duplicate + erased.

Erased people stay erased (ml/landing/tombstones.py): a row whose `erase_by` column (feeds.yml)
hashes to a tombstone in `privacy.tombstones` is dropped before any other check, and so is a
refused row or file whose raw text holds such an identifier; neither the table, the
quarantine's raw text nor the duplicates' key keeps it. Rows deleted later, by erasure or
retention, are counted in `landing.removals`, so a file still reconciles
(ml/landing/reconcile.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from tqdm import tqdm

from ml.sql import quote_ident, quote_literal
from ml.yamlfile import YamlFileError

from . import contracts as contracts_module
from .batch import BATCH_BYTES, Refused, StagedBatch, drop_staged, stage_batch
from .checks import duplicate_key_sql
from .contracts import ContractError, Contracts, Feed, is_gzip
from .ledger import (
    STATUS_LOADED,
    STATUS_QUARANTINED,
    STATUS_SKIPPED,
    VALIDATION_SAMPLE_ROWS,
    FeedReport,
    FileResult,
    ensure_ledger,
    ensure_tables,
    landed_batch,
    record_files,
    target_table,
)
from .readers import SourceFile
from .reconcile import reconciliation
from .tombstones import IDENTIFIER_TOKEN_PATTERN, Tombstones, identifier_tokens

# Importers elsewhere (ml/privacy, expectations, tests) take these from here.
__all__ = [
    "IDENTIFIER_TOKEN_PATTERN",
    "FeedReport",
    "FileResult",
    "Loader",
    "VALIDATION_SAMPLE_ROWS",
    "duplicate_key_sql",
    "ensure_ledger",
    "identifier_tokens",
    "landed_batch",
    "reconciliation",
]

QUARANTINED_HEAD_BYTES = 500  # of a file quarantined whole, kept as its raw text


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


READ_AHEAD = 4  # files read and hashed ahead, in threads, while the loader works


def _read_ahead(paths: list[tuple[Path, str | None]]) -> Iterator[tuple[bytes, str]]:
    """Each file's content and checksum, in order, read a few files ahead in threads (reading
    and hashing release the GIL, so they overlap with each other and with DuckDB's work)."""

    def read(path: Path) -> tuple[bytes, str]:
        content = path.read_bytes()
        return content, sha256(content)

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = deque(pool.submit(read, path) for path, _ in paths[:READ_AHEAD])
        for path, _ in paths[READ_AHEAD:]:
            done = pending.popleft().result()
            pending.append(pool.submit(read, path))
            yield done
        while pending:
            yield pending.popleft().result()


def new_load_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def feed_files(landing: Path, feed: Feed) -> Iterator[tuple[Path, str | None]]:
    """Every file in the feed's folder, in sorted order, with the format that takes it (or None)."""
    folder = landing / feed.name
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        yield path, feed.file_format(path)


@dataclass
class NewFile:
    """A file of the feed's folder that this load has to account for."""

    path: Path
    relative: str
    file_format: str | None
    content: bytes
    checksum: str
    same_as: str | None = None  # a file landed before with the same content

    @property
    def size(self) -> int:
        return len(self.content)


class Loader:
    """Lands files of the contracted feeds into one DuckDB database.

    `salt` (`Settings.salt`) hashes erase_by values for the tombstone check; it is needed only
    when the warehouse has tombstones. `contracts` defaults to ml/landing/feeds.yml with the
    feeds.local.yml beside the landing folder merged over it, when there is one.
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
        self.contracts = contracts or contracts_module.load(
            overrides=contracts_module.overrides_file(self.landing)
        )
        self.salt = salt
        self._ready: set[str] = set()  # feeds whose tables this loader has made sure of

    def land_feed(
        self, feed_name: str, load_id: str | None = None, progress: bool = True
    ) -> FeedReport:
        """Land the feed's new files; the report lists every file this load accounted for."""
        feed = self.contracts[feed_name]
        if feed.name not in self._ready:
            ensure_tables(self.connection, [feed])
            self._ready.add(feed.name)
        report = FeedReport(feed.name, load_id or new_load_id())
        tombstones = Tombstones.of(self.connection, self.salt)
        paths = list(feed_files(self.landing, feed))
        with tqdm(
            total=len(paths), desc=f"landing {feed.name}", unit="file", disable=not progress
        ) as bar:
            for batch in self._batches(feed, paths, bar):
                report.files += self._land_batch(feed, batch, report.load_id, tombstones)
                bar.update(len(batch))
        return report

    def land_all(self, progress: bool = True) -> list[FeedReport]:
        load_id = new_load_id()
        return [self.land_feed(feed.name, load_id, progress) for feed in self.contracts]

    # -- which files, in which batches

    def _batches(self, feed: Feed, paths: list, bar: tqdm) -> Iterator[list[NewFile]]:
        """The files the ledger has not seen with this name and content, in batches of at most
        BATCH_BYTES (a file larger than that is a batch of its own)."""
        landed = self._landed_checksums()
        batch: list[NewFile] = []
        size = 0
        for (path, file_format), (content, checksum) in zip(paths, _read_ahead(paths), strict=True):
            relative = path.relative_to(self.landing).as_posix()
            earlier = landed.setdefault(checksum, [])
            if relative in earlier:
                bar.update(1)
                continue
            new = NewFile(path, relative, file_format, content, checksum, next(iter(earlier), None))
            earlier.append(relative)
            if batch and size + new.size > BATCH_BYTES:
                yield batch
                batch, size = [], 0
            batch.append(new)
            size += new.size
        if batch:
            yield batch

    def _landed_checksums(self) -> dict[str, list[str]]:
        """Every checksum in the ledger with its files, first landed first: those landed, and
        those files took when erasure rewrote them (landing.rewrites), so that a rewritten
        file is never landed again."""
        rows = self.connection.execute(
            "select checksum, file from (select checksum, file, landed_at from landing.files "
            "union all select checksum_after, file, rewritten_at from landing.rewrites "
            "where checksum_after is not null) order by landed_at"
        ).fetchall()
        landed: dict[str, list[str]] = {}
        for checksum, file in rows:
            landed.setdefault(checksum, []).append(file)
        return landed

    # -- one batch, in one transaction

    def _land_batch(
        self, feed: Feed, batch: list[NewFile], load_id: str, tombstones: Tombstones | None
    ) -> list[FileResult]:
        connection = self.connection
        results = {f.relative: FileResult(feed.name, f.relative, STATUS_LOADED) for f in batch}
        readable = [f for f in batch if f.same_as is None and f.file_format is not None]
        sources = [
            SourceFile(i, f.path, f.relative, f.file_format, f.content)
            for i, f in enumerate(readable)
        ]
        connection.execute("begin transaction")
        try:
            staged = stage_batch(connection, feed, sources, tombstones)
            self._account_unlanded(feed, batch, staged, results, load_id, tombstones)
            self._write_rows(feed, staged, results, load_id)
            record_files(
                connection,
                load_id,
                [(results[f.relative], f.checksum, f.size, f.file_format) for f in batch],
            )
            connection.execute("commit")
        except BaseException:
            connection.execute("rollback")
            raise
        finally:
            drop_staged(connection)
        return [results[f.relative] for f in batch]

    def _account_unlanded(
        self,
        feed: Feed,
        batch: list[NewFile],
        staged: StagedBatch,
        results: dict[str, FileResult],
        load_id: str,
        tombstones: Tombstones | None,
    ) -> None:
        """Skip the copies of landed files; quarantine whole the files the feed does not take
        and those that cannot be read."""
        unreadable = {staged.sources[i].relative: e for i, e in staged.unreadable.items()}
        patterns = ", ".join(feed.formats.values())
        for new in batch:
            result = results[new.relative]
            if new.same_as is not None:
                result.status = STATUS_SKIPPED
                result.reason = f"same content as {new.same_as}, already landed"
            elif new.file_format is None:
                reason = f"is not a file this feed takes (expected {patterns})"
                self._quarantine_file(feed, new, load_id, reason, tombstones)
                result.status, result.reason = (
                    STATUS_QUARANTINED,
                    f"file name does not match {patterns}",
                )
            elif new.relative in unreadable:
                reason = str(unreadable[new.relative])
                self._quarantine_file(feed, new, load_id, reason, tombstones)
                result.status, result.reason = STATUS_QUARANTINED, reason

    def _quarantine_file(
        self,
        feed: Feed,
        new: NewFile,
        load_id: str,
        reason: str,
        tombstones: Tombstones | None,
    ) -> None:
        head: str | None = _head(new).decode("utf-8", "backslashreplace")
        message = f"{new.relative}: the whole file {reason}"
        if tombstones and tombstones.names_erased(head):
            head = None
            message += " (its first bytes are not kept: they name an erased person)"
        self.connection.execute(
            "insert into landing.quarantine values (?, ?, ?, null, ?, ?, ?, now()::timestamp)",
            [load_id, feed.name, new.relative, f"the whole file {reason}", head, message],
        )

    # -- the rows of the readable files

    def _write_rows(
        self, feed: Feed, staged: StagedBatch, results: dict[str, FileResult], load_id: str
    ) -> None:
        if not staged.readings:
            return
        connection = self.connection
        files = "[" + ", ".join(quote_literal(s.relative) for s in staged.sources) + "]"
        source_file = f"{files}[_file + 1]"
        names = feed.column_names + feed.derived_columns
        columns = ", ".join(quote_ident(n) for n in names)
        connection.execute(
            f"insert into {target_table(feed)} ({columns}, _source_file, _row_number, _load_id, "
            f"_loaded_at) select {columns}, {source_file}, _row_number, {quote_literal(load_id)}, "
            "now()::timestamp from landing_landed where _clean and not _is_duplicate"
        )
        connection.execute(
            f"insert into landing.duplicates select {quote_literal(load_id)}, "
            f"{quote_literal(feed.name)}, {source_file}, _row_number, {duplicate_key_sql(feed)}, "
            "now()::timestamp from landing_landed where _is_duplicate order by _file, _row_number"
        )
        self._write_erased_rows(feed, staged, files, load_id)
        self._write_quarantine(feed, staged, load_id)
        self._count_rows(staged, results)

    def _write_erased_rows(self, feed: Feed, staged: StagedBatch, files: str, load_id: str) -> None:
        by_text = _row_table(staged.erased_by_text)
        self.connection.register("landing_erased_by_text", by_text)
        try:
            self.connection.execute(
                f"insert into landing.erased_rows select {quote_literal(load_id)}, "
                f"{quote_literal(feed.name)}, {files}[_file + 1], _row_number, now()::timestamp "
                "from (select _file, _row_number from landing_staged where _erased "
                "union all select _file, _row_number from landing_erased_by_text) "
                "order by _file, _row_number"
            )
        finally:
            self.connection.unregister("landing_erased_by_text")

    def _write_quarantine(self, feed: Feed, staged: StagedBatch, load_id: str) -> None:
        if not staged.quarantined:
            return
        relative = [staged.sources[r.file].relative for r in staged.quarantined]
        rows = pa.table(
            {
                "file": pa.array(relative, pa.string()),
                "row_number": pa.array([r.row_number for r in staged.quarantined], pa.int64()),
                "reason": pa.array([r.reason for r in staged.quarantined], pa.string()),
                "raw_text": pa.array([r.raw_text for r in staged.quarantined], pa.string()),
                "message": pa.array(
                    [
                        f"{file} row {r.row_number}: {r.reason}"
                        for file, r in zip(relative, staged.quarantined, strict=True)
                    ],
                    pa.string(),
                ),
            }
        )
        self.connection.register("landing_refused", rows)
        try:
            self.connection.execute(
                f"insert into landing.quarantine select {quote_literal(load_id)}, "
                f"{quote_literal(feed.name)}, file, row_number, reason, raw_text, message, "
                "now()::timestamp from landing_refused"
            )
        finally:
            self.connection.unregister("landing_refused")

    def _count_rows(self, staged: StagedBatch, results: dict[str, FileResult]) -> None:
        """Each readable file's counts, checked to add up: read = loaded + quarantined +
        duplicate + erased."""
        counts = self.connection.execute(
            "select _file, count(*), count(*) filter (where _reason = '' and not _erased "
            "and not _is_duplicate), count(*) filter (where _is_duplicate), "
            "count(*) filter (where _erased) from landing_staged group by _file"
        ).fetchall()
        by_file = {index: (0, 0, 0, 0) for index in staged.readings}
        by_file.update({row[0]: row[1:] for row in counts})
        for index, (read, loaded, duplicate, erased) in by_file.items():
            result = results[staged.sources[index].relative]
            result.rows_read, result.rows_loaded, result.rows_duplicate = read, loaded, duplicate
            result.rows_quarantined = sum(r.file == index for r in staged.quarantined)
            result.rows_erased = erased + sum(r.file == index for r in staged.erased_by_text)
            notes = staged.readings[index].notes
            result.reason = "; ".join(notes) if notes else None
            _check_accounted(result)


def _head(new: NewFile) -> bytes:
    """The first bytes of a file, decompressed when it is gzip and can be."""
    content = new.content
    if is_gzip(new.path):
        try:
            with gzip.open(io.BytesIO(content)) as handle:
                content = handle.read(QUARANTINED_HEAD_BYTES)
        except (OSError, EOFError, zlib.error):
            pass
    return content[:QUARANTINED_HEAD_BYTES]


def _row_table(rows: list[Refused]) -> pa.Table:
    return pa.table(
        {
            "_file": pa.array([r.file for r in rows], pa.int32()),
            "_row_number": pa.array([r.row_number for r in rows], pa.int64()),
        }
    )


def _check_accounted(result: FileResult) -> None:
    accounted = (
        result.rows_loaded + result.rows_quarantined + result.rows_duplicate + result.rows_erased
    )
    if result.rows_read != accounted:
        raise AssertionError(
            f"{result.file}: {result.rows_read} rows read but {result.rows_loaded} loaded + "
            f"{result.rows_quarantined} quarantined + {result.rows_duplicate} duplicate + "
            f"{result.rows_erased} erased"
        )


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """`python -m ml.landing land` (also `python -m ml.landing.loader`)."""
    parser = argparse.ArgumentParser(
        prog="python -m ml.landing land", description="Land the new files of the feeds."
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
    try:
        overrides = contracts_module.overrides_file(settings.landing, settings.feeds_overrides)
        feeds = contracts_module.load(overrides=overrides)
    except (ContractError, YamlFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unknown = [name for name in args.feed or [] if name not in feeds.feeds]
    if unknown:
        print(
            f"error: no feed {unknown[0]!r}; the feeds are {', '.join(feeds.feeds)}",
            file=sys.stderr,
        )
        return 2
    with settings.connect() as connection:
        loader = Loader(connection, settings.landing, feeds, salt=settings.salt)
        load_id = new_load_id()
        for name in args.feed or list(feeds.feeds):
            totals = loader.land_feed(name, load_id).as_dict()
            print(
                f"{name:12} files {totals['files_landed']} landed, "
                f"{totals['files_quarantined']} quarantined, {totals['files_skipped']} skipped; "
                f"rows {totals['rows_loaded']} loaded, {totals['rows_quarantined']} quarantined, "
                f"{totals['rows_duplicate']} duplicate, {totals['rows_erased']} erased"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
