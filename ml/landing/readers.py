"""Read one landing file into text columns, keeping every record accounted for.

A reader returns a `ParsedFile`: the records it could split into the contract's columns
(all values as text, with their row numbers), the records it could not (with the reason),
and a way to fetch the original text of any row for the quarantine. A file that cannot be
read at all raises `FileUnreadable`; the loader then quarantines the whole file.

Row numbers: the line in the file for CSV (the header is line 1) and JSON Lines, the row
(from 1) for Parquet, the <item> (from 1) for XML.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .contracts import Feed

RAW_TEXT_LIMIT = 2000  # characters of a rejected row kept in the quarantine


class FileUnreadable(Exception):
    """The file as a whole cannot be read: wrong format, broken structure, missing columns."""


@dataclass
class Reject:
    row_number: int
    reason: str
    raw_text: str


@dataclass
class ParsedFile:
    frame: pd.DataFrame  # one text column per contract column, plus _row_number
    rows_read: int
    raw_text: Callable[[int], str]  # original text of a row, by row number
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _clip(text: str) -> str:
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "…"


def _utf8_problem(raw: bytes, error: UnicodeDecodeError) -> str:
    return f"is not valid UTF-8 (byte 0x{raw[error.start]:02x} at position {error.start + 1})"


def _frame(feed: Feed, records: list[list[str | None]], row_numbers: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(feed.column_names), dtype=object)
    frame["_row_number"] = pd.array(row_numbers, dtype="int64")
    return frame


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def read_csv(path: Path, feed: Feed) -> ParsedFile:
    """CSV with a header line; columns are matched by name, extra columns are ignored."""
    lines = _split_lines(path.read_bytes())
    if not lines:
        raise FileUnreadable("is empty: a CSV file needs at least a header line")
    try:
        header_text = lines[0].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"has a header line that {_utf8_problem(lines[0], exc)}") from None
    header = [name.strip() for name in next(csv.reader([header_text]))]
    missing = [name for name in feed.column_names if name not in header]
    if missing:
        raise FileUnreadable(
            f"has a header without the column(s) {', '.join(missing)}; "
            f"expected {', '.join(feed.column_names)}"
        )
    positions = [header.index(name) for name in feed.column_names]
    width = len(header)
    notes = []
    extra = [name for name in header if name not in feed.column_names]
    if extra:
        notes.append(f"ignored column(s) not in the contract: {', '.join(extra)}")

    rejects: list[Reject] = []
    texts: list[str] = []
    text_line_numbers: list[int] = []
    for number, raw in enumerate(lines[1:], start=2):
        try:
            texts.append(raw.decode("utf-8"))
            text_line_numbers.append(number)
        except UnicodeDecodeError as exc:
            rejects.append(
                Reject(
                    number,
                    f"line {_utf8_problem(raw, exc)}",
                    raw.decode("utf-8", "backslashreplace"),
                )
            )

    records: list[list[str | None]] = []
    row_numbers: list[int] = []
    reader = csv.reader(texts)
    consumed = 0
    rows_read = len(rejects)
    for values in reader:
        # A quoted field may span lines: the record starts at the first line it consumed.
        number = text_line_numbers[consumed]
        consumed = reader.line_num
        rows_read += 1
        if len(values) != width:
            rejects.append(
                Reject(
                    number,
                    f"has {len(values)} fields, expected {width} as in the header",
                    texts[consumed - 1],
                )
            )
            continue
        records.append([values[p] for p in positions])
        row_numbers.append(number)

    def raw_text(row_number: int) -> str:
        return _clip(lines[row_number - 1].decode("utf-8", "backslashreplace"))

    rejects.sort(key=lambda r: r.row_number)
    return ParsedFile(_frame(feed, records, row_numbers), rows_read, raw_text, rejects, notes)


def _as_text(value: object, is_json: bool) -> str | None:
    if value is None:
        return None
    if is_json or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_jsonl(path: Path, feed: Feed) -> ParsedFile:
    """JSON Lines: one object per line; keys outside the contract are ignored."""
    lines = _split_lines(path.read_bytes())
    names = feed.column_names
    is_json = [c.type == "json" for c in feed.columns]
    records: list[list[str | None]] = []
    row_numbers: list[int] = []
    rejects: list[Reject] = []
    rows_read = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue  # blank lines are not records
        rows_read += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejects.append(
                Reject(
                    number,
                    f"line {_utf8_problem(raw, exc)}",
                    raw.decode("utf-8", "backslashreplace"),
                )
            )
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(
                Reject(
                    number, f"line is not valid JSON ({exc.msg} at column {exc.colno})", _clip(text)
                )
            )
            continue
        if not isinstance(document, dict):
            kind = type(document).__name__.replace("list", "array").replace("dict", "object")
            rejects.append(
                Reject(number, f"line is a JSON {kind}, expected an object", _clip(text))
            )
            continue
        records.append([_as_text(document.get(n), j) for n, j in zip(names, is_json, strict=True)])
        row_numbers.append(number)

    def raw_text(row_number: int) -> str:
        return _clip(lines[row_number - 1].decode("utf-8", "backslashreplace"))

    return ParsedFile(_frame(feed, records, row_numbers), rows_read, raw_text, rejects)


def read_parquet(path: Path, feed: Feed) -> ParsedFile:
    """Parquet: columns matched by name, every value read as text."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileUnreadable(f"is not a readable Parquet file ({exc})") from None
    missing = [name for name in feed.column_names if name not in table.column_names]
    if missing:
        raise FileUnreadable(f"lacks the column(s) {', '.join(missing)}")
    notes = []
    extra = [name for name in table.column_names if name not in feed.column_names]
    if extra:
        notes.append(f"ignored column(s) not in the contract: {', '.join(extra)}")
    columns = {}
    for name in feed.column_names:
        column = table.column(name)
        columns[name] = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    frame = pa.table(columns).to_pandas(types_mapper=None)
    frame = frame.astype(object).where(frame.notna(), None)
    frame["_row_number"] = pd.array(range(1, table.num_rows + 1), dtype="int64")

    def raw_text(row_number: int) -> str:
        row = table.slice(row_number - 1, 1).to_pylist()[0]
        return _clip(json.dumps(row, ensure_ascii=False, default=str))

    return ParsedFile(frame, table.num_rows, raw_text, [], notes)


MERCHANT_NAMESPACES = {"g": "http://base.google.com/ns/1.0"}


def read_merchant_xml(path: Path, feed: Feed) -> ParsedFile:
    """Google Merchant Center style RSS: one <item> per product, fields named by `source`."""
    try:
        root = ElementTree.fromstring(path.read_bytes())
    except ElementTree.ParseError as exc:
        raise FileUnreadable(f"is not well-formed XML ({exc})") from None
    items = root.findall("./channel/item")
    if root.tag != "rss" or root.find("channel") is None:
        raise FileUnreadable("is not an RSS product feed: expected <rss><channel><item>…")
    records: list[list[str | None]] = []
    for item in items:
        record: list[str | None] = []
        for column in feed.columns:
            element = item.find(column.source or column.name, MERCHANT_NAMESPACES)
            text = element.text.strip() if element is not None and element.text else None
            if text is not None and column.part:
                amount, _, currency = text.partition(" ")
                text = (amount if column.part == "amount" else currency).strip() or None
            record.append(text)
        records.append(record)

    def raw_text(row_number: int) -> str:
        return _clip(ElementTree.tostring(items[row_number - 1], encoding="unicode").strip())

    return ParsedFile(_frame(feed, records, list(range(1, len(items) + 1))), len(items), raw_text)


READERS: dict[str, Callable[[Path, Feed], ParsedFile]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "merchant_xml": read_merchant_xml,
}


def read_file(path: Path, feed: Feed, file_format: str) -> ParsedFile:
    return READERS[file_format](path, feed)
