"""The platform rows of an export: Google Customer Match and Meta Custom Audience columns.

- `google_customer_match.csv`: Email, Phone, First Name, Last Name hashed (SHA-256 hex of
  Google's normal forms), Country and Zip plain, as Google's upload template has them.
- `meta_custom_audience.csv`: email, phone, fn, ln, ct, st, zip, country, doby, gen, every
  one hashed by Meta's rules (st is empty: the profile has no state column).

Rows with neither a valid email nor a valid phone are left out: a row with nothing to match
on only costs upload time. `match_readiness` counts them, for every export, whatever its
formats. The normalisation rules are in `ml.activation.hashing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ml.activation import hashing

READINESS_COUNTS = ("rows", "valid_email", "valid_phone", "gmail_rewrites", "no_usable_identifier")


def _sha256_column(values: pd.Series) -> pd.Series:
    """SHA-256 hex of every normalised value of a column (None stays None)."""
    return hashing.map_series(hashing.sha256_hex, values)


def destination_frames(
    chunk: pd.DataFrame, has_state: bool, google_file: bool = True, meta_file: bool = True
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, int]]:
    """Google and Meta rows of one chunk (rows without an identifier dropped; None for a file
    the export does not write), and the readiness counts, which every export gets."""
    country = hashing.map_series(hashing.google_country, chunk["profile__country_code"])
    email = hashing.map_series(hashing.meta_email, chunk["profile__email"])
    # Google's form equals the valid lower-cased address except at gmail.com/googlemail.com,
    # so only those go through google_email again.
    domain = email.map(lambda value: value.rpartition("@")[2] if value else None)
    gmail = domain.isin(sorted(hashing.GMAIL_DOMAINS))
    google_email = email.copy()
    if gmail.any():
        google_email[gmail] = hashing.map_series(hashing.google_email, email[gmail])
    phone = hashing.map_series(hashing.google_phone, chunk["profile__phone"], country)
    has_email = email.notna()
    has_phone = phone.notna()
    counts = {
        "rows": len(chunk),
        "valid_email": int(has_email.sum()),
        "valid_phone": int(has_phone.sum()),
        "gmail_rewrites": int((gmail & (google_email != email)).sum()),
        "no_usable_identifier": int((~has_email & ~has_phone).sum()),
    }
    google = meta = None
    if google_file:
        google = google_frame(chunk, google_email, phone, country)
        google = google[google["Email"].notna() | google["Phone"].notna()]
    if meta_file:
        # Meta's phone is the E.164 number without its "+" (hashing.meta_phone).
        meta_phone = phone.map(lambda value: value[1:] if value else None)
        meta = meta_frame(chunk, email, meta_phone, has_state)
        meta = meta[meta["email"].notna() | meta["phone"].notna()]
    return google, meta, counts


def google_frame(
    chunk: pd.DataFrame, email: pd.Series, phone: pd.Series, country: pd.Series
) -> pd.DataFrame:
    """Google Customer Match columns: identifiers hashed, Country and Zip plain."""
    return pd.DataFrame(
        {
            "Email": _sha256_column(email),
            "Phone": _sha256_column(phone),
            "First Name": hashing.hash_series(
                hashing.google_first_name, chunk["profile__first_name"]
            ),
            "Last Name": hashing.hash_series(hashing.google_last_name, chunk["profile__last_name"]),
            "Country": country,
            "Zip": hashing.map_series(hashing.google_zip, chunk["profile__postcode"]),
        },
        index=chunk.index,
    )


def meta_frame(
    chunk: pd.DataFrame, email: pd.Series, phone: pd.Series, has_state: bool
) -> pd.DataFrame:
    """Meta Custom Audience columns, every one hashed (st empty without a state column)."""
    empty = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)
    return pd.DataFrame(
        {
            "email": _sha256_column(email),
            "phone": _sha256_column(phone),
            "fn": hashing.hash_series(hashing.meta_name, chunk["profile__first_name"]),
            "ln": hashing.hash_series(hashing.meta_name, chunk["profile__last_name"]),
            "ct": hashing.hash_series(hashing.meta_city, chunk["profile__city"]),
            "st": hashing.hash_series(hashing.meta_state, chunk["profile__state"])
            if has_state
            else empty,
            "zip": hashing.hash_series(
                hashing.meta_zip, chunk["profile__postcode"], chunk["profile__country_code"]
            ),
            "country": hashing.hash_series(hashing.meta_country, chunk["profile__country_code"]),
            "doby": hashing.hash_series(hashing.meta_birth_year, chunk["profile__birth_date"]),
            "gen": hashing.hash_series(hashing.meta_gender, chunk["profile__gender"]),
        },
        index=chunk.index,
    )


def match_readiness(counts: Mapping[str, int]) -> dict[str, Any]:
    """The manifest's `match_readiness`: the summed counts with the valid email/phone shares."""
    rows = counts.get("rows", 0)

    def share(count: int) -> float:
        """`count` as a share of the rows, to four decimals (0 without rows)."""
        return round(count / rows, 4) if rows else 0.0

    return {
        "rows": rows,
        "valid_email": counts.get("valid_email", 0),
        "valid_email_share": share(counts.get("valid_email", 0)),
        "valid_phone": counts.get("valid_phone", 0),
        "valid_phone_share": share(counts.get("valid_phone", 0)),
        "gmail_rewrites": counts.get("gmail_rewrites", 0),
        "no_usable_identifier": counts.get("no_usable_identifier", 0),
    }


__all__ = [
    "READINESS_COUNTS",
    "destination_frames",
    "google_frame",
    "match_readiness",
    "meta_frame",
]
