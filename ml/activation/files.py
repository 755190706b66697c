"""Export files: the audience of one run, written once per destination, with a manifest.

`write_export` reads a run's `export` candidates (never holdout or left-out rows), joins the
profile (`marts.dim_customers`) and the attributes (`marts.dim_customer_attributes`), and
writes, under `data/exports/<export_name>/<export date>/`, the files of the export's
`formats` (by default every format its consent purpose allows, see
`ml.activation.config.PURPOSE_FORMATS`: email_marketing gets audience.csv and audience.parquet,
ads_personalization the two platform files and audience.parquet, analytics only
audience.parquet):

- `audience.csv` for email and CRM tools: customer_id, email, first_name, last_name and the
  export's chosen attributes. UTF-8 with a byte-order mark and CRLF line ends, so Excel opens
  accents and line breaks correctly; a text cell starting with = + - @ (or a tab or carriage
  return) gets a leading ' so a spreadsheet shows it as text instead of running it as a
  formula (numbers are left alone: -3.5 stays a number).
- `google_customer_match.csv`: Email, Phone, First Name, Last Name hashed (SHA-256 hex of
  Google's normal forms), Country and Zip plain, as Google's upload template has them.
- `meta_custom_audience.csv`: email, phone, fn, ln, ct, st, zip, country, doby, gen, every
  one hashed by Meta's rules (st is empty: the profile has no state column).
  Both platform files are plain UTF-8 without a byte-order mark (it would become part of the
  first header) with LF line ends, and leave out rows with neither a valid email nor a valid
  phone: a row with nothing to match on only costs upload time. `match_readiness` counts them.
- `audience.parquet`: customer_id and every column of the attribute table (no direct
  personal data), the same rows, for analysts.
- `manifest.json`: what was exported, why others were not, the formats, and each written
  file's data-row count, SHA-256 and size, so anyone can check a file has not changed since
  it was written. `match_readiness` (valid emails and phones among the exported rows) is
  computed for every export, whatever its formats: it is about the identifiers, not a file.

The folder is written beside the final one and swapped in, so a reader sees the old day or
the new one, never half of either; `latest` is a relative symlink to the newest date folder,
replaced atomically. The normalisation rules are in `ml.activation.hashing`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from ml import audit
from ml.activation import hashing
from ml.activation.candidates import CANDIDATES, CANDIDATES_DDL, SCHEMA, candidate_summary
from ml.activation.config import FIXED_COLUMNS, FORMAT_FILES, PURPOSE_FORMATS, ExportConfig
from ml.as_of import cutoff, naive_utc, snapshot_date
from ml.segments.rules import Segment
from ml.sql import quote_literal
from ml.warehouse import table_exists

AUDIENCE_CSV = FORMAT_FILES["csv"]  # audience.csv
GOOGLE_CSV = FORMAT_FILES["google"]  # google_customer_match.csv
META_CSV = FORMAT_FILES["meta"]  # meta_custom_audience.csv
AUDIENCE_PARQUET = FORMAT_FILES["parquet"]  # audience.parquet
MANIFEST = "manifest.json"
LATEST = "latest"
FILE_NAMES = tuple(FORMAT_FILES.values())  # every file an export can write, in writing order
GOOGLE_HEADER = tuple(hashing.GOOGLE_FIELDS)  # Email, Phone, First Name, Last Name, Country, Zip
META_HEADER = tuple(hashing.META_FIELDS)  # email, phone, fn, ln, ct, st, zip, country, doby, gen
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 100_000

PROFILE = "marts.dim_customers"
ATTRIBUTES = "marts.dim_customer_attributes"
PROFILE_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "city",
    "postcode",
    "country_code",
    "birth_date",
    "gender",
)
OPTIONAL_PROFILE_COLUMNS = ("state",)  # Meta's st; UK data has none
RUNS = f"{SCHEMA}.export_runs"
MEMBERS = f"{SCHEMA}.export_members"
STATUSES = ("written", "blocked", "amended")

TABLES_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {RUNS} (
    run_id varchar not null,
    export_name varchar not null,
    segment_name varchar not null,
    definition_hash varchar not null,
    consent_purpose varchar not null,
    as_of timestamp not null,
    export_date date not null,
    generated_at timestamp not null,
    directory varchar not null,
    rows_exported bigint not null,
    rows_holdout bigint not null,
    left_out json not null,
    holdout_percent double not null,
    measurement_window_days integer not null,
    status varchar not null
);
create table if not exists {MEMBERS} (
    run_id varchar not null,
    export_name varchar not null,
    segment_name varchar not null,
    export_date date not null,
    as_of timestamp not null,
    customer_id varchar not null,
    group_name varchar not null
)
"""


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


def exports_dir_for(root: str | Path, export_name: str, export_date: date | str) -> Path:
    """The folder of one export on one day: <root>/<export_name>/<YYYY-MM-DD>."""
    day = export_date if isinstance(export_date, str) else export_date.isoformat()
    return Path(root) / export_name / day


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create schema activation and its tables (candidates, runs, members) when absent."""
    connection.execute(CANDIDATES_DDL)
    connection.execute(TABLES_DDL)


# --- small file helpers -----------------------------------------------------------------------


def escape_formulas(values: pd.Series) -> pd.Series:
    """Prefix ' to text that a spreadsheet would read as a formula (= + - @, tab, CR)."""
    text = values.astype(object)
    risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
    return text.where(~risky.astype(bool), "'" + text.astype(str))


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


def _iso(moment: datetime) -> str:
    """A naive UTC datetime as ISO 8601 with a Z."""
    return moment.isoformat(timespec="seconds") + "Z"


class _CsvFile:
    """A CSV written in chunks: header once, optional byte-order mark, fixed line end."""

    def __init__(self, path: Path, header: Sequence[str], *, spreadsheet: bool):
        self.path = path
        self.header = list(header)
        self.rows = 0
        self.newline = "\r\n" if spreadsheet else "\n"
        self.handle: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        if spreadsheet:
            self.handle.write("\ufeff")
        csv.writer(self.handle, lineterminator=self.newline).writerow(self.header)

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        frame[self.header].to_csv(
            self.handle, header=False, index=False, lineterminator=self.newline
        )
        self.rows += len(frame)

    def close(self) -> None:
        self.handle.close()


# --- the export -------------------------------------------------------------------------------


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    rows = connection.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return {column: data_type for column, data_type in rows}


def _check_inputs(
    connection: duckdb.DuckDBPyConnection, config: ExportConfig
) -> tuple[list[str], dict[str, str]]:
    for table, hint in (
        (CANDIDATES, "build the candidates (ml.activation.build_candidates) first"),
        (PROFILE, "build the customer marts (`dbt build`) first"),
        (ATTRIBUTES, "build the audience marts (`dbt build`) first"),
    ):
        if not table_exists(connection, *table.split(".")):
            raise RuntimeError(f"{table} does not exist in this warehouse; {hint}")
    profile = _columns(connection, PROFILE)
    missing = [c for c in ("customer_id", *PROFILE_COLUMNS) if c not in profile]
    if missing:
        raise RuntimeError(
            f"{PROFILE} has no column {', '.join(missing)}; exports need "
            f"{', '.join(PROFILE_COLUMNS)} (rebuild it with `dbt build`)"
        )
    attributes = _columns(connection, ATTRIBUTES)
    absent = [a for a in config.attributes if a not in attributes]
    if absent:
        raise RuntimeError(
            f"export {config.name!r} ({config.file}): attribute {', '.join(absent)} is in the "
            f"catalogue but not in {ATTRIBUTES}; rebuild the model or remove it from attributes"
        )
    optional = [c for c in OPTIONAL_PROFILE_COLUMNS if c in profile]
    return optional, attributes


def _treatment_query(config: ExportConfig, optional: list[str]) -> str:
    """Treatment rows with every value as text: profile columns, then chosen attributes."""
    profile = [f"cast(profile.{c} as varchar) as profile__{c}" for c in PROFILE_COLUMNS]
    profile += [f"cast(profile.{c} as varchar) as profile__{c}" for c in optional]
    chosen = [f'cast(attributes."{a}" as varchar) as "attribute__{a}"' for a in config.attributes]
    select = ",\n            ".join(["candidates.customer_id", *profile, *chosen])
    return f"""
        select
            {select}
        from {CANDIDATES} as candidates
        left join {PROFILE} as profile
            on candidates.customer_id = profile.customer_id
        left join {ATTRIBUTES} as attributes
            on candidates.customer_id = attributes.customer_id
        where candidates.run_id = $run_id
            and candidates.export_name = $export_name
            and candidates.outcome = 'export'
        order by candidates.customer_id
    """


def _is_text(data_type: str) -> bool:
    return data_type.upper().startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"))


def _destination_frames(
    chunk: pd.DataFrame, has_state: bool, google_file: bool = True, meta_file: bool = True
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, int]]:
    """Google and Meta rows of one chunk (rows without an identifier dropped; None for a file
    the export does not write), and the readiness counts, which every export gets."""
    country = hashing.map_series(hashing.google_country, chunk["profile__country_code"])
    email = hashing.map_series(hashing.meta_email, chunk["profile__email"])
    # Google's form equals the valid lower-cased address except at gmail.com/googlemail.com,
    # so only those go through google_email again.
    domain = email.map(lambda value: value.rpartition("@")[2] if value else None)
    gmail = domain.isin(sorted(hashing.GMAIL_DOMAINS))
    google_email = email.copy()
    if gmail.any():
        google_email[gmail] = hashing.map_series(hashing.google_email, email[gmail])
    phone = hashing.map_series(hashing.google_phone, chunk["profile__phone"], country)
    has_email = email.notna()
    has_phone = phone.notna()
    counts = {
        "rows": len(chunk),
        "valid_email": int(has_email.sum()),
        "valid_phone": int(has_phone.sum()),
        "gmail_rewrites": int((gmail & (google_email != email)).sum()),
        "no_usable_identifier": int((~has_email & ~has_phone).sum()),
    }

    def digest(values: pd.Series) -> pd.Series:
        return hashing.map_series(hashing.sha256_hex, values)

    google = meta = None
    if google_file:
        google = _google_frame(chunk, google_email, phone, country, digest)
        google = google[google["Email"].notna() | google["Phone"].notna()]
    if meta_file:
        # Meta's phone is the E.164 number without its "+" (hashing.meta_phone).
        meta_phone = phone.map(lambda value: value[1:] if value else None)
        meta = _meta_frame(chunk, email, meta_phone, has_state, digest)
        meta = meta[meta["email"].notna() | meta["phone"].notna()]
    return google, meta, counts


def _google_frame(
    chunk: pd.DataFrame, email: pd.Series, phone: pd.Series, country: pd.Series, digest: Any
) -> pd.DataFrame:
    """Google Customer Match columns: identifiers hashed, Country and Zip plain."""
    return pd.DataFrame(
        {
            "Email": digest(email),
            "Phone": digest(phone),
            "First Name": hashing.hash_series(
                hashing.google_first_name, chunk["profile__first_name"]
            ),
            "Last Name": hashing.hash_series(hashing.google_last_name, chunk["profile__last_name"]),
            "Country": country,
            "Zip": hashing.map_series(hashing.google_zip, chunk["profile__postcode"]),
        },
        index=chunk.index,
    )


def _meta_frame(
    chunk: pd.DataFrame, email: pd.Series, phone: pd.Series, has_state: bool, digest: Any
) -> pd.DataFrame:
    """Meta Custom Audience columns, every one hashed (st empty without a state column)."""
    empty = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)
    return pd.DataFrame(
        {
            "email": digest(email),
            "phone": digest(phone),
            "fn": hashing.hash_series(hashing.meta_name, chunk["profile__first_name"]),
            "ln": hashing.hash_series(hashing.meta_name, chunk["profile__last_name"]),
            "ct": hashing.hash_series(hashing.meta_city, chunk["profile__city"]),
            "st": hashing.hash_series(hashing.meta_state, chunk["profile__state"])
            if has_state
            else empty,
            "zip": hashing.hash_series(
                hashing.meta_zip, chunk["profile__postcode"], chunk["profile__country_code"]
            ),
            "country": hashing.hash_series(hashing.meta_country, chunk["profile__country_code"]),
            "doby": hashing.hash_series(hashing.meta_birth_year, chunk["profile__birth_date"]),
            "gen": hashing.hash_series(hashing.meta_gender, chunk["profile__gender"]),
        },
        index=chunk.index,
    )


def _readiness(counts: Mapping[str, int]) -> dict[str, Any]:
    rows = counts.get("rows", 0)

    def share(count: int) -> float:
        return round(count / rows, 4) if rows else 0.0

    return {
        "rows": rows,
        "valid_email": counts.get("valid_email", 0),
        "valid_email_share": share(counts.get("valid_email", 0)),
        "valid_phone": counts.get("valid_phone", 0),
        "valid_phone_share": share(counts.get("valid_phone", 0)),
        "gmail_rewrites": counts.get("gmail_rewrites", 0),
        "no_usable_identifier": counts.get("no_usable_identifier", 0),
    }


def _write_csvs(
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
    audience_header = [*FIXED_COLUMNS, *config.attributes]
    text_columns = {"email", "first_name", "last_name"} | {
        a for a in config.attributes if _is_text(attributes[a])
    }
    files: dict[str, _CsvFile] = {}
    if "csv" in formats:
        files[AUDIENCE_CSV] = _CsvFile(folder / AUDIENCE_CSV, audience_header, spreadsheet=True)
    if "google" in formats:
        files[GOOGLE_CSV] = _CsvFile(folder / GOOGLE_CSV, GOOGLE_HEADER, spreadsheet=False)
    if "meta" in formats:
        files[META_CSV] = _CsvFile(folder / META_CSV, META_HEADER, spreadsheet=False)
    counts = dict.fromkeys(
        ("rows", "valid_email", "valid_phone", "gmail_rewrites", "no_usable_identifier"), 0
    )
    try:
        reader = connection.sql(
            _treatment_query(config, optional),
            params={"run_id": run_id, "export_name": config.name},
        ).to_arrow_reader(CHUNK_ROWS)
        for batch in reader:
            chunk = batch.to_pandas()
            if chunk.empty:
                continue
            if AUDIENCE_CSV in files:
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
                files[AUDIENCE_CSV].write(audience)
            google, meta, chunk_counts = _destination_frames(
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


def _write_parquet(
    connection: duckdb.DuckDBPyConnection, config: ExportConfig, run_id: str, path: Path
) -> int:
    """customer_id and every attribute column of the treatment rows, ordered by customer_id."""
    connection.execute(
        f"""
        copy (
            select candidates.customer_id, attributes.* exclude (customer_id)
            from {CANDIDATES} as candidates
            left join {ATTRIBUTES} as attributes
                on candidates.customer_id = attributes.customer_id
            where candidates.run_id = $run_id
                and candidates.export_name = $export_name
                and candidates.outcome = 'export'
            order by candidates.customer_id
        ) to {quote_literal(path)} (format parquet)
        """,
        {"run_id": run_id, "export_name": config.name},
    )
    return count_rows(path)


def _swap_in(staging: Path, final: Path) -> None:
    """Put the staged folder where `final` is, replacing any earlier folder of that day."""
    if final.exists():
        retired = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired)
    else:
        staging.rename(final)


def update_latest(export_folder: str | Path) -> Path | None:
    """Point `<export_folder>/latest` at the newest date folder (relative, atomic replace)."""
    export_folder = Path(export_folder)
    days = sorted(
        p.name
        for p in export_folder.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )
    if not days:
        return None
    link = export_folder / LATEST
    staging = export_folder / f".{LATEST}.{uuid.uuid4().hex}"
    os.symlink(days[-1], staging)
    os.replace(staging, link)
    return link


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
    problems: list[str] = []
    if run_id is not None and manifest.get("run_id") != run_id:
        problems.append(
            f"{directory / MANIFEST}: run_id is {manifest.get('run_id')!r}, not this run's "
            f"{run_id!r}; the folder was not written by this run"
        )
    listed_files = manifest.get("files", {})
    purpose = manifest.get("consent_purpose")
    allowed = {FORMAT_FILES[f] for f in PURPOSE_FORMATS.get(purpose, ())}
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
    expected = [
        row[0]
        for row in connection.execute(
            f"select customer_id from {CANDIDATES} where run_id = $run_id "
            "and export_name = $export_name and outcome = 'export' order by customer_id",
            {"run_id": manifest.get("run_id"), "export_name": manifest.get("export_name")},
        ).fetchall()
    ]
    listed = {}  # the ids in the audience files the manifest lists (others are flagged above)
    if AUDIENCE_CSV in listed_files and (directory / AUDIENCE_CSV).exists():
        with open(directory / AUDIENCE_CSV, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)  # the header
            listed[AUDIENCE_CSV] = [row[0] for row in reader if row]
    if AUDIENCE_PARQUET in listed_files and (directory / AUDIENCE_PARQUET).exists():
        table = pq.read_table(directory / AUDIENCE_PARQUET, columns=["customer_id"])
        listed[AUDIENCE_PARQUET] = table.column("customer_id").to_pylist()
    allowed = set(expected)
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
    # The platform files are the audience less those with nothing to match on. Without
    # audience.csv (an ads export), the manifest's exported rows are the audience.
    if AUDIENCE_CSV in listed_files:
        audience_rows, audience = listed_files[AUDIENCE_CSV].get("rows", 0), f"of {AUDIENCE_CSV}"
    else:
        audience_rows, audience = manifest.get("rows", 0), "exported rows in the manifest"
    for name in (GOOGLE_CSV, META_CSV):
        rows = listed_files.get(name, {}).get("rows", 0)
        if rows > audience_rows:
            problems.append(
                f"{directory / name}: {rows} rows, more than the {audience_rows} {audience}"
            )
    return problems


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
    if config.segment != segment.name:
        raise ValueError(
            f"export {config.name!r} ({config.file}) is for segment {config.segment!r}, but "
            f"segment {segment.name!r} was passed; pass the export's own segment"
        )
    formats = config.formats_for(segment.consent_purpose)
    names = [FORMAT_FILES[f] for f in formats]
    moment = cutoff(as_of)
    day = snapshot_date(as_of)
    generated = naive_utc(generated_at or datetime.now(UTC)).replace(microsecond=0)
    optional, attributes = _check_inputs(connection, config)
    summary = candidate_summary(connection, run_id, config.name)

    root = Path(exports_root)
    final = exports_dir_for(root, config.name, day)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    try:
        file_rows, counts = _write_csvs(
            connection, config, run_id, staging, optional, attributes, formats
        )
        if "parquet" in formats:
            file_rows[AUDIENCE_PARQUET] = _write_parquet(
                connection, config, run_id, staging / AUDIENCE_PARQUET
            )
        whole = [file_rows[n] for n in (AUDIENCE_CSV, AUDIENCE_PARQUET) if n in file_rows]
        for written in (counts["rows"], *whole):  # every exported row, in every full file
            if written != summary["export"]:
                raise RuntimeError(
                    f"export {config.name!r}: wrote {written} rows for {summary['export']} "
                    "exported candidates; nothing was published"
                )
        files = {name: describe_file(staging / name, file_rows[name]) for name in names}
        readiness = _readiness(counts)
        manifest = {
            "export_name": config.name,
            "segment": segment.name,
            "description": config.description,
            "definition_hash": segment.definition_hash,
            "consent_purpose": segment.consent_purpose,
            "run_id": run_id,
            "as_of": _iso(moment),
            "export_date": day.isoformat(),
            "generated_at": _iso(generated),
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
        write_manifest(staging, manifest)
        connection.begin()
        try:
            _record(connection, config, segment, run_id, moment, day, generated, final, summary)
            audit.record(
                connection,
                "export",
                config.name,
                run_id=run_id,
                files=[str(final / name) for name in (*names, MANIFEST)],
                rows=summary["export"],
                details={
                    "segment": segment.name,
                    "consent_purpose": segment.consent_purpose,
                    "formats": list(formats),
                    "export_date": day.isoformat(),
                    "directory": str(final),
                    "holdout_rows": summary["holdout"],
                    "left_out": summary["left_out"],
                    "files": {name: entry["sha256"] for name, entry in files.items()},
                },
            )
            _swap_in(staging, final)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
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


def record_blocked(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    as_of: str | date | datetime,
    problems: pd.DataFrame,
    exports_root: str | Path,
    generated_at: datetime | None = None,
) -> None:
    """Record an export the check refused: an export_runs row with status 'blocked' and an
    `export_blocked` audit row with the problem counts. No file is written or touched (an
    earlier day's files stay as they were) and no members are recorded.

    `problems` is what `verify_candidates` returned (columns customer_id, problem, detail).
    """
    moment = cutoff(as_of)
    day = snapshot_date(as_of)
    generated = naive_utc(generated_at or datetime.now(UTC)).replace(microsecond=0)
    summary = candidate_summary(connection, run_id, config.name)
    root = Path(exports_root)
    directory = exports_dir_for(root, config.name, day)
    by_problem = {
        str(k): int(v) for k, v in problems["problem"].value_counts().sort_index().items()
    }
    connection.begin()
    try:
        connection.execute(TABLES_DDL)
        connection.execute(
            f"delete from {RUNS} where run_id = $run_id and export_name = $export_name",
            {"run_id": run_id, "export_name": config.name},
        )
        connection.execute(
            f"insert into {RUNS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, 'blocked')",
            [
                run_id,
                config.name,
                segment.name,
                segment.definition_hash,
                segment.consent_purpose,
                moment,
                day,
                generated,
                str(directory),
                json.dumps(summary["left_out"]),
                config.holdout_percent,
                config.measurement_window_days,
            ],
        )
        audit.record(
            connection,
            "export_blocked",
            config.name,
            run_id=run_id,
            rows=int(problems["customer_id"].nunique()),
            details={
                "segment": segment.name,
                "consent_purpose": segment.consent_purpose,
                "export_date": day.isoformat(),
                "problems": by_problem,
                "candidates": {k: summary[k] for k in ("members", "export", "holdout")},
            },
        )
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _record(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    moment: datetime,
    day: date,
    generated: datetime,
    directory: Path,
    summary: Mapping[str, Any],
) -> None:
    """Replace the run's (and the day's) rows in export_runs and export_members."""
    connection.execute(TABLES_DDL)
    keys = {"run_id": run_id, "export_name": config.name, "export_date": day}
    for table in (RUNS, MEMBERS):
        connection.execute(
            f"delete from {table} where export_name = $export_name "
            "and (run_id = $run_id or export_date = $export_date)",
            keys,
        )
    connection.execute(
        f"insert into {RUNS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'written')",
        [
            run_id,
            config.name,
            segment.name,
            segment.definition_hash,
            segment.consent_purpose,
            moment,
            day,
            generated,
            str(directory),
            summary["export"],
            summary["holdout"],
            json.dumps(summary["left_out"]),
            config.holdout_percent,
            config.measurement_window_days,
        ],
    )
    connection.execute(
        f"""
        insert into {MEMBERS}
        select
            run_id,
            export_name,
            segment_name,
            $export_date as export_date,
            $as_of as as_of,
            customer_id,
            case outcome when 'export' then 'treatment' else 'holdout' end as group_name
        from {CANDIDATES}
        where run_id = $run_id and export_name = $export_name
            and outcome in ('export', 'holdout')
        """,
        {**keys, "as_of": moment},
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
    "RUNS",
    "STATUSES",
    "ExportResult",
    "count_rows",
    "describe_file",
    "ensure_tables",
    "escape_formulas",
    "exports_dir_for",
    "read_manifest",
    "record_blocked",
    "sha256_file",
    "update_latest",
    "verify_export_folder",
    "write_export",
    "write_manifest",
]
