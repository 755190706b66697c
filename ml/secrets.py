"""The project's salt: from the environment, never from the repository.

`TEAL_SALT` holds it, read into `Settings.salt` (ml/settings.py) and passed to every function here. `make run`, `make dev` and `make test` read it from `.secrets/teal.env`
(git-ignored), which the Makefile creates with a random value on first use. Everything that
must not be reversible or guessable from an id hashes with it: erasure tombstones and holdout
assignment. Keep it stable: a new salt makes old tombstones unrecognisable and reshuffles
every holdout. `privacy.salt_fingerprint` remembers a fingerprint of the salt a warehouse was
built with, and `check_salt` refuses a different one.
"""

from __future__ import annotations

import hashlib
import re

import duckdb

from ml.settings import SALT_ENV

SALT_FILE = ".secrets/teal.env"
_SALT_PATTERN = re.compile(r"^[0-9a-f]{32,128}$")


class SaltError(RuntimeError):
    """The salt is missing, malformed, or not the one this warehouse was built with."""


def validated(salt_value: str) -> str:
    """The salt (`Settings.salt`, from $TEAL_SALT) if it is 32 to 128 lower-case hex digits."""
    value = (salt_value or "").strip()
    if not value:
        raise SaltError(
            f"${SALT_ENV} is not set. `make run` creates {SALT_FILE} with a random salt and "
            f"exports it; outside make, run `set -a; . {SALT_FILE}; set +a` first."
        )
    if not _SALT_PATTERN.match(value):
        raise SaltError(
            f"${SALT_ENV} must be 32 to 128 lower-case hex digits (e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return value


def salted_hash(value: str, salt_value: str) -> str:
    """sha256 hex of salt + ':' + the trimmed, lower-cased value (same as `salted_hash_sql`)."""
    text = f"{validated(salt_value)}:{value.strip().lower()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def salted_hash_sql(expression: str, salt_value: str) -> str:
    """The DuckDB expression that computes `salted_hash` of a SQL expression.

    The salt is hex (checked by `validated`), so it is safe to write as a literal.
    """
    value = validated(salt_value)
    return f"sha256('{value}:' || lower(trim(cast({expression} as varchar))))"


def fingerprint(salt_value: str) -> str:
    """A short fingerprint that tells salts apart without revealing them."""
    return hashlib.sha256(f"teal-salt-fingerprint:{validated(salt_value)}".encode()).hexdigest()[
        :16
    ]


def check_salt(connection: duckdb.DuckDBPyConnection, salt_value: str) -> str:
    """Record the salt's fingerprint on first use; refuse a warehouse built with another salt."""
    value = validated(salt_value)
    mine = fingerprint(value)
    connection.execute("create schema if not exists privacy")
    connection.execute(
        "create table if not exists privacy.salt_fingerprint "
        "(fingerprint varchar not null, recorded_at timestamp not null)"
    )
    row = connection.execute("select fingerprint from privacy.salt_fingerprint limit 1").fetchone()
    if row is None:
        connection.execute(
            "insert into privacy.salt_fingerprint values (?, now()::timestamp)", [mine]
        )
    elif row[0] != mine:
        raise SaltError(
            f"${SALT_ENV} is not the salt this warehouse was built with (fingerprint {mine}, "
            f"warehouse {row[0]}). Erasure tombstones and holdouts depend on it: restore the "
            f"old value in {SALT_FILE}, or rebuild the warehouse from scratch."
        )
    return value
