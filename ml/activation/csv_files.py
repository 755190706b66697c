"""The export's CSV files, streamed chunk by chunk from the run's treatment rows.

- `audience.csv` for email and CRM tools: customer_id, email, first_name, last_name and the
  export's chosen attributes. UTF-8 with a byte-order mark and CRLF line ends, so Excel opens
  accents and line breaks correctly; a text cell starting with = + - @ (or a tab or carriage
  return) gets a leading ' so a spreadsheet shows it as text instead of running it as a
  formula (numbers are left alone: -3.5 stays a number).
- `google_customer_match.csv` and `meta_custom_audience.csv` (their rows are built in
  `ml.activation.destinations`): plain UTF-8 without a byte-order mark (it would become part
  of the first header) with LF line ends.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import duckdb
import pandas as pd

from ml.activation.config import FIXED_COLUMNS, ExportConfig
from ml.activation.destinations import READINESS_COUNTS, destination_frames
from ml.activation.folders import AUDIENCE_CSV, GOOGLE_CSV, GOOGLE_HEADER, META_CSV, META_HEADER
from ml.activation.inputs import is_text, treatment_chunks

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(values: pd.Series) -> pd.Series:
    """Prefix ' to text that a spreadsheet would read as a formula (= + - @, tab, CR)."""
    text = values.astype(object)
    risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
    return text.where(~risky.astype(bool), "'" + text.astype(str))


class CsvFile:
    """A CSV written in chunks: header once, optional byte-order mark, fixed line end."""

    def __init__(self, path: Path, header: Sequence[str], *, spreadsheet: bool):
        """Open `path` and write the header (after a byte-order mark, CRLF, for a spreadsheet)."""
        self.path = path
        self.header = list(header)
        self.rows = 0
        self.newline = "\r\n" if spreadsheet else "\n"
        self.handle: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        if spreadsheet:
            self.handle.write("\ufeff")
        csv.writer(self.handle, lineterminator=self.newline).writerow(self.header)

    def write(self, frame: pd.DataFrame) -> None:
        """Append the header's columns of `frame` and count its rows."""
        if frame.empty:
            return
        frame[self.header].to_csv(
            self.handle, header=False, index=False, lineterminator=self.newline
        )
        self.rows += len(frame)

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


def open_csv_files(
    folder: Path, config: ExportConfig, formats: Sequence[str]
) -> dict[str, CsvFile]:
    """Open the CSVs of `formats` in `folder`, headers written, by file name."""
    files: dict[str, CsvFile] = {}
    if "csv" in formats:
        audience_header = [*FIXED_COLUMNS, *config.attributes]
        files[AUDIENCE_CSV] = CsvFile(folder / AUDIENCE_CSV, audience_header, spreadsheet=True)
    if "google" in formats:
        files[GOOGLE_CSV] = CsvFile(folder / GOOGLE_CSV, GOOGLE_HEADER, spreadsheet=False)
    if "meta" in formats:
        files[META_CSV] = CsvFile(folder / META_CSV, META_HEADER, spreadsheet=False)
    return files


def audience_rows(
    chunk: pd.DataFrame, config: ExportConfig, text_columns: set[str]
) -> pd.DataFrame:
    """The audience.csv rows of one chunk, text columns escaped against formulas."""
    audience = pd.DataFrame(
        {
            "customer_id": chunk["customer_id"],
            "email": chunk["profile__email"],
            "first_name": chunk["profile__first_name"],
            "last_name": chunk["profile__last_name"],
            **{a: chunk[f"attribute__{a}"] for a in config.attributes},
        }
    )
    for column in text_columns:
        audience[column] = escape_formulas(audience[column])
    return audience


def write_csvs(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    run_id: str,
    folder: Path,
    optional: list[str],
    attributes: Mapping[str, str],
    formats: Sequence[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """Stream the treatment rows into the CSVs of `formats`; file rows and readiness counts.

    The rows are read (and the readiness counted) even when no CSV is written.
    """
    text_columns = {"email", "first_name", "last_name"} | {
        a for a in config.attributes if is_text(attributes[a])
    }
    files = open_csv_files(folder, config, formats)
    counts = dict.fromkeys(READINESS_COUNTS, 0)
    try:
        for chunk in treatment_chunks(connection, config, run_id, optional):
            if AUDIENCE_CSV in files:
                files[AUDIENCE_CSV].write(audience_rows(chunk, config, text_columns))
            google, meta, chunk_counts = destination_frames(
                chunk, "state" in optional, GOOGLE_CSV in files, META_CSV in files
            )
            if google is not None:
                files[GOOGLE_CSV].write(google)
            if meta is not None:
                files[META_CSV].write(meta)
            for key, value in chunk_counts.items():
                counts[key] += value
    finally:
        for file in files.values():
            file.close()
    return {name: file.rows for name, file in files.items()}, counts


__all__ = [
    "FORMULA_PREFIXES",
    "CsvFile",
    "audience_rows",
    "escape_formulas",
    "open_csv_files",
    "write_csvs",
]
