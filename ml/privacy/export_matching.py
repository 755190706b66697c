"""How erasure recognises an erased person's rows in the files an export writes.

The files are those of the export formats in ml/activation/config.py (`FORMAT_FILES`); each
format has its rule here (`rule_for` names it, and refuses a format without one):

- `csv` (audience.csv): the row's customer_id or its plain email is the person's;
- `parquet` (audience.parquet): its customer_id is the person's;
- `google` and `meta` (the ad platforms' files): its hashed email or phone, normalised by the
  platform's own rules (ml/activation/hashing.py), is one of the person's; or it has the
  person's shared (family) phone together with their first and last name: the phone alone
  would take the rest of the family with them.

Every value maps to the request it came from, so removed rows are counted per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from ml.activation import hashing
from ml.activation.config import FORMAT_FILES
from ml.activation.folders import AUDIENCE_CSV, AUDIENCE_PARQUET, GOOGLE_CSV, META_CSV
from ml.privacy.subjects import CUSTOMERS, IDENTIFIERS
from ml.warehouse import table_exists

BY_CUSTOMER_OR_EMAIL = "customer id or plain email"
BY_CUSTOMER = "customer id"
BY_HASHES = "hashed email, phone, or family phone and names"
# The rule of each file an export can write.
FILE_RULES = {
    AUDIENCE_CSV: BY_CUSTOMER_OR_EMAIL,
    AUDIENCE_PARQUET: BY_CUSTOMER,
    GOOGLE_CSV: BY_HASHES,
    META_CSV: BY_HASHES,
}
# The platform files' identifier columns (email, phone, first name, last name) and the
# destination's rule for each (its normaliser, hashed).
PLATFORM_COLUMNS = {
    GOOGLE_CSV: ("Email", "Phone", "First Name", "Last Name"),
    META_CSV: ("email", "phone", "fn", "ln"),
}
_PLATFORM_FIELDS = {GOOGLE_CSV: hashing.GOOGLE_FIELDS, META_CSV: hashing.META_FIELDS}
PLATFORM_RULES = {
    name: tuple(_PLATFORM_FIELDS[name][column] for column in columns)
    for name, columns in PLATFORM_COLUMNS.items()
}
PROFILE = "marts.dim_customers"
_PROFILE_COLUMNS = {"customer_id", "phone", "first_name", "last_name"}

Matcher = Callable[[list[str]], str | None]


def rule_for(name: str) -> str:
    """How rows of the export file `name` are recognised; a clear error for a file of a format
    erasure has no rule for (a new format must get one here before it ships)."""
    if name not in FILE_RULES:
        formats = {file: format_name for format_name, file in FORMAT_FILES.items()}
        raise NotImplementedError(
            f"export format {formats.get(name, '?')!r} ({name}, ml/activation/config.py) has no "
            "erasure rule: add one to FILE_RULES in ml/privacy/export_matching.py, so an "
            "erased person's rows can be removed from its files"
        )
    return FILE_RULES[name]


@dataclass
class ErasedPeople:
    """What identifies the erased people in export files, each value mapped to its request."""

    customer_ids: dict[str, str] = field(default_factory=dict)  # as written
    emails: dict[str, str] = field(default_factory=dict)  # plain, lower-cased
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> hash
    # file -> (phone hash, first name hash, last name hash)
    family: dict[str, dict[tuple[str, str, str], str]] = field(default_factory=dict)

    def matcher(self, name: str, header: list[str]) -> Matcher:
        """A function from a CSV record's fields to the request it belongs to (or None)."""
        position = {column: i for i, column in enumerate(header)}

        def cell(fields: list[str], column: str) -> str:
            i = position.get(column)
            value = fields[i].strip() if i is not None and i < len(fields) else ""
            return value[1:] if value.startswith("'") else value  # spreadsheet formula guard

        if rule_for(name) == BY_HASHES:
            hashes, family = self.hashes[name], self.family[name]
            email, phone, first_name, last_name = PLATFORM_COLUMNS[name]

            def by_hashes(fields: list[str]) -> str | None:
                for column in (email, phone):
                    if cell(fields, column).lower() in hashes:
                        return hashes[cell(fields, column).lower()]
                key = tuple(cell(fields, c).lower() for c in (phone, first_name, last_name))
                return family.get(key)

            return by_hashes

        def by_customer_or_email(fields: list[str]) -> str | None:
            customer = cell(fields, "customer_id")
            if customer in self.customer_ids:
                return self.customer_ids[customer]
            return self.emails.get(cell(fields, "email").lower())

        return by_customer_or_email


def erased_people(connection: duckdb.DuckDBPyConnection) -> ErasedPeople:
    """The erased people's customer ids, emails and platform hashes (from the temporary tables of
    ml/privacy/subjects.py) and their family-phone keys (from the profile)."""
    people = ErasedPeople(
        hashes={name: {} for name in PLATFORM_RULES}, family={name: {} for name in PLATFORM_RULES}
    )
    rows = connection.execute(
        f"select request_id, kind, value from {IDENTIFIERS} order by request_id, kind, value"
    ).fetchall()
    for request_id, kind, value in rows:
        if kind == "email" or (kind == "subject" and "@" in value):
            people.emails.setdefault(value, request_id)
            position = 0
        elif kind == "phone":
            position = 1
        else:
            continue
        for name, rules in PLATFORM_RULES.items():
            hashed = _hash(rules[position], value)
            if hashed:
                people.hashes[name].setdefault(hashed, request_id)
    # customer ids as written (the identifiers are lower-cased)
    people.customer_ids = dict(
        connection.execute(
            f"select customer_id, min(request_id) from {CUSTOMERS} group by all"
        ).fetchall()
    )
    for request_id, phone, first_name, last_name in _profiles_with_phone(connection):
        for name, (_, phone_rule, first_rule, last_rule) in PLATFORM_RULES.items():
            key = (
                _hash(phone_rule, phone),
                _hash(first_rule, first_name),
                _hash(last_rule, last_name),
            )
            if all(key):
                people.family[name].setdefault(key, request_id)
    return people


def _hash(rule: hashing.Rule, value: object) -> str | None:
    return hashing.prepare(rule, value) if value is not None else None


def _profiles_with_phone(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(request_id, phone, first name, last name) of each erased customer's profile."""
    schema, table = PROFILE.split(".")
    if not table_exists(connection, schema, table):
        return []
    columns = {
        column
        for (column,) in connection.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if not _PROFILE_COLUMNS.issubset(columns):
        return []
    return connection.execute(
        "select customers.request_id, profile.phone, profile.first_name, profile.last_name "
        f"from {PROFILE} as profile inner join {CUSTOMERS} as customers using (customer_id) "
        "where profile.phone is not null order by all"
    ).fetchall()
