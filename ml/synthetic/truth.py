"""Ground truth: what the landing files contain and who is who. Never read by the pipeline.

Files under --truth: expected_files.csv, malformed.csv, persons.csv, crm_records.csv,
accounts.csv, identifiers.csv and manifest.json (see generator.py for the meaning of each).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import accounts as shop_accounts
from ml.synthetic import columns as col
from ml.synthetic import phones
from ml.synthetic.accounts import Accounts
from ml.synthetic.clickstream import ClickstreamTruth, Web
from ml.synthetic.crm import VARIANTS, Records, Versions
from ml.synthetic.people import FIRST_NAMES, LAST_NAMES, People
from ml.synthetic.writers import FileStats, Landing

IDENTIFIER_KINDS = (
    "crm_id",
    "loyalty_id",
    "email",
    "phone_e164",
    "user_id",
    "anonymous_id",
    "device_id",
)


def write_csv(path: Path, header: Sequence[str], columns: Sequence[pa.Array]) -> None:
    """A CSV file of the header and the text columns (header only when there are no rows)."""
    lines = col.csv_lines(columns) if columns and len(columns[0]) else pa.array([], pa.string())
    with open(path, "wb") as handle:
        handle.write((",".join(header) + "\n").encode())
        handle.write(col.buffer_of(lines))


def person_ids(index: np.ndarray) -> pa.Array:
    """P0000001... for person indices 0...."""
    return col.ids("P", np.asarray(index) + 1, 7)


def identifiers(
    people: People,
    rec: Records,
    ver: Versions,
    web: Web,
    click: ClickstreamTruth,
    accounts: Accounts,
) -> pd.DataFrame:
    """One row per (kind, value, person) for every identifier that appears in a valid row."""
    frames = []

    def add(kind: str, values: pa.Array | list[str], persons: np.ndarray) -> None:
        """Add the identifiers of one kind with the person each belongs to."""
        values = values.to_pylist() if isinstance(values, pa.Array) else values
        frames.append(
            pd.DataFrame(
                {"kind": kind, "value": values, "person": np.asarray(persons, dtype=np.int64)}
            )
        )

    add("crm_id", col.ids("C", rec.crm_num, 7), rec.person)
    cards = np.unique(ver.record[ver.with_loyalty])
    add("loyalty_id", col.ids("L", rec.loyalty_num[cards], 8), rec.person[cards])
    emails = [e.lower() for e in rec.email] + [e.lower() for e in rec.extra_emails.values()]
    add(
        "email",
        emails,
        np.concatenate([rec.person, rec.person[list(rec.extra_emails)]]).astype(np.int64),
    )
    phone_values, phone_persons = [], []
    for r in range(rec.n):
        if rec.phone_plan[r] >= 0:
            phone_values.append(phones.e164(phones.PLANS[rec.phone_plan[r]], rec.phone_nsn[r]))
            phone_persons.append(rec.person[r])
    for r, (plan, nsn) in rec.extra_phones.items():
        phone_values.append(phones.e164(phones.PLANS[plan], nsn))
        phone_persons.append(rec.person[r])
    add("phone_e164", phone_values, np.array(phone_persons))
    users = np.flatnonzero(click.user_used)
    add("user_id", col.ids("U", people.user_num[users], 8), users)
    # the web shop's accounts: every account's id, and the emails it was registered with
    account_users, account_emails, owners = shop_accounts.identifiers(accounts)
    add("user_id", account_users, owners)
    add("email", account_emails, owners)
    cookies = np.flatnonzero(click.cookie_used & (web.cookie_person >= 0))
    add(
        "anonymous_id",
        pc_strip(web.cookie_text.take(pa.array(cookies))),
        web.cookie_person[cookies],
    )
    slots = np.flatnonzero(click.slot_used & (web.slot_person >= 0))
    pairs = np.unique(np.stack([web.slot_device[slots], web.slot_person[slots]], axis=1), axis=0)
    add("device_id", pc_strip(web.device_text.take(pa.array(pairs[:, 0]))), pairs[:, 1])

    table = pd.concat(frames, ignore_index=True).drop_duplicates()
    table["order"] = table["kind"].map({k: i for i, k in enumerate(IDENTIFIER_KINDS)})
    return table.sort_values(["order", "value", "person"], kind="stable").reset_index(drop=True)


def pc_strip(values: pa.Array) -> pa.Array:
    """'"ck_…"' (a JSON fragment) -> 'ck_…'."""
    return pc.utf8_trim(values, '"')


def write_expected_files(truth: Path, files: Sequence[FileStats]) -> None:
    """expected_files.csv: what the loader must report for every file written."""
    write_csv(
        truth / "expected_files.csv",
        (
            "feed",
            "file",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "rows_duplicate",
            "file_quarantined",
        ),
        [
            col.strings([f.feed for f in files]),
            col.strings([f.file for f in files]),
            col.ints(np.array([f.rows_read for f in files])),
            col.ints(np.array([f.rows_loaded for f in files])),
            col.ints(np.array([f.rows_quarantined for f in files])),
            col.ints(np.array([f.rows_duplicate for f in files])),
            col.strings(["true" if f.file_quarantined else "false" for f in files]),
        ],
    )


def write_malformed(truth: Path, landing: Landing) -> None:
    """malformed.csv: feed, file, row number, field and kind of every malformed row."""
    bad = sorted(landing.malformed)
    write_csv(
        truth / "malformed.csv",
        ("feed", "file", "row_number", "field", "kind"),
        [
            col.strings([b[i] for b in bad])
            if i != 2
            else col.ints(np.array([b[2] for b in bad], dtype=np.int64))
            for i in range(5)
        ],
    )


def write_persons(truth: Path, people: People, erased: np.ndarray) -> None:
    """persons.csv: the real people, their household and twin, and whether they were erased."""
    n = people.n
    is_erased = np.zeros(n, bool)
    is_erased[erased] = True
    write_csv(
        truth / "persons.csv",
        (
            "person_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "household_id",
            "twin_of",
            "erased",
        ),
        [
            person_ids(np.arange(n)),
            col.take(FIRST_NAMES, people.first),
            col.take(LAST_NAMES, people.last),
            col.dates(people.birth),
            col.strings(people.email),
            col.ids("H", people.household + 1, 7),
            pc.if_else(
                pa.array(people.twin_of >= 0), person_ids(np.maximum(people.twin_of, 0)), ""
            ),
            col.take(("false", "true"), is_erased.astype(np.int64)),
        ],
    )


def write_identifiers(truth: Path, ids: pd.DataFrame) -> None:
    """identifiers.csv: kind, value and person of every identifier seen in a valid row."""
    write_csv(
        truth / "identifiers.csv",
        ("kind", "value", "person_id"),
        [
            col.strings(ids["kind"].tolist()),
            col.strings(ids["value"].tolist()),
            person_ids(ids["person"].to_numpy()),
        ],
    )


def feed_totals(files: Sequence[FileStats]) -> dict[str, dict[str, int]]:
    """Per feed: files, rows read, loaded, quarantined and duplicate, files quarantined."""
    feeds: dict[str, dict[str, int]] = {}
    for f in files:
        entry = feeds.setdefault(
            f.feed,
            {
                "files": 0,
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
                "rows_duplicate": 0,
                "files_quarantined": 0,
            },
        )
        entry["files"] += 1
        entry["rows_read"] += f.rows_read
        entry["rows_loaded"] += f.rows_loaded
        entry["rows_quarantined"] += f.rows_quarantined
        entry["rows_duplicate"] += f.rows_duplicate
        entry["files_quarantined"] += int(f.file_quarantined)
    return feeds


def make_manifest(
    arguments: dict,
    people: People,
    rec: Records,
    erased: np.ndarray,
    feeds: dict[str, dict[str, int]],
    click: ClickstreamTruth,
    ids: pd.DataFrame,
) -> dict:
    """manifest.json's content: the arguments, the totals per feed, counts of the mess."""
    return {
        "generator": "ml.synthetic",
        "arguments": arguments,
        "persons": int(people.n),
        "households": int(people.household.max() + 1),
        "twin_pairs": int((people.twin_of >= 0).sum() // 2),
        "erased_persons": int(len(erased)),
        "crm_records": int(rec.n),
        "crm_duplicates": {v: int((rec.variant == i).sum()) for i, v in enumerate(VARIANTS) if i},
        "feeds": feeds,
        "clickstream": {
            "events": int(click.events),
            "retried_same_file": int(click.retried),
            "resent_next_day": int(click.resent),
            "late": int(click.late),
            "shared_devices": int(click.shared_devices),
        },
        "identifiers": {k: int((ids["kind"] == k).sum()) for k in IDENTIFIER_KINDS},
    }


def write(
    truth: Path,
    landing: Landing,
    people: People,
    rec: Records,
    ver: Versions,
    web: Web,
    click: ClickstreamTruth,
    accounts: Accounts,
    erased: np.ndarray,
    arguments: dict,
) -> dict:
    """Write every ground-truth file under `truth` and return the manifest."""
    truth.mkdir(parents=True, exist_ok=True)
    files = sorted(landing.files, key=lambda f: (f.feed, f.file))
    write_expected_files(truth, files)
    write_malformed(truth, landing)
    write_persons(truth, people, erased)
    write_csv(
        truth / "crm_records.csv",
        ("crm_id", "person_id", "variant"),
        [col.ids("C", rec.crm_num, 7), person_ids(rec.person), col.take(VARIANTS, rec.variant)],
    )
    write_csv(
        truth / "accounts.csv",
        ("user_id", "person_id", "email", "updated_at"),
        [
            col.ids("U", accounts.user_num, 8),
            person_ids(accounts.person),
            col.strings(accounts.email),
            col.timestamps(accounts.updated, b"T", b"Z"),
        ],
    )
    ids = identifiers(people, rec, ver, web, click, accounts)
    write_identifiers(truth, ids)
    manifest = make_manifest(arguments, people, rec, erased, feed_totals(files), click, ids)
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
