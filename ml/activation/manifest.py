"""The manifest of an export folder: what was exported, and each file's rows, SHA-256 and size.

`manifest.json` says what was exported, why others were not, the formats, and each written
file's data-row count, SHA-256 and size, so anyone can check a file has not changed since it
was written. `match_readiness` (valid emails and phones among the exported rows) is in every
manifest, whatever the export's formats: it is about the identifiers, not a file.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ml.activation.config import ExportConfig
from ml.activation.folders import MANIFEST
from ml.segments.rules import Segment


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: str | Path) -> int:
    """Data rows of an export file: CSV records after the header, or Parquet rows."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def describe_file(path: str | Path, rows: int | None = None) -> dict[str, Any]:
    """{rows, sha256, bytes} of a file, as the manifest lists it (rows counted if not given)."""
    path = Path(path)
    return {
        "rows": count_rows(path) if rows is None else int(rows),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest.json of an export folder."""
    return json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))


def write_manifest(directory: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write manifest.json (indented, UTF-8, newline at the end) and return its path."""
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def iso_utc(moment: datetime) -> str:
    """A naive UTC datetime as ISO 8601 with a Z."""
    return moment.isoformat(timespec="seconds") + "Z"


def export_manifest(
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    moment: datetime,
    day: date,
    generated: datetime,
    formats: Sequence[str],
    summary: Mapping[str, Any],
    files: Mapping[str, Any],
    readiness: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a freshly written export (no amendments yet), in its key order."""
    return {
        "export_name": config.name,
        "segment": segment.name,
        "description": config.description,
        "definition_hash": segment.definition_hash,
        "consent_purpose": segment.consent_purpose,
        "run_id": run_id,
        "as_of": iso_utc(moment),
        "export_date": day.isoformat(),
        "generated_at": iso_utc(generated),
        "holdout_percent": config.holdout_percent,
        "measurement_window_days": config.measurement_window_days,
        "formats": list(formats),
        "rows": summary["export"],
        "holdout_rows": summary["holdout"],
        "left_out": summary["left_out"],
        "files": files,
        "match_readiness": readiness,
        "amendments": [],
    }


__all__ = [
    "count_rows",
    "describe_file",
    "export_manifest",
    "iso_utc",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]
