"""Normalise and SHA-256 customer identifiers the way Google Customer Match and Meta want them.

Every function takes one raw value (str, or None/NaN) and returns its normal form, or None when
the value is empty or unusable. None means "leave the cell empty": an empty string or a value
that fails validation is never hashed, because a hash of garbage uploads fine and matches nobody.
`sha256_hex` hashes a normal form; `map_series` and `hash_series` apply a rule to pandas columns,
computing each distinct value once.

Google Customer Match (CSV headers Email, Phone, First Name, Last Name, Country, Zip):
  https://developers.google.com/data-manager/api/devguides/concepts/formatting
  https://support.google.com/google-ads/answer/7659867 (format your customer data file)
  https://support.google.com/google-ads/answer/7474263 (Country and Zip are not hashed)
  https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineUserAddressInfo
- Email: trim, lower-case, no whitespace inside. For gmail.com and googlemail.com only, remove
  the `+` and everything after it in the local part, and every `.` before the `@`
  (`cloudy.sanfrancisco+shopping@gmail.com` -> `cloudysanfrancisco@gmail.com`); other domains
  keep dots and plus signs (`user.name+NYC@Example.com` -> `user.name+nyc@example.com`).
- Phone: E.164, with the `+` and the country code (`(800)555-0100` in US -> `+18005550100`).
- First Name: lower-case, no prefixes such as Mrs.; Last Name: no suffixes such as Jr.; both
  trimmed and without punctuation. Accents are kept (Google's own template has `zoë`, `pérez`),
  in Unicode NFC so that the same name always gives the same bytes.
- Country: ISO 3166-1 alpha-2, not hashed. Zip: trimmed, not hashed.

Meta Custom Audiences (customer-list keys email, phone, fn, ln, ct, st, zip, country, doby, gen):
  https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences
  (section "Hashing and normalizing data"; every key below is hashed)
  https://www.facebook.com/business/help/2082575038703844 (customer list examples)
- email: trim and lower-case. No gmail rewrite: `your.name@gmail.com` stays as it is.
- phone: digits only, with the country code, no symbols, letters or leading zeros, no `+`
  (`+44 844 412 4653` -> `448444124653`).
- fn, ln: lower-case letters only, no punctuation; special characters as UTF-8 (Meta accepts
  names "with or without accents", so `Émilie` -> `émilie`).
- ct: a-z only, lower-case, no punctuation, special characters or whitespace.
- st: 2-character ANSI code for US states, lower-case; elsewhere lower-case without
  punctuation, special characters or whitespace.
- zip: lower-case without whitespace, the part before any dash; US: the first 5 digits;
  UK: Area/District/Sector (`SW1A 1AA` -> `sw1a1`).
- country: lower-case ISO 3166-1 alpha-2. doby: YYYY, 1900 to this year. gen: `f` or `m`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

import pandas as pd
import phonenumbers

from ml.normalise import InvalidValue, normalise_email, normalise_phone, parse_date

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof"})
# Google's list of family-name suffixes (Data Manager API client libraries).
NAME_SUFFIXES = frozenset(
    [
        "jr",
        "sr",
        "2nd",
        "3rd",
        "ii",
        "iii",
        "iv",
        "v",
        "vi",
        "cpa",
        "dc",
        "dds",
        "vm",
        "jd",
        "md",
        "phd",
    ]
)
# Common non-ISO spellings of a country code; everything else must be a region phonenumbers knows.
COUNTRY_ALIASES = {"UK": "GB"}
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS)

_TOKEN_SEPARATORS = re.compile(r"[\s,]+")
_US_ZIP = re.compile(r"^([0-9]{5})[0-9]*$")
_UK_POSTCODE = re.compile(r"^[a-z]{1,2}[0-9][a-z0-9]?[0-9][a-z]{2}$")
_UK_SECTOR = re.compile(r"^[a-z]{1,2}[0-9][a-z0-9]?[0-9]$")
_ZIP_CHARACTERS = re.compile(r"^[a-z0-9]+$")


def _text(value: object) -> str | None:
    """The value as stripped text, or None when it is missing or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        if pd.isna(value):
            return None
        value = str(value)
    value = value.strip()
    return value or None


def sha256_hex(value: str | None) -> str | None:
    """SHA-256 of the UTF-8 bytes as 64 lower-case hex digits; None for None or ''.

    >>> sha256_hex("abc")
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    if not value:
        return None
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _valid_email(value: object) -> str | None:
    """Trimmed, lower-cased address if its syntax is valid (no DNS lookup), else None."""
    candidate = _text(value)
    if candidate is None or any(ch.isspace() for ch in candidate):
        return None
    try:
        normalise_email(candidate)
    except InvalidValue:
        return None
    return candidate.lower()


def _e164(value: object, default_region: str | None) -> str | None:
    """E.164 form of a valid phone number (`+` and country code), else None."""
    candidate = _text(value)
    if candidate is None:
        return None
    try:
        return normalise_phone(candidate, default_region)
    except InvalidValue:
        return None


def _country(value: object) -> str | None:
    """Upper-case ISO 3166-1 alpha-2 code, else None."""
    candidate = _text(value)
    if candidate is None:
        return None
    code = COUNTRY_ALIASES.get(candidate.upper(), candidate.upper())
    return code if code in COUNTRY_CODES else None


def _strip_punctuation(value: str) -> str:
    """Drop Unicode punctuation (P*) and collapse whitespace to single spaces."""
    kept = "".join(ch for ch in value if not unicodedata.category(ch).startswith("P"))
    return " ".join(kept.split())


def _letters(value: str) -> str:
    """Only letters (and combining marks) of the NFC form, lower-cased: no spaces or symbols."""
    text = unicodedata.normalize("NFC", value).lower()
    return "".join(ch for ch in text if ch.isalpha() or unicodedata.category(ch).startswith("M"))


def _ascii_letters(value: str, keep: str = "a-z") -> str:
    """Lower-case, accents removed (`São` -> `sao`), only the characters in `keep`."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(f"[^{keep}]", "", plain)


# --- Google Customer Match -----------------------------------------------------------------


def google_email(value: object) -> str | None:
    """Google's email normal form: trimmed, lower-case, gmail dots and +suffix removed.

    >>> google_email(" Cloudy.SanFrancisco+shopping@gmail.com ")
    'cloudysanfrancisco@gmail.com'
    >>> google_email("user.name+NYC@Example.com")
    'user.name+nyc@example.com'
    """
    email = _valid_email(value)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def google_phone(value: object, default_region: str | None = None) -> str | None:
    """E.164 with the leading `+`; `default_region` reads numbers written without a country code.

    >>> google_phone("(020) 7946 0018", "GB")
    '+442079460018'
    """
    return _e164(value, default_region)


def _name_tokens(text: str) -> list[str]:
    """The words of a name, lower-case and in Unicode NFC, split at spaces and commas."""
    return [t for t in _TOKEN_SEPARATORS.split(unicodedata.normalize("NFC", text).lower()) if t]


def google_first_name(value: object) -> str | None:
    """Lower-case given name without leading titles (Mr, Mrs, Ms, Dr, ...) or punctuation.

    >>> google_first_name(" Mrs. Zoë ")
    'zoë'
    """
    text = _text(value)
    if text is None:
        return None
    tokens = _name_tokens(text)
    while len(tokens) > 1 and tokens[0].rstrip(".") in NAME_PREFIXES:
        tokens.pop(0)
    if len(tokens) == 1 and tokens[0].endswith(".") and tokens[0].rstrip(".") in NAME_PREFIXES:
        return None  # only a title, such as "Mr."
    return _strip_punctuation(" ".join(tokens)) or None


def google_last_name(value: object) -> str | None:
    """Lower-case family name without trailing suffixes (Jr., Sr., III, PhD, ...) or punctuation.

    >>> google_last_name("Quinn, Jr., DDS")
    'quinn'
    """
    text = _text(value)
    if text is None:
        return None
    tokens = _name_tokens(text)
    while len(tokens) > 1 and tokens[-1].rstrip(".") in NAME_SUFFIXES:
        tokens.pop()
    last = tokens[0] if len(tokens) == 1 else ""
    if last.rstrip(".") in NAME_SUFFIXES and (last.endswith(".") or text.startswith(",")):
        return None  # only a suffix, such as "Jr." or ", III"
    return _strip_punctuation(" ".join(tokens)) or None


def google_country(value: object) -> str | None:
    """ISO 3166-1 alpha-2 in upper case (`uk` -> `GB`); not hashed.

    >>> google_country(" us ")
    'US'
    """
    return _country(value)


def google_zip(value: object) -> str | None:
    """The postal code trimmed, otherwise as given; not hashed.

    >>> google_zip(" WC2H 8LG ")
    'WC2H 8LG'
    """
    return _text(value)


# --- Meta Custom Audiences -----------------------------------------------------------------


def meta_email(value: object) -> str | None:
    """Trimmed and lower-case; gmail addresses are not rewritten.

    >>> meta_email(" Your.Name+promo@Gmail.com ")
    'your.name+promo@gmail.com'
    """
    return _valid_email(value)


def meta_phone(value: object, default_region: str | None = None) -> str | None:
    """Digits only, country code first, no `+` and no leading zeros.

    >>> meta_phone("+44 844 412 4653")
    '448444124653'
    """
    e164 = _e164(value, default_region)
    return e164[1:] if e164 else None


def meta_name(value: object) -> str | None:
    """fn / ln: lower-case letters only (accents kept, as UTF-8), no spaces or punctuation.

    >>> meta_name("O'Brien-Smith")
    'obriensmith'
    """
    text = _text(value)
    return (_letters(text) or None) if text else None


def meta_city(value: object) -> str | None:
    """ct: a-z only, lower-case, no punctuation, special characters or whitespace.

    >>> meta_city("São Paulo")
    'saopaulo'
    """
    text = _text(value)
    return (_ascii_letters(text) or None) if text else None


def meta_state(value: object) -> str | None:
    """st: lower-case code or region without punctuation, special characters or whitespace.

    Pass the 2-letter ANSI code for US states (`CA` -> `ca`); names are not mapped to codes.
    """
    text = _text(value)
    return (_ascii_letters(text, keep="a-z0-9") or None) if text else None


def meta_zip(value: object, country: str | None = None) -> str | None:
    """zip: lower-case, no whitespace, before any dash; US 5 digits, UK Area/District/Sector.

    >>> meta_zip("94025-1234", "US")
    '94025'
    >>> meta_zip("SW1A 1AA", "GB")
    'sw1a1'
    """
    text = _text(value)
    if text is None:
        return None
    code = "".join(text.lower().split()).split("-", 1)[0]
    region = _country(country) if country is not None else None
    if region == "US":
        match = _US_ZIP.match(code)
        return match.group(1) if match else None
    if region == "GB":
        if _UK_POSTCODE.match(code):
            return code[:-2]
        return code if _UK_SECTOR.match(code) else None
    return code if _ZIP_CHARACTERS.match(code) else None


def meta_country(value: object) -> str | None:
    """country: lower-case ISO 3166-1 alpha-2.

    >>> meta_country("GB")
    'gb'
    """
    code = _country(value)
    return code.lower() if code else None


def meta_birth_year(value: object) -> str | None:
    """doby: the year of birth as YYYY, between 1900 and this year.

    Takes a year (`1984`), a date, or a date string in the loader's formats (`1984-03-02`).
    """
    if isinstance(value, date):  # datetime is a date too
        year = value.year
    else:
        text = _text(value)
        if text is None:
            return None
        if re.fullmatch(r"[0-9]{4}", text):
            year = int(text)
        else:
            try:
                year = parse_date(text).year
            except InvalidValue:
                return None
    return f"{year:04d}" if 1900 <= year <= date.today().year else None


def meta_gender(value: object) -> str | None:
    """gen: `f` or `m`; anything else (including unknown or non-binary values) gives None.

    >>> meta_gender("Female")
    'f'
    """
    text = _text(value)
    if text is None:
        return None
    return {"f": "f", "female": "f", "woman": "f", "m": "m", "male": "m", "man": "m"}.get(
        text.lower()
    )


# --- Field tables and pandas helpers -------------------------------------------------------


class Rule(NamedTuple):
    """How one destination column is made: its normaliser and whether the result is hashed."""

    normalise: Callable[..., str | None]
    hashed: bool


GOOGLE_FIELDS: dict[str, Rule] = {
    "Email": Rule(google_email, hashed=True),
    "Phone": Rule(google_phone, hashed=True),
    "First Name": Rule(google_first_name, hashed=True),
    "Last Name": Rule(google_last_name, hashed=True),
    "Country": Rule(google_country, hashed=False),
    "Zip": Rule(google_zip, hashed=False),
}

META_FIELDS: dict[str, Rule] = {
    "email": Rule(meta_email, hashed=True),
    "phone": Rule(meta_phone, hashed=True),
    "fn": Rule(meta_name, hashed=True),
    "ln": Rule(meta_name, hashed=True),
    "ct": Rule(meta_city, hashed=True),
    "st": Rule(meta_state, hashed=True),
    "zip": Rule(meta_zip, hashed=True),
    "country": Rule(meta_country, hashed=True),
    "doby": Rule(meta_birth_year, hashed=True),
    "gen": Rule(meta_gender, hashed=True),
}


def prepare(rule: Rule, value: object, *args: Any, **kwargs: Any) -> str | None:
    """The cell a destination file gets: the normal form, hashed when the rule says so."""
    normal = rule.normalise(value, *args, **kwargs)
    return sha256_hex(normal) if rule.hashed else normal


def map_series(
    function: Callable[..., str | None], values: pd.Series, *others: pd.Series, **kwargs: Any
) -> pd.Series:
    """Apply `function` row by row to `values` (and aligned `others`), each distinct row once.

    Extra series are passed positionally, e.g. `map_series(meta_zip, zips, countries)` or
    `map_series(google_phone, phones, countries)`; keyword arguments go to every call. Missing
    values (None, NaN, pd.NA) reach `function` as None. Returns an object Series with None where
    the value was missing or unusable, indexed like `values`.
    """
    columns = [values.astype(object).where(values.notna(), None)]
    columns += [other.astype(object).where(other.notna(), None) for other in others]
    cache: dict[tuple[object, ...], str | None] = {}
    results = []
    for row in zip(*columns, strict=True):
        if row not in cache:
            cache[row] = function(*row, **kwargs)
        results.append(cache[row])
    return pd.Series(results, index=values.index, dtype=object, name=values.name)


def hash_series(
    function: Callable[..., str | None], values: pd.Series, *others: pd.Series, **kwargs: Any
) -> pd.Series:
    """`map_series`, then SHA-256 hex of each normal form (None stays None)."""
    return map_series(
        lambda *row, **kw: sha256_hex(function(*row, **kw)), values, *others, **kwargs
    )
