"""Export files: the audience of one run, written once per destination, with a manifest.

`write_export` reads a run's `export` candidates (never holdout or left-out rows), joins the
profile (`marts.dim_customers`) and the attributes (`marts.dim_customer_attributes`), and
writes, under `data/exports/<export_name>/<export date>/`, the files of the export's
`formats` (by default every format its consent purpose allows, see
`ml.activation.config.PURPOSE_FORMATS`: email_marketing gets audience.csv and audience.parquet,
ads_personalization the two platform files and audience.parquet, analytics only
audience.parquet), then records the run. Each step lives in a module of its own:

- `ml.activation.inputs`: the warehouse tables read, checked and queried in chunks.
- `ml.activation.csv_files`: `audience.csv` (for email and CRM tools, safe in a spreadsheet)
  and the two platform CSVs, whose hashed rows `ml.activation.destinations` builds
  (`google_customer_match.csv`, `meta_custom_audience.csv`, and the match readiness).
- `ml.activation.parquet_file`: `audience.parquet`, customer_id and the attributes, for analysts.
- `ml.activation.manifest`: `manifest.json`, with each file's data rows, SHA-256 and size.
- `ml.activation.folders`: the file names, the day folder, the staged swap and `latest`.
- `ml.activation.runs`: the `activation.export_runs` and `activation.export_members` rows.
- `ml.activation.blocked`: `record_blocked`, for an export the consent check refused.
- `ml.activation.verify`: `verify_export_folder`, a written folder against its manifest.

The folder is written beside the final one and swapped in, so a reader sees the old day or
the new one, never half of either; `latest` is a relative symlink to the newest date folder,
replaced atomically. The names above stay importable from this module, as they always were.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from ml import audit
from ml.activation.blocked import record_blocked
from ml.activation.candidates import candidate_summary
from ml.activation.config import FORMAT_FILES, ExportConfig, check_segment_matches
from ml.activation.csv_files import escape_formulas, write_csvs
from ml.activation.destinations import match_readiness
from ml.activation.folders import (
    AUDIENCE_CSV,
    AUDIENCE_PARQUET,
    FILE_NAMES,
    GOOGLE_CSV,
    GOOGLE_HEADER,
    LATEST,
    MANIFEST,
    META_CSV,
    META_HEADER,
    exports_dir_for,
    make_staging_folder,
    swap_in,
    update_latest,
)
from ml.activation.inputs import check_inputs
from ml.activation.manifest import (
    count_rows,
    describe_file,
    export_manifest,
    read_manifest,
    sha256_file,
    write_manifest,
)
from ml.activation.parquet_file import write_parquet
from ml.activation.runs import (
    MEMBERS,
    PERSONAL_COLUMNS,
    RUNS,
    STATUSES,
    ensure_tables,
    record_written_run,
    transaction,
)
from ml.activation.verify import verify_export_folder
from ml.as_of import cutoff, naive_utc, snapshot_date
from ml.segments.rules import Segment


@dataclass(frozen=True)
class ExportResult:
    """What `write_export` wrote: the folder, each file's rows/sha256/bytes, and the counts."""

    export_name: str
    run_id: str
    export_date: date
    directory: Path
    files: dict[str, dict[str, Any]]
    rows: int
    holdout_rows: int
    left_out: dict[str, int]
    readiness: dict[str, Any]
    manifest: Path
    generated_at: datetime
    formats: tuple[str, ...] = ()  # the formats written (csv, google, meta, parquet)

    def path(self, name: str) -> Path:
        """The path of one of the export's files, e.g. `result.path("audience.csv")`."""
        return self.directory / name


def write_data_files(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    run_id: str,
    folder: Path,
    optional: list[str],
    attributes: Mapping[str, str],
    formats: Sequence[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """Write the CSVs and the Parquet file of `formats` into `folder`; rows by file name and
    the readiness counts."""
    file_rows, counts = write_csvs(
        connection, config, run_id, folder, optional, attributes, formats
    )
    if "parquet" in formats:
        file_rows[AUDIENCE_PARQUET] = write_parquet(
            connection, config, run_id, folder / AUDIENCE_PARQUET
        )
    return file_rows, counts


def check_every_row_written(
    config: ExportConfig, file_rows: Mapping[str, int], counts: Mapping[str, int], exported: int
) -> None:
    """Raise RuntimeError unless the rows read, and every full (audience) file, hold exactly
    the `exported` candidates."""
    whole = [file_rows[n] for n in (AUDIENCE_CSV, AUDIENCE_PARQUET) if n in file_rows]
    for written in (counts["rows"], *whole):
        if written != exported:
            raise RuntimeError(
                f"export {config.name!r}: wrote {written} rows for {exported} "
                "exported candidates; nothing was published"
            )


def record_export_audit(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    formats: Sequence[str],
    day: date,
    directory: Path,
    summary: Mapping[str, Any],
    files: Mapping[str, Mapping[str, Any]],
) -> None:
    """Append the export's audit row: the files written (and the manifest) in `directory`,
    the rows exported, and the details (segment, formats, counts, each file's SHA-256)."""
    audit.record(
        connection,
        "export",
        config.name,
        run_id=run_id,
        files=[str(directory / name) for name in (*files, MANIFEST)],
        rows=summary["export"],
        details={
            "segment": segment.name,
            "consent_purpose": segment.consent_purpose,
            "formats": list(formats),
            "export_date": day.isoformat(),
            "directory": str(directory),
            "holdout_rows": summary["holdout"],
            "left_out": summary["left_out"],
            "files": {name: entry["sha256"] for name, entry in files.items()},
        },
    )


def write_export(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    as_of: str | date | datetime,
    exports_root: str | Path,
    generated_at: datetime | None = None,
) -> ExportResult:
    """Write a run's export files and manifest, and record the run, its members and an audit row.

    Reads the run's candidates (built by `build_candidates`); only `export` rows reach the files,
    and only the files of the export's formats (`config.formats`, or every format the segment's
    consent purpose allows when empty; a format the purpose does not allow is a ValueError).
    The folder is `<exports_root>/<export name>/<as_of date>/` (`exports_root` is
    `Settings.exports`); writing the same export for the same day again replaces that folder,
    and that day's rows in `activation.export_runs` and `activation.export_members` (also of
    earlier runs of the day, so a day is never counted twice). Tables and audit row are written
    in one transaction, committed only after the folder is in place.
    """
    check_segment_matches(config, segment)
    formats = config.formats_for(segment.consent_purpose)
    moment = cutoff(as_of)
    day = snapshot_date(as_of)
    generated = naive_utc(generated_at or datetime.now(UTC)).replace(microsecond=0)
    optional, attributes = check_inputs(connection, config)
    summary = candidate_summary(connection, run_id, config.name)
    final = exports_dir_for(Path(exports_root), config.name, day)
    staging = make_staging_folder(final)
    try:
        file_rows, counts = write_data_files(
            connection, config, run_id, staging, optional, attributes, formats
        )
        check_every_row_written(config, file_rows, counts, summary["export"])
        names = [FORMAT_FILES[f] for f in formats]
        files = {name: describe_file(staging / name, file_rows[name]) for name in names}
        readiness = match_readiness(counts)
        manifest = export_manifest(
            config, segment, run_id, moment, day, generated, formats, summary, files, readiness
        )
        write_manifest(staging, manifest)
        with transaction(connection):
            record_written_run(
                connection, config, segment, run_id, moment, day, generated, final, summary
            )
            record_export_audit(
                connection, config, segment, run_id, formats, day, final, summary, files
            )
            swap_in(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    update_latest(final.parent)
    return ExportResult(
        export_name=config.name,
        run_id=run_id,
        export_date=day,
        directory=final,
        files=files,
        rows=summary["export"],
        holdout_rows=summary["holdout"],
        left_out=summary["left_out"],
        readiness=readiness,
        manifest=final / MANIFEST,
        generated_at=generated,
        formats=formats,
    )


__all__ = [
    "AUDIENCE_CSV",
    "AUDIENCE_PARQUET",
    "FILE_NAMES",
    "GOOGLE_CSV",
    "GOOGLE_HEADER",
    "LATEST",
    "MANIFEST",
    "MEMBERS",
    "META_CSV",
    "META_HEADER",
    "PERSONAL_COLUMNS",
    "RUNS",
    "STATUSES",
    "ExportResult",
    "check_every_row_written",
    "count_rows",
    "describe_file",
    "ensure_tables",
    "escape_formulas",
    "exports_dir_for",
    "read_manifest",
    "record_blocked",
    "record_export_audit",
    "sha256_file",
    "update_latest",
    "verify_export_folder",
    "write_data_files",
    "write_export",
    "write_manifest",
]
