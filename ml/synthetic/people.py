"""The real people behind the records: households, names, addresses, e-mails, phones, twins.

Persons are what the ground truth is about; the feeds only ever show records *about* them. A
household shares an address (and often a last name and a landline); a few households hold twins:
same last name, address and birth date, different first names and e-mails, distinct persons.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.normalise import mailbox_key
from ml.synthetic import phones, vocab
from ml.synthetic.columns import DAY, digits, epoch_day, fixed, join, take
from ml.synthetic.context import PEOPLE, Context

GENDERS = ("F", "M", "X", "U")
YEAR = 365

# Global name tables: every country's lists laid end to end, with index ranges.
FIRST_NAMES: list[str] = []
FIRST_SLUGS: list[str] = []
FIRST_RANGE: dict[tuple[int, int], tuple[int, int]] = {}  # (country, 0=female/1=male)
LAST_NAMES: list[str] = []
LAST_SLUGS: list[str] = []
LAST_RANGE: dict[int, tuple[int, int]] = {}
for _c, _country in enumerate(vocab.COUNTRIES):
    _female, _male, _last = vocab.NAMES[_country]
    for _sex, _names in enumerate((_female, _male)):
        FIRST_RANGE[(_c, _sex)] = (len(FIRST_NAMES), len(FIRST_NAMES) + len(_names))
        FIRST_NAMES.extend(_names)
        FIRST_SLUGS.extend(vocab.slug(n, _country) for n in _names)
    LAST_RANGE[_c] = (len(LAST_NAMES), len(LAST_NAMES) + len(_last))
    LAST_NAMES.extend(_last)
    LAST_SLUGS.extend(vocab.slug(n, _country) for n in _last)

CITY_COUNTRY = np.array([vocab.COUNTRIES.index(c[0]) for c in vocab.CITIES])


def ranked_choice(
    rng: np.random.Generator, size: int, options: int, skew: float = 3.0
) -> np.ndarray:
    """Indices 0..options-1, the first ones most likely (Zipf-like, like real name frequencies)."""
    weights = 1.0 / (np.arange(options) + skew)
    return rng.choice(options, size=size, p=weights / weights.sum())


def draw_first_names(rng: np.random.Generator, country: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """A first name (index into FIRST_NAMES) for each country and sex, common ones likelier."""
    out = np.empty(len(country), dtype=np.int32)
    for (c, s), (start, stop) in FIRST_RANGE.items():
        idx = np.flatnonzero((country == c) & (sex == s))
        out[idx] = start + ranked_choice(rng, len(idx), stop - start)
    return out


def draw_last_names(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """A last name (index into LAST_NAMES) for each country, common ones likelier."""
    out = np.empty(len(country), dtype=np.int32)
    for c, (start, stop) in LAST_RANGE.items():
        idx = np.flatnonzero(country == c)
        out[idx] = start + ranked_choice(rng, len(idx), stop - start, skew=5.0)
    return out


class EmailBook:
    """Hands out e-mail addresses nobody else has (persons never share a mailbox here).

    Addresses are told apart by the mailbox they reach (ml/normalise.py `mailbox_key`):
    `camilledumont@gmail.com` is taken once `camille.dumont@gmail.com` is, as Gmail would
    deliver both to one person.
    """

    PATTERNS = (
        "{f}.{l}",
        "{f}{l}",
        "{i}{l}",
        "{f}.{l}{nn}",
        "{f}_{l}",
        "{l}.{f}",
        "{f}{yyyy}",
        "{i}.{l}{nn}",
        "{f}.{l}.{nn}",
        "{l}{i}",
    )
    PATTERN_WEIGHTS = np.array([0.24, 0.12, 0.10, 0.14, 0.05, 0.05, 0.08, 0.08, 0.04, 0.10])

    def __init__(self) -> None:
        """No address handed out yet."""
        self.used: set[str] = set()

    def claim(self, local: str, domain: str, numbers: Iterator[int]) -> str:
        """local@domain, or with the next of `numbers` appended until the address is free."""
        address = f"{local}@{domain}"
        while mailbox_key(address) in self.used:  # add digits until free, as providers suggest
            address = f"{local}{next(numbers)}@{domain}"
        self.used.add(mailbox_key(address))
        return address

    def make(
        self,
        rng: np.random.Generator,
        first: np.ndarray,
        last: np.ndarray,
        country: np.ndarray,
        birth_year: np.ndarray,
    ) -> list[str]:
        """One new address per person from name slugs, a pattern and a domain of the country."""
        n = len(first)
        if n == 0:
            return []
        weights = self.PATTERN_WEIGHTS / self.PATTERN_WEIGHTS.sum()
        pattern = rng.choice(len(self.PATTERNS), size=n, p=weights)
        nn = rng.integers(1, 100, size=n)
        year = np.where(birth_year > 0, birth_year, 1980 + nn % 20)
        domain = np.empty(n, dtype=np.int64)
        domain_names: list[str] = []
        for c, country_code in enumerate(vocab.COUNTRIES):
            idx = np.flatnonzero(country == c)
            table = vocab.EMAIL_DOMAINS[country_code]
            w = np.array([x for _, x in table])
            domain[idx] = len(domain_names) + rng.choice(len(table), size=len(idx), p=w / w.sum())
            domain_names.extend(d for d, _ in table)
        f = take(FIRST_SLUGS, first)
        l_ = take(LAST_SLUGS, last)
        i = pc.utf8_slice_codeunits(f, 0, 1)
        two = pc.if_else(
            pa.array(nn % 3 > 0), fixed(n, digits(nn, 2)), fixed(n, digits(year % 100, 2))
        )
        yyyy = fixed(n, digits(year, 4))
        pieces = {"f": f, "l": l_, "i": i, "nn": two, "yyyy": yyyy}
        variants = []
        for template in self.PATTERNS:  # "{f}.{l}{nn}" -> join(f, ".", l, nn)
            parts: list[pa.Array | str] = []
            for chunk in template.replace("}", "{").split("{"):
                if chunk:
                    parts.append(pieces.get(chunk, chunk))
            variants.append(join(*parts))
        local = pc.choose(pa.array(pattern), *variants).to_pylist()
        domains = [domain_names[d] for d in domain.tolist()]
        numbers = iter(rng.integers(2, 10_000, size=4 * n + 16).tolist())
        used, out = self.used, []
        for a, b in zip(local, domains, strict=True):
            address = f"{a}@{b}"
            mailbox = mailbox_key(address)
            if mailbox in used:
                address = self.claim(a, b, numbers)
            else:
                used.add(mailbox)
            out.append(address)
        return out


@dataclass
class People:
    """The real people behind the data, one entry per person in every array."""

    n: int
    household: np.ndarray  # household index per person
    member: np.ndarray  # position within the household (0 = first adult)
    country: np.ndarray  # index into vocab.COUNTRIES
    gender: np.ndarray  # index into GENDERS
    first: np.ndarray  # index into FIRST_NAMES
    last: np.ndarray  # index into LAST_NAMES
    birth: np.ndarray  # epoch day (may be negative: before 1970)
    birth_known: np.ndarray  # False: the CRM never got the birth date
    created: np.ndarray  # CRM creation, London wall clock epoch seconds
    city: np.ndarray  # index into vocab.CITIES
    street: list[str]
    postcode: list[str]
    email: list[str]
    phone_plan: np.ndarray  # index into phones.PLANS, -1 none
    phone_nsn: list[str]
    twin_of: np.ndarray  # person index or -1
    activity: np.ndarray  # mean 1, heavy tail: many light customers, few heavy ones
    has_account: np.ndarray  # web shop account (user_id) exists
    user_num: np.ndarray  # number of the U######## id, -1 without account
    emails: EmailBook
    phone_book: phones.PhoneBook

    @property
    def country_code(self) -> np.ndarray:
        """Each person's ISO country code."""
        return np.array(vocab.COUNTRIES)[self.country]


def _street(country: str, name: str, number: int, extra: int, variant: float) -> str:
    """A street line written the country's way (`variant` picks the rarer forms)."""
    # Some addresses carry commas on purpose: CSV quoting must cope with them.
    if country == "GB":
        return f"Flat {extra}, {number} {name}" if variant < 0.12 else f"{number} {name}"
    if country == "IE":
        return f"Apartment {extra}, {name}" if variant < 0.08 else f"{number} {name}"
    if country == "FR":
        return f"{number} bis {name}" if variant < 0.05 else f"{number} {name}"
    if country == "DE":
        return f"{name} {number}a" if variant < 0.07 else f"{name} {number}"
    if country == "NL":
        return f"{name} {number}-{extra}" if variant < 0.10 else f"{name} {number}"
    if country == "ES":
        floor, door = extra % 9 + 1, "ABCD"[extra % 4]
        return f"{name} {number}, {floor}º {door}" if variant < 0.55 else f"{name}, {number}"
    return (
        f"{number * 7 + 100} {name}, Apt {extra}"
        if variant < 0.15
        else f"{number * 7 + 100} {name}"
    )


GB_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
EIRCODE = "ACDEFHKNPRTVWXY0123456789"
NL_LETTERS = "ABCEGHJKLMNPRTVWXZ"


def _postcode(city: int, r: list[int]) -> str:
    """A postcode of the town, shaped like the country's real ones; r are random ints."""
    country, _, _, rule, _ = vocab.CITIES[city]
    if country == "GB":
        outward = rule[r[0] % len(rule)]
        return f"{outward} {r[1] % 10}{GB_INWARD[r[2] % 20]}{GB_INWARD[r[3] % 20]}"
    if country == "IE":
        key = rule[r[0] % len(rule)]
        return f"{key} {'ACDEFHKNPRTVWXY'[r[1] % 15]}{EIRCODE[r[2] % 25]}{EIRCODE[r[3] % 25]}{EIRCODE[r[4] % 25]}"
    low, high = rule
    value = low + r[0] % (high - low + 1)
    if country == "NL":
        return f"{value} {NL_LETTERS[r[1] % 18]}{NL_LETTERS[r[2] % 18]}"
    return f"{value:05d}"


def draw_addresses(
    rng: np.random.Generator, countries: np.ndarray
) -> tuple[np.ndarray, list[str], list[str]]:
    """(city, street line, postcode) for each entry of `countries` (country indices)."""
    n = len(countries)
    city = np.empty(n, dtype=np.int32)
    for c in range(len(vocab.COUNTRIES)):
        idx = np.flatnonzero(countries == c)
        options = np.flatnonzero(np.equal(CITY_COUNTRY, c))
        weights = np.array([vocab.CITIES[k][2] for k in options])
        city[idx] = options[rng.choice(len(options), size=len(idx), p=weights / weights.sum())]
    street_pick = rng.integers(0, 1 << 30, size=n).tolist()
    number = (1 + (rng.pareto(1.2, size=n) * 8).astype(np.int64) % 240).tolist()
    extra = rng.integers(1, 40, size=n).tolist()
    variant = rng.random(n).tolist()
    codes = rng.integers(0, 1 << 30, size=(n, 5)).tolist()
    country_codes = [vocab.COUNTRIES[c] for c in countries.tolist()]
    streets, postcodes = [], []
    for k, (country, city_k) in enumerate(zip(country_codes, city.tolist(), strict=True)):
        names = vocab.STREETS[country]
        streets.append(
            _street(country, names[street_pick[k] % len(names)], number[k], extra[k], variant[k])
        )
        postcodes.append(_postcode(city_k, codes[k]))
    return city, streets, postcodes


def draw_landlines(rng: np.random.Generator, cities: np.ndarray) -> np.ndarray:
    """A landline numbering plan (index into phones.PLANS) of each city's area."""
    counts = np.array([len(p) for p in phones.CITY_PLANS])
    table = np.array([p + (p[0],) * (counts.max() - len(p)) for p in phones.CITY_PLANS])
    pick = (rng.random(len(cities)) * counts[cities]).astype(np.int64)
    return table[cities, pick].astype(np.int32)


def draw_mobiles(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """A mobile numbering plan (index into phones.PLANS) of each country."""
    plans = np.empty(len(countries), dtype=np.int32)
    for c, code in enumerate(vocab.COUNTRIES):
        idx = np.flatnonzero(countries == c)
        options = np.array(phones.MOBILE_PLANS[code])
        plans[idx] = options[rng.integers(0, len(options), size=len(idx))]
    return plans


def _households(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Households of 1-5 persons, filled until there are n persons: (household of each
    person, position in it, household sizes, each household's first person)."""
    sizes = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.42, 0.30, 0.13, 0.11, 0.04])
    total = np.cumsum(sizes)
    n_households = int(np.searchsorted(total, n) + 1)
    sizes = sizes[:n_households].copy()
    sizes[-1] -= int(total[n_households - 1] - n)
    household = np.repeat(np.arange(n_households), sizes)
    starts = np.cumsum(sizes) - sizes
    member = np.arange(n) - starts[household]
    return household, member, sizes, starts


def _birth_dates(
    rng: np.random.Generator,
    member: np.ndarray,
    household: np.ndarray,
    starts: np.ndarray,
    end_day: int,
) -> np.ndarray:
    """Birth days: adults 22-80, partners close in age, further members the adults' children
    (at least 16)."""
    n = len(member)
    adult = end_day - rng.integers(22 * YEAR, 80 * YEAR, size=n)
    head_birth = adult[starts]
    birth = np.where(member == 0, adult, 0)
    partner = head_birth[household] + rng.normal(0, 4 * YEAR, size=n).astype(np.int64)
    birth = np.where(member == 1, np.minimum(partner, end_day - 18 * YEAR), birth)
    child = head_birth[household] + rng.integers(20 * YEAR, 40 * YEAR, size=n)
    return np.where(
        member >= 2,
        np.minimum(child, end_day - 16 * YEAR - rng.integers(0, 4 * YEAR, size=n)),
        birth,
    )


def _make_twins(
    rng: np.random.Generator,
    sizes: np.ndarray,
    starts: np.ndarray,
    hh_last: np.ndarray,
    country: np.ndarray,
    sex: np.ndarray,
    birth: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
) -> np.ndarray:
    """Make the last two members of some households of 3+ twins: born the same day, the
    household's last name, distinct first names (`birth`, `first`, `last` are changed in
    place). Returns each person's twin, -1 for none."""
    twin_of = np.full(len(birth), -1, dtype=np.int64)
    big = np.flatnonzero(sizes >= 3)
    n_pairs = min(len(big), max(2, round(0.002 * len(birth))))
    for h in rng.choice(big, size=n_pairs, replace=False) if n_pairs else []:
        a = starts[h] + sizes[h] - 2
        b = a + 1
        twin_of[a], twin_of[b] = b, a
        birth[b] = birth[a]
        last[a] = last[b] = hh_last[h]
        while first[b] == first[a]:
            first[b] = draw_first_names(rng, country[b : b + 1], sex[b : b + 1])[0]
    return twin_of


def _user_numbers(
    rng: np.random.Generator, created: np.ndarray, has_account: np.ndarray
) -> np.ndarray:
    """The number of each account holder's U######## id, increasing with sign-up (-1 for
    persons without an account)."""
    order = np.argsort(created, kind="stable")
    user_num = np.full(len(created), -1, dtype=np.int64)
    account_order = order[has_account[order]]
    user_num[account_order] = 10_000_000 + np.cumsum(rng.integers(1, 6, size=len(account_order)))
    return user_num


def _phones(
    rng: np.random.Generator,
    phone_book: phones.PhoneBook,
    country: np.ndarray,
    household: np.ndarray,
    hh_landline_plan: np.ndarray,
    hh_landline: list[str],
) -> tuple[np.ndarray, list[str]]:
    """(plan, national number) of each person's phone: an own mobile (75%), the household
    landline (20%) or none."""
    n = len(country)
    kind = rng.choice(3, size=n, p=[0.75, 0.2, 0.05])
    mobile_plan = draw_mobiles(rng, country)
    mobile_nsn = phone_book.draw(mobile_plan, rng)
    phone_plan = np.where(
        kind == 0, mobile_plan, np.where(kind == 1, hh_landline_plan[household], -1)
    )
    phone_nsn = [
        mobile_nsn[k] if kind[k] == 0 else hh_landline[household[k]] if kind[k] == 1 else ""
        for k in range(n)
    ]
    return phone_plan, phone_nsn


def make_people(ctx: Context) -> People:
    """The real people behind the data: households with an address and landline, names,
    birth dates and twins, CRM sign-up, web accounts, e-mail addresses and phones."""
    rng = ctx.rng(PEOPLE)
    n = ctx.customers
    end_day = epoch_day(ctx.end)
    household, member, sizes, starts = _households(rng, n)

    hh_country = rng.choice(len(vocab.COUNTRIES), size=len(sizes), p=vocab.COUNTRY_WEIGHTS)
    hh_city, hh_street, hh_postcode = draw_addresses(rng, hh_country)
    hh_last = draw_last_names(rng, hh_country)
    hh_landline_plan = draw_landlines(rng, hh_city)
    phone_book = phones.PhoneBook()
    hh_landline = phone_book.draw(hh_landline_plan, rng)
    country = hh_country[household]

    gender = rng.choice(4, size=n, p=[0.49, 0.47, 0.01, 0.03])
    sex = np.where(gender < 2, gender, rng.integers(0, 2, size=n))  # X/U: either name list
    first = draw_first_names(rng, country, sex)
    own_last = draw_last_names(rng, country)
    keeps = np.where(member == 0, 1.0, np.where(member == 1, 0.6, 0.9))
    last = np.where(rng.random(n) < keeps, hh_last[household], own_last)
    birth = _birth_dates(rng, member, household, starts, end_day)
    twin_of = _make_twins(rng, sizes, starts, hh_last, country, sex, birth, first, last)
    birth_known = ~((rng.random(n) < 0.02) & (twin_of < 0))

    # CRM creation: most customers joined long ago, sign-ups grow towards today.
    ago = (rng.exponential(800, size=n) % 3000).astype(np.int64)
    created_day = np.minimum(np.maximum(end_day - ago, birth + 16 * YEAR), end_day)
    created = created_day * DAY + rng.integers(8 * 3600, 22 * 3600, size=n)
    activity = rng.lognormal(-0.5, 1.0, size=n)
    has_account = rng.random(n) < 0.7
    user_num = _user_numbers(rng, created, has_account)

    emails = EmailBook()
    birth_year = birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    email = emails.make(rng, first, last, country, birth_year)
    phone_plan, phone_nsn = _phones(
        rng, phone_book, country, household, hh_landline_plan, hh_landline
    )
    return People(
        n=n,
        household=household,
        member=member,
        country=country,
        gender=gender,
        first=first,
        last=last,
        birth=birth,
        birth_known=birth_known,
        created=created,
        city=hh_city[household],
        street=[hh_street[h] for h in household],
        postcode=[hh_postcode[h] for h in household],
        email=email,
        phone_plan=phone_plan,
        phone_nsn=phone_nsn,
        twin_of=twin_of,
        activity=activity,
        has_account=has_account,
        user_num=user_num,
        emails=emails,
        phone_book=phone_book,
    )
