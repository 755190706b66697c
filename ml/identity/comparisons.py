"""Normalising person records and comparing two of them field by field, in ordered levels.

The matcher never trusts upstream cleaning: every standard column is normalised here, once per
distinct value, so the same code serves the pipeline, an analyst's DataFrame and a CSV from
elsewhere (FEBRL, voter rolls).

Standard columns (any subset; a missing one means its comparison is absent, a blank value means
the comparison is "null" for that pair and weighs nothing):

``record_id, first_name, last_name, email, phone, date_of_birth, street, city, postcode,
country, gender, source``

``source`` names where a record comes from (``crm``, ``orders``, ``signup``): sources may
have different columns, and the matcher estimates its prior per pair of sources.

Missing is missing: empty cells, and placeholders such as "Child F", "Adult Male", "Mr",
"Unknown" or a single letter for a name, or 1900-01-01 for a birth date (the editable lists
of ``placeholders.yml``), are null and weigh nothing. E-mails and phones take the one normal
form of ``ml.normalise`` (phones in E.164, read with the record's country).

A comparison turns a pair of records into one level, best first (level 0 is "exact"); the last
level is "else", and -1 stands for null. `compare_pairs` does that for many pairs at once with
NumPy and RapidFuzz's element-wise `cpdist`.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from ml.identity.placeholders import Placeholders, load_placeholders
from ml.normalise import email_normal_form, phone_normal_form

STANDARD_COLUMNS = (
    "record_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "country",
    "gender",
    "source",
)
PERSON_FIELDS = STANDARD_COLUMNS[1:-1]
NICKNAMES_PATH = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "nicknames.csv"

# --------------------------------------------------------------------------- normalisers

_FOLD = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "æ": "ae",
        "Æ": "ae",
        "ø": "o",
        "Ø": "o",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
    }
)
_APOSTROPHES = str.maketrans("", "", "'’‘`´")
_NAME_NOISE = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "herr", "frau", "mme"}
_NAME_NOISE |= {"mlle", "jr", "jnr", "snr", "ii", "iii"}
_STREET_WORDS = {
    "st": "street",
    "str": "strasse",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "cres": "crescent",
    "cl": "close",
    "gdns": "gardens",
    "gro": "grove",
    "tce": "terrace",
    "terr": "terrace",
    "pde": "parade",
    "hwy": "highway",
    "blvd": "boulevard",
    "mt": "mount",
}
NAME_PARTICLES = frozenset(
    [
        "al",
        "bin",
        "ben",
        "da",
        "das",
        "de",
        "del",
        "della",
        "den",
        "der",
        "di",
        "do",
        "dos",
        "du",
        "el",
        "ibn",
        "la",
        "le",
        "mac",
        "st",
        "ten",
        "ter",
        "van",
        "von",
        "y",
    ]
)
"""Words of a family name that say nothing alone: "van der Veen" and "van Dijk" share "van"."""
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:[ T].*)?$")
_DIGITS8 = re.compile(r"^(\d{8})(?:[ T].*)?$")
_GENDERS = {
    "f": "f",
    "female": "f",
    "w": "f",
    "woman": "f",
    "weiblich": "f",
    "m": "m",
    "male": "m",
    "man": "m",
    "mannlich": "m",
    "x": "x",
    "d": "x",
    "divers": "x",
    "nonbinary": "x",
    "non binary": "x",
}


def as_text(value: object) -> str | None:
    """A raw cell as stripped text, or None when empty (None, NaN, blank).

    Whole floats lose their ".0" (postcodes and phones read by pandas as numbers), dates and
    timestamps become ISO dates.

    >>> as_text(2000.0), as_text("  x "), as_text(float("nan"))
    ('2000', 'x', None)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    text = str(value).strip()
    return text or None


def fold(text: str) -> str:
    """Accents removed (Unicode NFKD), a few special letters spelt out (ß→ss), case folded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalise_name(value: str) -> str | None:
    """A person's name for comparison: folded, letters only, single spaces, titles dropped.

    >>> normalise_name("  Dr. Zoë  O'Brien-Smith ")
    'zoe obrien smith'
    """
    tokens = re.sub(r"[^a-z]+", " ", fold(value).translate(_APOSTROPHES)).split()
    kept = [t for t in tokens if t not in _NAME_NOISE]
    return " ".join(kept or tokens) or None


def normalise_street(value: str) -> str | None:
    """A street line: folded, letters and digits, common abbreviations spelt out.

    >>> normalise_street("10, Beech Dr."), normalise_street("Kirchstr. 2")
    ('10 beech drive', 'kirchstrasse 2')
    """
    tokens = re.sub(r"[^a-z0-9]+", " ", fold(value).translate(_APOSTROPHES)).split()
    out = []
    for token in tokens:
        token = _STREET_WORDS.get(token, token)
        if len(token) > 4 and token.endswith("str"):
            token += "asse"
        out.append(token)
    return " ".join(out) or None


def email_local_part(email: str) -> str | None:
    """The mailbox before "@", without a "+tag": ``j.smith+shop@x.org`` → ``j.smith``."""
    if "@" not in email:
        return None
    local = email.split("@", 1)[0].split("+", 1)[0]
    return local or None


def normalise_date(value: str) -> str | None:
    """A date as ``YYYYMMDD`` from ``YYYY-MM-DD``, ``YYYYMMDD``, ``DD/MM/YYYY`` (or with dots).

    Day first, never month first. A value with date-shaped digits that is not a real calendar
    date (``1985-02-30``, ``07/71/1958``: a typo) keeps its digits (``19850230``,
    ``19587107``) so that it can still be compared digit by digit.

    >>> normalise_date("02/03/1984"), normalise_date("19840302"), normalise_date("1984-3-2")
    ('19840302', '19840302', '19840302')
    """
    text = value.strip()
    match = _ISO_DATE.match(text)
    if match:
        year, month, day = match.groups()
    elif match := _DAY_FIRST.match(text):
        day, month, year = match.groups()
    elif match := _DIGITS8.match(text):
        digits = match.group(1)
        if 1800 <= int(digits[:4]) <= 2100:
            year, month, day = digits[:4], digits[4:6], digits[6:]
        else:
            day, month, year = digits[:2], digits[2:4], digits[4:]
    else:
        return None
    return f"{int(year):04d}{int(month):02d}{int(day):02d}"


def normalise_postcode(value: str) -> str | None:
    """Upper case, letters and digits only: ``sw1a 1aa`` → ``SW1A1AA``."""
    text = re.sub(r"[^A-Z0-9]", "", (value if value.isascii() else fold(value)).upper())
    return text or None


def postcode_prefix(postcode: str) -> str | None:
    """The district part: the outward code of a UK postcode, else all but the last two signs.

    >>> postcode_prefix("SW1A1AA"), postcode_prefix("60571"), postcode_prefix("2000")
    ('SW1A', '605', '20')
    """
    match = _UK_POSTCODE.match(postcode)
    if match:
        return match.group(1)
    return postcode[: max(2, len(postcode) - 2)] if len(postcode) >= 4 else None


def normalise_gender(value: str) -> str | None:
    """``f``, ``m`` or ``x``; unknown values (``U``, ``unknown``) are null."""
    return _GENDERS.get(" ".join(re.sub(r"[^a-z]+", " ", fold(value)).split()))


def normalise_country(value: str) -> str | None:
    """Folded letters only (``GB``, ``gb`` and ``G.B.`` agree)."""
    return re.sub(r"[^a-z]", "", fold(value)) or None


_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(name: str) -> str | None:
    """American Soundex of the first word: ``robert`` and ``rupert`` → ``R163``."""
    letters = re.sub(r"[^a-z]", "", name.split(" ", 1)[0]) if name else ""
    if not letters:
        return None
    coded = letters.translate(_SOUNDEX)
    out, last = [], coded[0]
    for letter, code in zip(letters[1:], coded[1:], strict=True):
        if code.isdigit() and code != last:
            out.append(code)
        if letter not in "hw":
            last = code
    return (letters[0].upper() + "".join(out) + "000")[:4]


# --------------------------------------------------------------------------- nicknames


@dataclass(frozen=True)
class Nicknames:
    """Which first names stand for the same name (Bob and Robert, Sam and Samantha)."""

    pairs: frozenset[str]  # "a|b" for every equivalent pair, both orders
    names: frozenset[str]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> Nicknames:
        """Build from (name, canonical) rows: names sharing a canonical form are equivalent."""
        groups: dict[str, set[str]] = {}
        for name, canonical in rows:
            name_key, canonical_key = normalise_name(name), normalise_name(canonical)
            if name_key and canonical_key:
                groups.setdefault(canonical_key, {canonical_key}).add(name_key)
        pairs = {f"{a}|{b}" for group in groups.values() for a in group for b in group if a != b}
        names = {n for group in groups.values() for n in group}
        return cls(frozenset(pairs), frozenset(names))

    @classmethod
    def load(cls, path: Path | str | None = None) -> Nicknames:
        """Read a ``name,canonical`` CSV (default: the dbt seed ``nicknames.csv``)."""
        path = Path(path) if path is not None else NICKNAMES_PATH
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"name", "canonical"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: nickname file needs the columns name,canonical")
            return cls.from_rows((row["name"], row["canonical"]) for row in reader)

    def equivalent(self, left: Sequence[str | None], right: Sequence[str | None]) -> np.ndarray:
        """Element-wise: are the two names different forms of the same name?"""
        keys = [f"{a}|{b}" if a and b else "" for a, b in zip(left, right, strict=True)]
        return np.fromiter((k in self.pairs for k in keys), dtype=bool, count=len(keys))


# --------------------------------------------------------------------------- prepared records


def _objects(series: pd.Series) -> np.ndarray:
    out = series.to_numpy(dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def texts(values: pd.Series) -> pd.Series:
    """`as_text` of a whole column (an object Series, None where empty); a column of text
    is trimmed in one vectorised step, other columns value by value."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.astype("string").str.strip()
        return pd.Series(_objects(text.mask(text == "")), index=values.index, dtype=object)
    return values.map(as_text).astype(object)


def _per_distinct(values: pd.Series, function: Callable[[str], object]) -> np.ndarray:
    """`function` of each distinct non-null value, computed once; None where null."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [function(v) for v in uniques.tolist()]
    mapped[-1] = None
    return mapped[codes]


def _map_unique(values: pd.Series, function: Callable[[str], object]) -> np.ndarray:
    """Apply `function` to each distinct non-empty text once; None where empty."""
    return _per_distinct(texts(values), function)


def _derive(values: np.ndarray, function: Callable[[str], object]) -> np.ndarray:
    """`function` of each distinct non-null value, computed once; None where null."""
    return _per_distinct(pd.Series(values, dtype=object), function)


@dataclass
class PreparedRecords:
    """Records normalised for matching, in record-id order (index = position)."""

    record_ids: np.ndarray
    fields: tuple[str, ...]
    raw: pd.DataFrame
    values: dict[str, np.ndarray]
    nicknames: Nicknames
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    uniques: dict[str, np.ndarray] = field(default_factory=dict)
    tf: dict[str, np.ndarray] = field(default_factory=dict)
    tf_counts: dict[str, np.ndarray] = field(default_factory=dict)  # records behind tf
    _derived: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    def _per_record(self, what: str, column: str, function: Callable[[str], object]) -> np.ndarray:
        key = (what, column)
        if key not in self._derived:
            per_value = np.array([function(v) for v in self.uniques[column]] + [0])
            self._derived[key] = per_value[self.codes[column]]  # code -1 takes the trailing 0
        return self._derived[key]

    def lengths(self, column: str) -> np.ndarray:
        """Length of each record's value (0 when empty)."""
        return self._per_record("length", column, len)

    def word_counts(self, column: str) -> np.ndarray:
        """Number of words in each record's value (0 when empty)."""
        return self._per_record("words", column, lambda v: len(v.split()))

    def counts(self, column: str) -> np.ndarray:
        """How many records hold each record's value (0 when empty)."""
        key = ("count", column)
        if key not in self._derived:
            codes = self.codes[column]
            per_value = np.bincount(codes[codes >= 0], minlength=len(self.uniques[column]))
            self._derived[key] = np.append(per_value, 0)[codes]
        return self._derived[key]

    def known_names(
        self, column: str, left: np.ndarray, right: np.ndarray, min_records: int = 3
    ) -> np.ndarray:
        """Both values are names in their own right, not one a typo of the other.

        True when both are in the nicknames table, or both are written by at least
        `min_records` records and the rarer by at least 2% as many as the commoner (a typo of
        "john" may recur a few times among thousands of Johns, but stays rare beside it). Two
        known names one letter apart (Tom and Tim, Ava and Eva) are different names.
        """
        seeded = self.in_nicknames(column)
        counts = self.counts(column)
        low = np.minimum(counts[left], counts[right])
        high = np.maximum(counts[left], counts[right])
        common = (low >= min_records) & (low >= 0.02 * high)
        return (seeded[left] & seeded[right]) | common

    def count_term_frequencies(self, entities: np.ndarray | None = None) -> None:
        """Per record, the share of the records with a value (`TF_COLUMNS`) that hold its value.

        This share stands for how often two *different* people agree on the value. Counted over
        records, a rare address held by the five duplicates of one person looks five times
        commoner than it is among other people; with `entities` (a label per record, such as a
        first pass of the matcher's clusters) a record's own entity counts once.
        """
        for name in TF_COLUMNS:
            codes = self.codes[name]
            known = codes >= 0
            tf = np.full(self.n, np.nan)
            self.tf_counts[name] = np.zeros(self.n, dtype=np.int64)
            if known.any():
                counts = np.bincount(codes[known])[codes[known]]
                if entities is not None:
                    cells = pd.DataFrame({"v": codes[known], "e": entities[known]})
                    own = cells.groupby(["v", "e"])["v"].transform("size").to_numpy()
                    counts = counts - own + 1
                tf[known] = counts / int(known.sum())
                self.tf_counts[name][known] = counts
            self.tf[name] = tf

    def in_nicknames(self, column: str) -> np.ndarray:
        """Whether each record's value appears in the nicknames table."""
        names = self.nicknames.names
        return self._per_record("nickname", column, lambda v: v in names).astype(bool)

    @property
    def n(self) -> int:
        """Number of records."""
        return len(self.record_ids)

    def position(self, record_id: object) -> int:
        """Index of a record id (also accepts the id written as text)."""
        lookup = self._lookup
        if record_id in lookup:
            return lookup[record_id]
        text = str(record_id)
        if text in self._text_lookup:
            return self._text_lookup[text]
        raise KeyError(f"record id {record_id!r} is not among the {self.n} records")

    @cached_property
    def _lookup(self) -> dict[object, int]:
        return {rid: i for i, rid in enumerate(self.record_ids.tolist())}

    @cached_property
    def _text_lookup(self) -> dict[str, int]:
        return {str(rid): i for i, rid in enumerate(self.record_ids.tolist())}

    def blocking_frame(self) -> pd.DataFrame:
        """The keys blocking rules may use, one row per record (``i`` = position)."""
        frame = pd.DataFrame({"i": np.arange(self.n, dtype=np.int64)})
        for name in BLOCKING_COLUMNS:
            frame[name] = pd.array(self.values[name], dtype="string")
        return frame


BLOCKING_COLUMNS = (
    "first",
    "last",
    "first_initial",
    "last_initial",
    "initials",
    "first_sound",
    "last_sound",
    "full_name",
    "full_name_sound",
    "first_initial_last",
    "dob",
    "birth_year",
    "email",
    "email_local",
    "phone",
    "street",
    "postcode",
    "postcode_prefix",
    "city",
)
TF_COLUMNS = (
    "first",
    "last",
    "full_name",
    "dob",
    "email",
    "phone",
    "address",
    "postcode",
    "city",
)


def _phones(frame: pd.DataFrame, default_region: str | None) -> np.ndarray:
    """E.164 per record (`ml.normalise.phone_normal_form`), national numbers read in the
    record's country (else `default_region`); None where empty or not a phone number."""
    text = texts(frame["phone"])
    if "country" in frame.columns:
        region = texts(frame["country"]).str.upper().fillna(default_region or "")
    else:
        region = pd.Series(default_region or "", index=frame.index)
    key = (text.astype("string") + "|" + region.astype("string")).where(text.notna())

    def normal_form(value: str) -> str | None:
        number, region = value.rsplit("|", 1)
        return phone_normal_form(number, region or None)

    return _per_distinct(key.astype(object), normal_form)


def prepare_records(
    frame: pd.DataFrame,
    nicknames: Nicknames,
    placeholders: Placeholders | None = None,
    phone_region: str | None = None,
) -> PreparedRecords:
    """Normalise a frame with standard column names (see module docstring).

    Records are sorted by ``record_id`` (numeric ids numerically) so that results do not depend
    on row order; without a ``record_id`` column the frame's index is the id. `placeholders`
    (default: ``placeholders.yml``) lists the names and dates that count as missing;
    `phone_region` reads national phone numbers of records without a country.
    """
    placeholders = placeholders if placeholders is not None else load_placeholders()
    frame = frame.copy()
    if "record_id" not in frame.columns:
        frame["record_id"] = frame.index.to_numpy()
    ids = frame["record_id"]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ValueError(f"record_id is empty in row {row}; every record needs an id")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ValueError(
            f"record_id must be unique: {duplicated.iloc[0]!r} appears more than once "
            f"({len(duplicated)} repeated ids)"
        )
    try:
        order = np.argsort(ids.to_numpy(), kind="stable")
    except TypeError:
        order = np.argsort(ids.astype(str).to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    n = len(frame)
    fields = tuple(c for c in PERSON_FIELDS if c in frame.columns)
    empty = np.full(n, None, dtype=object)

    def column(name: str, function: Callable[[str], object]) -> np.ndarray:
        return _map_unique(frame[name], function) if name in frame.columns else empty.copy()

    def person_name(value: str) -> str | None:
        normal = normalise_name(value)
        return None if normal is None or placeholders.is_name(normal) else normal

    def birth_date(value: str) -> str | None:
        normal = normalise_date(value)
        return None if normal is None or placeholders.is_date(normal) else normal

    first = column("first_name", person_name)
    last = column("last_name", person_name)
    values: dict[str, np.ndarray] = {
        "first": first,
        "last": last,
        "dob": column("date_of_birth", birth_date),
        "email": column("email", email_normal_form),
        "phone": _phones(frame, phone_region) if "phone" in frame.columns else empty.copy(),
        "street": column("street", normalise_street),
        "postcode": column("postcode", normalise_postcode),
        "city": column("city", normalise_name),
        "country": column("country", normalise_country),
        "gender": column("gender", normalise_gender),
    }
    values["first_initial"] = _derive(first, lambda s: s[0])
    values["last_initial"] = _derive(last, lambda s: s[0])
    values["first_sound"] = _derive(first, soundex)
    values["last_sound"] = _derive(last, soundex)
    pair = pd.DataFrame({"a": first, "b": last}).dropna()
    swap = pair["a"] > pair["b"]
    low = pair["a"].where(~swap, pair["b"])
    high = pair["b"].where(~swap, pair["a"])
    initials = np.full(n, None, dtype=object)
    full_name = np.full(n, None, dtype=object)
    initials[pair.index] = (low.str[0] + high.str[0]).to_numpy(dtype=object)
    full_name[pair.index] = (low + "|" + high).to_numpy(dtype=object)
    values["initials"] = initials
    values["full_name"] = full_name
    sounds = pd.DataFrame({"a": values["first_sound"], "b": values["last_sound"]}).dropna()
    low_sound = sounds[["a", "b"]].min(axis=1)
    high_sound = sounds[["a", "b"]].max(axis=1)
    full_name_sound = np.full(n, None, dtype=object)
    full_name_sound[sounds.index] = (low_sound + "|" + high_sound).to_numpy(dtype=object)
    values["full_name_sound"] = full_name_sound
    initial_last = pd.DataFrame({"a": values["first_initial"], "b": last}).dropna()
    first_initial_last = np.full(n, None, dtype=object)
    first_initial_last[initial_last.index] = (initial_last["a"] + "|" + initial_last["b"]).to_numpy(
        dtype=object
    )
    values["first_initial_last"] = first_initial_last
    values["source"] = (
        _map_unique(frame["source"], str.strip) if "source" in frame.columns else empty.copy()
    )
    values["birth_year"] = _derive(values["dob"], lambda s: s[:4])
    values["email_local"] = _derive(values["email"], email_local_part)
    values["postcode_prefix"] = _derive(values["postcode"], postcode_prefix)
    place = pd.DataFrame({k: values[k] for k in ("street", "postcode", "city")}, dtype=object)
    address = place["street"] + "|" + place["postcode"].fillna("") + "|" + place["city"].fillna("")
    values["address"] = _objects(address)
    raw = pd.DataFrame({c: texts(frame[c]).to_numpy() for c in fields}, index=range(n))
    prepared = PreparedRecords(
        record_ids=frame["record_id"].to_numpy(dtype=object),
        fields=fields,
        raw=raw,
        values=values,
        nicknames=nicknames,
    )
    for name, array in values.items():
        codes, uniques = pd.factorize(pd.Series(array, dtype=object), use_na_sentinel=True)
        prepared.codes[name] = codes.astype(np.int64)
        prepared.uniques[name] = np.asarray(uniques, dtype=object)
    prepared.count_term_frequencies()
    ymd = np.full((n, 3), -1, dtype=np.int64)
    dob = pd.Series(values["dob"], dtype=object).dropna().astype(str)
    for j, (start, stop) in enumerate(((0, 4), (4, 6), (6, 8))):
        ymd[dob.index, j] = dob.str.slice(start, stop).astype(np.int64).to_numpy()
    prepared.values["dob_ymd"] = ymd
    return prepared


# --------------------------------------------------------------------------- pair batches


class PairBatch:
    """Many pairs (positions `left`, `right`) of one prepared set, with cached similarities."""

    def __init__(
        self, prepared: PreparedRecords, left: np.ndarray, right: np.ndarray, workers: int = 1
    ) -> None:
        self.prepared = prepared
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.workers = workers
        self._cache: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.left)

    def side(self, column: str, right: bool) -> np.ndarray:
        """The column's normalised values of the left or right records."""
        return self.prepared.values[column][self.right if right else self.left]

    def null(self, column: str, other: str | None = None) -> np.ndarray:
        """True where either side is empty (`column` left against `other` right)."""
        key = ("null", column, other)
        if key not in self._cache:
            codes_l = self.prepared.codes[column][self.left]
            codes_r = self.prepared.codes[other or column][self.right]
            self._cache[key] = (codes_l < 0) | (codes_r < 0)
        return self._cache[key]

    def exact(self, column: str) -> np.ndarray:
        """True where both sides are present and equal."""
        key = ("exact", column)
        if key not in self._cache:
            codes = self.prepared.codes[column]
            self._cache[key] = (codes[self.left] == codes[self.right]) & ~self.null(column)
        return self._cache[key]

    def distinct_apply(
        self,
        function: Callable[[list, list], Sequence],
        rows: np.ndarray,
        column: str,
        other: str | None = None,
    ) -> np.ndarray:
        """`function(lefts, rights)` over the distinct value pairs among `rows`, spread back.

        Names and towns repeat a lot, so comparing each distinct pair of values once is far
        cheaper than comparing every record pair.
        """
        other = other or column
        prepared = self.prepared
        codes_l = prepared.codes[column][self.left[rows]]
        codes_r = prepared.codes[other][self.right[rows]]
        width = len(prepared.uniques[other]) + 1
        distinct, inverse = np.unique(codes_l * width + codes_r, return_inverse=True)
        lefts = prepared.uniques[column][distinct // width].tolist()
        rights = prepared.uniques[other][distinct % width].tolist()
        return np.asarray(function(lefts, rights))[inverse.ravel()]

    def score(
        self,
        scorer: Callable,
        column: str,
        other: str | None = None,
        exact_score: float = 1.0,
        cutoff: float | None = None,
    ) -> np.ndarray:
        """`scorer` element-wise on present, unequal pairs; `exact_score` where equal, 0 if null.

        With `cutoff`, RapidFuzz may stop early; distances beyond it come back as cutoff + 1.
        """
        key = ("score", scorer, column, other, cutoff)
        if key not in self._cache:
            other = other or column
            out = np.zeros(len(self), dtype=np.float64)
            null = self.null(column, other)
            if other == column:
                same = self.exact(column)
            else:
                same = ~null & (self.side(column, False) == self.side(other, True))
            out[same] = exact_score
            todo = np.flatnonzero(~null & ~same)
            if len(todo):
                out[todo] = self.distinct_apply(
                    lambda a, b: process.cpdist(
                        a, b, scorer=scorer, workers=self.workers, score_cutoff=cutoff
                    ),
                    todo,
                    column,
                    other,
                )
            self._cache[key] = out
        return self._cache[key]

    def jaro_winkler(self, column: str, other: str | None = None) -> np.ndarray:
        """Jaro-Winkler similarity (0..1) of `column` left against `other` (default same) right."""
        return self.score(JaroWinkler.normalized_similarity, column, other)

    def edits(self, column: str) -> np.ndarray:
        """Optimal-string-alignment distance (a swap of neighbours is one edit), capped at 2."""
        return self.score(OSA.distance, column, exact_score=0.0, cutoff=1)

    def names_swapped(self) -> np.ndarray:
        """First and last name written the other way round: each at Jaro-Winkler >= 0.85, or
        one exactly and the other at >= 0.7 (a swap and a typo), better than as written."""
        key = ("swapped",)
        if key not in self._cache:
            straight = self.jaro_winkler("first") + self.jaro_winkler("last")
            # only pairs whose names do not already agree as written can be swapped
            rows = np.flatnonzero(
                (straight < 1.9) & ~self.null("first", "last") & ~self.null("last", "first")
            )
            cross_a = np.zeros(len(self))
            cross_b = np.zeros(len(self))
            if len(rows):
                scorer = JaroWinkler.normalized_similarity

                def similarity(a: list[str], b: list[str]) -> np.ndarray:
                    return process.cpdist(a, b, scorer=scorer, workers=self.workers)

                cross_a[rows] = self.distinct_apply(similarity, rows, "first", "last")
                cross_b[rows] = self.distinct_apply(similarity, rows, "last", "first")
            self._cache[key] = (
                (
                    ((cross_a >= 0.85) & (cross_b >= 0.85))
                    | (
                        (np.maximum(cross_a, cross_b) == 1.0)
                        & (np.minimum(cross_a, cross_b) >= 0.7)
                    )
                )
                & (cross_a + cross_b > straight + 0.1)
                & ~self.null("first", "last")
                & ~self.null("last", "first")
            )
        return self._cache[key]

    def share_token(self, column: str, min_length: int = 2) -> np.ndarray:
        """Both sides present and sharing a word of `min_length`+ letters (Mary Ann vs Ann),
        not counting name particles (`NAME_PARTICLES`: van der Veen and van Dijk share none)."""
        out = np.zeros(len(self), dtype=bool)
        words = self.prepared.word_counts(column)
        several = (words[self.left] > 1) | (words[self.right] > 1)
        rows = np.flatnonzero(several & ~self.null(column) & ~self.exact(column))
        if len(rows):

            def share(lefts: list[str], rights: list[str]) -> list[bool]:
                out = []
                for a, b in zip(lefts, rights, strict=True):
                    tokens = {t for t in a.split() if len(t) >= min_length} - NAME_PARTICLES
                    out.append(any(t in tokens for t in b.split() if len(t) >= min_length))
                return out

            out[rows] = self.distinct_apply(share, rows, column)
        return out

    def nicknames(self, column: str) -> np.ndarray:
        """Both sides are forms of the same name according to the nicknames table."""
        out = np.zeros(len(self), dtype=bool)
        known = self.prepared.in_nicknames(column)
        rows = np.flatnonzero(known[self.left] & known[self.right] & ~self.exact(column))
        if len(rows):
            out[rows] = self.distinct_apply(self.prepared.nicknames.equivalent, rows, column)
        return out

    def initial(self, column: str) -> np.ndarray:
        """One side is a single letter, the other starts with it."""
        lengths = self.prepared.lengths(column)
        one = (lengths[self.left] == 1) | (lengths[self.right] == 1)
        return one & self.exact(column + "_initial") & ~self.null(column)


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Level:
    """One comparison level: a short name, a sentence for explanations, its EM start value.

    `tf` names the prepared column whose value frequency replaces u for pairs at this level
    (term-frequency adjustment of an exact-value level); None: the level's plain u.
    `one_address` (address levels): the two records name one dwelling, where the household
    u of `fellegi_sunter.estimate_u_same_address` applies.
    `positive`: False where agreement says nothing beyond the other fields (gender and country
    follow from the names and the address: two namesakes share them too), so the level weighs
    at most 0, while disagreement still counts against.
    """

    name: str
    label: str
    m_start: float
    tf: str | None = None
    one_address: bool = False
    positive: bool = True


@dataclass(frozen=True)
class Comparison:
    """A field comparison: ordered levels (best first, last one "else") and how to assign them."""

    name: str
    fields: tuple[str, ...]  # standard columns it reads (present when any of them is)
    columns: tuple[str, ...]  # prepared columns it reads
    levels: tuple[Level, ...]
    assign: Callable[[PairBatch], np.ndarray]
    u_like: tuple[tuple[str, str], ...] = ()  # (level, level whose u it takes)

    @property
    def level_names(self) -> list[str]:
        """Level names in order."""
        return [level.name for level in self.levels]

    def level_index(self, name: str) -> int:
        """Position of a level by name."""
        return self.level_names.index(name)


def _select(null: np.ndarray, conditions: list[np.ndarray]) -> np.ndarray:
    """Level per pair: the first true condition, else the last level; -1 where null."""
    out = np.full(len(null), len(conditions), dtype=np.int8)
    for index in range(len(conditions) - 1, -1, -1):
        out[conditions[index]] = index
    out[null] = -1
    return out


def _typo(batch: PairBatch, column: str) -> np.ndarray:
    """Jaro-Winkler >= 0.92, or two neighbouring letters swapped (short names: Sem/Sme)."""
    return (batch.jaro_winkler(column) >= 0.92) | (
        (batch.edits(column) == 1)
        & (batch.score(Levenshtein.distance, column, exact_score=0.0) == 2)
    )


def _first_name(batch: PairBatch) -> np.ndarray:
    jw = batch.jaro_winkler("first")
    # two names in their own right (Charles and Charlotte, Tom and Tim) are different names
    other_name = batch.prepared.known_names("first", batch.left, batch.right)
    similar = (jw >= 0.75) | (batch.edits("first") <= 1)
    return _select(
        batch.null("first"),
        [
            batch.exact("first"),
            batch.nicknames("first"),
            batch.names_swapped(),
            _typo(batch, "first"),
            (jw >= 0.85) & ~other_name,
            similar & ~other_name,
            batch.initial("first") | batch.share_token("first"),
        ],
    )


def _last_name(batch: PairBatch) -> np.ndarray:
    jw = batch.jaro_winkler("last")
    return _select(
        batch.null("last"),
        [
            batch.exact("last"),
            batch.names_swapped(),
            _typo(batch, "last"),
            batch.share_token("last", 3),
            jw >= 0.85,
            batch.edits("last") <= 1,
        ],
    )


def _date_of_birth(batch: PairBatch) -> np.ndarray:
    ymd = batch.prepared.values["dob_ymd"]
    left, right = ymd[batch.left], ymd[batch.right]
    same = left == right
    transposed = (
        same[:, 0]
        & (left[:, 1] == right[:, 2])
        & (left[:, 2] == right[:, 1])
        & (left[:, 1] != left[:, 2])
    )
    return _select(
        batch.null("dob"),
        [
            batch.exact("dob"),
            transposed | (batch.edits("dob") <= 1),
            same.sum(axis=1) == 2,
            batch.score(OSA.distance, "dob", exact_score=0.0, cutoff=2) <= 2,
        ],
    )


def _phone(batch: PairBatch) -> np.ndarray:
    return _select(batch.null("phone"), [batch.exact("phone"), batch.edits("phone") <= 1])


_NUMBER = re.compile(r"\d+")


def _same_numbers(lefts: list[str], rights: list[str]) -> list[bool]:
    """House numbers agree: the numbers of one street line are among those of the other."""
    out = []
    for a, b in zip(lefts, rights, strict=True):
        x, y = set(_NUMBER.findall(a)), set(_NUMBER.findall(b))
        out.append(x <= y or y <= x)
    return out


def _address(batch: PairBatch) -> np.ndarray:
    """One comparison for street, postcode and city together (they are not independent)."""
    street_null, postcode_null, city_null = (
        batch.null("street"),
        batch.null("postcode"),
        batch.null("city"),
    )
    street_exact = batch.exact("street")
    ratio = batch.score(fuzz.token_set_ratio, "street", exact_score=100.0)
    similar = ~street_null & (ratio >= 85)
    rows = np.flatnonzero(similar)
    if len(rows):
        similar[rows] = batch.distinct_apply(_same_numbers, rows, "street")
    postcode_exact = batch.exact("postcode")
    postcode_near = ~postcode_null & ~postcode_exact
    postcode_near &= (batch.edits("postcode") <= 1) | batch.exact("postcode_prefix")
    postcode_else = ~postcode_null & ~postcode_exact & ~postcode_near
    city_near = batch.exact("city") | (~city_null & (batch.jaro_winkler("city") >= 0.9))
    city_else = ~city_null & ~city_near
    return _select(
        street_null & postcode_null & city_null,
        [
            street_exact & (postcode_exact | postcode_null) & ~city_else,
            street_exact & (~postcode_else | ~city_else),
            similar & (postcode_exact | (postcode_null & batch.exact("city"))),
            postcode_exact,
            postcode_near,
            city_near,
        ],
    )


def _exact_only(column: str) -> Callable[[PairBatch], np.ndarray]:
    def assign(batch: PairBatch) -> np.ndarray:
        return _select(batch.null(column), [batch.exact(column)])

    return assign


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "first_name",
        ("first_name",),
        ("first",),
        (
            Level("exact", "same first name", 0.85, tf="first"),
            Level("nickname", "nicknames of one name (nicknames seed)", 0.03),
            Level("swapped", "first and last name swapped", 0.01, tf="first"),
            Level("typo", "Jaro-Winkler >= 0.92 or two letters swapped", 0.05),
            Level("jw_0.85", "Jaro-Winkler >= 0.85, not two known names", 0.02),
            Level("similar", "Jaro-Winkler >= 0.75 or one edit, not two known names", 0.02),
            Level("initial_or_part", "an initial, or one name of several", 0.02),
            Level("else", "different first names", 0.0005),
        ),
        _first_name,
        u_like=(("swapped", "exact"),),
    ),
    Comparison(
        "last_name",
        ("last_name",),
        ("last",),
        (
            Level("exact", "same last name", 0.85, tf="last"),
            Level("swapped", "first and last name swapped", 0.01, tf="last"),
            Level("typo", "Jaro-Winkler >= 0.92 or two letters swapped", 0.06),
            Level("part", "one name of a double name", 0.02),
            Level("jw_0.85", "Jaro-Winkler >= 0.85", 0.02),
            Level("one_edit", "one letter apart", 0.01),
            Level("else", "different last names", 0.04),
        ),
        _last_name,
        u_like=(("swapped", "exact"),),
    ),
    Comparison(
        "date_of_birth",
        ("date_of_birth",),
        ("dob",),
        (
            Level("exact", "same date of birth", 0.9, tf="dob"),
            Level("typo", "one digit off, or day and month transposed", 0.04),
            Level("one_part", "only the year, month or day differs", 0.03),
            Level("two_typos", "two digits off", 0.01),
            Level("else", "different dates of birth", 0.0005),
        ),
        _date_of_birth,
    ),
    Comparison(
        "email",
        ("email",),
        ("email",),
        (
            Level("exact", "same e-mail address", 0.6, tf="email"),
            Level("else", "different e-mail addresses", 0.4),
        ),
        _exact_only("email"),
    ),
    Comparison(
        "phone",
        ("phone",),
        ("phone",),
        (
            Level("exact", "same phone number", 0.7, tf="phone"),
            Level("one_edit", "phone numbers one digit apart", 0.03),
            Level("else", "different phone numbers", 0.27),
        ),
        _phone,
    ),
    Comparison(
        "address",
        ("street", "postcode", "city"),
        ("street", "postcode", "city"),
        (
            Level(
                "exact", "same street line, postcode and city", 0.75, tf="address", one_address=True
            ),
            Level(
                "street_near", "same street line, postcode or city nearly", 0.03, one_address=True
            ),
            Level(
                "similar_street",
                "similar street line, same number and postcode",
                0.05,
                one_address=True,
            ),
            Level("postcode", "same postcode, other street", 0.04, tf="postcode"),
            Level("postcode_near", "postcode one sign off or same district", 0.02),
            Level("city", "same city (or nearly), other postcode and street", 0.03, tf="city"),
            Level("else", "different addresses", 0.08),
        ),
        _address,
    ),
    Comparison(
        "gender",
        ("gender",),
        ("gender",),
        (
            Level("exact", "same gender", 0.95, positive=False),
            Level("else", "different gender", 0.05),
        ),
        _exact_only("gender"),
    ),
    Comparison(
        "country",
        ("country",),
        ("country",),
        (
            Level("exact", "same country", 0.95, positive=False),
            Level("else", "different countries", 0.05),
        ),
        _exact_only("country"),
    ),
)
COMPARISON_NAMES = tuple(c.name for c in COMPARISONS)


def active_comparisons(
    prepared: PreparedRecords, names: Sequence[str] | None = None
) -> list[Comparison]:
    """The comparisons (all, or those `names`) whose columns hold at least two values."""
    chosen = [c for c in COMPARISONS if names is None or c.name in names]
    out = []
    for comparison in chosen:
        present = any(f in prepared.fields for f in comparison.fields)
        filled = max(int((prepared.codes[c] >= 0).sum()) for c in comparison.columns)
        if present and filled >= 2:
            out.append(comparison)
    return out


def compare_pairs(
    prepared: PreparedRecords,
    comparisons: Sequence[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    workers: int = 1,
) -> np.ndarray:
    """Comparison levels (int8, -1 = null), one row per pair and one column per comparison."""
    batch = PairBatch(prepared, left, right, workers)
    out = np.empty((len(batch), len(comparisons)), dtype=np.int8)
    for j, comparison in enumerate(comparisons):
        out[:, j] = comparison.assign(batch)
    return out
