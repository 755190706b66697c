"""Consent feed: choices from sign-up forms, checkout, the cookie banner and the preference centre.

Files: `consent/consent_<end-14>.csv` with the history up to the CRM full export, then one file
per day. Subjects are an e-mail (sometimes in capitals or with spaces) or a crm id. Purposes are
granted at sign-up, some are later withdrawn and a few granted again. Two suppression signals come
on top, at random times after sign-up (their own random stream, so the other purposes' choices
do not move): about 2% of persons withdraw `all_marketing` (a global unsubscribe, from the
preference centre or through customer service) and a fifth of them grant it again later; about 1%
withdraw `data_sale` (do not sell or share my personal information, from the preference centre).
Deliberate mess: malformed extra rows with fresh event ids CE9xxxxxxxx.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import columns as col
from ml.synthetic.columns import DAY
from ml.synthetic.context import CONSENT, GHOSTS, Context
from ml.synthetic.crm import Records, messy_emails
from ml.synthetic.people import People
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "consent"
HEADER = "event_id,subject,purpose,status,recorded_at,source"
PURPOSES = ("email_marketing", "ads_personalization", "analytics", "all_marketing", "data_sale")
ALL_MARKETING, DATA_SALE = 3, 4
UNSUBSCRIBE_SHARE = 0.02  # persons who withdraw all_marketing (global unsubscribe)
RESUBSCRIBE_SHARE = 0.2  # of those, who grant all_marketing again later
DO_NOT_SELL_SHARE = 0.01  # persons who withdraw data_sale (do not sell or share)
SOURCES = ("signup_form", "preference_centre", "checkout", "cookie_banner", "customer_service")
NEVER = np.iinfo(np.int64).max


@dataclass
class Consents:
    """Every consent event, in time order, and each person's e-mail marketing periods."""

    record: np.ndarray  # CRM record whose id or e-mail is the subject
    by_email: np.ndarray  # bool: subject is the record's e-mail, else its crm id
    purpose: np.ndarray
    granted: np.ndarray  # bool
    utc: np.ndarray
    source: np.ndarray
    # e-mail marketing per person: opted in on [grant, withdraw) and from regrant on
    mail_grant: np.ndarray
    mail_withdraw: np.ndarray
    mail_regrant: np.ndarray

    def mail_opted_in(self, person: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether each person had e-mail marketing consent at instant t."""
        g, w, r = self.mail_grant[person], self.mail_withdraw[person], self.mail_regrant[person]
        return ((g <= t) & (t < w)) | (r <= t)


class ConsentParts:
    """Consent events collected group by group, joined in time order at the end."""

    COLUMNS = ("record", "email", "purpose", "granted", "utc", "source")

    def __init__(self) -> None:
        """Start with no events."""
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in self.COLUMNS}

    def add(
        self,
        records: np.ndarray,
        by_email: np.ndarray,
        purpose: int,
        granted: bool,
        utc: np.ndarray,
        source: np.ndarray,
    ) -> None:
        """Add one purpose's grants (or withdrawals) of the given records."""
        self.parts["record"].append(records)
        self.parts["email"].append(by_email)
        self.parts["purpose"].append(np.full(len(records), purpose))
        self.parts["granted"].append(np.full(len(records), granted))
        self.parts["utc"].append(utc)
        self.parts["source"].append(source)

    def in_time_order(self) -> dict[str, np.ndarray]:
        """Every column over all the events added, sorted by instant (stable)."""
        utc = np.concatenate(self.parts["utc"])
        order = np.argsort(utc, kind="stable")
        return {k: np.concatenate(v)[order] for k, v in self.parts.items()}


def _signup_grants(
    rng: np.random.Generator, parts: ConsentParts, signup: np.ndarray, end: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Grants at sign-up: the newsletter box (sign-up form or checkout), analytics and ads on
    the cookie banner of the same visit. Returns (records, instant) per purpose."""
    n = len(signup)  # the persons' own records come first
    grants: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    persons = np.arange(n)
    for purpose, share in ((0, 0.55), (2, 0.70), (1, 0.45)):
        chosen = persons[rng.random(n) < share]
        if purpose == 0:  # newsletter box ticked on the sign-up form or at checkout
            when = signup[chosen] + rng.integers(5, 120, size=len(chosen))
            source = np.where(rng.random(len(chosen)) < 0.6, 0, 2)
            by_email = rng.random(len(chosen)) < 0.7
        else:  # cookie banner, same visit
            when = signup[chosen] + rng.integers(0, 3600, size=len(chosen)) + purpose
            source = np.full(len(chosen), 3)
            by_email = np.zeros(len(chosen), bool)
        keep = when < end
        chosen, when, source, by_email = chosen[keep], when[keep], source[keep], by_email[keep]
        parts.add(chosen, by_email, purpose, True, when, source)
        grants[purpose] = (chosen, when)
    return grants


def _withdrawals(
    rng: np.random.Generator,
    parts: ConsentParts,
    grants: dict[int, tuple[np.ndarray, np.ndarray]],
    n: int,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12% of each purpose's grants are withdrawn later, a fifth of those granted again.
    Returns the e-mail marketing (grant, withdraw, regrant) instant per person, NEVER if none."""
    mail_grant = np.full(n, NEVER)
    mail_withdraw = np.full(n, NEVER)
    mail_regrant = np.full(n, NEVER)
    for purpose, (chosen, granted_at) in grants.items():
        out = (rng.random(len(chosen)) < 0.12) & (granted_at < end - 4 * 3600)
        who, since = chosen[out], granted_at[out]
        withdrawn = since + 60 + (rng.random(len(who)) * (end - since - 120)).astype(np.int64)
        source = np.where(rng.random(len(who)) < 0.7, 1, 4)
        parts.add(who, rng.random(len(who)) < 0.5, purpose, False, withdrawn, source)
        back = (rng.random(len(who)) < 0.2) & (withdrawn < end - 2 * 3600)
        again = (
            withdrawn[back]
            + 60
            + (rng.random(int(back.sum())) * (end - withdrawn[back] - 120)).astype(np.int64)
        )
        parts.add(
            who[back],
            rng.random(int(back.sum())) < 0.5,
            purpose,
            True,
            again,
            np.full(int(back.sum()), 1),
        )
        if purpose == 0:
            mail_grant[chosen] = granted_at
            mail_withdraw[who] = withdrawn
            mail_regrant[who[back]] = again
    return mail_grant, mail_withdraw, mail_regrant


def _suppression_signals(
    signals: np.random.Generator, parts: ConsentParts, start: np.ndarray, end: int
) -> None:
    """Global unsubscribes (all_marketing withdrawn, a fifth granted again) and do-not-sell
    requests (data_sale withdrawn), at random times after sign-up (`start`)."""
    n = len(start)
    persons = np.arange(n)

    def later(since: np.ndarray) -> np.ndarray:
        """A random instant at least a minute after `since` and a minute before the end."""
        return since + 60 + (signals.random(len(since)) * (end - since - 120)).astype(np.int64)

    out = (signals.random(n) < UNSUBSCRIBE_SHARE) & (start < end - 4 * 3600)
    who = persons[out]
    unsubscribed = later(start[out])
    source = np.where(signals.random(len(who)) < 0.7, 1, 4)  # preference centre, customer service
    parts.add(who, signals.random(len(who)) < 0.5, ALL_MARKETING, False, unsubscribed, source)
    back = (signals.random(len(who)) < RESUBSCRIBE_SHARE) & (unsubscribed < end - 2 * 3600)
    resubscribed = later(unsubscribed[back])
    parts.add(
        who[back],
        signals.random(int(back.sum())) < 0.5,
        ALL_MARKETING,
        True,
        resubscribed,
        np.full(int(back.sum()), 1),
    )
    out = (signals.random(n) < DO_NOT_SELL_SHARE) & (start < end - 4 * 3600)
    who = persons[out]
    parts.add(
        who,
        signals.random(len(who)) < 0.5,
        DATA_SALE,
        False,
        later(start[out]),
        np.full(len(who), 1),
    )


def make_consents(ctx: Context, people: People, rec: Records) -> Consents:
    """Every consent event up to the end date, in time order: grants at sign-up, the
    duplicate record's cookie banner, withdrawals and regrants, and the suppression signals."""
    rng = ctx.rng(CONSENT, 1)
    end = ctx.end_secs
    n = people.n
    signup = col.local_to_utc(rec.created, "Europe/London")
    parts = ConsentParts()
    grants = _signup_grants(rng, parts, signup[:n], end)
    # the duplicate record's visit: cookie banner again, under the other crm id
    dups = np.flatnonzero(rec.variant > 0)
    dups = dups[rng.random(len(dups)) < 0.5]
    when = signup[dups] + rng.integers(0, 3600, size=len(dups))
    dups, when = dups[when < end], when[when < end]
    parts.add(dups, np.zeros(len(dups), bool), 2, True, when, np.full(len(dups), 3))
    mail_grant, mail_withdraw, mail_regrant = _withdrawals(rng, parts, grants, n, end)
    # a stream of its own: the draws above stay as they were
    _suppression_signals(ctx.rng(CONSENT, 3), parts, signup[:n], end)

    events = parts.in_time_order()
    return Consents(
        record=events["record"],
        by_email=events["email"],
        purpose=events["purpose"],
        granted=events["granted"],
        utc=events["utc"],
        source=events["source"],
        mail_grant=mail_grant,
        mail_withdraw=mail_withdraw,
        mail_regrant=mail_regrant,
    )


GHOST_KINDS = (
    ("purpose", "unknown_enum"),
    ("status", "unknown_enum"),
    ("recorded_at", "bad_timestamp"),
    ("", "wrong_column_count"),
)
BAD_TIMESTAMPS = ("2026-11-31T09:00:00Z", "2026-10-12 25:10:00", "12/10/2026", "not recorded")


def write(ctx: Context, cons: Consents, rec: Records, landing: Landing) -> None:
    """Write the consent history up to the full export, then one file per delta day, with
    malformed rows."""
    rng = ctx.rng(CONSENT, 2)
    ghost_rng = ctx.rng(GHOSTS, 4)
    total = len(cons.utc)
    number = 100_000_000 + np.cumsum(rng.integers(1, 4, size=total))
    email = messy_emails(col.strings([rec.email[r] for r in cons.record.tolist()]), rng, 0.15)
    subject = pc.if_else(pa.array(cons.by_email), email, col.ids("C", rec.crm_num[cons.record], 7))
    lines = col.csv_lines(
        [
            col.ids("CE", number, 9),
            subject,
            col.take(PURPOSES, cons.purpose),
            pc.if_else(pa.array(cons.granted), "granted", "withdrawn"),
            col.timestamps(cons.utc, b"T", b"Z"),
            col.take(SOURCES, cons.source),
        ]
    )
    day = cons.utc // DAY
    dates = [ctx.full_export, *ctx.delta_dates]
    files = [np.flatnonzero(day <= col.epoch_day(ctx.full_export))]
    files += [np.flatnonzero(day == col.epoch_day(d)) for d in ctx.delta_dates]
    specs = allocate(GHOST_KINDS, total)
    target = [
        k % len(files) if k < len(files) else int(rng.integers(len(files)))
        for k in range(len(specs))
    ]
    ghost_number = 0
    for f, (d, rows) in enumerate(zip(dates, files, strict=True)):
        mine = [s for s, t in zip(specs, target, strict=True) if t == f]
        bad = []
        for at, (field, kind) in zip(spread(ghost_rng, len(rows), len(mine)), mine, strict=True):
            ghost_number += 1
            stamp = col.timestamps(
                np.array([col.epoch_day(d) * DAY + int(ghost_rng.integers(DAY))]), b"T", b"Z"
            )
            values = [
                f"CE{900_000_000 + ghost_number:09d}",
                f"C{9_600_000 + ghost_number:07d}",
                "email_marketing",
                "granted",
                stamp[0].as_py(),
                "preference_centre",
            ]
            if field == "purpose":
                values[2] = ("sms_marketing", "profiling", "newsletter")[ghost_number % 3]
            elif field == "status":
                values[3] = ("pending", "revoked", "yes")[ghost_number % 3]
            elif field == "recorded_at":
                values[4] = BAD_TIMESTAMPS[ghost_number % len(BAD_TIMESTAMPS)]
            else:
                values = values[:-1] if ghost_number % 2 else [*values, "web"]
            bad.append(BadRow(at, col.csv_row(values).encode(), field, kind))
        landing.text(
            FEED, f"consent_{d.isoformat()}.csv", lines.take(pa.array(rows)), bad, 0, header=HEADER
        )
