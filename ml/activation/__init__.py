"""Activation: turn an audience into files that ad and email platforms accept unchanged.

Dagster-free. `hashing` holds the per-destination identifier rules, each a pure function from
one raw value to its normal form (or None when the value is empty or unusable, so garbage is
never hashed), plus `sha256_hex` and `map_series`, which applies a rule to a pandas column by
computing every distinct value once. Google Customer Match and Meta Custom Audiences normalise
differently (Google rewrites gmail addresses and keeps the `+` of E.164; Meta does neither), so
each destination has its own functions and its own field table (`GOOGLE_FIELDS`, `META_FIELDS`).

An export, step by step (the exports asset's whole job):

    exports = load_exports()                    # dbt_project/exports/*.yml, validated
    segment = segment_for(config, segments)     # the export's segment and consent purpose
    build_candidates(connection, config, segment, run_id, as_of, settings.salt)
    problems = verify_candidates(connection, run_id, config.name, segment.consent_purpose,
                                 holdout_percent=config.holdout_percent, salt=settings.salt)
    if problems.empty:                          # any row without consent blocks the export
        result = write_export(connection, config, segment, run_id, as_of, settings.exports)
    else:
        record_blocked(connection, config, segment, run_id, as_of, problems, settings.exports)

`ml.workflow.export_audiences` does exactly this for every configured export.

`config` reads the export files; `holdouts` draws sticky holdouts from a salted hash;
`candidates` gives every segment member one outcome (export, holdout, or left out by reason);
`files` (`write_export`) writes the CSVs, the Parquet file and the manifest, and records the
run in schema `activation` and in the audit log, one step per module: `inputs` (the marts
read), `csv_files` and `destinations` (audience.csv and the hashed platform files),
`parquet_file`, `manifest`, `folders` (file names, the day folder, `latest`) and `runs` (the
`export_runs` and `export_members` rows). `blocked` records an export the check refused and
`verify` checks a written folder against its manifest.
"""

from ml.activation.blocked import record_blocked
from ml.activation.candidates import (
    CANDIDATES,
    LEFT_OUT_REASONS,
    OUTCOMES,
    SUPPRESSION_REASONS,
    build_candidates,
    candidate_summary,
    verify_candidates,
)
from ml.activation.config import (
    EXPORTS_DIR,
    ExportConfig,
    ExportConfigError,
    ExportError,
    ExportValidationError,
    load_exports,
    segment_for,
)
from ml.activation.files import ExportResult, write_export
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
    update_latest,
)
from ml.activation.holdouts import (
    holdout_bucket,
    holdout_bucket_sql,
    holdout_threshold,
    is_holdout,
    is_holdout_sql,
)
from ml.activation.manifest import describe_file, read_manifest, write_manifest
from ml.activation.runs import MEMBERS, RUNS, ensure_tables
from ml.activation.verify import verify_export_folder

__all__ = [
    "AUDIENCE_CSV",
    "AUDIENCE_PARQUET",
    "CANDIDATES",
    "EXPORTS_DIR",
    "FILE_NAMES",
    "GOOGLE_CSV",
    "GOOGLE_HEADER",
    "LATEST",
    "LEFT_OUT_REASONS",
    "MANIFEST",
    "MEMBERS",
    "META_CSV",
    "META_HEADER",
    "OUTCOMES",
    "RUNS",
    "SUPPRESSION_REASONS",
    "ExportConfig",
    "ExportConfigError",
    "ExportError",
    "ExportResult",
    "ExportValidationError",
    "build_candidates",
    "candidate_summary",
    "describe_file",
    "ensure_tables",
    "exports_dir_for",
    "holdout_bucket",
    "holdout_bucket_sql",
    "holdout_threshold",
    "is_holdout",
    "is_holdout_sql",
    "load_exports",
    "read_manifest",
    "record_blocked",
    "segment_for",
    "update_latest",
    "verify_candidates",
    "verify_export_folder",
    "write_export",
    "write_manifest",
]
