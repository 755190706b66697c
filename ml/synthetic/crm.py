"""CRM feed: customer records, their duplicates, their changes, and the export files.

Files: `crm/crm_<end-14>.csv` is a full export, then one delta per day with the records created
or changed that day. Deliberate mess:

* ~4% of persons have a second record (another crm id): a typo in a name, a nickname, first and
  last name swapped, another e-mail, or the phone written in another notation; some of these
  also carry a different e-mail.
* e-mails in mixed case or with surrounding spaces; phones in many notations.
* a few rows re-sent identically in a later delta (duplicates under key crm_id, updated_at).
* malformed extra rows about records nobody references (fresh crm ids C9xxxxxx).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import columns as col
from ml.synthetic import phones, vocab
from ml.synthetic.columns import DAY
from ml.synthetic.context import CRM, GHOSTS, Context
from ml.synthetic.people import (
    FIRST_NAMES,
    FIRST_RANGE,
    GENDERS,
    LAST_NAMES,
    LAST_RANGE,
    People,
    draw_addresses,
    draw_mobiles,
)
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "crm"
VARIANTS = ("original", "typo", "nickname", "swapped", "other_email", "phone_format")
HEADER = (
    "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,"
    "country,created_at,updated_at,loyalty_id"
)
CITY_NAMES = [c[1] for c in vocab.CITIES]
KEYBOARD = {  # neighbouring keys, for realistic typos
    "a": "sqz",
    "b": "vgn",
    "c": "xdv",
    "d": "sfe",
    "e": "wrd",
    "f": "dgr",
    "g": "fht",
    "h": "gjy",
    "i": "uok",
    "j": "hku",
    "k": "jli",
    "l": "kop",
    "m": "nj",
    "n": "bmh",
    "o": "ipl",
    "p": "ol",
    "q": "wa",
    "r": "etf",
    "s": "adw",
    "t": "ryg",
    "u": "yij",
    "v": "cbf",
    "w": "qes",
    "x": "zcs",
    "y": "tuh",
    "z": "xas",
}


def typo(name: str, rng: np.random.Generator) -> str:
    """One character changed, dropped or two neighbours transposed (never the first letter)."""
    for _ in range(20):
        letters = [i for i, ch in enumerate(name) if ch.isalpha() and i > 0]
        if not letters:
            return name + name[-1]
        i = letters[int(rng.integers(len(letters)))]
        op = int(rng.integers(3))
        if op == 0:
            lower = name[i].lower()
            options = KEYBOARD.get(lower, "aeiou")
            new = options[int(rng.integers(len(options)))]
            out = name[:i] + (new.upper() if name[i].isupper() else new) + name[i + 1 :]
        elif op == 1 and len(name) > 3:
            out = name[:i] + name[i + 1 :]
        elif i + 1 < len(name) and name[i + 1].isalpha():
            out = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        else:
            continue
        if out != name:
            return out
    return name + "e"


@dataclass
class Records:
    """Every valid CRM record; records 0..n-1 are the persons' original records."""

    person: np.ndarray
    variant: np.ndarray
    crm_num: np.ndarray
    created: np.ndarray  # London wall clock epoch seconds
    first_name: list[str]
    last_name: list[str]
    email: list[str]
    phone_plan: np.ndarray
    phone_nsn: list[str]
    notation: list[str]
    birth: np.ndarray
    birth_known: np.ndarray
    gender: np.ndarray
    country: np.ndarray
    city: np.ndarray
    street: list[str]
    postcode: list[str]
    loyalty_num: np.ndarray  # -1: no card
    loyalty_since: np.ndarray  # London wall clock epoch seconds
    dup_of: np.ndarray  # per person: index of the duplicate record, -1 if none
    # values that appear only in later versions (changed e-mails and phones), per record
    extra_emails: dict[int, str] = field(default_factory=dict)
    extra_phones: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """How many records there are."""
        return len(self.person)


def _business_time(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Instants on the given days between 08:00 and 22:00 (never near a DST switch)."""
    return days * DAY + rng.integers(8 * 3600, 22 * 3600, size=len(days))


def _choose_duplicates(
    rng: np.random.Generator, people: People, first_names: np.ndarray, last_names: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(person, variant) of each duplicate record, by person: ~4% of persons (at least one of
    each variant), each variant given to persons it can apply to, the scarce ones first."""
    n = people.n
    n_dup = max(5, round(0.04 * n))
    kinds = [1, 2, 3, 4, 5] + list(
        rng.choice([1, 2, 3, 4, 5], size=n_dup - 5, p=[0.3, 0.15, 0.1, 0.25, 0.2])
    )
    eligible = {
        1: np.ones(n, bool),
        2: np.array([f in vocab.NICKNAMES for f in first_names]),
        3: first_names != last_names,
        4: np.ones(n, bool),
        5: people.phone_plan >= 0,
    }
    order = rng.permutation(n)
    used = np.zeros(n, bool)
    dup_person, dup_kind = [], []
    for kind in (2, 5, 3, 1, 4):  # scarce eligibility first
        want = sum(1 for k in kinds if k == kind)
        pool = order[eligible[kind][order] & ~used[order]][:want]
        used[pool] = True
        dup_person.extend(pool.tolist())
        dup_kind.extend([kind] * len(pool))
    dup_person_arr = np.array(dup_person, dtype=np.int64)
    dup_kind_arr = np.array(dup_kind, dtype=np.int64)
    sort = np.argsort(dup_person_arr, kind="stable")
    return dup_person_arr[sort], dup_kind_arr[sort]


def _record_names(
    rng: np.random.Generator,
    first_names: np.ndarray,
    last_names: np.ndarray,
    dup_person: np.ndarray,
    dup_kind: np.ndarray,
) -> tuple[list[str], list[str]]:
    """First and last name of every record: the person's, except a duplicate's typo,
    nickname or swapped names."""
    n = len(first_names)
    first = list(first_names) + [first_names[p] for p in dup_person]
    last = list(last_names) + [last_names[p] for p in dup_person]
    for j, (p, kind) in enumerate(zip(dup_person.tolist(), dup_kind.tolist(), strict=True)):
        r = n + j
        if kind == 1:  # typo in the first or the last name
            if rng.random() < 0.5:
                first[r] = typo(first[r], rng)
            else:
                last[r] = typo(last[r], rng)
        elif kind == 2:
            options = vocab.NICKNAMES[first_names[p]]
            first[r] = options[int(rng.integers(len(options)))]
        elif kind == 3:
            first[r], last[r] = last[r], first[r]
    return first, last


def _record_emails(
    rng: np.random.Generator, people: People, dup_person: np.ndarray, dup_kind: np.ndarray
) -> list[str]:
    """E-mail of every record: other_email duplicates always get a new address, other
    variants sometimes (a variant combined with a new e-mail)."""
    n, m = people.n, len(dup_person)
    email = list(people.email) + [people.email[p] for p in dup_person]
    new_email = (dup_kind == 4) | (rng.random(m) < 0.3)
    idx = np.flatnonzero(new_email)
    fresh = people.emails.make(
        rng,
        people.first[dup_person[idx]],
        people.last[dup_person[idx]],
        people.country[dup_person[idx]],
        np.zeros(len(idx), np.int64),
    )
    for k, address in zip(idx.tolist(), fresh, strict=True):
        email[n + k] = address
    return email


def _record_phones(
    rng: np.random.Generator,
    people: People,
    person: np.ndarray,
    dup_person: np.ndarray,
    dup_kind: np.ndarray,
) -> tuple[list[str], np.ndarray, list[str]]:
    """(notation, phone plan, national number) of every record: a phone_format duplicate
    writes the same number in another notation, others often lack the phone."""
    n = people.n
    country_codes = [vocab.COUNTRIES[c] for c in people.country[person].tolist()]
    notation = phones.pick_notations(country_codes, rng)
    phone_plan = people.phone_plan[person].copy()
    phone_nsn = list(people.phone_nsn) + [people.phone_nsn[p] for p in dup_person]
    for j, kind in enumerate(dup_kind.tolist()):
        r = n + j
        if kind == 5:  # same number, another notation
            notation[r] = phones.pick_notation(country_codes[r], rng, avoid=notation[person[r]])
        elif rng.random() < 0.3:  # the second record often lacks the phone
            phone_plan[r], phone_nsn[r] = -1, ""
    return notation, phone_plan, phone_nsn


def _record_births_and_genders(
    rng: np.random.Generator, people: People, person: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(birth, birth known, gender) of every record: copied from the person, a duplicate's
    sometimes missing (15% each)."""
    n, m = people.n, len(person) - people.n
    birth = people.birth[person].copy()
    gender = people.gender[person].copy()
    dup_rows = np.arange(n, n + m)
    birth_known = people.birth_known[person].copy()
    birth_known[dup_rows[rng.random(m) < 0.15]] = False
    gender[dup_rows[rng.random(m) < 0.15]] = GENDERS.index("U")
    return birth, birth_known, gender


def _loyalty_cards(
    rng: np.random.Generator, created: np.ndarray, n: int, last_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """(card opened at, card number) of every record, -1 without a card: 45% of originals
    and 25% of duplicates, opened at sign-up or later, numbered in opening order."""
    m = len(created) - n
    has_card = np.concatenate([rng.random(n) < 0.45, rng.random(m) < 0.25])
    at_signup = rng.random(n + m) < 0.5
    since_day = created // DAY + (rng.random(n + m) * (last_day - created // DAY + 1)).astype(
        np.int64
    )
    since = np.where(at_signup, created, np.maximum(_business_time(rng, since_day), created + 600))
    since = np.where(has_card, since, -1)
    loyalty_num = np.full(n + m, -1, dtype=np.int64)
    card_order = np.flatnonzero(has_card)[np.argsort(since[has_card], kind="stable")]
    loyalty_num[card_order] = 10_000_000 + np.cumsum(rng.integers(1, 4, size=len(card_order)))
    return since, loyalty_num


def make_records(ctx: Context, people: People) -> Records:
    """Every person's CRM record, then the duplicate records of ~4% of them (a typo, a
    nickname, swapped names, another e-mail or another phone notation), created later."""
    rng = ctx.rng(CRM, 1)
    n = people.n
    first_names = np.array(FIRST_NAMES, dtype=object)[people.first]
    last_names = np.array(LAST_NAMES, dtype=object)[people.last]
    dup_person, dup_kind = _choose_duplicates(rng, people, first_names, last_names)
    m = len(dup_person)
    person = np.concatenate([np.arange(n), dup_person])
    first, last = _record_names(rng, first_names, last_names, dup_person, dup_kind)
    email = _record_emails(rng, people, dup_person, dup_kind)
    notation, phone_plan, phone_nsn = _record_phones(rng, people, person, dup_person, dup_kind)
    birth, birth_known, gender = _record_births_and_genders(rng, people, person)

    # a duplicate is created after the original (re-registration, store sign-up)
    created = people.created[person].copy()
    orig = people.created[dup_person]
    orig_day = orig // DAY
    last_day = ctx.end_secs // DAY - 1
    dup_day = orig_day + (rng.random(m) * (last_day - orig_day + 1)).astype(np.int64)
    created[n:] = np.maximum(_business_time(rng, dup_day), orig + 600)
    since, loyalty_num = _loyalty_cards(rng, created, n, last_day)

    crm_num = np.empty(n + m, dtype=np.int64)
    by_created = np.argsort(created, kind="stable")
    crm_num[by_created] = 1_000_000 + np.cumsum(rng.integers(1, 4, size=n + m))
    dup_of = np.full(n, -1, dtype=np.int64)
    dup_of[dup_person] = np.arange(n, n + m)
    return Records(
        person=person,
        variant=np.concatenate([np.zeros(n, np.int64), dup_kind]),
        crm_num=crm_num,
        created=created,
        first_name=first,
        last_name=last,
        email=email,
        phone_plan=phone_plan,
        phone_nsn=phone_nsn,
        notation=notation,
        birth=birth,
        birth_known=birth_known,
        gender=gender,
        country=people.country[person],
        city=people.city[person],
        street=[people.street[p] for p in person.tolist()],
        postcode=[people.postcode[p] for p in person.tolist()],
        loyalty_num=loyalty_num,
        loyalty_since=since,
        dup_of=dup_of,
    )


@dataclass
class Versions:
    """Rows of the CRM files: a record's state at one updated_at."""

    record: np.ndarray
    updated: np.ndarray
    file: np.ndarray  # 0 = full export, k = k-th delta
    with_loyalty: np.ndarray
    email: list[str | None]  # override (changed e-mail) or None
    phone: list[tuple[int, str] | None]
    address: list[tuple[int, str, str] | None]


class VersionParts:
    """CRM file rows collected group by group (record, updated_at, file, with loyalty card,
    changed values), joined at the end."""

    def __init__(self) -> None:
        """Start with no rows."""
        self.records: list[np.ndarray] = []
        self.updated: list[np.ndarray] = []
        self.files: list[np.ndarray] = []
        self.loyalty: list[np.ndarray] = []
        self.overrides: list[tuple] = []

    def add(
        self,
        records: np.ndarray,
        updated: np.ndarray,
        files: np.ndarray,
        loyalty: np.ndarray,
        overrides: list[tuple] | None = None,
    ) -> None:
        """Add rows; `overrides` (e-mail, phone, address) default to no change."""
        self.records.append(records)
        self.updated.append(updated)
        self.files.append(files)
        self.loyalty.append(loyalty)
        self.overrides += (
            overrides if overrides is not None else [(None, None, None)] * len(records)
        )

    def joined(self) -> Versions:
        """Every row added, in the order added."""
        return Versions(
            record=np.concatenate(self.records),
            updated=np.concatenate(self.updated),
            file=np.concatenate(self.files),
            with_loyalty=np.concatenate(self.loyalty),
            email=[o[0] for o in self.overrides],
            phone=[o[1] for o in self.overrides],
            address=[o[2] for o in self.overrides],
        )


def _full_export_updated_at(
    rng: np.random.Generator, rec: Records, full_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """(updated_at in the full export, has a card by then) of every record: some were edited
    after creation or got their card since; all before the export ran."""
    n = rec.n
    edited = rng.random(n) < 0.35
    span = np.maximum(full_end // DAY - 1 - rec.created // DAY, 0)
    edit_day = rec.created // DAY + (rng.random(n) * (span + 1)).astype(np.int64)
    updated0 = np.where(
        edited, np.maximum(_business_time(rng, edit_day), rec.created + 60), rec.created
    )
    card = rec.loyalty_since >= 0
    joined_before = card & (rec.loyalty_since < full_end)
    updated0 = np.where(joined_before, np.maximum(updated0, rec.loyalty_since), updated0)
    updated0 = np.minimum(updated0, np.maximum(full_end - 3 * 3600, rec.created))
    return updated0, joined_before


def _changed_records(
    rng: np.random.Generator, ctx: Context, rec: Records, taken: np.ndarray, first_delta_day: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(record, changed at, delta file) of the ~0.25% of existing records changed on each
    delta day, each record at most once and none of those already `taken`."""
    changed, changed_at, changed_file = [], [], []
    for k in range(1, len(ctx.delta_dates) + 1):
        day = first_delta_day + k - 1
        existing = np.flatnonzero((rec.created < day * DAY) & ~taken)
        count = min(len(existing), max(1, round(0.0025 * len(existing))))
        chosen = np.sort(rng.choice(existing, size=count, replace=False))
        taken[chosen] = True
        changed.append(chosen)
        changed_at.append(_business_time(rng, np.full(count, day)))
        changed_file.append(np.full(count, k))
    return np.concatenate(changed), np.concatenate(changed_at), np.concatenate(changed_file)


def _change_overrides(
    rng: np.random.Generator, people: People, rec: Records, chosen: np.ndarray
) -> list[tuple]:
    """(e-mail, phone, address) of each changed record, one of them new: moved house, a new
    mobile or a new e-mail (the new values are also kept in `rec.extra_*`)."""
    kind = rng.choice(3, size=len(chosen), p=[0.35, 0.35, 0.30])
    change: list[tuple] = [(None, None, None)] * len(chosen)
    moved = np.flatnonzero(kind == 0)
    city, street, postcode = draw_addresses(rng, rec.country[chosen[moved]])
    for j, i in enumerate(moved.tolist()):
        change[i] = (None, None, (int(city[j]), street[j], postcode[j]))
    new_phone = np.flatnonzero(kind == 1)
    plans = draw_mobiles(rng, rec.country[chosen[new_phone]])
    for i, plan, nsn in zip(
        new_phone.tolist(), plans.tolist(), people.phone_book.draw(plans, rng), strict=True
    ):
        rec.extra_phones[int(chosen[i])] = (plan, nsn)
        change[i] = (None, (plan, nsn), None)
    new_email = np.flatnonzero(kind == 2)
    who = rec.person[chosen[new_email]]
    addresses = people.emails.make(
        rng, people.first[who], people.last[who], people.country[who], np.zeros(len(who), np.int64)
    )
    for i, address in zip(new_email.tolist(), addresses, strict=True):
        rec.extra_emails[int(chosen[i])] = address
        change[i] = (address, None, None)
    return change


def make_versions(ctx: Context, people: People, rec: Records) -> Versions:
    """The rows of the CRM files: every record in the full export (or in the delta of the day
    it was created), then in a delta when it got a loyalty card or changed."""
    rng = ctx.rng(CRM, 2)
    full_end = ctx.full_export_secs
    first_delta_day = full_end // DAY
    updated0, joined_before = _full_export_updated_at(rng, rec, full_end)
    card = rec.loyalty_since >= 0
    parts = VersionParts()
    in_full = rec.created < full_end
    parts.add(
        np.flatnonzero(in_full),
        updated0[in_full],
        np.zeros(int(in_full.sum()), np.int64),
        joined_before[in_full],
    )
    # new records in the delta window (with the card if it was opened at sign-up)
    new = ~in_full
    parts.add(
        np.flatnonzero(new),
        rec.created[new],
        rec.created[new] // DAY - first_delta_day + 1,
        (card & (rec.loyalty_since == rec.created))[new],
    )
    # loyalty card opened later, within the window: a changed record
    joins = card & (rec.loyalty_since >= full_end) & (rec.loyalty_since > rec.created)
    parts.add(
        np.flatnonzero(joins),
        rec.loyalty_since[joins],
        rec.loyalty_since[joins] // DAY - first_delta_day + 1,
        np.ones(int(joins.sum()), bool),
    )
    # other changes within the window: moved house, new phone, new e-mail
    chosen, when, changed_file = _changed_records(rng, ctx, rec, joins.copy(), first_delta_day)
    change = _change_overrides(rng, people, rec, chosen)
    parts.add(
        chosen, when, changed_file, card[chosen] & (rec.loyalty_since[chosen] <= when), change
    )
    return parts.joined()


def messy_emails(values: pa.Array, rng: np.random.Generator, share: float) -> pa.Array:
    """Some addresses in capitals, title case or with spaces around them (still valid)."""
    n = len(values)
    kind = np.where(rng.random(n) < share, rng.integers(1, 6, size=n), 0)
    return pc.choose(
        pa.array(kind),
        values,
        pc.utf8_upper(values),
        pc.utf8_title(values),
        col.join("  ", values),
        col.join(values, " "),
        col.join(" ", pc.utf8_title(values), " "),
    )


def render_versions(ctx: Context, rec: Records, ver: Versions) -> pa.Array:
    """The CSV line of every version (same order as `ver`)."""
    rng = ctx.rng(CRM, 3)
    r = ver.record
    n = len(r)
    email = col.strings(
        [e if e is not None else rec.email[k] for e, k in zip(ver.email, r.tolist(), strict=True)]
    )
    phone_text = []
    for k, override in zip(r.tolist(), ver.phone, strict=True):
        plan, nsn = override if override is not None else (int(rec.phone_plan[k]), rec.phone_nsn[k])
        phone_text.append(
            phones.render(phones.PLANS[plan], nsn, rec.notation[k]) if plan >= 0 else ""
        )
    city = rec.city[r].copy()
    street = [rec.street[k] for k in r.tolist()]
    postcode = [rec.postcode[k] for k in r.tolist()]
    for j, override in enumerate(ver.address):
        if override is not None:
            city[j], street[j], postcode[j] = override
    birth_text = pc.if_else(pa.array(rec.birth_known[r]), col.dates(rec.birth[r]), "")
    loyalty = rec.loyalty_num[r]
    loyalty_text = pc.if_else(
        pa.array(ver.with_loyalty), col.ids("L", np.maximum(loyalty, 0), 8), ""
    )
    return (
        col.csv_lines(
            [
                col.ids("C", rec.crm_num[r], 7),
                col.strings([rec.first_name[k] for k in r.tolist()]),
                col.strings([rec.last_name[k] for k in r.tolist()]),
                messy_emails(email, rng, 0.07),
                col.strings(phone_text),
                birth_text,
                col.take(GENDERS, rec.gender[r]),
                col.strings(street),
                col.take(CITY_NAMES, city),
                col.strings(postcode),
                col.take(vocab.COUNTRIES, rec.country[r]),
                col.timestamps(rec.created[r], b" "),
                col.timestamps(ver.updated, b" "),
                loyalty_text,
            ]
        )
        if n
        else pa.array([], pa.string())
    )


# --------------------------------------------------------------------------- malformed rows

GHOST_KINDS = (
    ("birth_date", "bad_date", "1984-13-45"),
    ("birth_date", "bad_date", "31/02/1990"),
    ("", "wrong_column_count", None),
    ("", "non_utf8", None),
    ("gender", "unknown_enum", "Q"),
    ("country", "unknown_enum", "XX"),
    ("email", "bad_email", None),
    ("crm_id", "missing_required", ""),
    ("phone", "bad_phone", None),
)
BAD_EMAILS = (
    "john@@example.org",
    "mary.smith@gmail",
    "peter@hotmail..com",
    "anne.dupont.orange.fr",
)
LATIN1_NAMES = ("Zoë", "Agnès", "José", "Jürgen", "Hélène", "Sinéad", "Ramón", "Björn")


def _ghost_row(
    rng: np.random.Generator, people: People, number: int, day: int, c: int, notation: str | None
) -> dict[str, str]:
    """A valid-looking CRM row about nobody (crm id C9xxxxxx) in country `c`, created on
    `day`; its phone in `notation` (None: one the country uses)."""
    start, stop = FIRST_RANGE[(c, int(rng.integers(2)))]
    first = FIRST_NAMES[int(rng.integers(start, stop))]
    start, stop = LAST_RANGE[c]
    last = LAST_NAMES[int(rng.integers(start, stop))]
    country = np.array([c])
    email = people.emails.make(
        rng,
        np.array([FIRST_NAMES.index(first)]),
        np.array([LAST_NAMES.index(last)]),
        country,
        np.zeros(1, np.int64),
    )[0]
    plan = draw_mobiles(rng, country)
    nsn = people.phone_book.draw(plan, rng)[0]
    notation = notation or phones.pick_notation(vocab.COUNTRIES[c], rng)
    city, street, postcode = draw_addresses(rng, country)
    birth = col.dates(np.array([day - int(rng.integers(20 * 365, 70 * 365))]))[0].as_py()
    stamp = col.timestamps(np.array([day * DAY + int(rng.integers(9 * 3600, 20 * 3600))]), b" ")[
        0
    ].as_py()
    return {
        "crm_id": f"C{9_000_000 + number:07d}",
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": phones.render(phones.PLANS[int(plan[0])], nsn, notation),
        "birth_date": birth,
        "gender": "FM"[int(rng.integers(2))],
        "street": street[0],
        "city": CITY_NAMES[int(city[0])],
        "postcode": postcode[0],
        "country": vocab.COUNTRIES[c],
        "created_at": stamp,
        "updated_at": stamp,
        "loyalty_id": "",
    }


def ghost_line(
    rng: np.random.Generator,
    people: People,
    number: int,
    day: int,
    spec: tuple[str, str, str | None],
) -> bytes:
    """A CRM row about nobody (crm id C9xxxxxx) with exactly one deliberate defect."""
    field_name, kind, value = spec
    c = int(rng.integers(len(vocab.COUNTRIES)))
    if field_name == "phone":
        c = 0  # GB: 07700 900xxx is Ofcom's drama range, not a valid number
    row = _ghost_row(rng, people, number, day, c, "intl_space" if kind == "unknown_enum" else None)
    if kind == "bad_email":
        row["email"] = BAD_EMAILS[number % len(BAD_EMAILS)]
    elif kind == "bad_phone":
        row["phone"] = f"07700 900{int(rng.integers(1000)):03d}"
    elif value is not None:
        row[field_name] = value
    if kind == "wrong_column_count":
        if number % 2:  # a street with an unquoted comma: one field too many
            return (
                ",".join(row.values()).replace(
                    row["street"], f"Flat {number % 9 + 1}, {row['street']}"
                )
            ).encode()
        return ",".join(list(row.values())[:-2]).encode()  # cut short
    if kind == "non_utf8":  # the first name arrives Latin-1 encoded: the line is not UTF-8
        name = LATIN1_NAMES[number % len(LATIN1_NAMES)]
        row["first_name"] = "\x00"
        line = col.csv_row(list(row.values()))
        head, tail = line.split("\x00")
        return head.encode() + name.encode("latin-1") + tail.encode()
    return col.csv_row(list(row.values())).encode()


# --------------------------------------------------------------------------- files


def write(ctx: Context, people: People, rec: Records, landing: Landing) -> Versions:
    """Write the full export and one delta per day (with re-sent rows and malformed rows);
    return the versions written."""
    ver = make_versions(ctx, people, rec)
    lines = render_versions(ctx, rec, ver)
    rng = ctx.rng(CRM, 4)
    ghost_rng = ctx.rng(GHOSTS, 1)
    n_files = len(ctx.delta_dates) + 1
    file_rows = [np.flatnonzero(ver.file == k) for k in range(n_files)]
    specs = allocate(GHOST_KINDS, len(ver.record))
    ghost_file = np.concatenate(
        [
            np.arange(min(len(specs), n_files)),
            rng.integers(0, n_files, size=max(0, len(specs) - n_files)),
        ]
    )
    dates = [ctx.full_export, *ctx.delta_dates]
    ghost_number = 0
    for k in range(n_files):
        rows = file_rows[k]
        if k == 0:
            rows = rows[np.argsort(rec.crm_num[ver.record[rows]], kind="stable")]
            resent = np.zeros(0, np.int64)
        else:
            rows = rows[np.argsort(ver.updated[rows], kind="stable")]
            earlier = np.flatnonzero(ver.file < k)
            count = min(len(earlier), max(1, round(0.01 * len(rows))))
            resent = rng.choice(earlier, size=count, replace=False)
        # re-sent rows (identical to their first copy) go anywhere in the delta
        order = rows.tolist()
        for at, row in zip(spread(rng, len(order), len(resent)), resent.tolist(), strict=True):
            order.insert(at, row)
        body = lines.take(pa.array(np.array(order, dtype=np.int64)))
        bad = []
        day = col.epoch_day(dates[k])
        mine = [specs[i] for i in np.flatnonzero(ghost_file == k).tolist()]
        for at, spec in zip(spread(ghost_rng, len(order), len(mine)), mine, strict=True):
            ghost_number += 1
            bad.append(
                BadRow(at, ghost_line(ghost_rng, people, ghost_number, day, spec), spec[0], spec[1])
            )
        landing.text(FEED, f"crm_{dates[k].isoformat()}.csv", body, bad, len(resent), header=HEADER)
    return ver
