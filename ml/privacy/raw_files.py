"""Raw files follow erasure: landing files are rewritten without an erased person's rows.

The landing files are personal data too. `follow_erasure` runs in erasure's transaction, after
the warehouse rows are deleted and the tombstones added, and again on every run, and rewrites
each landing file that still holds a row about an erased person:

- files rows were deleted from for the requests being processed (`landing.removals`), copies
  of them landed under another name (the same checksum), files refused whole, and files
  whose rows retention purged (whose those rows were is no longer known), when there are
  requests being processed;
- files landed with rows the tombstones dropped (a late file, a replay: `rows_erased`), on
  every run until they are rewritten;
- originals of rewritten files that come back (restored from a backup, dropped in again
  under any name the ledger knows), on every run.

A file is looked for where it was landed (`<landing>/<file>`) and, when landed files are
archived (`Settings.raw_files`, ml/landing/archive.py), in every dated folder of the archive.
Its records are read by the loader's own code (ml/landing/batch.py) and a record goes when
erasure's rule finds an erased person in it (ml/privacy/table_rows.py: one of their
identifiers as a whole word, or an address that reaches their mailbox, in the columns the
contract marks personal, or in the raw text of a record that could not be read) or when the
loader's tombstone rule would drop it. The file is written back in its own format, every other
record byte for byte: CSV and JSON Lines by lines (a CSV record that spans lines goes whole,
a byte-order mark stays), Parquet with the same schema and codec, the Merchant XML feed without
the `<item>`, gzip compressed again (the same bytes always give the same file). A file that
cannot be read at all and names an erased person loses the lines that name them; one that
cannot even be split into lines (a broken Parquet file) is deleted.

Each rewrite is one row of `landing.rewrites` (both checksums, rows before and removed, why)
with its removed row numbers in `landing.rewritten_rows`, and one audit row
(`landing_file_rewritten`). The loader treats a rewritten file's checksum as landed, and the
original's is already in `landing.files`, so neither lands again; an original that comes back
is rewritten the same way, to the same bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.parsers import expat

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml import audit, secrets
from ml.landing.archive import archived_copies
from ml.landing.batch import BATCH_BYTES, STAGED, StagedBatch, drop_staged, stage_batch
from ml.landing.contracts import Contracts, Feed, is_gzip
from ml.landing.readers import ROWS, SourceFile, line_starts
from ml.landing.tombstones import (
    TOMBSTONES,
    Tombstones,
    erase_by_values,
    identifier_tokens,
    tombstoned_values_sql,
)
from ml.normalise import mailbox_key
from ml.privacy.personal_columns import feed_declarations
from ml.privacy.table_rows import MAILBOXES, ODD, SEARCHED, Searched, rows_naming_erased_sql
from ml.warehouse import table_exists

REWRITTEN, DELETED = "rewritten", "deleted"
FOR_ERASURE = "erasure"  # rows of the people erased now
FOR_ERASED_ROWS = "erased rows landed"  # rows the tombstones dropped when the file landed
FOR_ORIGINAL = "original returned"  # an original of a rewritten file came back
LANDING_LABEL, ARCHIVE_LABEL = "landing", "landing_archive"
REFUSED = "erasure_refused_records"  # the raw text of a file's records that were refused
STAGING_TOMBSTONES = "erasure_staging_tombstones"  # the staging connection's copy (`_staging`)
BOM = codecs.BOM_UTF8


@dataclass
class FileRewrite:
    """One landing file rewritten (or deleted) because it held erased people's rows."""

    feed: str
    file: str  # the ledger's name, relative to the landing folder
    location: str  # where it lies: landing/<file> or landing_archive/<day>/<file>
    action: str  # rewritten | deleted
    rows_before: int
    rows_removed: int
    by_request: dict[str, int]  # request -> rows (rows the tombstones found: their request)
    checksum_before: str
    checksum_after: str | None
    reason: str
    rows: tuple[int, ...] = ()  # the removed row numbers (lines of a file that cannot be read)


@dataclass
class RawFilesOutcome:
    """What following erasure into the landing files did in one run."""

    files_searched: int = 0
    rewrites: list[FileRewrite] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ledger files no longer at hand

    def by_request(self) -> dict[str, dict[str, int]]:
        """request -> {location label: rows removed}."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for rewrite in self.rewrites:
            for request_id, rows in rewrite.by_request.items():
                out[request_id][rewrite.location] = rows
        return dict(out)


def follow_erasure(
    connection: duckdb.DuckDBPyConnection,
    *,
    landing: Path,
    archive: Path,
    contracts: Contracts,
    salt: str,
    reference: str,
    at: datetime,
    request_ids: list[str] | None = None,
    searched: Searched | None = None,
) -> RawFilesOutcome:
    """Rewrite every landing file that still holds an erased person's rows (module docstring).

    `request_ids` and `searched`: the requests being processed in this transaction, whose
    identifiers are in erasure's temporary tables (ml/privacy/table_rows.py); None on a run
    that erased nobody new.
    """
    outcome = RawFilesOutcome()
    if not table_exists(connection, "landing", "files"):
        return outcome
    tombstones = Tombstones.of(connection, salt)
    feeds = {feed.name: feed for feed in contracts}
    by_feed: dict[str, list[_Candidate]] = defaultdict(list)
    for feed_name, file, reason in _candidates(connection, request_ids or []):
        if feed_name not in feeds:
            continue
        locations = _locations(landing, archive, file)
        if not locations:
            outcome.missing.append(file)
        by_feed[feed_name] += [_Candidate(file, path, label, reason) for path, label in locations]
    if by_feed:
        with _staging(connection, tombstones, searched) as (staging, staged_tombstones):
            rules = _Rules(staged_tombstones, searched, contracts)
            for feed_name, candidates in by_feed.items():
                for batch in _batches(candidates):
                    outcome.files_searched += len(batch)
                    for rewrite in _rewrite_by_rule(staging, feeds[feed_name], batch, rules):
                        _record(connection, rewrite, reference, at)
                        outcome.rewrites.append(rewrite)
    for feed_name, file, path, label, checksum in _returned_originals(connection, landing, archive):
        feed = feeds.get(feed_name)
        if feed is None:
            continue
        outcome.files_searched += 1
        rewrite = _rewrite_again(connection, feed, file, path, label, checksum)
        if rewrite is not None:
            _record(connection, rewrite, reference, at)
            outcome.rewrites.append(rewrite)
    return outcome


# --------------------------------------------------------------------------- which files


@contextlib.contextmanager
def _staging(
    connection: duckdb.DuckDBPyConnection, tombstones: Tombstones | None, searched: Searched | None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Tombstones | None]]:
    """A second connection to the warehouse that stages and searches the landing files, with
    copies of what it needs from erasure's open transaction (the values searched for, the
    tombstones this run added), and the tombstones that point SQL at the copy.

    Erasure's transaction stays open until the rewrites are recorded, and DuckDB keeps every
    table dropped in a transaction until it ends: staged in it, each batch of files stayed in
    memory (about 750 MB per 10 clickstream files at a million customers). Here each batch is
    dropped for good before the next.
    """
    staging = connection.cursor()
    try:
        copies = [SEARCHED, MAILBOXES, ODD] if searched is not None else []
        if tombstones is not None:
            copies.append(TOMBSTONES)
            tombstones = dataclasses.replace(tombstones, table=STAGING_TOMBSTONES)
        for table in copies:
            copy = STAGING_TOMBSTONES if table == TOMBSTONES else table
            staging.register(
                "erasure_copy", connection.sql(f"select * from {table}").to_arrow_table()
            )
            staging.execute(f"create or replace temp table {copy} as select * from erasure_copy")
            staging.unregister("erasure_copy")
        yield staging, tombstones
    finally:
        staging.close()


def _candidates(
    connection: duckdb.DuckDBPyConnection, request_ids: list[str]
) -> list[tuple[str, str, str]]:
    """(feed, file, why) of every ledger file that may hold an erased person's rows."""
    rows = connection.execute(
        """
        with pending as (select unnest($requests::varchar[]) as request_id),
        touched as (
            select distinct feed, file from landing.removals
            where (reason = 'erased' and reference in (select request_id from pending))
                or (reason = 'expired' and exists (select 1 from pending))
        ),
        for_erasure as (
            select files.feed, files.file from landing.files as files
            where files.checksum in (
                select landed.checksum from landing.files as landed
                inner join touched using (feed, file)
            )
            union
            select feed, file from landing.files
            where status = 'quarantined' and exists (select 1 from pending)
        ),
        erased_on_landing as (
            select feed, file from landing.files as files
            where rows_erased > 0
                and not exists (
                    select 1 from landing.rewrites as rewrites
                    where rewrites.feed = files.feed and rewrites.file = files.file
                )
        )
        select feed, file, min(reason) from (
            select feed, file, $erasure as reason from for_erasure
            union all
            select feed, file, $landed as reason from erased_on_landing
        )
        group by feed, file
        order by feed, file
        """,
        {"requests": request_ids, "erasure": FOR_ERASURE, "landed": FOR_ERASED_ROWS},
    ).fetchall()
    return [(feed, file, reason) for feed, file, reason in rows]


def _locations(landing: Path, archive: Path, file: str) -> list[tuple[Path, str]]:
    """Where a ledger file lies now: in the landing folder and in the archive's day folders."""
    found = []
    path = landing / file
    if path.is_file() and not path.is_symlink():
        found.append((path, f"{LANDING_LABEL}/{file}"))
    for copy in archived_copies(archive, file):
        if not copy.is_symlink():
            found.append((copy, f"{ARCHIVE_LABEL}/{copy.relative_to(archive).as_posix()}"))
    return found


def _returned_originals(
    connection: duckdb.DuckDBPyConnection, landing: Path, archive: Path
) -> list[tuple[str, str, Path, str, str]]:
    """(feed, file, path, label, checksum) of every file at hand whose bytes are a file as it
    was before a rewrite: a rewritten file's original put back, or a copy of it the loader
    skipped as already landed."""
    if not table_exists(connection, "landing", "rewrites"):
        return []
    before = {
        checksum
        for (checksum,) in connection.execute(
            "select distinct checksum_before from landing.rewrites where action = ?", [REWRITTEN]
        ).fetchall()
    }
    if not before:
        return []
    names = connection.execute(
        "select distinct feed, file from landing.rewrites union "
        "select feed, file from landing.files where status = 'skipped' "
        "and checksum in (select checksum_before from landing.rewrites) order by all"
    ).fetchall()
    found = []
    for feed, file in names:
        for path, label in _locations(landing, archive, file):
            checksum = hashlib.sha256(path.read_bytes()).hexdigest()
            if checksum in before:
                found.append((feed, file, path, label, checksum))
    return found


# --------------------------------------------------------------------------- which records


@dataclass(frozen=True)
class _Candidate:
    """One place a ledger file lies, to be searched for erased people's records."""

    file: str  # the ledger's name
    path: Path
    label: str  # landing/<file> or landing_archive/<day>/<file>
    reason: str


@dataclass(frozen=True)
class _Rules:
    """What finds the records to remove: erasure's search and the tombstones."""

    tombstones: Tombstones | None
    searched: Searched | None
    contracts: Contracts


def _batches(candidates: list[_Candidate]) -> list[list[_Candidate]]:
    """The candidates in batches of at most BATCH_BYTES on disk, as the loader batches files
    (a larger file is a batch of its own), so a feed of many small files is staged a few
    times, not once per file."""
    batches: list[list[_Candidate]] = []
    size = 0
    for candidate in candidates:
        file_size = candidate.path.stat().st_size
        if not batches or (batches[-1] and size + file_size > BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(candidate)
        size += file_size
    return batches


def _rewrite_by_rule(
    connection: duckdb.DuckDBPyConnection, feed: Feed, batch: list[_Candidate], rules: _Rules
) -> list[FileRewrite]:
    """Read a batch of one feed's files with the loader's code and rewrite each without the
    records erasure's rule or the tombstones find; the rewrites, in the batch's order."""
    sources: dict[int, SourceFile] = {}
    for index, candidate in enumerate(batch):
        file_format = feed.file_format(candidate.path)
        if file_format is not None:
            content = candidate.path.read_bytes()
            sources[index] = SourceFile(index, candidate.path, candidate.file, file_format, content)
    if not sources:
        return []
    try:
        staged = stage_batch(connection, feed, list(sources.values()), rules.tombstones,
                             duplicates=False)  # fmt: skip
        dropped = _records_naming_erased(connection, feed, staged, rules)
        by_file: dict[int, dict[int, str | None]] = defaultdict(dict)
        for (index, number), request_id in dropped.items():
            by_file[index][number] = request_id
        # only a CSV record may span lines: the others are cut by their row numbers alone
        starts = _record_starts(
            connection, [index for index in by_file if sources[index].file_format == "csv"]
        )
        counts = dict(
            connection.execute(f"select _file, count(*) from {ROWS} group by 1").fetchall()
        )
    finally:
        drop_staged(connection)
    rewrites: dict[int, FileRewrite | None] = {}
    for index in staged.unreadable:
        source, candidate = sources[index], batch[index]
        rewrites[index] = _rewrite_unreadable(
            connection, feed, candidate.file, candidate.path, candidate.label, source.content,
            hashlib.sha256(source.content).hexdigest(), rules.tombstones, candidate.reason,
        )  # fmt: skip
    for index, rows in by_file.items():
        if index in staged.unreadable:
            continue
        source, candidate = sources[index], batch[index]
        data = _without_records(
            source.file_format, candidate.path, source.content, set(rows), starts.get(index, [])
        )
        rewrites[index] = _write(
            feed, candidate.file, candidate.path, candidate.label, source.content,
            hashlib.sha256(source.content).hexdigest(), data, counts.get(index, 0), rows,
            candidate.reason,
        )  # fmt: skip
    return [rewrite for _, rewrite in sorted(rewrites.items()) if rewrite is not None]


def _record_starts(connection: duckdb.DuckDBPyConnection, files: list[int]) -> dict[int, list[int]]:
    """File index -> the row numbers (first lines) of its records, for the files given."""
    starts: dict[int, list[int]] = {index: [] for index in files}
    if files:
        for index, number in connection.execute(
            f"select _file, _row_number from {ROWS} where list_contains(?::integer[], _file) "
            "order by 1, 2",
            [files],
        ).fetchall():
            starts[index].append(number)
    return starts


def _records_naming_erased(
    connection: duckdb.DuckDBPyConnection, feed: Feed, staged: StagedBatch, rules: _Rules
) -> dict[tuple[int, int], str | None]:
    """(file index, row number) -> the request it belongs to (None when unknown) of every
    record to remove."""
    found: dict[tuple[int, int], str | None] = {}

    def add(rows: list[tuple[int, int, str | None]]) -> None:
        for index, number, request_id in rows:
            if found.get((index, number)) is None:
                found[(index, number)] = request_id

    tombstones, searched = rules.tombstones, rules.searched
    refused = staged.quarantined + staged.erased_by_text
    if searched is not None:
        personal = feed_declarations(rules.contracts)[feed.qualified_table].personal
        columns = tuple(c for c in (*feed.column_names, *feed.derived_columns) if c in personal)
        if columns:
            add(
                connection.execute(
                    f"select staged._file, staged._row_number, found.request_id from ("
                    f"{rows_naming_erased_sql(STAGED, columns, searched)}) as found "
                    f"inner join {STAGED} as staged on staged.rowid = found.row_id"
                ).fetchall()
            )
        if refused:
            texts = pa.table(
                {
                    "file": pa.array([r.file for r in refused], pa.int64()),
                    "row_number": pa.array([r.row_number for r in refused], pa.int64()),
                    "raw_text": pa.array([r.raw_text for r in refused], pa.string()),
                }
            )
            connection.register("erasure_refused_texts", texts)
            connection.execute(
                f"create or replace temp table {REFUSED} as select * from erasure_refused_texts"
            )
            connection.unregister("erasure_refused_texts")
            try:
                add(
                    connection.execute(
                        f"select refused.file, refused.row_number, found.request_id from ("
                        f"{rows_naming_erased_sql(REFUSED, ('raw_text',), searched)}) as found "
                        f"inner join {REFUSED} as refused on refused.rowid = found.row_id"
                    ).fetchall()
                )
            finally:
                connection.execute(f"drop table if exists temp.{REFUSED}")
    if tombstones is not None:
        add(_tombstoned_records(connection, feed, tombstones))
        owners = _tombstone_owners(connection, tombstones)
        for row in staged.erased_by_text:
            hashes = {
                secrets.salted_hash(t, tombstones.salt) for t in identifier_tokens(row.raw_text)
            }
            owner = min((owners[h] for h in hashes if h in owners), default=None)
            add([(row.file, row.row_number, owner)])
    return found


def _tombstoned_records(
    connection: duckdb.DuckDBPyConnection, feed: Feed, tombstones: Tombstones
) -> list[tuple[int, int, str]]:
    """(file index, row number, request) of the staged records whose erase_by values are
    tombstoned."""
    values = erase_by_values(feed)
    if not values:
        return []
    listed = ", ".join(value for _, value in values)
    observed = f"select _file, _row_number, unnest([{listed}]) as value from {STAGED}"
    erased = tombstoned_values_sql(
        f"select value from ({observed})", tombstones.salt, tombstones.table
    )
    return connection.execute(
        f"select observed._file, observed._row_number, min(erased.erasure_request_id) "
        f"from ({observed}) as observed inner join ({erased}) as erased "
        "using (value) group by all"
    ).fetchall()


def _tombstone_owners(
    connection: duckdb.DuckDBPyConnection, tombstones: Tombstones
) -> dict[str, str]:
    return dict(
        connection.execute(
            f"select identifier_hash, erasure_request_id from {tombstones.table}"
        ).fetchall()
    )


def _rewrite_unreadable(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    file: str,
    path: Path,
    label: str,
    content: bytes,
    checksum: str,
    tombstones: Tombstones | None,
    reason: str,
) -> FileRewrite | None:
    """A file the loader cannot read (it was refused whole): the lines that name an erased
    person go; a file that is not text (Parquet, broken gzip) and names one is deleted."""
    names = _names_erased_in_text(connection, tombstones)
    text, compressed = content, False
    if is_gzip(path):
        with contextlib.suppress(OSError, EOFError, zlib.error):
            text, compressed = gzip.decompress(content), True
    lines = _lines(text)
    dropped = {
        number: request_id
        for number, line in enumerate(lines, start=1)
        if (request_id := names(line.decode("utf-8", "backslashreplace"))) is not False
    }
    if not dropped:
        return None
    is_text = feed.file_format(path) != "parquet" and (compressed or not is_gzip(path))
    if not is_text:
        path.unlink()
        return FileRewrite(
            feed.name, file, label, DELETED, len(lines), len(lines),
            _count_by_request(dropped), checksum, None, reason, tuple(sorted(dropped)),
        )  # fmt: skip
    data = b"".join(line for n, line in enumerate(lines, start=1) if n not in dropped)
    if compressed:
        data = gzip.compress(data, mtime=0)
    return _write(feed, file, path, label, content, checksum, data, len(lines), dropped, reason)


def _names_erased_in_text(connection: duckdb.DuckDBPyConnection, tombstones: Tombstones | None):
    """A function from a line of text to the request it names (None when a tombstone of an
    earlier request), or False when it names nobody erased."""
    values: dict[str, str] = {}
    mailboxes: dict[str, str] = {}
    if _temp_exists(connection, SEARCHED):
        values = dict(
            connection.execute(
                f"select value, min(request_id) from {SEARCHED} group by 1"
            ).fetchall()
        )
        mailboxes = dict(
            connection.execute(
                f"select value, min(request_id) from {MAILBOXES} group by 1"
            ).fetchall()
        )
    owners = _tombstone_owners(connection, tombstones) if tombstones else {}

    def names(text: str) -> str | None | bool:
        for token in identifier_tokens(text):
            if token in values:
                return values[token]
            if "@" in token and mailbox_key(token) in mailboxes:
                return mailboxes[mailbox_key(token)]
            if tombstones and (hashed := secrets.salted_hash(token, tombstones.salt)) in owners:
                return owners[hashed]
        return False

    return names


def _temp_exists(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from duckdb_tables() where temporary and table_name = ?", [name]
        ).fetchone()[0]
    )


# --------------------------------------------------------------------------- the same again


def _rewrite_again(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    file: str,
    path: Path,
    label: str,
    checksum: str,
) -> FileRewrite | None:
    """An original of a rewritten file: remove the rows its first rewrite removed."""
    dropped = {
        number: None
        for (number,) in connection.execute(
            "select distinct row_number from landing.rewritten_rows where checksum_before = ?",
            [checksum],
        ).fetchall()
    }
    content = path.read_bytes()
    file_format = feed.file_format(path)
    if not dropped or file_format is None:
        return None
    source = SourceFile(0, path, file, file_format, content)
    try:
        staged = stage_batch(connection, feed, [source], None)
        if 0 in staged.unreadable:
            lines = _lines(_decompressed(path, content))
            data = b"".join(line for n, line in enumerate(lines, start=1) if n not in dropped)
            data = gzip.compress(data, mtime=0) if is_gzip(path) else data
            return _write(
                feed, file, path, label, content, checksum, data, len(lines), dropped, FOR_ORIGINAL
            )
        starts = [
            n
            for (n,) in connection.execute(f"select _row_number from {ROWS} order by 1").fetchall()
        ]
    finally:
        drop_staged(connection)
    data = _without_records(file_format, path, content, set(dropped), starts)
    return _write(
        feed, file, path, label, content, checksum, data, len(starts), dropped, FOR_ORIGINAL
    )


# --------------------------------------------------------------------------- writing


def _without_records(
    file_format: str, path: Path, content: bytes, dropped: set[int], starts: list[int]
) -> bytes:
    """The file's bytes without the records numbered `dropped`, in its own format."""
    if file_format == "parquet":
        return _parquet_without(path, dropped)
    data = _decompressed(path, content)
    if file_format == "csv":
        lines = _record_lines(starts, _line_count(data), dropped)
        data = _without_lines(data, lines)
    elif file_format == "jsonl":
        data = _without_lines(data, dropped)
    else:
        data = _xml_without_items(data, dropped)
    return gzip.compress(data, mtime=0) if is_gzip(path) else data


def _decompressed(path: Path, content: bytes) -> bytes:
    return gzip.decompress(content) if is_gzip(path) else content


def _lines(data: bytes) -> list[bytes]:
    """The lines as the loader numbers them (split after each LF), terminators kept."""
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def _record_lines(starts: list[int], line_count: int, dropped: set[int]) -> set[int]:
    """The lines of the CSV records numbered `dropped`: from each one's first line to the
    line before the next record (a quoted field may span lines)."""
    lines: set[int] = set()
    following = dict(zip(starts, [*starts[1:], line_count + 1], strict=True))
    for start in dropped:
        lines.update(range(start, following.get(start, start + 1)))
    return lines


def _line_count(data: bytes) -> int:
    return len(line_starts(data)) - 1


def _without_lines(data: bytes, dropped: set[int]) -> bytes:
    """The text without the lines numbered `dropped` (a byte-order mark stays): the bytes
    between the dropped lines are copied whole, so a file of gigabytes is cut in a second."""
    bom = BOM if data.startswith(BOM) else b""
    body = memoryview(data)[len(bom) :]
    starts = line_starts(body)
    pieces, kept_from = [bom], 0
    for number in sorted(n for n in dropped if 1 <= n < len(starts)):
        pieces.append(body[kept_from : starts[number - 1]])
        kept_from = starts[number]
    pieces.append(body[kept_from:])
    return b"".join(pieces)


def _parquet_without(path: Path, dropped: set[int]) -> bytes:
    """The Parquet file without the rows numbered `dropped` (from 1), same schema and codec."""
    parquet = pq.ParquetFile(path)
    table = parquet.read()
    keep = pc.invert(pc.is_in(pa.array(range(1, table.num_rows + 1)), pa.array(sorted(dropped))))
    metadata = parquet.metadata
    codec = (
        metadata.row_group(0).column(0).compression.lower()
        if metadata.num_row_groups and metadata.num_columns
        else "snappy"
    )
    buffer = io.BytesIO()
    pq.write_table(table.filter(keep), buffer, compression=codec)
    return buffer.getvalue()


def _xml_without_items(data: bytes, dropped: set[int]) -> bytes:
    """The RSS feed without its `<item>`s numbered `dropped` (from 1), every other byte kept;
    an item's line goes with it when nothing else is on it."""
    spans: list[tuple[int, int]] = []
    depth: list[str] = []
    parser = expat.ParserCreate()
    opened = [0]

    def start(name: str, attributes: dict) -> None:
        depth.append(name)
        if depth == ["rss", "channel", "item"]:
            opened[0] = parser.CurrentByteIndex

    def end(name: str) -> None:
        if depth == ["rss", "channel", "item"]:
            spans.append((opened[0], data.index(b">", parser.CurrentByteIndex) + 1))
        depth.pop()

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.Parse(data, True)
    out, position = [], 0
    for number, (begin, finish) in enumerate(spans, start=1):
        if number not in dropped:
            continue
        line_start = data.rfind(b"\n", 0, begin) + 1
        if not data[line_start:begin].strip():
            begin = line_start
        line_end = data.find(b"\n", finish)
        if line_end >= 0 and not data[finish:line_end].strip():
            finish = line_end + 1
        out.append(data[position:begin])
        position = finish
    out.append(data[position:])
    return b"".join(out)


def _write(
    feed: Feed,
    file: str,
    path: Path,
    label: str,
    before: bytes,
    checksum: str,
    data: bytes,
    rows_before: int,
    dropped: dict[int, str | None],
    reason: str,
) -> FileRewrite:
    """Replace the file with `data` (atomically, keeping its permissions)."""
    temporary = path.with_name(f".{path.name}.erasure-tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, path.stat().st_mode & 0o777)
    os.replace(temporary, path)
    return FileRewrite(
        feed=feed.name,
        file=file,
        location=label,
        action=REWRITTEN,
        rows_before=rows_before,
        rows_removed=len(dropped),
        by_request=_count_by_request(dropped),
        checksum_before=checksum,
        checksum_after=hashlib.sha256(data).hexdigest(),
        reason=reason,
        rows=tuple(sorted(dropped)),
    )


def _count_by_request(dropped: dict[int, str | None]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for request_id in dropped.values():
        if request_id:
            counts[request_id] += 1
    return dict(counts)


def _record(
    connection: duckdb.DuckDBPyConnection, rewrite: FileRewrite, reference: str, at: datetime
) -> None:
    """The ledger's record of a rewrite, its removed rows, and its audit row."""
    connection.execute(
        "insert into landing.rewrites values (?, ?, ?, ?, ?, ?, ?, ?, ?::timestamp, ?, ?)",
        [
            rewrite.feed,
            rewrite.file,
            rewrite.location,
            rewrite.action,
            rewrite.checksum_before,
            rewrite.checksum_after,
            rewrite.rows_before,
            rewrite.rows_removed,
            at,
            rewrite.reason,
            reference,
        ],
    )
    connection.execute(
        "insert into landing.rewritten_rows select ?, unnest(?::bigint[])",
        [rewrite.checksum_before, list(rewrite.rows)],
    )
    audit.record(
        connection,
        "landing_file_rewritten",
        rewrite.file,
        run_id=reference,
        files=[rewrite.location],
        rows=rewrite.rows_removed,
        details={
            "feed": rewrite.feed,
            "action": rewrite.action,
            "reason": rewrite.reason,
            "rows_before": rewrite.rows_before,
            "rows_removed_by_request": dict(sorted(rewrite.by_request.items())),
            "checksum_before": rewrite.checksum_before,
            "checksum_after": rewrite.checksum_after,
        },
    )
