"""Erasure feed: right-to-erasure requests (GDPR article 17) from the privacy team.

Two files, `erasure/erasure_<end-10>.csv` and `erasure_<end-3>.csv`, with a handful of requests
(about 0.1% of persons, at least 2). The subject is an e-mail (as typed) or a crm id; a person
with a duplicate record may name either record. Deliberate mess: malformed extra rows (a bad
timestamp, a subject that is neither an e-mail nor a crm id) with fresh request ids ER9xxxxxx.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from ml.synthetic import columns as col
from ml.synthetic.columns import DAY
from ml.synthetic.context import ERASURE, Context
from ml.synthetic.crm import Records
from ml.synthetic.people import People
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "erasure"
HEADER = "request_id,subject,requested_at"
GHOST_KINDS = (("requested_at", "bad_timestamp"), ("subject", "bad_reference"))
BAD_TIMESTAMPS = ("2026-11-31T10:00:00Z", "last Tuesday", "2026/11/05 9am")
# a name, a phone, free text, a loyalty card number: none is an e-mail or a crm id
BAD_SUBJECTS = ("Mrs J. Smith", "+44 20 7946 0018", "L99000417", "customer no. 4471")


def choose_erased(ctx: Context, people: People) -> np.ndarray:
    rng = ctx.rng(ERASURE, 1)
    count = min(people.n, max(2, round(0.001 * people.n)))
    return np.sort(rng.choice(people.n, size=count, replace=False))


def write(ctx: Context, erased: np.ndarray, rec: Records, landing: Landing) -> None:
    rng = ctx.rng(ERASURE, 2)
    dates = [ctx.end - timedelta(days=10), ctx.end - timedelta(days=3)]
    split = max(1, len(erased) // 2)
    groups = [erased[:split], erased[split:]]
    specs = allocate(GHOST_KINDS, len(erased))
    number = 1_000_000
    ghost = 0
    for f, (d, persons) in enumerate(zip(dates, groups, strict=True)):
        day = col.epoch_day(d)
        requested = np.sort(day * DAY - rng.integers(3600, 2 * DAY, size=len(persons)))
        rows = []
        for p, t in zip(persons.tolist(), requested.tolist(), strict=True):
            number += int(rng.integers(1, 20))
            dup = int(rec.dup_of[p])
            record = dup if dup >= 0 and rng.random() < 0.4 else p
            if rng.random() < 0.5:
                subject = rec.email[record]
                if rng.random() < 0.3:  # typed by a person: capitals, stray spaces
                    subject = f" {subject.title()} "
            else:
                subject = f"C{rec.crm_num[record]:07d}"
            stamp = col.timestamps(np.array([t]), b"T", b"Z")[0].as_py()
            rows.append(col.csv_row([f"ER{number:07d}", subject, stamp]) + "\n")
        mine = specs[f::2]
        bad = []
        for at, (field, kind) in zip(spread(rng, len(rows), len(mine)), mine, strict=True):
            ghost += 1
            stamp = col.timestamps(
                np.array([day * DAY - int(rng.integers(3600, DAY))]), b"T", b"Z"
            )[0].as_py()
            # about nobody: a crm id in the range no real record uses
            values = [f"ER{9_000_000 + ghost:07d}", f"C{9_500_000 + ghost:07d}", stamp]
            if kind == "bad_timestamp":
                values[2] = BAD_TIMESTAMPS[ghost % len(BAD_TIMESTAMPS)]
            else:
                values[1] = BAD_SUBJECTS[ghost % len(BAD_SUBJECTS)]
            bad.append(BadRow(at, col.csv_row(values).encode(), field, kind))
        landing.text(FEED, f"erasure_{d.isoformat()}.csv", col.strings(rows), bad, 0, header=HEADER)
