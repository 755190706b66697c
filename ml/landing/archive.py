"""Archive mode (`TEAL_RAW_FILES=archive:<days>`): landed files leave the landing folder.

After a feed lands, every file of its folder whose name and content the ledger knows (landed,
quarantined or skipped in `landing.files`, or as erasure rewrote it in `landing.rewrites`)
moves to `<landing>_archive/<day>/<feed>/...`, the day being the UTC date it was archived. A
file that arrived while the feed was landing has no ledger row yet and stays for the next
run. A day folder is deleted once it is more than `days` days old, so raw files live at most
that long; until then erasure rewrites archived files as it rewrites landing files
(ml/privacy/raw_files.py). The same name archived twice on one day with different content
goes to `<day>.2`, `<day>.3`, ...
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb

from .contracts import Feed

_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.\d+)?$")


def archive_landed_files(
    connection: duckdb.DuckDBPyConnection, landing: Path, archive: Path, feed: Feed, today: date
) -> list[str]:
    """Move the feed's files the ledger knows into the archive's folder of `today`; the files
    moved (relative to the landing folder)."""
    folder = landing / feed.name
    if not folder.is_dir():
        return []
    known = set(
        connection.execute(
            "select file, checksum from landing.files where feed = ? union "
            "select file, checksum_after from landing.rewrites where feed = ? "
            "and checksum_after is not null",
            [feed.name, feed.name],
        ).fetchall()
    )
    moved = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = path.relative_to(landing).as_posix()
        content = path.read_bytes()
        if (relative, hashlib.sha256(content).hexdigest()) not in known:
            continue
        target = _free_target(archive, today, relative, content)
        if target is None:  # the same bytes are archived today already
            path.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
        moved.append(relative)
    return moved


def _free_target(archive: Path, today: date, relative: str, content: bytes) -> Path | None:
    """Where a file goes in today's archive: the first day folder without that name (None
    when one of them holds the same bytes already)."""
    number = 1
    while True:
        day = today.isoformat() if number == 1 else f"{today.isoformat()}.{number}"
        target = archive / day / relative
        if not target.exists():
            return target
        if target.read_bytes() == content:
            return None
        number += 1


def expire_archive(archive: Path, days: int, today: date) -> list[str]:
    """Delete the archive's day folders older than `days` days; the folders deleted."""
    if not archive.is_dir():
        return []
    limit = today - timedelta(days=days)
    removed = []
    for folder in sorted(archive.iterdir()):
        match = _DAY.match(folder.name)
        if not match or not folder.is_dir() or folder.is_symlink():
            continue
        if date.fromisoformat(match.group(1)) < limit:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def archived_copies(archive: Path, relative: str) -> list[Path]:
    """Every archived copy of a landed file (its ledger name), oldest day first."""
    if not archive.is_dir():
        return []
    return [
        folder / relative
        for folder in sorted(archive.iterdir())
        if _DAY.match(folder.name) and os.path.isfile(folder / relative)
    ]
