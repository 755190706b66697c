"""Accounts feed: the web shop's customer accounts, as the shop platform exports them.

Files: `accounts/accounts_<full export date>.csv`, every account created by the day of the CRM
full export, then one file per later day with the accounts created or changed that day (like
the CRM's deltas). One row per account version: `user_id,email,created_at,updated_at`.

Who: every person with a web account (`People.has_account`, the `U########` id their logins
carry in the clickstream). The email is the one they signed up with: mostly their own address,
sometimes the address of another of their CRM records, and sometimes the same mailbox written
another way (Gmail without its dots or with them, a `+tag` where the provider ignores it,
googlemail.com for gmail.com): identity must see through that (ml/normalise.py `mailbox_key`).
A few accounts change their email during the delta window: a new row with a later
`updated_at`.

Deliberate mess: addresses in capitals or with spaces around them (still valid), rows re-sent
in a later file (duplicates of their key), and malformed rows about nobody (user ids U99xxxxxx):
an invalid email, a missing user id, an impossible timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ml.normalise import email_normal_form, mailbox_key, mailbox_providers
from ml.synthetic import columns as col
from ml.synthetic.columns import DAY
from ml.synthetic.context import ACCOUNTS, Context
from ml.synthetic.crm import Records, messy_emails
from ml.synthetic.people import People
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "accounts"
HEADER = "user_id,email,created_at,updated_at"
OTHER_ADDRESS = 0.12  # signed up with the address of another of their records
SAME_MAILBOX = 0.15  # signed up with their mailbox written another way
CHANGED = 0.03  # changed their email during the delta window
TAGS = ("shop", "news", "orders", "teal")
GHOST_KINDS = (
    ("email", "bad_email", "sam.jones@gmail"),
    ("user_id", "missing_required", ""),
    ("created_at", "bad_timestamp", "2026-13-01T10:00:00Z"),
)


@dataclass
class Accounts:
    """Every valid account version written, in file order."""

    person: np.ndarray  # whose account
    user_num: np.ndarray  # the number of its U######## id
    email: list[str]  # as written (before the mess of capitals and spaces)
    created: np.ndarray  # epoch seconds (UTC)
    updated: np.ndarray  # epoch seconds (UTC)
    file: np.ndarray  # 0: the full export, k: the k-th delta


def same_mailbox(address: str, rng: np.random.Generator) -> str:
    """The address written another way that reaches the same mailbox, where its provider
    allows one (`mailbox_providers`); else the address itself."""
    local, _, domain = address.rpartition("@")
    rule = mailbox_providers().get(domain)
    if rule is None:
        return address
    # the other domains of the same mailboxes (gmail.com <-> googlemail.com)
    others = [d for d, r in mailbox_providers().items() if r == rule and d != domain]
    choices = [
        name
        for name, allowed in (
            ("dots", rule.dots_ignored),
            ("tag", rule.plus_tags),
            ("domain", others),
        )
        if allowed
    ]
    if not choices:
        return address
    choice = choices[int(rng.integers(len(choices)))]
    if choice == "dots":
        bare = local.replace(".", "")
        if bare != local:
            local = bare
        elif len(local) > 2:
            cut = int(rng.integers(1, len(local) - 1))
            local = f"{local[:cut]}.{local[cut:]}"
    elif choice == "tag":
        local = f"{local}+{TAGS[int(rng.integers(len(TAGS)))]}"
    else:
        domain = others[int(rng.integers(len(others)))]
    written = f"{local}@{domain}"
    assert mailbox_key(written) == mailbox_key(address), (written, address)
    return written


def _addresses_of(rec: Records, person: int) -> list[str]:
    """Every address the person's CRM records carry (their own first)."""
    addresses = [rec.email[person]]
    duplicate = int(rec.dup_of[person])
    if duplicate >= 0:
        addresses.append(rec.email[duplicate])
    for record in (person, duplicate):
        if record >= 0 and record in rec.extra_emails:
            addresses.append(rec.extra_emails[record])
    return list(dict.fromkeys(addresses))


def _sign_up_address(rec: Records, person: int, rng: np.random.Generator) -> str:
    addresses = _addresses_of(rec, person)
    address = addresses[0]
    if len(addresses) > 1 and rng.random() < OTHER_ADDRESS:
        address = addresses[1 + int(rng.integers(len(addresses) - 1))]
    if rng.random() < SAME_MAILBOX:
        address = same_mailbox(address, rng)
    return address


def make_accounts(ctx: Context, people: People, rec: Records) -> Accounts:
    """Every account version: one per account holder created by the last day, plus the
    changes of email during the delta window."""
    rng = ctx.rng(ACCOUNTS, 1)
    holders = np.flatnonzero(people.has_account)
    # signed up online within the hour the CRM record was created
    created = people.created[holders] + rng.integers(0, 3600, size=len(holders))
    keep = created < ctx.end_secs
    holders, created = holders[keep], created[keep]
    emails = [_sign_up_address(rec, int(p), rng) for p in holders.tolist()]
    delta_start = ctx.full_export_secs
    file = np.where(created < delta_start, 0, (created - delta_start) // DAY + 1)

    # a few change their email in the delta window: another address of theirs, or a spelling
    changing = holders[rng.random(len(holders)) < CHANGED]
    when = delta_start + rng.integers(0, ctx.end_secs - delta_start, size=len(changing))
    first = dict(zip(holders.tolist(), created.tolist(), strict=True))
    when = np.maximum(when, np.array([first[p] + 60 for p in changing.tolist()], np.int64))
    valid = when < ctx.end_secs
    changing, when = changing[valid], when[valid]
    changed = [_sign_up_address(rec, int(p), rng) for p in changing.tolist()]

    person = np.concatenate([holders, changing])
    return Accounts(
        person=person,
        user_num=people.user_num[person],
        email=emails + changed,
        created=np.concatenate(
            [created, np.array([first[p] for p in changing.tolist()], np.int64)]
        ),
        updated=np.concatenate([created, when]),
        file=np.concatenate([file, (when - delta_start) // DAY + 1]).astype(np.int64),
    )


def _ghost_line(number: int, day: int, spec: tuple[str, str, str], rng: np.random.Generator) -> str:
    """An account row about nobody (user id U99xxxxxx) with exactly one deliberate defect."""
    field, _, value = spec
    stamp = col.timestamps(
        np.array([day * DAY + int(rng.integers(9 * 3600, 20 * 3600))]), b"T", b"Z"
    )
    row = {
        "user_id": f"U{99_000_000 + number:08d}",
        "email": f"ghost{number}@example.net",
        "created_at": stamp[0].as_py(),
        "updated_at": stamp[0].as_py(),
    }
    row[field] = value
    return col.csv_row(list(row.values()))


def write(ctx: Context, accounts: Accounts, landing: Landing) -> None:
    """The full export and one file per delta day, with re-sent rows and malformed rows."""
    rng = ctx.rng(ACCOUNTS, 2)
    stamps = lambda secs: col.timestamps(secs, b"T", b"Z")  # noqa: E731
    lines = col.csv_lines(
        [
            col.ids("U", accounts.user_num, 8),
            messy_emails(col.strings(accounts.email), rng, 0.05),
            stamps(accounts.created),
            stamps(accounts.updated),
        ]
    )
    dates = [ctx.full_export, *ctx.delta_dates]
    specs = allocate(GHOST_KINDS, len(accounts.person))
    ghost = 0
    for k, day in enumerate(dates):
        rows = np.flatnonzero(accounts.file == k)
        rows = rows[np.argsort(accounts.updated[rows], kind="stable")]
        resent = np.zeros(0, np.int64)
        if k:
            earlier = np.flatnonzero(accounts.file < k)
            count = min(len(earlier), max(1, round(0.01 * len(rows))))
            resent = rng.choice(earlier, size=count, replace=False)
        order = rows.tolist()
        for at, row in zip(spread(rng, len(order), len(resent)), resent.tolist(), strict=True):
            order.insert(at, row)
        body = lines.take(pa.array(np.array(order, dtype=np.int64)))
        mine = specs[k :: len(dates)]
        bad = []
        for at, spec in zip(spread(rng, len(order), len(mine)), mine, strict=True):
            ghost += 1
            line = _ghost_line(ghost, col.epoch_day(day), spec, rng)
            bad.append(BadRow(at, line.encode(), spec[0], spec[1]))
        landing.text(FEED, f"accounts_{day.isoformat()}.csv", body, bad, len(resent), header=HEADER)


def identifiers(accounts: Accounts) -> tuple[list[str], list[str], np.ndarray]:
    """(user ids, emails as the loader normalises them, persons) of every valid row."""
    users = col.ids("U", accounts.user_num, 8).to_pylist()
    emails = [email_normal_form(e) or "" for e in accounts.email]
    return users, emails, accounts.person
