"""Reading the current snapshot (ml/hub/snapshot.py) for the hub's pages and downloads.

`current_snapshot(root)` follows the `current` link once and returns a `Snapshot` of that one
folder, so a request reads a single snapshot from start to end even when a run publishes the
next one meanwhile (the previous snapshot is kept until the publication after). Tables are
read from Parquet on first use and kept while the snapshot is current.

Every file the hub hands out is found by looking its name up in the snapshot's own lists
(exports, their dates and files, charts), never by joining a path from a URL.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from ml.activation.folders import FILE_NAMES, MANIFEST
from ml.hub.snapshot import (
    CHARTS_DIR,
    EXPORTS_DIR,
    SNAPSHOT_FILE,
    TABLES_DIR,
    current_folder,
)


@dataclass(frozen=True)
class ExportFile:
    """One file of an export folder in the snapshot."""

    export: str
    day: str
    name: str
    path: Path
    sha256: str
    bytes: int
    rows: int

    @property
    def relative(self) -> str:
        return f"{self.export}/{self.day}/{self.name}"


@dataclass
class Snapshot:
    """One published snapshot folder."""

    folder: Path
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def about(self) -> dict[str, Any]:
        return json.loads((self.folder / SNAPSHOT_FILE).read_text(encoding="utf-8"))

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def published_at(self) -> datetime:
        return datetime.fromisoformat(self.about["published_at"].rstrip("Z"))

    def table(self, name: str) -> pd.DataFrame:
        """A table of the snapshot (a copy-free frame: do not change it)."""
        with self._lock:
            if name not in self._tables:
                path = self.folder / TABLES_DIR / f"{name}.parquet"
                self._tables[name] = pq.read_table(path).to_pandas()
            return self._tables[name]

    def query(self, sql: str, parameters: list[Any] | None = None) -> pd.DataFrame:
        """A query over the snapshot's Parquet tables, named `{table}` in `sql`, in an
        in-memory DuckDB: for the look-ups too large to keep in memory (consent events)."""
        tables = {
            name: str(self.folder / TABLES_DIR / f"{name}.parquet").replace("'", "''")
            for name in self.about["tables"]
        }
        text = sql.format(**{name: f"read_parquet('{path}')" for name, path in tables.items()})
        with duckdb.connect() as connection:
            return connection.execute(text, parameters or []).df()

    # --- exports ------------------------------------------------------------------------------

    @cached_property
    def _file_index(self) -> dict[str, dict[str, Any]]:
        path = self.folder / EXPORTS_DIR / "files.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def exports(self) -> list[str]:
        """The exports with at least one folder in the snapshot, by name."""
        return sorted({relative.split("/")[0] for relative in self._file_index})

    def days(self, export: str) -> list[str]:
        """The dates of an export's folders, newest first."""
        days = {r.split("/")[1] for r in self._file_index if r.split("/")[0] == export}
        return sorted(days, reverse=True)

    def latest_day(self, export: str) -> str | None:
        """The date folder the export's `latest` link pointed at when the snapshot was made."""
        if export not in self.exports():
            return None
        marker = self.folder / EXPORTS_DIR / export / "latest.txt"
        if marker.is_file():
            day = marker.read_text(encoding="utf-8").strip()
            if day in self.days(export):
                return day
        days = self.days(export)
        return days[0] if days else None

    def manifest(self, export: str, day: str) -> dict[str, Any] | None:
        """The manifest of one export folder, or None when the snapshot has no such folder."""
        relative = f"{export}/{day}/{MANIFEST}"
        if relative not in self._file_index:
            return None
        path = self.folder / EXPORTS_DIR / export / day / MANIFEST
        return json.loads(path.read_text(encoding="utf-8"))

    def files(self, export: str, day: str) -> list[ExportFile]:
        """The downloadable files of one export folder: those its manifest lists that an
        export can write (never the manifest itself, never anything else)."""
        manifest = self.manifest(export, day) or {}
        listed = manifest.get("files") or {}
        found = []
        for name in FILE_NAMES:
            relative = f"{export}/{day}/{name}"
            if name in listed and relative in self._file_index:
                facts = self._file_index[relative]
                found.append(
                    ExportFile(
                        export=export,
                        day=day,
                        name=name,
                        path=self.folder / EXPORTS_DIR / export / day / name,
                        sha256=facts["sha256"],
                        bytes=int(facts["bytes"]),
                        rows=int(listed[name].get("rows", 0)),
                    )
                )
        return found

    def export_file(self, export: str, day: str, name: str) -> ExportFile | None:
        """The file `export/day/name` if the snapshot lists it as downloadable, else None."""
        return next((f for f in self.files(export, day) if f.name == name), None)

    # --- charts -------------------------------------------------------------------------------

    def charts(self) -> list[str]:
        return list(self.about.get("charts") or [])

    def chart(self, name: str) -> Path | None:
        """The chart file called `name` if the snapshot lists it, else None."""
        return self.folder / CHARTS_DIR / name if name in self.charts() else None


_CACHE: dict[Path, Snapshot] = {}
_CACHE_LOCK = threading.Lock()


def current_snapshot(root: Path) -> Snapshot | None:
    """The snapshot `current` points at now, or None before the first publication. The last
    two are kept in memory, so a request that began on the previous one finishes on it."""
    folder = current_folder(root)
    if folder is None:
        return None
    with _CACHE_LOCK:
        snapshot = _CACHE.get(folder)
        if snapshot is None:
            snapshot = _CACHE[folder] = Snapshot(folder)
            for stale in [path for path in _CACHE if path != folder][:-1]:
                del _CACHE[stale]
        return snapshot
