"""Filing an erasure request from the hub: one new file in the erasure feed's landing folder.

The file follows the erasure feed's contract (ml/landing/feeds.yml): a CSV with the header
`request_id,subject,requested_at`, one row, a request id `ER` + 7 digits that no landed file
has used, the subject (an email or a crm id, checked with the same normaliser the loader uses)
and the time it was filed in UTC. It is written under a hidden name and renamed into place, so
the loader and the new-files sensor never see half of it; the next run erases the person.
The subject is written to that file and nowhere else: not to the hub's database, its audit
log, a page, or a log line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ml.landing import contracts
from ml.normalise import InvalidValue, classify_reference

FEED = "erasure"
HEADER = ("request_id", "subject", "requested_at")
_REQUEST_ID = re.compile(r"ER(\d{7})")
FIRST_HUB_NUMBER = 5_000_001  # the hub's own range, well clear of the CRM's


class ErasureRequestError(ValueError):
    """The request cannot be filed as typed; the message says what to change."""


@dataclass(frozen=True)
class FiledRequest:
    request_id: str
    path: Path
    subject_kind: str  # email or crm_id: what was given, never the value


def subject_kinds() -> tuple[str, ...]:
    """What a subject may be, from the erasure feed's contract (email and crm id today)."""
    column = contracts.load()[FEED].column("subject")
    return tuple(column.kinds or ())


def file_request(landing: Path, subject: str, known_ids: set[str] = frozenset()) -> FiledRequest:
    """Write one erasure request for `subject` as a new file in `<landing>/erasure/`."""
    kinds = subject_kinds()
    try:
        _, kind = classify_reference(subject or "", kinds)
    except InvalidValue as problem:
        raise ErasureRequestError(
            f"The subject {problem}. Type the email address or the crm id the person gave."
        ) from None
    folder = Path(landing) / FEED
    folder.mkdir(parents=True, exist_ok=True)
    request_id = next_request_id(folder, known_ids)
    filed_at = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerow([request_id, subject.strip(), filed_at.isoformat() + "Z"])
    path = folder / f"erasure_{filed_at:%Y-%m-%d}_hub_{request_id}.csv"
    staged = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
    staged.write_text(text.getvalue(), encoding="utf-8")
    os.replace(staged, path)
    return FiledRequest(request_id, path, kind)


def next_request_id(folder: Path, known_ids: set[str] = frozenset()) -> str:
    """A request id above every one in the hub's range that a landed file or `known_ids`
    (the hub's own filings) already uses."""
    used = {int(match.group(1)) for match in map(_REQUEST_ID.fullmatch, known_ids) if match}
    for path in folder.glob("*.csv"):
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            for row in csv.reader(handle):
                match = _REQUEST_ID.fullmatch(row[0].strip()) if row else None
                if match:
                    used.add(int(match.group(1)))
    number = max([FIRST_HUB_NUMBER - 1, *(n for n in used if n >= FIRST_HUB_NUMBER)]) + 1
    if number > 9_999_999:
        raise ErasureRequestError(
            "every request id of the hub's range (ER5000001 to ER9999999) is used; file the "
            "request as a CSV in the erasure landing folder by hand"
        )
    while number in used:
        number += 1
    return f"ER{number:07d}"
