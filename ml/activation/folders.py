"""Where an export's files live: their names, the day folder, the staged swap and `latest`.

An export writes into `<exports root>/<export name>/<YYYY-MM-DD>/`. The folder is first
written beside the final one (a hidden staging folder) and then swapped in, so a reader sees
the old day or the new one, never half of either; `latest` is a relative symlink to the
newest date folder, replaced atomically.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import date
from pathlib import Path

from ml.activation import hashing
from ml.activation.config import FORMAT_FILES

AUDIENCE_CSV = FORMAT_FILES["csv"]  # audience.csv
GOOGLE_CSV = FORMAT_FILES["google"]  # google_customer_match.csv
META_CSV = FORMAT_FILES["meta"]  # meta_custom_audience.csv
AUDIENCE_PARQUET = FORMAT_FILES["parquet"]  # audience.parquet
MANIFEST = "manifest.json"
LATEST = "latest"
FILE_NAMES = tuple(FORMAT_FILES.values())  # every file an export can write, in writing order
GOOGLE_HEADER = tuple(hashing.GOOGLE_FIELDS)  # Email, Phone, First Name, Last Name, Country, Zip
META_HEADER = tuple(hashing.META_FIELDS)  # email, phone, fn, ln, ct, st, zip, country, doby, gen


def exports_dir_for(root: str | Path, export_name: str, export_date: date | str) -> Path:
    """The folder of one export on one day: <root>/<export_name>/<YYYY-MM-DD>."""
    day = export_date if isinstance(export_date, str) else export_date.isoformat()
    return Path(root) / export_name / day


def make_staging_folder(final: Path) -> Path:
    """Create an empty hidden folder beside `final` (and `final`'s parent), to write into."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    return staging


def swap_in(staging: Path, final: Path) -> None:
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


__all__ = [
    "AUDIENCE_CSV",
    "AUDIENCE_PARQUET",
    "FILE_NAMES",
    "GOOGLE_CSV",
    "GOOGLE_HEADER",
    "LATEST",
    "MANIFEST",
    "META_CSV",
    "META_HEADER",
    "exports_dir_for",
    "make_staging_folder",
    "swap_in",
    "update_latest",
]
