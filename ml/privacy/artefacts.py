"""Run artefacts erasure searches after its transaction: files runs leave behind.

Teal writes no personal value into them by design (values are masked before any report, log,
check or GX result is written), and erasure checks that it holds: the Great Expectations
project's stores and Data Docs (`<gx_project>/gx/uncommitted/`), dbt's target folder with its
logs (`Settings.dbt_target`), the run reports (`Settings.reports`), and whatever other folder the
caller names (the Dagster code location adds its instance's storage). Every file is read as
text (a binary file's readable runs of text included) and searched for the erased people by
their tombstones (`ErasedWords`). A file that names one is deleted: each is rebuilt by the
next run (results, Data Docs, logs, reports), and none is the only record of anything.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ml.privacy.erasure_log import STORE_DERIVED, StoreSearch
from ml.privacy.tombstones import ErasedWords

MAX_FILE_BYTES = 256 * 2**20  # a larger file is read in pieces of this size


def search_artefacts(folders: dict[str, Path], words: ErasedWords) -> StoreSearch:
    """Search every file under the folders (label -> folder); delete the files that name an
    erased person. The store's report: files searched, files removed per request, and which
    folders (by label) held any."""
    searched = 0
    removed: dict[str, int] = defaultdict(int)
    holding: set[str] = set()
    for label, folder in folders.items():
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            searched += 1
            request_id = _request_named_in(path, words)
            if request_id is not None:
                path.unlink()
                removed[request_id] += 1
                holding.add(label)
    note = f"removed from: {', '.join(sorted(holding))}" if holding else ""
    return StoreSearch(STORE_DERIVED, searched, "files", dict(removed), note)


def _request_named_in(path: Path, words: ErasedWords) -> str | None:
    with open(path, "rb") as handle:
        tail = b""
        while chunk := handle.read(MAX_FILE_BYTES):
            text = (tail + chunk).decode("utf-8", "replace")
            request_id = words.request_named(text.replace("\\u0040", "@"))
            if request_id is not None:
                return request_id
            tail = chunk[-512:]  # a word cut between two pieces is read whole once
    return None
