"""Phone numbers that `phonenumbers.is_valid_number` accepts, written the many ways people do.

Numbers are drawn from number blocks (prefix + free digits) that were checked to be valid for
every choice of the free digits (tests/test_generator.py re-checks every generated phone).
Ofcom's drama ranges are deliberately avoided except where they are valid (020 7946 0xxx);
07700 900xxx is not a valid number and is used only for malformed CRM rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import vocab
from ml.synthetic.columns import from_matrix

COUNTRY_CODE: dict[str, str] = {
    "GB": "44",
    "IE": "353",
    "FR": "33",
    "DE": "49",
    "NL": "31",
    "ES": "34",
    "US": "1",
}
TRUNK_COUNTRIES = frozenset({"GB", "IE", "FR", "DE", "NL"})  # national numbers start with 0


@dataclass(frozen=True)
class Plan:
    """A block of numbers: national significant number (NSN) = prefix + free digits."""

    country: str
    prefix: str
    nsn_len: int
    area_len: int  # digits of the NSN written as the first group ("20" in 020 7946 0018)
    rest: tuple[int, ...]  # group sizes of the remaining digits in national notation
    mobile: bool


def _landline(country: str, prefix: str) -> Plan:
    if country == "GB":
        if prefix.startswith("2"):  # London 020, Cardiff 029: 0xx xxxx xxxx
            return Plan(country, prefix, 10, 2, (4, 4), False)
        if prefix in ("1223", "1865"):  # 01223 123456
            return Plan(country, prefix, 10, 4, (6,), False)
        return Plan(country, prefix, 10, 3, (3, 4), False)  # 0161 496 0123
    if country == "IE":
        if prefix == "1":
            return Plan(country, prefix, 8, 1, (3, 4), False)  # 01 234 5678
        if prefix == "21":
            return Plan(country, prefix, 9, 2, (3, 4), False)  # 021 234 5678
        return Plan(country, prefix, 8, 2, (3, 3), False)  # 091 234 567
    if country == "FR":
        return Plan(country, prefix, 9, 1, (2, 2, 2, 2), False)  # 01 23 45 67 89
    if country == "DE":
        area = 2 if len(prefix) == 2 else 3
        return Plan(country, prefix, 10, area, (10 - area,), False)  # 030 12345678
    if country == "NL":
        return Plan(country, prefix, 9, 2, (3, 4), False)  # 020 123 4567
    if country == "ES":
        return Plan(country, prefix, 9, 3, (2, 2, 2), False)  # 912 34 56 78
    return Plan(country, prefix, 10, 3, (3, 4), False)  # US (212) 736-4521


_MOBILE_PREFIXES: dict[str, tuple[tuple[str, int, int, tuple[int, ...]], ...]] = {
    # prefix, nsn length, area length, rest groups
    "GB": tuple(
        (p, 10, 4, (6,))
        for p in (
            "740",
            "742",
            "743",
            "744",
            "746",
            "747",
            "748",
            "749",
            "751",
            "753",
            "754",
            "755",
            "756",
            "757",
            "758",
            "759",
            "771",
            "772",
            "773",
            "774",
            "775",
            "776",
            "777",
            "780",
            "781",
            "784",
            "785",
            "786",
            "787",
            "788",
            "789",
            "790",
            "792",
            "794",
            "795",
            "796",
            "797",
            "798",
            "799",
        )
    ),
    "IE": tuple((p, 9, 2, (3, 4)) for p in ("83", "85", "86", "87", "89")),
    "FR": tuple(
        (p, 9, 1, (2, 2, 2, 2))
        for p in (
            "60",
            "61",
            "62",
            "64",
            "65",
            "66",
            "67",
            "68",
            "73",
            "74",
            "75",
            "76",
            "77",
            "78",
        )
    ),
    "DE": tuple((p, 11, 3, (8,)) for p in ("151", "152", "157"))
    + tuple((p, 10, 3, (7,)) for p in ("160", "162", "170", "171", "172", "173", "175", "176")),
    "NL": tuple((p, 9, 1, (8,)) for p in ("61", "62", "63", "64", "65", "68")),
    "ES": tuple((p, 9, 3, (2, 2, 2)) for p in ("6", "71", "72", "73", "74")),
}

PLANS: list[Plan] = []
CITY_PLANS: list[tuple[int, ...]] = []  # per vocab.CITIES entry: landline plans
MOBILE_PLANS: dict[str, tuple[int, ...]] = {}
for _country, _name, _w, _pc, _prefixes in vocab.CITIES:
    ids = []
    for _prefix in _prefixes:
        ids.append(len(PLANS))
        PLANS.append(_landline(_country, _prefix))
    CITY_PLANS.append(tuple(ids))
for _country in vocab.COUNTRIES:
    if _country == "US":  # US mobiles share the geographic area codes
        MOBILE_PLANS[_country] = tuple(i for i, p in enumerate(PLANS) if p.country == "US")
        continue
    ids = []
    for _prefix, _len, _area, _rest in _MOBILE_PREFIXES[_country]:
        ids.append(len(PLANS))
        PLANS.append(Plan(_country, _prefix, _len, _area, _rest, True))
    MOBILE_PLANS[_country] = tuple(ids)

# How people write numbers, per country, with rough frequencies.
NOTATIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "GB": (
        ("nat_space", 0.40),
        ("intl_space", 0.18),
        ("nat_compact", 0.12),
        ("nat_dash", 0.06),
        ("trunk_paren", 0.08),
        ("intl_trunk_paren", 0.06),
        ("intl_compact", 0.06),
        ("00_space", 0.04),
    ),
    "IE": (
        ("nat_space", 0.45),
        ("intl_space", 0.20),
        ("nat_compact", 0.12),
        ("nat_dash", 0.05),
        ("trunk_paren", 0.06),
        ("intl_trunk_paren", 0.05),
        ("00_space", 0.07),
    ),
    "FR": (
        ("nat_space", 0.45),
        ("dots", 0.15),
        ("nat_compact", 0.12),
        ("intl_space", 0.14),
        ("intl_trunk_paren", 0.06),
        ("00_space", 0.08),
    ),
    "DE": (
        ("nat_space", 0.40),
        ("slash", 0.15),
        ("area_paren", 0.08),
        ("nat_compact", 0.10),
        ("intl_space", 0.15),
        ("intl_trunk_paren", 0.05),
        ("00_space", 0.07),
    ),
    "NL": (
        ("nat_space", 0.40),
        ("nat_dash", 0.20),
        ("nat_compact", 0.12),
        ("intl_space", 0.16),
        ("intl_trunk_paren", 0.06),
        ("00_space", 0.06),
    ),
    "ES": (
        ("nat_space", 0.40),
        ("nat_space3", 0.25),
        ("nat_compact", 0.15),
        ("intl_space", 0.15),
        ("00_space", 0.05),
    ),
    "US": (
        ("us_paren", 0.40),
        ("us_dash", 0.25),
        ("us_dots", 0.08),
        ("intl_space", 0.10),
        ("us_1dash", 0.07),
        ("intl_dash", 0.05),
        ("nat_compact", 0.05),
    ),
}
NOTATION_NAMES: tuple[str, ...] = tuple(
    sorted({name for table in NOTATIONS.values() for name, _ in table})
)


def _split(digits: str, sizes: tuple[int, ...]) -> list[str]:
    out, at = [], 0
    for size in sizes:
        out.append(digits[at : at + size])
        at += size
    return out


def render(plan: Plan, nsn: str, notation: str) -> str:
    """Write one number (its NSN) in the given notation."""
    cc = COUNTRY_CODE[plan.country]
    area, rest = nsn[: plan.area_len], nsn[plan.area_len :]
    groups = _split(rest, plan.rest)
    trunk = "0" if plan.country in TRUNK_COUNTRIES else ""
    if notation == "nat_space":
        return " ".join([trunk + area, *groups])
    if notation == "nat_space3":  # ES 912 345 678
        return " ".join(_split(nsn, (3, 3, 3)))
    if notation == "nat_compact":
        return trunk + nsn
    if notation == "nat_dash":
        return "-".join([trunk + area, *groups])
    if notation == "dots":
        return ".".join([trunk + area, *groups])
    if notation == "slash":
        return f"{trunk}{area}/{''.join(groups)}"
    if notation == "area_paren":
        return f"({trunk}{area}) {''.join(groups)}"
    if notation == "intl_space":
        return " ".join([f"+{cc}", area, *groups])
    if notation == "intl_compact":
        return f"+{cc}{nsn}"
    if notation == "trunk_paren":  # (0)20 7946 0018
        return " ".join([f"(0){area}", *groups])
    if notation == "intl_trunk_paren":  # +44 (0)20 7946 0018
        return " ".join([f"+{cc}", f"(0){area}", *groups])
    if notation == "00_space":
        return " ".join([f"00{cc}", area, *groups])
    if notation == "us_paren":
        return f"({area}) {groups[0]}-{groups[1]}"
    if notation == "us_dash":
        return f"{area}-{groups[0]}-{groups[1]}"
    if notation == "us_dots":
        return f"{area}.{groups[0]}.{groups[1]}"
    if notation == "us_1dash":
        return f"1-{area}-{groups[0]}-{groups[1]}"
    if notation == "intl_dash":
        return f"+{cc} {area}-{groups[0]}-{groups[1]}"
    raise ValueError(f"unknown notation {notation!r}")


def e164(plan: Plan, nsn: str) -> str:
    return f"+{COUNTRY_CODE[plan.country]}{nsn}"


def random_nsn(plans: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One random NSN per entry of `plans` (indices into PLANS), vectorised per length."""
    plans = np.asarray(plans, dtype=np.int64)
    n = len(plans)
    matrix = rng.integers(0, 10, size=(n, 11), dtype=np.uint8) + 48
    us = np.array([p.country == "US" for p in PLANS])[plans] if n else np.zeros(0, bool)
    matrix[us, 0] = 50 + matrix[us, 0] % 8  # US exchange codes start with 2-9
    free = np.array([p.nsn_len - len(p.prefix) for p in PLANS])[plans] if n else np.zeros(0, int)
    prefixes = pa.array([p.prefix for p in PLANS], type=pa.string())
    out: list[str] = [""] * n
    for width in np.unique(free).tolist():
        idx = np.flatnonzero(free == width)
        values = pc.binary_join_element_wise(
            prefixes.take(pa.array(plans[idx])), from_matrix(matrix[idx, :width]), ""
        ).to_pylist()
        for k, value in zip(idx.tolist(), values, strict=True):
            out[k] = value
    return out


class PhoneBook:
    """Hands out numbers nobody else has (a household landline is shared on purpose, elsewhere)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def draw(self, plans: np.ndarray, rng: np.random.Generator) -> list[str]:
        plans = np.asarray(plans, dtype=np.int64)
        out = random_nsn(plans, rng)
        pending = list(range(len(out)))
        while pending:  # redraw numbers already handed out (or drawn twice in this batch)
            clash = []
            for k in pending:
                if out[k] in self.used:
                    clash.append(k)
                else:
                    self.used.add(out[k])
            if clash:
                for k, nsn in zip(clash, random_nsn(plans[clash], rng), strict=True):
                    out[k] = nsn
            pending = clash
        return out


def pick_notation(country: str, rng: np.random.Generator, avoid: str | None = None) -> str:
    """One notation for a number of `country`, never `avoid`."""
    names = [n for n, _ in NOTATIONS[country] if n != avoid]
    weights = np.array([w for n, w in NOTATIONS[country] if n != avoid])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def pick_notations(countries: list[str], rng: np.random.Generator) -> list[str]:
    """A notation per row, vectorised per country."""
    out = [""] * len(countries)
    arr = np.asarray(countries)
    for country, table in NOTATIONS.items():
        idx = np.flatnonzero(arr == country)
        if not len(idx):
            continue
        weights = np.array([w for _, w in table])
        choice = rng.choice(len(table), size=len(idx), p=weights / weights.sum())
        for i, c in zip(idx.tolist(), choice.tolist(), strict=True):
            out[i] = table[c][0]
    return out
