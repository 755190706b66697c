"""Remove erased people from the audience files already exported.

`amend_exports` visits every export folder under the exports root (`<export>/<date>/`, never
through a `latest` link) and every file an export can write there (`FILE_NAMES`, from the
export formats of ml/activation/config.py). It drops the rows ml/privacy/export_matching.py
recognises as an erased person's and rewrites the file in its own format: CSV byte for byte
as it was apart from the dropped records (byte-order mark, line ends, quoting), Parquet with
the same schema and codec. Then `manifest.json` gets each amended file's new rows, SHA-256 and
size, the exported row count and an amendment entry; `activation.export_runs.status` of that
export run becomes `amended`; and the audit log says which files changed.

`amend_hub_snapshots` does the same to the copies of the export folders the audience hub keeps
in its snapshots (ml/hub/snapshot.py), so no download served after erasure holds them.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml import audit
from ml.activation.folders import AUDIENCE_CSV, AUDIENCE_PARQUET, FILE_NAMES, MANIFEST
from ml.activation.runs import RUNS
from ml.hub import snapshot as hub_snapshot
from ml.privacy.export_matching import BY_CUSTOMER, ErasedPeople, rule_for
from ml.warehouse import table_exists

# The files whose rows are the exported people, whichever of them an export wrote.
AUDIENCE_FILES = (AUDIENCE_CSV, AUDIENCE_PARQUET)


@dataclass
class ExportAmendments:
    """What erasure removed from export files, by request and by file (`exports/<path>`)."""

    by_request: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    by_file: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # amended files, relative to the root
    searched: int = 0  # export folders looked at

    def note(self, folder: Path, changes: list[_FileChange], root: Path, label: str) -> set[str]:
        """Count the folder's changed files under `<label>/<path>`; the requests they served."""
        requests: set[str] = set()
        for change in changes:
            if not change.removed:
                continue
            relative = (folder / change.name).relative_to(root).as_posix()
            self.by_file[f"{label}/{relative}"] = change.removed
            self.files.append(relative)
            requests |= set(change.by_request)
            for request_id, rows in change.by_request.items():
                self.by_request[request_id][f"{label}/{relative}"] = rows
        return requests


@dataclass
class _FileChange:
    """One file of a folder after amendment."""

    name: str
    removed: int
    by_request: dict[str, int]
    rows_left: int


def amend_exports(
    connection: duckdb.DuckDBPyConnection,
    exports_root: Path,
    people: ErasedPeople,
    run_id: str,
    at: datetime,
) -> ExportAmendments:
    """Remove the erased people from every export folder under `exports_root`."""
    amendments = ExportAmendments()
    for folder in export_folders(exports_root):
        changes = _amend_folder(folder, people, amendments)
        requests = amendments.note(folder, changes, exports_root, "exports")
        if requests:
            manifest = _rewrite_manifest(folder, changes, len(requests), at)
            _flag_export_run(connection, folder, exports_root, manifest, changes, run_id, requests)
    return amendments


def amend_hub_snapshots(
    snapshots_root: Path, people: ErasedPeople, at: datetime
) -> ExportAmendments:
    """The audience hub keeps copies of the export folders in each snapshot it serves
    (ml/hub/snapshot.py): they lose the erased people's rows the same way, their manifests
    and files.json get the new facts, and each snapshot is read-only again afterwards. Files
    are named `hub/<snapshot>/exports/<export>/<date>/<file>`. The snapshot's tables that
    carry customer ids (the consent events a privacy officer looks up) lose their rows too
    (`hub/<snapshot>/tables/<table>.parquet`)."""
    amendments = ExportAmendments()
    for snapshot, exports in hub_snapshot.export_copies(snapshots_root):
        with hub_snapshot.writable(snapshot):
            changed: list[str] = []
            for folder in export_folders(exports):
                changes = _amend_folder(folder, people, amendments)
                label = f"hub/{snapshot.name}/exports"
                requests = amendments.note(folder, changes, exports, label)
                if requests:
                    _rewrite_manifest(folder, changes, len(requests), at)
                    changed += [
                        (folder / name).relative_to(exports).as_posix()
                        for name in (*(c.name for c in changes if c.removed), MANIFEST)
                    ]
            if changed:
                hub_snapshot.refresh_file_index(exports, changed)
            for table in hub_snapshot.tables_with_customers(snapshot):
                amendments.searched += 1
                change = _amend_parquet(table, people)
                label = f"hub/{snapshot.name}/{table.relative_to(snapshot).as_posix()}"
                if change.removed:
                    amendments.by_file[label] = change.removed
                    for request_id, rows in change.by_request.items():
                        amendments.by_request[request_id][label] = rows
    return amendments


def _amend_folder(
    folder: Path, people: ErasedPeople, amendments: ExportAmendments
) -> list[_FileChange]:
    """Every export file of one folder without the erased people's rows."""
    amendments.searched += 1
    return [
        _amend_file(folder / name, people)
        for name in FILE_NAMES
        if (folder / name).is_file() and not (folder / name).is_symlink()
    ]


def export_folders(exports_root: Path) -> list[Path]:
    """Every <export>/<date>/ folder with a manifest or an export file, never through a link."""
    if not exports_root.is_dir():
        return []
    folders = []
    for export in sorted(exports_root.iterdir()):
        if export.is_symlink() or not export.is_dir():
            continue
        for dated in sorted(export.iterdir()):
            if dated.is_symlink() or not dated.is_dir():
                continue
            if any((dated / name).exists() for name in (MANIFEST, *FILE_NAMES)):
                folders.append(dated)
    return folders


def _amend_file(path: Path, people: ErasedPeople) -> _FileChange:
    if rule_for(path.name) == BY_CUSTOMER:
        return _amend_parquet(path, people)
    return _amend_csv(path, people)


def _amend_csv(path: Path, people: ErasedPeople) -> _FileChange:
    """Drop the people's records; every other byte is kept as it was."""
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw[3:].decode("utf-8") if bom else raw.decode("utf-8")
    records = _csv_records(text)
    if not records:
        return _FileChange(path.name, 0, {}, 0)
    (header_text, header), body = records[0], records[1:]
    belongs = people.matcher(path.name, [h.strip() for h in header])
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
    return _FileChange(path.name, count, dict(removed), len(body) - count)


def _amend_parquet(path: Path, people: ErasedPeople) -> _FileChange:
    """Drop the people's rows (by customer_id), keeping the schema and the codec."""
    parquet = pq.ParquetFile(path)
    table = parquet.read()
    if "customer_id" not in table.column_names or not people.customer_ids:
        return _FileChange(path.name, 0, {}, table.num_rows)
    ids = pa.array(list(people.customer_ids), pa.string())
    column = pc.cast(table["customer_id"], pa.string())
    hit = pc.fill_null(pc.is_in(column, value_set=ids), False)
    count = pc.sum(hit).as_py() or 0
    if not count:
        return _FileChange(path.name, 0, {}, table.num_rows)
    removed: dict[str, int] = defaultdict(int)
    for value in pc.filter(column, hit).to_pylist():
        removed[people.customer_ids[value]] += 1
    metadata = parquet.metadata
    codec = (
        metadata.row_group(0).column(0).compression.lower()
        if metadata.num_row_groups and metadata.num_columns
        else "snappy"
    )
    temporary = path.with_name(f".{path.name}.erasure-tmp")
    pq.write_table(table.filter(pc.invert(hit)), temporary, compression=codec)
    os.replace(temporary, path)
    return _FileChange(path.name, count, dict(removed), table.num_rows - count)


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


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.erasure-tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _people_removed(changes: list[_FileChange]) -> int:
    """Exported rows removed: from the audience file, else the most from any one file."""
    removed = {change.name: change.removed for change in changes if change.removed}
    for audience in AUDIENCE_FILES:
        if audience in removed:
            return removed[audience]
    return max(removed.values())


def _rewrite_manifest(
    folder: Path, changes: list[_FileChange], request_count: int, at: datetime
) -> dict[str, Any]:
    """manifest.json with the amended files' facts, the rows left and an amendment entry."""
    path = folder / MANIFEST
    manifest: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    )
    files = manifest.setdefault("files", {})
    for change in changes:
        if change.removed or change.name not in files:
            data = (folder / change.name).read_bytes()
            files[change.name] = {
                "rows": change.rows_left,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
    rows_left = {change.name: change.rows_left for change in changes}
    audience = next((name for name in AUDIENCE_FILES if name in rows_left), None)
    if audience is not None:
        manifest["rows"] = rows_left[audience]
    manifest.setdefault("amendments", []).append(
        {
            "at": at.isoformat(sep=" ", timespec="seconds"),
            "reason": "erasure",
            "request_count": request_count,
            "rows_removed": _people_removed(changes),
            "rows_removed_by_file": {c.name: c.removed for c in _changes_that_removed(changes)},
        }
    )
    text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n"
    _write_atomically(path, text.encode("utf-8"))
    return manifest


def _changes_that_removed(changes: list[_FileChange]) -> list[_FileChange]:
    """The changes that removed rows, by file name."""
    return sorted((c for c in changes if c.removed), key=lambda change: change.name)


def _flag_export_run(
    connection: duckdb.DuckDBPyConnection,
    folder: Path,
    exports_root: Path,
    manifest: dict[str, Any],
    changes: list[_FileChange],
    run_id: str,
    requests: set[str],
) -> None:
    """Mark the folder's export run `amended` in activation.export_runs and audit the change."""
    export_name = manifest.get("export_name") or folder.parent.name
    export_run = manifest.get("run_id")
    schema, table = RUNS.split(".")
    if export_run and table_exists(connection, schema, table):
        connection.execute(
            f"update {RUNS} set status = 'amended' where run_id = ? and export_name = ?",
            [export_run, export_name],
        )
    changed = _changes_that_removed(changes)
    audit.record(
        connection,
        "export_amended",
        export_name,
        run_id=run_id,
        files=[(folder / c.name).relative_to(exports_root).as_posix() for c in changed],
        rows=_people_removed(changes),
        details={
            "export_run_id": export_run,
            "folder": folder.relative_to(exports_root).as_posix(),
            "request_count": len(requests),
            "rows_removed_by_file": {c.name: c.removed for c in changed},
        },
    )
