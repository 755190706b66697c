"""Erased people stay erased: recognise their rows on landing by the erasure tombstones.

`privacy.tombstones` (ml/privacy/erasure.py) holds salted hashes of erased identifiers. A row
whose `erase_by` column (feeds.yml) hashes to one of them is dropped before any other check;
a row that cannot be read or checked is searched for identifier-like words in its raw text,
and so is the head of a file quarantined whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from ml import secrets
from ml.normalise import listed_provider_sql, mailbox_key_sql
from ml.sql import quote_ident

from .contracts import Feed

TOMBSTONES = "privacy.tombstones"

# Words in free text that may be an identifier: an email, or a run of [a-z0-9_+] with at least
# one digit, `_` or `+` (crm, loyalty and user ids, cookies, devices, E.164 phones, customer
# ids). Applied to lower-cased text by erasure (in DuckDB) and by the loader (in Python), which
# compare whole words: `ann@x.com` is not found inside `joann@x.com`.
_EMAIL_PART = r"""[^\s"'<>()\[\]{},;:=/\\&?|@*]+"""
IDENTIFIER_TOKEN_PATTERN = rf"{_EMAIL_PART}@{_EMAIL_PART}|[a-z0-9_+]*[0-9_+][a-z0-9_+]*"
_IDENTIFIER_TOKEN = re.compile(IDENTIFIER_TOKEN_PATTERN)


def identifier_tokens(text: str | None) -> set[str]:
    """The identifier-like words of a text, lower-cased, trailing dots dropped."""
    if not text:
        return set()
    return {token.rstrip(".") for token in _IDENTIFIER_TOKEN.findall(text.lower())}


def has_tombstones(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether `privacy.tombstones` exists and holds at least one hash."""
    exists = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'privacy' and table_name = 'tombstones'"
    ).fetchall()[0][0]
    if not exists:
        return False
    return connection.execute(f"select exists (select 1 from {TOMBSTONES})").fetchall()[0][0]


@dataclass(frozen=True)
class Tombstones:
    """The tombstoned hashes of a warehouse and the salt that made them."""

    hashes: frozenset[str]
    salt: str
    table: str = TOMBSTONES  # where SQL finds them (erasure's staging reads a copy)

    @classmethod
    def of(cls, connection: duckdb.DuckDBPyConnection, salt: str | None) -> Tombstones | None:
        """The warehouse's tombstones, or None when it has none (then no salt is needed)."""
        if not has_tombstones(connection):
            return None
        hashes = connection.execute(f"select identifier_hash from {TOMBSTONES}").fetchall()
        return cls(frozenset(h for (h,) in hashes), secrets.validated(salt or ""))

    def names_erased(self, text: str | None) -> bool:
        """Whether any identifier-like word of a raw text hashes to a tombstone."""
        return any(
            secrets.salted_hash(token, self.salt) in self.hashes
            for token in identifier_tokens(text)
        )

    def erased_sql(self, feed: Feed) -> str:
        """SQL that is true for a row whose erase_by value (normalised or as received, or the
        mailbox an email reaches) is tombstoned."""
        checks = [
            f"coalesce({secrets.salted_hash_sql(value, self.salt)} "
            f"in (select identifier_hash from {self.table}), false)"
            for _, value in erase_by_values(feed)
        ]
        return "(" + " or ".join(checks) + ")" if checks else "false"


def erase_by_values(feed: Feed) -> list[tuple[str, str]]:
    """(label, SQL) of every value of a landed row that tombstones are compared with: each
    erase_by column normalised and as received, and, for an email or a reference, the mailbox
    it reaches at a provider of `mailbox_providers` (so `camille.dumont+x@gmail.com` is
    recognised by the tombstone of `camilledumont@gmail.com`)."""
    values = []
    for column in feed.erase_by:
        for name in dict.fromkeys((column.erase_column, column.name)):
            values.append((name, quote_ident(name)))
        if column.format in ("email", "reference"):
            normal = quote_ident(column.erase_column)
            mailbox = f"case when {listed_provider_sql(normal)} then {mailbox_key_sql(normal)} end"
            values.append((f"{column.erase_column} (mailbox)", mailbox))
    return values


def tombstoned_values_sql(values_sql: str, salt: str, table: str = TOMBSTONES) -> str:
    """SQL for (value, erasure_request_id) of each distinct value of `values_sql` (a query of
    one column) whose salted hash is a tombstone. Each distinct value is hashed once: a feed
    of millions of rows holds far fewer distinct identifiers, and the hash is the cost."""
    hashed = secrets.salted_hash_sql("observed.value", salt)
    return (
        "select observed.value, min(tombstones.erasure_request_id) as erasure_request_id "
        f"from (select distinct value from ({values_sql}) as listed(value) "
        "where value is not null) as observed "
        f"inner join {table} as tombstones on tombstones.identifier_hash = {hashed} "
        "group by observed.value"
    )


def erased_sql(feed: Feed, tombstones: Tombstones | None) -> str:
    """`Tombstones.erased_sql`, or `false` when the warehouse has no tombstones."""
    return tombstones.erased_sql(feed) if tombstones else "false"
