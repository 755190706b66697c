"""The hub's snapshot: everything the audience hub shows, published at the end of each run.

The hub never opens the warehouse (DuckDB allows one writer, and a run writes for minutes).
Instead the last step of a successful run calls `publish_snapshot`, which reads the warehouse
and the run's files and writes one folder the hub reads alone:

    <hub_snapshots>/
        current -> 20261204T174311123456Z      a relative link, replaced atomically
        20261204T174311123456Z/                the snapshot the hub serves
            snapshot.json                      when, which run, as of when, what is inside
            tables/<name>.parquet              the TABLES below, no names, emails or phones
            exports/<export>/<date>/...        copies of every export folder's files
            charts/<name>.png                  the run's charts and the cluster model's
        20261203T060412000000Z/                the previous one, kept until the next swap

A snapshot is written into a hidden folder beside the others, made read-only, renamed into
place, and only then does `current` move to it: a reader sees the old snapshot or the new
one, never half of either. The previous snapshot stays (a page or download that started on it
finishes), older ones are removed. A run that fails never reaches this step, so the previous
snapshot stays current; a publication that fails removes its hidden folder and leaves
`current` as it was. The previous snapshot keeps no copy of an export file once the next one
is current (a run may have erased people from those files since).

Customer ids appear only in `consent_events` (pseudonymous ids, for the privacy officer's
look-up); the only personal data in a snapshot is inside the export files themselves, which
the hub hands out as downloads, never shows.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ml.activation.folders import FILE_NAMES, LATEST, MANIFEST
from ml.activation.manifest import sha256_file
from ml.hub.words import describe_rule
from ml.settings import Settings
from ml.warehouse import table_exists

SNAPSHOT_FORMAT = 1
CURRENT = "current"
SNAPSHOT_FILE = "snapshot.json"
TABLES_DIR = "tables"
EXPORTS_DIR = "exports"
CHARTS_DIR = "charts"
# Tables the pipeline always writes: without them the run has not finished once.
REQUIRED = (
    "segments.segment_definitions",
    "segments.segment_sizes",
    "segments.segment_memberships",
)

_OPEN_MEMBERS = """
    select distinct segment_name, customer_id
    from segments.segment_memberships
    where valid_to is null
"""

# name -> (the tables it reads, the query). A table whose inputs are missing (a warehouse
# without exports yet, say) is written empty with its columns from `EMPTY`.
TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "segment_sizes": (
        ("segments.segment_sizes",),
        "select segment_name, snapshot_date, members, entered, exited "
        "from segments.segment_sizes order by segment_name, snapshot_date",
    ),
    "segment_overlap": (
        ("segments.segment_memberships",),
        f"""
        with open_members as ({_OPEN_MEMBERS})
        select this.segment_name, other.segment_name as other_segment, count(*) as shared
        from open_members as this
        inner join open_members as other
            on this.customer_id = other.customer_id
            and this.segment_name <> other.segment_name
        group by all
        order by this.segment_name, shared desc, other_segment
        """,
    ),
    "segment_clusters": (
        ("segments.segment_memberships", "ml.customer_clusters"),
        f"""
        with open_members as ({_OPEN_MEMBERS})
        select
            open_members.segment_name,
            clusters.cluster_id,
            coalesce(clusters.cluster_label, 'no cluster') as cluster_label,
            count(*) as members,
            count(*) filter (where clusters.is_outlier) as outliers
        from open_members
        left join ml.customer_clusters as clusters
            on open_members.customer_id = clusters.customer_id
        group by all
        order by open_members.segment_name, members desc, cluster_id
        """,
    ),
    "segment_rfm": (
        ("segments.segment_memberships", "marts.customer_rfm"),
        f"""
        with open_members as ({_OPEN_MEMBERS})
        select
            open_members.segment_name,
            coalesce(rfm.rfm_segment, 'not scored') as rfm_segment,
            count(*) as members
        from open_members
        left join marts.customer_rfm as rfm on open_members.customer_id = rfm.customer_id
        group by all
        order by open_members.segment_name, members desc, rfm_segment
        """,
    ),
    "cluster_runs": (
        ("ml.cluster_runs",),
        "select model_version, fitted_at, as_of_at, k, chosen_k, "
        "silhouette_by_k::varchar as silhouette_by_k, inertia_by_k::varchar as inertia_by_k, "
        "adjusted_rand_vs_previous, sample_size, features::varchar as features "
        "from ml.cluster_runs order by fitted_at desc",
    ),
    "cluster_profiles": (
        ("ml.cluster_profiles",),
        "select * from ml.cluster_profiles order by cluster_id",
    ),
    "export_runs": (
        ("activation.export_runs",),
        "select run_id, export_name, segment_name, consent_purpose, as_of, export_date, "
        "generated_at, rows_exported, rows_holdout, left_out::varchar as left_out, "
        "holdout_percent, measurement_window_days, status "
        "from activation.export_runs order by export_name, generated_at desc",
    ),
    "campaign_lift": (
        ("activation.campaign_lift",),
        "select * exclude (computed_at) from activation.campaign_lift "
        "order by export_name, export_date desc, metric",
    ),
    "audit_log": (
        ("privacy.audit_log",),
        "select audit_id, occurred_at, action, target, run_id, files, row_count, "
        "details::varchar as details from privacy.audit_log order by occurred_at desc",
    ),
    "erasure_log": (
        ("privacy.erasure_log",),
        "select erasure_request_id, requested_at, processed_at, completed_at, status, "
        "identifiers_erased, rows_removed, run_id "
        "from privacy.erasure_log order by processed_at desc, erasure_request_id",
    ),
    "erasure_removals": (
        ("privacy.erasure_removals",),
        "select erasure_request_id, table_name, rows_removed from privacy.erasure_removals "
        "order by erasure_request_id, table_name",
    ),
    "retention_log": (
        ("privacy.retention_log",),
        "select run_at, feed, table_name, column_name, cutoff, rows_purged, "
        "quarantine_rows_purged, duplicate_rows_purged, run_id "
        "from privacy.retention_log order by run_at desc, feed",
    ),
    "consent_events": (
        ("marts.fct_consent_events",),
        "select consent_event_id, customer_id, subject_type, purpose, consent_status, "
        "consent_source, recorded_at from marts.fct_consent_events "
        "order by recorded_at desc, consent_event_id",
    ),
    "consent_summary": (
        ("marts.fct_consent_events",),
        "select purpose, consent_status, count(*) as events, "
        "count(distinct customer_id) as customers from marts.fct_consent_events "
        "group by all order by purpose, consent_status",
    ),
    "consent_ledger": (
        ("marts.dim_consent_ledger",),
        "select purpose, consent_state, count(*) as customers from marts.dim_consent_ledger "
        "group by all order by purpose, consent_state",
    ),
    "suppressions": (
        ("marts.dim_suppression_list",),
        "select suppression_reason, count(*) as customers from marts.dim_suppression_list "
        "group by all order by suppression_reason",
    ),
}
# The columns of a table whose inputs are not in the warehouse yet (written with no rows).
EMPTY: dict[str, str] = {
    "cluster_runs": "model_version varchar, fitted_at timestamp, as_of_at timestamp, k "
    "integer, chosen_k integer, silhouette_by_k varchar, inertia_by_k varchar, "
    "adjusted_rand_vs_previous double, sample_size integer, features varchar",
    "cluster_profiles": "model_version varchar, cluster_id integer, cluster_label varchar, "
    "size integer, share double",
    "export_runs": "run_id varchar, export_name varchar, segment_name varchar, "
    "consent_purpose varchar, as_of timestamp, export_date date, generated_at timestamp, "
    "rows_exported bigint, rows_holdout bigint, left_out varchar, holdout_percent double, "
    "measurement_window_days integer, status varchar",
    "campaign_lift": "export_name varchar, run_id varchar, export_date date, window_days "
    "integer, window_complete boolean, metric varchar, test varchar, treatment_n bigint, "
    "holdout_n bigint, treatment_value double, holdout_value double, absolute_lift double, "
    "absolute_ci_low double, absolute_ci_high double, relative_lift double, relative_ci_low "
    "double, relative_ci_high double, p_value double, significant boolean, note varchar",
    "audit_log": "audit_id varchar, occurred_at timestamp, action varchar, target varchar, "
    "run_id varchar, files varchar[], row_count bigint, details varchar",
    "erasure_log": "erasure_request_id varchar, requested_at timestamp, processed_at "
    "timestamp, completed_at timestamp, status varchar, identifiers_erased integer, "
    "rows_removed bigint, run_id varchar",
    "erasure_removals": "erasure_request_id varchar, table_name varchar, rows_removed bigint",
    "retention_log": "run_at timestamp, feed varchar, table_name varchar, column_name "
    "varchar, cutoff timestamp, rows_purged bigint, quarantine_rows_purged bigint, "
    "duplicate_rows_purged bigint, run_id varchar",
    "consent_events": "consent_event_id varchar, customer_id varchar, subject_type varchar, "
    "purpose varchar, consent_status varchar, consent_source varchar, recorded_at timestamp",
    "consent_summary": "purpose varchar, consent_status varchar, events bigint, customers bigint",
    "consent_ledger": "purpose varchar, consent_state varchar, customers bigint",
    "suppressions": "suppression_reason varchar, customers bigint",
    "segment_clusters": "segment_name varchar, cluster_id integer, cluster_label varchar, "
    "members bigint, outliers bigint",
    "segment_rfm": "segment_name varchar, rfm_segment varchar, members bigint",
}

_SEGMENTS_QUERY = """
with sizes as (
    select
        *,
        row_number() over (partition by segment_name order by snapshot_date desc) as recency
    from segments.segment_sizes
)
select
    definitions.segment_name,
    definitions.description,
    definitions.owner,
    definitions.type,
    definitions.consent_purpose,
    definitions.file,
    definitions.definition_hash,
    definitions.compiled_sql,
    definitions.parameters::varchar as parameters,
    definitions.frozen_at,
    definitions.last_as_of_at,
    coalesce(today.members, 0) as members,
    coalesce(today.entered, 0) as entered,
    coalesce(today.exited, 0) as exited,
    today.snapshot_date as size_date,
    earlier.members as previous_members,
    earlier.snapshot_date as previous_date
from segments.segment_definitions as definitions
left join sizes as today
    on definitions.segment_name = today.segment_name and today.recency = 1
left join sizes as earlier
    on definitions.segment_name = earlier.segment_name and earlier.recency = 2
order by definitions.segment_name
"""


class SnapshotError(RuntimeError):
    """A snapshot cannot be published; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Published:
    """What one publication wrote."""

    folder: Path
    published_at: datetime
    tables: dict[str, int]
    export_files: int
    charts: list[str]
    removed: list[str] = field(default_factory=list)


def publish_snapshot(settings: Settings, *, run_id: str = "", as_of: str = "") -> Published:
    """Write a new snapshot of the warehouse and the run's files, then make it current."""
    root = settings.hub_snapshots
    root.mkdir(parents=True, exist_ok=True)
    published_at = datetime.now(UTC).replace(tzinfo=None)
    name = published_at.strftime("%Y%m%dT%H%M%S%fZ")
    staging = root / f".{name}.{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        tables = _write_tables(settings, staging / TABLES_DIR)
        export_files = _copy_exports(settings.exports, staging / EXPORTS_DIR)
        charts = _copy_charts(settings, staging / CHARTS_DIR)
        about = {
            "format": SNAPSHOT_FORMAT,
            "published_at": published_at.isoformat(timespec="seconds") + "Z",
            "run_id": run_id,
            "as_of": as_of,
            "tables": tables,
            "export_files": export_files,
            "charts": charts,
        }
        (staging / SNAPSHOT_FILE).write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
        _make_read_only(staging)
        final = root / name
        staging.rename(final)
    except BaseException:
        remove_tree(staging)
        raise
    previous = _point_current_at(root, final)
    if previous and (root / previous).is_dir():
        _drop_export_copies(root / previous)
    removed = _remove_older(root, keep={final.name, previous or ""})
    return Published(final, published_at, tables, len(export_files), charts, removed)


def current_folder(root: Path) -> Path | None:
    """The folder `current` points at, or None before the first publication."""
    link = Path(root) / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return None
    folder = Path(root) / target
    return folder if folder.is_dir() else None


# --- the tables --------------------------------------------------------------------------------


def _write_tables(settings: Settings, folder: Path) -> dict[str, int]:
    """Every table of the snapshot as Parquet; rows per table."""
    folder.mkdir()
    if not settings.warehouse.is_file():
        raise SnapshotError(
            f"there is no warehouse at {settings.warehouse}: run the pipeline (`make run`) "
            "first; its last step publishes the hub's snapshot"
        )
    rows: dict[str, int] = {}
    with settings.connect(read_only=True) as connection:
        missing = [name for name in REQUIRED if not table_exists(connection, *name.split("."))]
        if missing:
            raise SnapshotError(
                f"the warehouse {settings.warehouse} has no {', '.join(missing)} yet: run the "
                "whole pipeline (`make run`) once before publishing the hub's snapshot"
            )
        segments = _segments_table(connection)
        rows["segments"] = _write_frame(connection, segments, folder / "segments.parquet")
        for name, (inputs, query) in TABLES.items():
            present = all(table_exists(connection, *table.split(".")) for table in inputs)
            if not present:  # no rows yet, with the columns the hub expects
                query = (
                    f"select unnest(s) from (select * from "
                    f"(select null::struct({EMPTY[name]}) as s) where false)"
                )
            rows[name] = _copy_query(connection, query, folder / f"{name}.parquet")
        _relative_audit_files(connection, folder / "audit_log.parquet", settings.exports)
    return rows


def _segments_table(connection: duckdb.DuckDBPyConnection) -> Any:
    """Each segment's definition and latest size, with its rules in words and as YAML."""
    frame = connection.execute(_SEGMENTS_QUERY).df()
    in_files = _segments_from_files()
    described = {name: describe_segment_file(name, in_files) for name in frame["segment_name"]}
    frame["rules_words"] = [json.dumps(described[n]["words"]) for n in frame["segment_name"]]
    frame["rules_yaml"] = [described[n]["yaml"] for n in frame["segment_name"]]
    frame["file_hash"] = [described[n]["hash"] for n in frame["segment_name"]]
    frame["rules_note"] = [described[n]["note"] for n in frame["segment_name"]]
    return frame


def describe_segment_file(name: str, segments: Iterable[Any]) -> dict[str, Any]:
    """A segment's rules from its file (`segments`, as loaded from the segment files): in
    words, as YAML, the file's definition hash, and a note when the file no longer has it."""
    found = next((segment for segment in segments if segment.name == name), None)
    if found is None:
        return {
            "words": [],
            "yaml": "",
            "hash": "",
            "note": "This segment is no longer in the segment files; its history is kept.",
        }
    from ml.segments.rules import rule_to_data

    rules = rule_to_data(found.rules)
    document = {
        "name": found.name,
        "description": found.description,
        "owner": found.owner,
        "type": found.type,
        "consent_purpose": found.consent_purpose,
        "rules": rules,
    }
    return {
        "words": [[depth, text] for depth, text in describe_rule(rules)],
        "yaml": yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=88),
        "hash": found.definition_hash,
        "note": "",
    }


def _segments_from_files() -> list[Any]:
    """The segments of dbt_project/segments/ that validate (others have no words)."""
    from ml.segments import SegmentValidationError, load_catalogue, load_segments
    from ml.segments.catalogue import SEGMENTS_DIR

    try:
        return list(load_segments(SEGMENTS_DIR, load_catalogue()))
    except SegmentValidationError as error:
        return list(error.valid)


def _write_frame(connection: duckdb.DuckDBPyConnection, frame: Any, path: Path) -> int:
    connection.register("hub_frame", frame)
    try:
        return _copy_query(connection, "select * from hub_frame", path)
    finally:
        connection.unregister("hub_frame")


def _copy_query(connection: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    connection.execute(f"copy ({query}) to '{_sql_path(path)}' (format parquet)").fetchall()
    [(count,)] = connection.execute(f"select count(*) from '{_sql_path(path)}'").fetchall()
    return int(count)


def _relative_audit_files(
    connection: duckdb.DuckDBPyConnection, path: Path, exports_root: Path
) -> None:
    """Audit rows name export files by absolute path; the hub shows them from the exports
    root (`lapsed_180d/2026-11-20/audience.csv`), which says the same and shows no machine.
    A path outside today's root (the exports were moved since) keeps its last three parts,
    export, day and file."""
    prefix = str(exports_root).rstrip("/") + "/"
    staged = path.with_name(path.stem + ".relative.parquet")
    connection.execute(
        f"copy (select * replace (list_transform(files, lambda f: "
        f"case when starts_with(f, $prefix) then f[length($prefix) + 1:] "
        f"when starts_with(f, '/') then array_to_string(string_split(f, '/')[-3:], '/') "
        f"else f end) as files) "
        f"from '{_sql_path(path)}') to '{_sql_path(staged)}' (format parquet)",
        {"prefix": prefix},
    ).fetchall()
    os.replace(staged, path)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


# --- the files ---------------------------------------------------------------------------------


def _copy_exports(exports_root: Path, folder: Path) -> list[str]:
    """Copy every export's date folders (manifest and the files an export can write); the
    copied files, relative to `folder`. Hidden folders (a run's staging) and links are skipped."""
    folder.mkdir()
    copied: list[str] = []
    if not exports_root.is_dir():
        return copied
    for export in sorted(_visible_folders(exports_root)):
        for day in sorted(_visible_folders(export)):
            if day.name == LATEST or not (day / MANIFEST).is_file():
                continue
            target = folder / export.name / day.name
            target.mkdir(parents=True)
            for name in (*FILE_NAMES, MANIFEST):
                source = day / name
                if source.is_file() and not source.is_symlink():
                    shutil.copyfile(source, target / name)
                    copied.append(f"{export.name}/{day.name}/{name}")
        latest = export / LATEST
        if latest.is_symlink() and (folder / export.name).is_dir():
            (folder / export.name / "latest.txt").write_text(
                os.readlink(latest).strip("/") + "\n", encoding="utf-8"
            )
    _write_file_index(folder, copied)
    return copied


def _visible_folders(parent: Path) -> list[Path]:
    return [
        path
        for path in parent.iterdir()
        if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")
    ]


def _write_file_index(folder: Path, copied: list[str]) -> None:
    """files.json: each copied file's SHA-256 and size, computed from the copy the hub serves
    (what a download's audit row records)."""
    index = {
        relative: {
            "sha256": sha256_file(folder / relative),
            "bytes": (folder / relative).stat().st_size,
        }
        for relative in copied
    }
    (folder / "files.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _copy_charts(settings: Settings, folder: Path) -> list[str]:
    """The run's charts (<reports>/charts/*.png) and the newest cluster model's charts."""
    folder.mkdir()
    sources = sorted((settings.reports / "charts").glob("*.png"))
    models = settings.cluster_models
    if models.is_dir():
        versions = sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
        if versions:
            sources += sorted(versions[-1].glob("*.png"))
    copied = []
    for source in sources:
        if source.is_file() and source.name not in copied:
            shutil.copyfile(source, folder / source.name)
            copied.append(source.name)
    return copied


# --- erasure ----------------------------------------------------------------------------------


def export_copies(root: Path) -> list[tuple[Path, Path]]:
    """(snapshot folder, its copies of the export folders) of every published snapshot under
    `root`: erasure (ml/privacy/export_files.py) removes erased people from the copies too."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [
        (folder, folder / EXPORTS_DIR)
        for folder in sorted(_visible_folders(root))
        if (folder / EXPORTS_DIR).is_dir()
    ]


@contextmanager
def writable(snapshot: Path) -> Iterator[None]:
    """A published (read-only) snapshot made writable for the owner while erasure amends its
    export copies, and read-only again afterwards, whatever happens."""
    for path in [snapshot, *snapshot.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IRWXU)
        elif path.is_file() and not path.is_symlink():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    try:
        yield
    finally:
        _make_read_only(snapshot)


def tables_with_customers(snapshot: Path) -> list[Path]:
    """The snapshot's tables that have a `customer_id` column."""
    import pyarrow.parquet as pq

    folder = snapshot / TABLES_DIR
    if not folder.is_dir():
        return []
    return [
        path
        for path in sorted(folder.glob("*.parquet"))
        if "customer_id" in pq.read_schema(path).names
    ]


def refresh_file_index(exports: Path, changed: Iterable[str]) -> None:
    """files.json with the new SHA-256 and size of the copies erasure changed (paths
    relative to the snapshot's exports folder)."""
    index_path = exports / "files.json"
    index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
    for relative in changed:
        index[relative] = {
            "sha256": sha256_file(exports / relative),
            "bytes": (exports / relative).stat().st_size,
        }
    index_path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


# --- the swap ----------------------------------------------------------------------------------


def _make_read_only(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP)
        elif path.is_dir():
            path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)


def _point_current_at(root: Path, folder: Path) -> str | None:
    """Replace the `current` link atomically; the name it pointed at before."""
    link = root / CURRENT
    try:
        previous: str | None = os.readlink(link)
    except OSError:
        previous = None
    staged = root / f".{CURRENT}.{uuid.uuid4().hex}"
    os.symlink(folder.name, staged)
    os.replace(staged, link)
    return previous


def _drop_export_copies(folder: Path) -> None:
    """The previous snapshot keeps its tables and manifests, for a page being drawn from it,
    but not its copies of the export files: they may hold people this run has erased, and a
    download that has already opened one keeps reading it to the end."""
    exports = folder / EXPORTS_DIR
    if not exports.is_dir():
        return
    for path in sorted(exports.rglob("*")):
        if path.name in FILE_NAMES and path.is_file():
            path.parent.chmod(stat.S_IRWXU)
            path.unlink()
            path.parent.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)


def _remove_older(root: Path, keep: set[str]) -> list[str]:
    """Remove snapshots other than the current and previous one, and leftovers of
    publications that failed (hidden folders)."""
    removed = []
    for path in sorted(root.iterdir()):
        if path.name == CURRENT or path.name in keep or path.is_symlink():
            continue
        if path.is_dir():
            remove_tree(path)
            removed.append(path.name)
    return removed


def remove_tree(folder: Path) -> None:
    """Remove a (read-only) snapshot folder."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(folder)
