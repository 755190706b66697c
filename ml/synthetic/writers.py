"""Writing landing files and recording, per file, what the loader must find in it.

Every feed module hands its valid rows (already in final order) plus the malformed rows to
insert; the writer places the malformed rows, computes their row numbers exactly as the loader
counts them, writes the file and keeps the ground truth for `expected_files.csv` and
`malformed.csv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ml.synthetic.columns import buffer_of

MALFORMED_KINDS = (
    "bad_date",
    "bad_timestamp",
    "negative_quantity",
    "wrong_column_count",
    "non_utf8",
    "unknown_enum",
    "bad_email",
    "bad_phone",
    "missing_required",
    "broken_json",
    "not_an_object",
    "bad_decimal",
    "bad_reference",
)


@dataclass
class BadRow:
    """A malformed row to insert before valid row `at` (0 = first data row, n = at the end)."""

    at: int
    data: bytes | dict[str, str | None] | str  # line without \n / Parquet row / XML <item>
    field: str  # the offending column; "" when the whole row is broken (also non-UTF-8 lines)
    kind: str

    def __post_init__(self) -> None:
        """Refuse a kind that is not one of MALFORMED_KINDS."""
        if self.kind not in MALFORMED_KINDS:
            raise ValueError(f"unknown malformed kind {self.kind!r}")


@dataclass
class FileStats:
    """What the loader must report for one file (a row of expected_files.csv)."""

    feed: str
    file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    file_quarantined: bool = False


class Landing:
    """The landing folder being written, plus its ground truth."""

    def __init__(self, root: Path, progress: tqdm | None = None) -> None:
        """Write under `root`, advancing `progress` (when given) once per file."""
        self.root = root
        self.progress = progress
        self.files: list[FileStats] = []
        self.malformed: list[tuple[str, str, int, str, str]] = []

    def _path(self, feed: str, name: str) -> tuple[Path, str]:
        """(path of the file, created folder included; its name relative to the root)."""
        folder = self.root / feed
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name, f"{feed}/{name}"

    def _keep_ground_truth(
        self,
        feed: str,
        rel: str,
        valid: int,
        bad: Sequence[BadRow],
        duplicates: int,
        first_row: int,
    ) -> None:
        """Keep what the loader must find in a file just written: the row number of each
        malformed row (data rows count from `first_row`) and the file's counts; advance the
        progress bar."""
        if duplicates > valid:
            raise ValueError(f"{rel}: more duplicates than valid rows")
        for j, row in enumerate(sorted(bad, key=lambda b: b.at)):
            self.malformed.append((feed, rel, first_row + row.at + j, row.field, row.kind))
        self.files.append(
            FileStats(feed, rel, valid + len(bad), valid - duplicates, len(bad), duplicates)
        )
        if self.progress is not None:
            self.progress.set_postfix_str(rel, refresh=False)
            self.progress.update(1)

    def text(
        self,
        feed: str,
        name: str,
        lines: pa.Array,
        bad: Sequence[BadRow],
        duplicates: int,
        header: str | None = None,
    ) -> None:
        """A CSV (with `header`) or JSON Lines file: `lines` are valid rows ending in \\n."""
        path, rel = self._path(feed, name)
        ordered = sorted(bad, key=lambda b: b.at)
        with open(path, "wb") as handle:
            if header is not None:
                handle.write(header.encode() + b"\n")
            previous = 0
            for row in ordered:
                if not 0 <= row.at <= len(lines):
                    raise ValueError(f"{rel}: bad row position {row.at}")
                handle.write(buffer_of(lines.slice(previous, row.at - previous)))
                assert isinstance(row.data, bytes)
                handle.write(row.data + b"\n")
                previous = row.at
            handle.write(buffer_of(lines.slice(previous)))
        self._keep_ground_truth(
            feed, rel, len(lines), ordered, duplicates, 2 if header is not None else 1
        )

    def parquet(
        self, feed: str, name: str, table: pa.Table, bad: Sequence[BadRow], duplicates: int
    ) -> None:
        """A Parquet file of string columns; bad rows are dicts of column -> text."""
        path, rel = self._path(feed, name)
        ordered = sorted(bad, key=lambda b: b.at)
        pieces, previous = [], 0
        for row in ordered:
            pieces.append(table.slice(previous, row.at - previous))
            assert isinstance(row.data, dict)
            pieces.append(
                pa.table(
                    {c: pa.array([row.data.get(c)], type=pa.string()) for c in table.column_names}
                )
            )
            previous = row.at
        pieces.append(table.slice(previous))
        full = pa.concat_tables(pieces).combine_chunks()
        pq.write_table(full, path, compression="snappy")
        self._keep_ground_truth(feed, rel, table.num_rows, ordered, duplicates, 1)

    def xml(
        self,
        feed: str,
        name: str,
        head: str,
        items: Sequence[str],
        tail: str,
        bad: Sequence[BadRow],
        duplicates: int,
    ) -> str:
        """An XML file of <item> elements; returns the text written (UTF-8)."""
        path, rel = self._path(feed, name)
        ordered = sorted(bad, key=lambda b: b.at)
        out, previous = [head], 0
        for row in ordered:
            out.extend(items[previous : row.at])
            assert isinstance(row.data, str)
            out.append(row.data)
            previous = row.at
        out.extend(items[previous:])
        out.append(tail)
        text = "".join(out)
        path.write_bytes(text.encode("utf-8"))
        self._keep_ground_truth(feed, rel, len(items), ordered, duplicates, 1)
        return text

    def corrupt(self, feed: str, name: str, data: bytes) -> None:
        """A file no parser can read: quarantined as a whole, no rows counted."""
        path, rel = self._path(feed, name)
        path.write_bytes(data)
        self.files.append(FileStats(feed, rel, 0, 0, 0, 0, file_quarantined=True))
        if self.progress is not None:
            self.progress.update(1)


def spread(rng: np.random.Generator, n_valid: int, count: int) -> list[int]:
    """Random insertion points for `count` malformed rows among `n_valid` valid rows."""
    return sorted(int(x) for x in rng.integers(0, n_valid + 1, size=count))


def allocate(kinds: Sequence[object], total_rows: int, rate: float = 0.001) -> list[object]:
    """Roughly `rate` of the rows, but every kind at least once; kinds cycle so all appear."""
    count = max(len(kinds), round(rate * total_rows))
    return [kinds[i % len(kinds)] for i in range(count)]
