"""Read a batch of landing files into DuckDB, every record accounted for.

Reading a file leaves its records in the temp table `landing_rows`: a row number, one text
column per contract column, and `_parse_reason` for a record that could not be read (a CSV
line with the wrong number of fields, a line that is not valid UTF-8 or not a JSON object).
DuckDB does the splitting, set-based, for every file of a format at once; Python splits the
lines of a file (numpy, on the bytes) and reads only what SQL cannot: the XML feed, and the
few records SQL leaves to it (`_pending`): lines in the wrong encoding, CSV records whose
quoting spans lines, JSON that DuckDB and Python's json module would read differently.

A file that cannot be read at all raises `FileUnreadable`; the loader quarantines it whole.

Row numbers: the line in the file for CSV (the header is line 1; a record whose quoted field
spans lines is numbered by its first line) and JSON Lines, the row (from 1) for Parquet, the
<item> (from 1) for XML. A JSON line in which a key appears twice lands its first value.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import numpy as np
import pyarrow as pa

from ml.sql import quote_ident, quote_literal

from .contracts import Feed, ReadOptions, is_gzip

RAW_TEXT_LIMIT = 2000  # characters of a rejected row kept in the quarantine
ROWS = "landing_rows"


class FileUnreadable(Exception):
    """The file as a whole cannot be read: wrong format, broken structure, missing columns."""

    def __init__(self, reason: str, missing: list[str] | None = None):
        super().__init__(reason)
        self.missing = missing or []


@dataclass
class SourceFile:
    """One file of a batch: `index` is its number in `landing_rows._file`."""

    index: int
    path: Path
    relative: str
    file_format: str
    content: bytes  # as stored (the checksum's bytes)


@dataclass
class Reading:
    """What reading found in one file; its records are in `landing_rows`."""

    source: SourceFile
    raw_text: Callable[[int], str]  # the original text of a record, clipped, by row number
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> the file's name
    ignored: list[str] = field(default_factory=list)  # the file's columns outside the contract
    rejected_text: dict[int, str] = field(default_factory=dict)  # unreadable records' text

    @property
    def notes(self) -> list[str]:
        if not self.ignored:
            return []
        return [f"ignored column(s) not in the contract: {', '.join(self.ignored)}"]

    @property
    def by_alias(self) -> dict[str, str]:
        """Contract columns the file names otherwise: column -> the file's name."""
        return {c: name for c, name in self.columns.items() if name != c}


def clip(text: str) -> str:
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "…"


def create_rows_table(connection: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    columns = ", ".join(f"{quote_ident(c)} varchar" for c in feed.column_names)
    connection.execute(
        f"create or replace temp table {ROWS} (_file integer, _row_number bigint, {columns}, "
        "_parse_reason varchar, _pending boolean)"
    )


# --------------------------------------------------------------------------- bytes to lines

_DECODE_ERRORS = threading.local()


def _note_decode_error(error: UnicodeDecodeError) -> tuple[str, int]:
    _DECODE_ERRORS.positions.append(error.start)
    return "\ufffd", error.end


codecs.register_error("teal-landing-note", _note_decode_error)

ENCODING_WORDS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "cp1252": "windows-1252"}


@dataclass
class Lines:
    """A text file split into lines (on LF; one CR before it is part of the terminator)."""

    data: bytes  # the text in UTF-8
    starts: np.ndarray  # offset of each line in `data`, and len(data) last
    original: bytes  # the bytes as in the file (decompressed)
    original_starts: np.ndarray
    codec: str
    bad: dict[int, str]  # line number -> why it is not text ("is not valid UTF-8 (byte ...)")

    @property
    def count(self) -> int:
        return len(self.starts) - 1

    def raw(self, number: int) -> bytes:
        """The line's bytes as in the file, without its terminator."""
        line = self.original[self.original_starts[number - 1] : self.original_starts[number]]
        line = line[:-1] if line.endswith(b"\n") else line
        return line[:-1] if line.endswith(b"\r") else line

    def text(self, number: int) -> str:
        """The line as text (a line that is not valid text with \\x escapes)."""
        return self.raw(number).decode(self.codec, "backslashreplace")

    def arrow(self, first: int, unread: set[int]) -> pa.LargeStringArray:
        """Lines `first`.. as Arrow text (terminators kept), null where SQL must not read."""
        valid = np.ones(self.count, dtype=bool)
        for number in unread:
            valid[number - 1] = False
        array = pa.LargeStringArray.from_buffers(
            self.count,
            pa.py_buffer(self.starts.astype(np.int64)),
            pa.py_buffer(self.data),
            pa.py_buffer(np.packbits(valid, bitorder="little")),
            int(self.count - valid.sum()),
        )
        return array.slice(first - 1)

    def awkward_endings(self) -> set[int]:
        """Lines ending in two CRs, which SQL's rtrim would strip both of (Python strips one)."""
        ends = self.starts[1:] - 1
        data = np.frombuffer(self.data, dtype=np.uint8)
        newline = data[ends] == 10
        last = np.where(newline, ends - 1, ends)
        two = (
            (last >= 1) & (data[np.maximum(last, 0)] == 13) & (data[np.maximum(last - 1, 0)] == 13)
        )
        return {int(i) + 1 for i in np.flatnonzero(two)}


def line_starts(data: bytes) -> np.ndarray:
    """Where each line starts (split after each LF), and the end: line n (from 1) is
    `data[starts[n - 1]:starts[n]]`, and there are `len(starts) - 1` lines."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.empty(len(newlines) + 2, dtype=np.int64)
    starts[0], starts[1:-1], starts[-1] = 0, newlines + 1, len(data)
    return starts if starts[-2] != len(data) else starts[:-1]


def _utf8_errors(content: bytes, starts: np.ndarray) -> list[int]:
    """Where the bytes that are not valid UTF-8 start, as decoding with an error handler would
    find them. Only a line with a byte above 0x7F can hold one, and no UTF-8 sequence spans a
    line feed, so when such bytes are few (clickstream, orders) only their lines are decoded;
    text with many (names and addresses in most languages) is decoded whole."""
    high = np.frombuffer(content, dtype=np.uint8) > 0x7F
    count = int(np.count_nonzero(high))
    if count == 0:
        return []
    if count * 10 > len(starts):
        try:
            content.decode("utf-8")
            return []
        except UnicodeDecodeError:
            spans = [(0, len(content))]
    else:
        numbers = np.unique(np.searchsorted(starts, np.flatnonzero(high), side="right"))
        spans = [(int(starts[n - 1]), int(starts[n])) for n in numbers]
    del high
    found: list[int] = []
    for start, end in spans:
        _DECODE_ERRORS.positions = []
        try:
            codecs.utf_8_decode(memoryview(content)[start:end], "teal-landing-note", True)
            found += [start + position for position in _DECODE_ERRORS.positions]
        finally:
            _DECODE_ERRORS.positions = []
    return found


def split_lines(content: bytes, options: ReadOptions, bom: bool) -> Lines:
    """The file's lines, in UTF-8, with the lines not valid in its encoding and why.

    `bom`: drop a UTF-8 byte order mark at the start (always for CSV, whose header is read
    as utf-8-sig; for JSON Lines only when the feed's encoding is utf-8-sig).
    """
    codec = options.codec
    if content.startswith(codecs.BOM_UTF8) and (bom or codec == "utf-8-sig"):
        content = content[len(codecs.BOM_UTF8) :]
    codec = "utf-8" if codec == "utf-8-sig" else codec
    original_starts = line_starts(content)
    if codec == "utf-8":
        data, starts = content, original_starts
        positions = _utf8_errors(content, original_starts)
    else:
        _DECODE_ERRORS.positions = []
        try:
            data = content.decode(codec, "teal-landing-note").encode("utf-8")
            positions = _DECODE_ERRORS.positions
        finally:
            _DECODE_ERRORS.positions = []
        starts = line_starts(data)
    words = ENCODING_WORDS.get(codec, codec)
    bad: dict[int, str] = {}
    for position in positions:
        number = int(np.searchsorted(original_starts, position, side="right"))
        if number not in bad:
            at = position - int(original_starts[number - 1])
            bad[number] = (
                f"is not valid {words} (byte 0x{content[position]:02x} at position {at + 1})"
            )
    return Lines(data, starts, content, original_starts, codec, bad)


def file_bytes(source: SourceFile) -> bytes:
    """The file's content, decompressed when it is gzip."""
    if not is_gzip(source.path):
        return source.content
    try:
        return gzip.decompress(source.content)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileUnreadable(f"is not a readable gzip file ({exc})") from None


# --------------------------------------------------------------------------- columns by name


def _name_key(name: str) -> str:
    """A column name as names are compared: case, blanks, `_` and `-` runs not told apart."""
    return " ".join(re.split(r"[\s_-]+", str(name).strip())).casefold()


def match_columns(feed: Feed, names: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
    """Where each contract column is among a file's column names: (column -> position,
    missing columns, ignored names). A name matches exactly, else ignoring case, blanks,
    underscores and hyphens (`First Name` is first_name), as the column or one of its
    `aliases`."""
    keys = [_name_key(n) for n in names]
    positions: dict[str, int] = {}
    for column in feed.column_names:
        if column in names:
            positions[column] = names.index(column)
            continue
        wanted = [_name_key(column)] + [_name_key(a) for a in feed.aliases.get(column, ())]
        found = next((i for want in wanted for i, k in enumerate(keys) if k == want), None)
        if found is not None and found not in positions.values():
            positions[column] = found
    supplied = {c.name for c in feed.supplied}  # a default or a derivation stands in
    missing = [c for c in feed.column_names if c not in positions and c not in supplied]
    used = set(positions.values())
    ignored = [n for i, n in enumerate(names) if i not in used and n not in feed.column_names]
    return positions, missing, ignored


def _class_char(ch: str) -> str:
    """A character written for a regular expression's [...] class."""
    return "\\" + ch if ch in "]\\^-[" else ch


# --------------------------------------------------------------------------- CSV


@dataclass
class _CsvFile:
    source: SourceFile
    lines: Lines
    positions: dict[str, int]  # contract column -> field number in the header (from 0)
    width: int
    options: ReadOptions
    reading: Reading

    @property
    def layout(self) -> tuple:
        return (tuple(self.positions.items()), self.width)


def _dialect(options: ReadOptions) -> dict:
    if options.quote is None:
        return {"delimiter": options.delimiter, "quoting": csv.QUOTE_NONE}
    return {"delimiter": options.delimiter, "quotechar": options.quote}


def open_csv(source: SourceFile, feed: Feed) -> _CsvFile:
    """The file's lines and header; FileUnreadable when it is empty or lacks a column."""
    lines = split_lines(file_bytes(source), feed.read, bom=True)
    if lines.count == 0:
        raise FileUnreadable("is empty: a CSV file needs at least a header line")
    if 1 in lines.bad:
        raise FileUnreadable(f"has a header line that {lines.bad[1]}")
    header_text = lines.raw(1).decode(lines.codec)
    header = [name.strip() for name in next(csv.reader([header_text], **_dialect(feed.read)), [])]
    positions, missing, ignored = match_columns(feed, header)
    if missing:
        raise FileUnreadable(
            f"has a header without the column(s) {', '.join(missing)}; "
            f"expected {', '.join(feed.column_names)}",
            missing,
        )

    def raw_text(number: int) -> str:
        return clip(lines.text(number))

    reading = Reading(source, raw_text, {c: header[i] for c, i in positions.items()}, ignored)
    return _CsvFile(source, lines, positions, len(header), feed.read, reading)


def _field_pattern(options: ReadOptions) -> str:
    """A regular expression for one CSV field as Python's csv reader reads it, with groups for
    (text inside quotes, text after the closing quote, unquoted text)."""
    d, q = _class_char(options.delimiter), _class_char(options.quote)
    return f"(?:[{q}]((?:[^{q}]|[{q}][{q}])*)[{q}]([^{d}{q}][^{d}]*)?|([^{q}{d}][^{d}]*)|)"


def _quoted_fields(options: ReadOptions, width: int) -> tuple[str, str, str]:
    """SQL over a line `t`: (it fits `width` fields, its parts, the list of field values)."""
    pattern = quote_literal(
        "^" + f"[{_class_char(options.delimiter)}]".join([_field_pattern(options)] * width) + "$"
    )
    groups = [f"g{i}" for i in range(3 * width)]
    quote = quote_literal(options.quote)
    values = ", ".join(
        f"replace(parts.g{3 * i}, {quote} || {quote}, {quote}) "
        f"|| parts.g{3 * i + 1} || parts.g{3 * i + 2}"
        for i in range(width)
    )
    return (
        f"regexp_full_match(t, {pattern})",
        f"regexp_extract(t, {pattern}, {groups!r})",
        f"[{values}]",
    )


def stage_csv(connection: duckdb.DuckDBPyConnection, feed: Feed, files: list[_CsvFile]) -> None:
    """Split every line (from line 2) of the files into fields, in DuckDB, per header layout."""
    groups: dict[tuple, list[_CsvFile]] = {}
    for item in files:
        groups.setdefault(item.layout, []).append(item)
    for group in groups.values():
        _stage_csv_layout(connection, feed, group)
    _read_pending_csv(connection, feed, {f.source.index: f for f in files})


def _stage_csv_layout(
    connection: duckdb.DuckDBPyConnection, feed: Feed, files: list[_CsvFile]
) -> None:
    first, options = files[0], files[0].options
    lines = _lines_table(files, 2, lambda f: set(f.lines.bad) | f.lines.awkward_endings())
    delimiter = quote_literal(options.delimiter)
    if options.quote is None:
        plain, fits, parts, quoted = "true", "true", "null", "null"
    else:
        plain = f"not contains(t, {quote_literal(options.quote)})"
        fits, parts, quoted = _quoted_fields(options, first.width)
    columns = ", ".join(
        f"fields[{first.positions[c] + 1}] as {quote_ident(c)}"
        if c in first.positions
        else f"null::varchar as {quote_ident(c)}"
        for c in feed.column_names
    )
    wrong_count = (
        f"case when not _pending and len(fields) <> {first.width} then 'has ' || len(fields) "
        f"|| ' fields, expected {first.width} as in the header' end"
    )
    connection.register("landing_lines", lines)
    try:
        connection.execute(
            f"""
            insert into {ROWS}
            select _file, _row_number, {columns}, {wrong_count}, _pending
            from (
                select _file, _row_number, _pending,
                    case when _pending then null
                        when t = '' then []::varchar[]
                        when plain then string_split(t, {delimiter})
                        else {quoted} end as fields
                from (
                    select *, case when not _pending and not plain then {parts} end as parts
                    from (
                        select _file, _row_number, t, {plain} as plain,
                            t is null or not ({plain} or {fits}) as _pending
                        from (
                            select _file, _line as _row_number,
                                rtrim(t, chr(13) || chr(10)) as t
                            from landing_lines
                        )
                    )
                )
            )
            """
        )
    finally:
        connection.unregister("landing_lines")


def _lines_table(files, first_line: int, unread: Callable) -> pa.Table:
    arrays, numbers, lines = [], [], []
    for item in files:
        array = item.lines.arrow(first_line, unread(item))
        arrays.append(array)
        numbers.append(np.full(len(array), item.source.index, dtype=np.int32))
        lines.append(np.arange(first_line, first_line + len(array), dtype=np.int64))
    return pa.Table.from_arrays(
        [
            pa.array(np.concatenate(numbers)),
            pa.array(np.concatenate(lines)),
            pa.chunked_array(arrays, type=pa.large_string()),
        ],
        names=["_file", "_line", "t"],
    )


def _read_pending_csv(
    connection: duckdb.DuckDBPyConnection, feed: Feed, files: dict[int, _CsvFile]
) -> None:
    """Read the records SQL left to Python with Python's csv module, as the loader always
    did: lines not valid in the file's encoding, and records whose quoting spans lines."""
    pending = connection.execute(
        f"select _file, _row_number from {ROWS} where _pending order by all"
    ).fetchall()
    records: list[tuple] = []
    continuations: dict[tuple[int, int], None] = {}  # lines used by a record before them
    for index, number in pending:
        item = files[index]
        if (index, number) in continuations:
            continue
        if number in item.lines.bad:
            item.reading.rejected_text[number] = item.lines.text(number)
            records.append((index, number, None, "line " + item.lines.bad[number]))
            continue
        values, used, reason = _csv_record(item, number)
        continuations.update(((index, n), None) for n in used[1:])
        if reason:
            item.reading.rejected_text[number] = item.lines.text(used[-1])
        records.append((index, number, values, reason))
    _write_python_records(connection, feed, records, list(continuations))


def _csv_record(item: _CsvFile, start: int) -> tuple[dict | None, list[int], str | None]:
    """The record that starts at line `start`: (values by column, lines it used, reason)."""
    used: list[int] = []

    def texts():
        for number in range(start, item.lines.count + 1):
            if number not in item.lines.bad:
                used.append(number)
                yield item.lines.raw(number).decode(item.lines.codec)

    try:
        fields = next(csv.reader(texts(), **_dialect(item.options)))
    except csv.Error as exc:
        return None, used[:1], f"is not valid CSV ({exc})"
    if len(fields) != item.width:
        return None, used, f"has {len(fields)} fields, expected {item.width} as in the header"
    return {c: fields[p] for c, p in item.positions.items()}, used, None


def _write_python_records(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    records: list[tuple[int, int, dict | None, str | None]],
    continuations: list[tuple[int, int]],
) -> None:
    """Put the records Python read in place of their pending rows; drop the lines a record
    spanning lines used after its first."""
    if records:
        names = feed.column_names
        table = pa.table(
            {
                "_file": pa.array([r[0] for r in records], pa.int32()),
                "_row_number": pa.array([r[1] for r in records], pa.int64()),
                **{n: pa.array([(r[2] or {}).get(n) for r in records], pa.string()) for n in names},
                "_parse_reason": pa.array([r[3] for r in records], pa.string()),
            }
        )
        assignments = ", ".join(f"{quote_ident(n)} = p.{quote_ident(n)}" for n in names)
        connection.register("landing_python_rows", table)
        try:
            connection.execute(
                f"update {ROWS} set {assignments}, _parse_reason = p._parse_reason "
                f"from landing_python_rows as p where {ROWS}._file = p._file "
                f"and {ROWS}._row_number = p._row_number"
            )
        finally:
            connection.unregister("landing_python_rows")
    if continuations:
        used = pa.table(
            {
                "_file": pa.array([c[0] for c in continuations], pa.int32()),
                "_row_number": pa.array([c[1] for c in continuations], pa.int64()),
            }
        )
        connection.register("landing_continuations", used)
        try:
            connection.execute(
                f"delete from {ROWS} using landing_continuations as c "
                f"where {ROWS}._file = c._file and {ROWS}._row_number = c._row_number"
            )
        finally:
            connection.unregister("landing_continuations")


# --------------------------------------------------------------------------- JSON Lines

# Where DuckDB's JSON reader and Python's json module part ways, a line goes to Python:
# - a line that does not start with `{` (leading blanks, arrays, scalars: rare);
# - a trailing comma, which DuckDB takes and Python refuses;
# - JSON text (a `json` column) holding a number DuckDB writes otherwise (1e+16, 1e-05), a
#   nan or inf, or an escaped control character.
# Differences left, each for input no exporter writes (tests/test_landing_formats.py shows
# them): a key written twice in one line lands its first value (Python kept the last); a bare
# nan or inf (any case) is read as the word (Python refused the line or wrote nan and inf);
# a number beyond a double's range (1e400) in a text column lands as written (Python: inf).
TRAILING_COMMA = r"regexp_matches(t, ',\s*[\]}]')"
JSON_TEXT_DIFFERENCES = (
    r"[:\[,]\s*[-+]?(?:(?i:nan|inf)|[0-9]+(?:\.[0-9]*)?[eE]|0\.0000|[0-9]{17,})"
    r"|\\u00[01][0-9a-fA-F]"
)
JSON_BLANKS = " \t\n\r\x0b\x0c"  # what Python's bytes.strip() removes


@dataclass
class _JsonFile:
    source: SourceFile
    lines: Lines
    reading: Reading


def open_jsonl(source: SourceFile, feed: Feed) -> _JsonFile:
    lines = split_lines(file_bytes(source), feed.read, bom=False)

    def raw_text(number: int) -> str:
        return clip(lines.text(number))

    return _JsonFile(source, lines, Reading(source, raw_text, {c: c for c in feed.column_names}))


def _json_keys(feed: Feed, column: str) -> list[str]:
    return [column, *feed.aliases.get(column, ())]


def _json_path(key: str) -> str:
    return "$." + json.dumps(key)


def stage_jsonl(connection: duckdb.DuckDBPyConnection, feed: Feed, files: list[_JsonFile]) -> None:
    """One record per line that is not blank; DuckDB reads the JSON objects it reads exactly
    as Python does (one parse per line, into the contract's columns), Python reads the rest
    (`_read_pending_json`)."""
    lines = _lines_table(files, 1, lambda f: set(f.lines.bad))
    keys = {c.name: _json_keys(feed, c.name) for c in feed.columns}
    types = {
        k: ("JSON" if c.type == "json" else "VARCHAR") for c in feed.columns for k in keys[c.name]
    }
    shape = quote_literal(json.dumps(types))
    values = {
        c: "coalesce(" + ", ".join(f"struct_extract(j, {quote_literal(k)})" for k in keys[c]) + ")"
        for c in feed.column_names
    }
    differs = [
        f"coalesce(regexp_matches({values[c.name]}, {quote_literal(JSON_TEXT_DIFFERENCES)}), false)"
        for c in feed.columns
        if c.type == "json"
    ]
    columns = ", ".join(f"{values[c]} as {quote_ident(c)}" for c in feed.column_names)
    blank = (
        f"case when strlen(t) > 16 then false else trim(t, {quote_literal(JSON_BLANKS)}) = '' end"
    )
    connection.register("landing_lines", lines)
    try:
        connection.execute(
            f"""
            insert into {ROWS}
            select _file, _row_number, {columns}, null,
                j is null or {" or ".join(differs) or "false"}
            from (
                select _file, _row_number, case when object then from_json(t, {shape}) end as j
                from (
                    select _file, _line as _row_number, t,
                        coalesce(starts_with(t, '{{') and json_valid(t), false)
                        and not {TRAILING_COMMA} as object
                    from landing_lines
                    where t is null or not ({blank})
                )
            )
            """
        )
    finally:
        connection.unregister("landing_lines")
    _read_pending_json(connection, feed, {f.source.index: f for f in files})


def _as_text(value: object, is_json: bool) -> str | None:
    if value is None:
        return None
    if is_json or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_pending_json(
    connection: duckdb.DuckDBPyConnection, feed: Feed, files: dict[int, _JsonFile]
) -> None:
    pending = connection.execute(
        f"select _file, _row_number from {ROWS} where _pending order by all"
    ).fetchall()
    blank = {(i, n) for i, n in pending if not files[i].lines.raw(n).strip()}
    records = [_json_record(feed, files[i], n) for i, n in pending if (i, n) not in blank]
    _write_python_records(connection, feed, records, sorted(blank))


def _json_record(feed: Feed, item: _JsonFile, number: int) -> tuple:
    """(file, line, values by column or None, reason) of one line, read by Python's json."""
    index, reading = item.source.index, item.reading
    if number in item.lines.bad:
        reading.rejected_text[number] = item.lines.text(number)
        return index, number, None, "line " + item.lines.bad[number]
    text = item.lines.raw(number).decode(item.lines.codec)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        reading.rejected_text[number] = clip(text)
        return index, number, None, f"line is not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(document, dict):
        reading.rejected_text[number] = clip(text)
        kind = type(document).__name__.replace("list", "array").replace("dict", "object")
        return index, number, None, f"line is a JSON {kind}, expected an object"
    values = {}
    for column in feed.columns:
        found = [document.get(k) for k in _json_keys(feed, column.name)]
        value = next((v for v in found if v is not None), None)
        values[column.name] = _as_text(value, column.type == "json")
    return index, number, values, None


# --------------------------------------------------------------------------- Parquet


@dataclass
class _ParquetFile:
    source: SourceFile
    positions: dict[str, str]  # contract column -> the file's column
    reading: Reading


def open_parquet(
    connection: duckdb.DuckDBPyConnection, source: SourceFile, feed: Feed
) -> _ParquetFile:
    path = str(source.path)
    probe = connection.cursor()  # its own transaction: a failed read must not abort the load's
    try:
        names = [
            row[0]
            for row in probe.execute("describe select * from read_parquet(?)", [path]).fetchall()
        ]
    except duckdb.Error as exc:
        problem = str(exc).splitlines()[0].replace(path, source.path.name)
        raise FileUnreadable(f"is not a readable Parquet file ({problem})") from None
    positions, missing, ignored = match_columns(feed, names)
    if missing:
        raise FileUnreadable(f"lacks the column(s) {', '.join(missing)}", missing)

    def raw_text(number: int) -> str:
        cursor = probe.execute(
            "select * exclude (file_row_number) from read_parquet(?, file_row_number = true) "
            "where file_row_number = ?",
            [path, number - 1],
        )
        names = [d[0] for d in cursor.description]
        row = dict(zip(names, cursor.fetchone(), strict=True))
        return clip(json.dumps(row, ensure_ascii=False, default=str))

    columns = {c: names[i] for c, i in positions.items()}
    return _ParquetFile(source, columns, Reading(source, raw_text, columns, ignored))


def stage_parquet(
    connection: duckdb.DuckDBPyConnection, feed: Feed, files: list[_ParquetFile]
) -> None:
    selects = []
    for item in files:
        columns = ", ".join(
            f"cast({quote_ident(item.positions[c])} as varchar) as {quote_ident(c)}"
            if c in item.positions
            else f"null::varchar as {quote_ident(c)}"
            for c in feed.column_names
        )
        selects.append(
            f"select {item.source.index}, file_row_number + 1, {columns}, null, false "
            f"from read_parquet({quote_literal(str(item.source.path))}, file_row_number = true)"
        )
    connection.execute(f"insert into {ROWS} " + " union all ".join(selects))


# --------------------------------------------------------------------------- Merchant XML

MERCHANT_NAMESPACES = {"g": "http://base.google.com/ns/1.0"}


@dataclass
class _XmlFile:
    source: SourceFile
    records: list[list[str | None]]
    reading: Reading


def open_merchant_xml(source: SourceFile, feed: Feed) -> _XmlFile:
    """Google Merchant Center style RSS: one <item> per product, fields named by `source`."""
    try:
        root = ElementTree.fromstring(file_bytes(source))
    except ElementTree.ParseError as exc:
        raise FileUnreadable(f"is not well-formed XML ({exc})") from None
    items = root.findall("./channel/item")
    if root.tag != "rss" or root.find("channel") is None:
        raise FileUnreadable("is not an RSS product feed: expected <rss><channel><item>…")
    records = [[_item_value(item, column) for column in feed.columns] for item in items]

    def raw_text(number: int) -> str:
        return clip(ElementTree.tostring(items[number - 1], encoding="unicode").strip())

    columns = {c.name: c.source or c.name for c in feed.columns}
    return _XmlFile(source, records, Reading(source, raw_text, columns))


def _item_value(item: ElementTree.Element, column) -> str | None:
    element = item.find(column.source or column.name, MERCHANT_NAMESPACES)
    text = element.text.strip() if element is not None and element.text else None
    if text is not None and column.part:
        amount, _, currency = text.partition(" ")
        text = (amount if column.part == "amount" else currency).strip() or None
    return text


def stage_merchant_xml(
    connection: duckdb.DuckDBPyConnection, feed: Feed, files: list[_XmlFile]
) -> None:
    names = feed.column_names
    rows = [
        (item.source.index, number, record)
        for item in files
        for number, record in enumerate(item.records, start=1)
    ]
    table = pa.table(
        {
            "_file": pa.array([r[0] for r in rows], pa.int32()),
            "_row_number": pa.array([r[1] for r in rows], pa.int64()),
            **{n: pa.array([r[2][i] for r in rows], pa.string()) for i, n in enumerate(names)},
        }
    )
    connection.register("landing_xml_rows", table)
    try:
        connection.execute(f"insert into {ROWS} select *, null, false from landing_xml_rows")
    finally:
        connection.unregister("landing_xml_rows")


# --------------------------------------------------------------------------- a batch

OPENERS = {
    "csv": lambda connection, source, feed: open_csv(source, feed),
    "jsonl": lambda connection, source, feed: open_jsonl(source, feed),
    "parquet": open_parquet,
    "merchant_xml": lambda connection, source, feed: open_merchant_xml(source, feed),
}
STAGERS = {
    "csv": stage_csv,
    "jsonl": stage_jsonl,
    "parquet": stage_parquet,
    "merchant_xml": stage_merchant_xml,
}


def read_files(
    connection: duckdb.DuckDBPyConnection, feed: Feed, sources: list[SourceFile]
) -> tuple[dict[int, Reading], dict[int, FileUnreadable]]:
    """Stage every record of the readable `sources` in `landing_rows`.

    Returns the readings and the files that cannot be read, both by file index.
    """
    create_rows_table(connection, feed)
    opened: dict[str, list] = {}
    unreadable: dict[int, FileUnreadable] = {}
    for source in sources:
        try:
            item = OPENERS[source.file_format](connection, source, feed)
        except FileUnreadable as exc:
            unreadable[source.index] = exc
            continue
        opened.setdefault(source.file_format, []).append(item)
    for file_format, items in opened.items():
        STAGERS[file_format](connection, feed, items)
    readings = {item.source.index: item.reading for items in opened.values() for item in items}
    return readings, unreadable
