"""Tombstones: erased people stay erased.

`add_tombstones` keeps the salted hash (ml/secrets.py) of each identifier that names one erased
person, in `privacy.tombstones`: crm id, email, mailbox, loyalty id, user id, cookie, and the
request's subject. The loader drops any later or replayed row whose `erase_by` value hashes to
one of them, or whose email reaches a tombstoned mailbox (ml/landing/tombstones.py). Phones and
devices never get a tombstone: they are shared or recycled, and a tombstone on them would drop
a stranger's rows.

`traces_left` is the check the erasure asset runs: rows that still carry a tombstoned
identifier anywhere erasure can look by hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from ml import secrets
from ml.landing import contracts as contracts_module
from ml.landing.contracts import Contracts
from ml.landing.tombstones import (
    IDENTIFIER_TOKEN_PATTERN,
    erase_by_values,
    identifier_tokens,
    tombstoned_values_sql,
)
from ml.normalise import mailbox_key
from ml.privacy.subjects import IDENTIFIERS
from ml.sql import quote_ident, quote_literal
from ml.warehouse import table_exists

TOMBSTONES_DDL = """
create schema if not exists privacy;
create table if not exists privacy.tombstones (
    identifier_hash varchar not null,
    erasure_request_id varchar not null,
    tombstoned_at timestamp not null
);
"""

# Identifier kinds whose salted hash becomes a tombstone: each names one person's rows. The
# mailbox (ml/normalise.py `mailbox_key`) catches a spelling of their address never seen yet.
TOMBSTONE_KINDS = (
    "crm_id",
    "email",
    "mailbox",
    "loyalty_id",
    "user_id",
    "anonymous_id",
    "subject",
)


def add_tombstones(connection: duckdb.DuckDBPyConnection, salt: str, at: datetime) -> int:
    """Tombstone the erased people's identifiers (from ml/privacy/subjects.py); how many new."""
    kinds = ", ".join(quote_literal(kind) for kind in TOMBSTONE_KINDS)
    before = connection.execute("select count(*) from privacy.tombstones").fetchall()[0][0]
    connection.execute(
        f"""
        insert into privacy.tombstones
        select identifier_hash, min(request_id), {quote_literal(at)}::timestamp
        from (
            select {secrets.salted_hash_sql("value", salt)} as identifier_hash, request_id
            from {IDENTIFIERS}
            where kind in ({kinds})
        )
        where identifier_hash not in (select identifier_hash from privacy.tombstones)
        group by identifier_hash
        """
    )
    return connection.execute("select count(*) from privacy.tombstones").fetchall()[0][0] - before


def traces_left(
    connection: duckdb.DuckDBPyConnection,
    salt: str,
    contracts: Contracts | None = None,
) -> pd.DataFrame:
    """Rows that still carry a tombstoned identifier: table, column, rows (empty when none).

    Looks at every erase_by column of every landed feed table (as received and normalised),
    at the identifiers of identity.identifiers, and at the words of the quarantine's raw text.
    """
    columns = ["table", "column", "rows"]
    if not table_exists(connection, "privacy", "tombstones"):
        return pd.DataFrame(columns=columns)
    salt = secrets.validated(salt)
    found = []
    for table, column, sql in _trace_checks(connection, salt, contracts or contracts_module.load()):
        ((count,),) = connection.execute(sql).fetchall()
        if count:
            found.append({"table": table, "column": column, "rows": count})
    return pd.DataFrame(found, columns=columns)


def _trace_checks(
    connection: duckdb.DuckDBPyConnection, salt: str, contracts: Contracts
) -> list[tuple[str, str, str]]:
    """(table, column, SQL counting its rows that carry a tombstoned identifier) per check."""
    tombstoned = "(select identifier_hash from privacy.tombstones)"
    checks: list[tuple[str, str, str]] = []
    for feed in contracts:
        if not feed.erase_by or not table_exists(connection, feed.name, feed.table):
            continue
        table = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
        for name, value in erase_by_values(feed):
            erased = tombstoned_values_sql(f"select {value} from {table}", salt)
            checks.append(
                (
                    feed.qualified_table,
                    name,
                    f"select count(*) from {table} where {value} in (select value from ({erased}))",
                )
            )
    if table_exists(connection, "identity", "identifiers"):
        hashed = secrets.salted_hash_sql("id_value", salt)
        checks.append(
            (
                "identity.identifiers",
                "id_value",
                f"select count(*) from identity.identifiers where {hashed} in {tombstoned}",
            )
        )
    if table_exists(connection, "landing", "quarantine"):
        words = f"regexp_extract_all(lower(raw_text), {quote_literal(IDENTIFIER_TOKEN_PATTERN)})"
        hashed = secrets.salted_hash_sql("rtrim(word, '.')", salt)
        checks.append(
            (
                "landing.quarantine",
                "raw_text",
                "select count(distinct row_id) from ("
                f"select rowid as row_id, unnest({words}) as word from landing.quarantine"
                f") where {hashed} in {tombstoned}",
            )
        )
    return checks


@dataclass(frozen=True)
class ErasedWords:
    """Finds erased people in any text by their tombstones: a word of the text whose salted
    hash is the tombstone of a request (so no identifier is kept in memory to look for)."""

    owners: dict[str, str]  # tombstone -> the request that erased it
    salt: str

    @classmethod
    def of_requests(
        cls, connection: duckdb.DuckDBPyConnection, salt: str, request_ids: list[str]
    ) -> ErasedWords:
        """The tombstones the given requests added."""
        owners = dict(
            connection.execute(
                "select identifier_hash, erasure_request_id from privacy.tombstones "
                "where erasure_request_id in (select unnest(?::varchar[]))",
                [request_ids],
            ).fetchall()
        )
        return cls(owners, secrets.validated(salt))

    def request_named(self, text: str | None) -> str | None:
        """The request whose person the text names (an identifier, or an address that reaches
        their mailbox), or None."""
        for token in identifier_tokens(text):
            for candidate in (token, mailbox_key(token) if "@" in token else None):
                if (
                    candidate
                    and (hashed := secrets.salted_hash(candidate, self.salt)) in self.owners
                ):
                    return self.owners[hashed]
        return None
