"""Verify a written export folder against its manifest and the run's candidates.

`verify_export_folder` returns the problems it finds (an empty list means the folder is as
its manifest says): files missing, changed, unlisted or not allowed by the consent purpose,
an audience holding a held-out or left-out customer, platform files longer than the audience.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from ml.activation.candidates import CANDIDATES
from ml.activation.config import FORMAT_FILES, PURPOSE_FORMATS
from ml.activation.folders import (
    AUDIENCE_CSV,
    AUDIENCE_PARQUET,
    FILE_NAMES,
    GOOGLE_CSV,
    MANIFEST,
    META_CSV,
)
from ml.activation.manifest import describe_file, read_manifest


def run_id_problems(directory: Path, manifest: Mapping[str, Any], run_id: str | None) -> list[str]:
    """A problem when `run_id` is given and the manifest names another run."""
    if run_id is None or manifest.get("run_id") == run_id:
        return []
    return [
        f"{directory / MANIFEST}: run_id is {manifest.get('run_id')!r}, not this run's "
        f"{run_id!r}; the folder was not written by this run"
    ]


def file_set_problems(directory: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Listed files the consent purpose does not allow, and export files the manifest omits."""
    listed_files = manifest.get("files", {})
    purpose = manifest.get("consent_purpose")
    allowed = {FORMAT_FILES[f] for f in PURPOSE_FORMATS.get(purpose, ())}
    problems: list[str] = []
    for name in FILE_NAMES:
        if name in listed_files:
            if name not in allowed:
                problems.append(
                    f"{directory / name}: consent purpose {purpose} does not allow this file "
                    f"(it allows {', '.join(sorted(allowed)) or 'none'}); delete it and write "
                    "the export again"
                )
        elif (directory / name).exists():
            problems.append(
                f"{directory / name}: not listed in {MANIFEST}, so not written by this export "
                "(its formats do not include it); delete it"
            )
    return problems


def file_integrity_problems(directory: Path, listed_files: Mapping[str, Any]) -> list[str]:
    """Listed files that are missing, or whose rows, SHA-256 or size differ from the manifest."""
    problems: list[str] = []
    for name, stated in listed_files.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path}: missing, but listed in {MANIFEST}")
            continue
        actual = describe_file(path)
        for key in ("rows", "sha256", "bytes"):
            if actual[key] != stated.get(key):
                problems.append(
                    f"{path}: {key} is {actual[key]}, but {MANIFEST} says {stated.get(key)}; "
                    "the file changed after it was written"
                )
    return problems


def exported_customer_ids(
    connection: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any]
) -> list[str]:
    """The customer_ids of the manifest's run's `export` candidates, in customer_id order."""
    return [
        row[0]
        for row in connection.execute(
            f"select customer_id from {CANDIDATES} where run_id = $run_id "
            "and export_name = $export_name and outcome = 'export' order by customer_id",
            {"run_id": manifest.get("run_id"), "export_name": manifest.get("export_name")},
        ).fetchall()
    ]


def audience_file_ids(directory: Path, listed_files: Mapping[str, Any]) -> dict[str, list[str]]:
    """{file: customer_ids in file order} of the audience files the manifest lists and the
    folder holds (others are flagged by `file_integrity_problems`)."""
    listed: dict[str, list[str]] = {}
    if AUDIENCE_CSV in listed_files and (directory / AUDIENCE_CSV).exists():
        with open(directory / AUDIENCE_CSV, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)  # the header
            listed[AUDIENCE_CSV] = [row[0] for row in reader if row]
    if AUDIENCE_PARQUET in listed_files and (directory / AUDIENCE_PARQUET).exists():
        table = pq.read_table(directory / AUDIENCE_PARQUET, columns=["customer_id"])
        listed[AUDIENCE_PARQUET] = table.column("customer_id").to_pylist()
    return listed


def audience_problems(
    directory: Path,
    manifest: Mapping[str, Any],
    listed: Mapping[str, list[str]],
    expected: list[str],
) -> list[str]:
    """Audience files holding customers the run did not export, or (unless amended since)
    not exactly the exported candidates in customer_id order."""
    allowed = set(expected)
    problems: list[str] = []
    for name, ids in listed.items():
        extra = sorted(set(ids) - allowed)
        if extra:
            problems.append(
                f"{directory / name}: {len(extra)} customer(s) that are not exported by run "
                f"{manifest.get('run_id')!r} (held out or left out), e.g. {extra[:3]}"
            )
        elif ids != expected and not manifest.get("amendments"):
            problems.append(
                f"{directory / name}: holds {len(ids)} rows for {len(expected)} exported "
                "candidates (or not in customer_id order)"
            )
    return problems


def platform_row_problems(directory: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Platform files with more rows than the audience.

    The platform files are the audience less those with nothing to match on. Without
    audience.csv (an ads export), the manifest's exported rows are the audience.
    """
    listed_files = manifest.get("files", {})
    if AUDIENCE_CSV in listed_files:
        audience_rows, audience = listed_files[AUDIENCE_CSV].get("rows", 0), f"of {AUDIENCE_CSV}"
    else:
        audience_rows, audience = manifest.get("rows", 0), "exported rows in the manifest"
    problems: list[str] = []
    for name in (GOOGLE_CSV, META_CSV):
        rows = listed_files.get(name, {}).get("rows", 0)
        if rows > audience_rows:
            problems.append(
                f"{directory / name}: {rows} rows, more than the {audience_rows} {audience}"
            )
    return problems


def verify_export_folder(
    connection: duckdb.DuckDBPyConnection, directory: str | Path, run_id: str | None = None
) -> list[str]:
    """Problems with a written export folder; an empty list means it is as its manifest says.

    Checks that every file the manifest lists exists with the stated data rows, SHA-256 and
    size; that the folder holds `run_id` (when given); that it holds no export file the
    manifest does not list, and none the manifest's consent purpose does not allow (an
    export writes only its formats); that audience.csv and audience.parquet (where written)
    hold exactly the run's `export` candidates, in customer_id order, so no held-out or
    left-out customer is in them; and that the platform files have no more rows than the
    audience (they are the same people, less those with nothing to match on).
    """
    directory = Path(directory)
    try:
        manifest = read_manifest(directory)
    except FileNotFoundError:
        return [f"{directory}: no {MANIFEST}; write the export again (write_export)"]
    listed_files = manifest.get("files", {})
    problems = [
        *run_id_problems(directory, manifest, run_id),
        *file_set_problems(directory, manifest),
        *file_integrity_problems(directory, listed_files),
    ]
    expected = exported_customer_ids(connection, manifest)
    listed = audience_file_ids(directory, listed_files)
    problems += audience_problems(directory, manifest, listed, expected)
    problems += platform_row_problems(directory, manifest)
    return problems


__all__ = [
    "audience_file_ids",
    "audience_problems",
    "exported_customer_ids",
    "file_integrity_problems",
    "file_set_problems",
    "platform_row_problems",
    "run_id_problems",
    "verify_export_folder",
]
