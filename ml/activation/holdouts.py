"""Sticky holdouts: a salted hash of the stable customer id puts each person in a fixed bucket.

Every customer gets a bucket from 0 to 9999 per export:

    bucket = int(sha256(f"{salt}:holdout:{export_name}:{customer_id}")[:8], 16) % 10000

and is held out when `bucket < round(holdout_percent * 100)` (10% holds out buckets 0..999).
The bucket depends only on the salt, the export name and the customer id, so:
- the same person is in or out on every run (membership is sticky);
- it changes only when the percentage does, and raising it only adds people (10% -> 20% keeps
  buckets 0..999 and adds 1000..1999), lowering it only releases people;
- different exports draw independent holdouts (the name is part of the hash);
- without the salt (from $TEAL_SALT, never the repository) nobody can tell from an id whether
  that person is held out.
`holdout_bucket_sql` is the same formula as a DuckDB expression, for set-based queries.
"""

from __future__ import annotations

import hashlib

from ml.secrets import validated as checked_salt

BUCKETS = 10_000


def holdout_threshold(holdout_percent: float) -> int:
    """Buckets below this are held out: the percentage in hundredths (10 -> 1000)."""
    if not 0 <= holdout_percent <= 100:
        raise ValueError(f"holdout_percent {holdout_percent!r} is not between 0 and 100")
    return round(holdout_percent * 100)


def holdout_bucket(customer_id: str, key: str, salt: str) -> int:
    """The bucket (0..9999) of one customer for the export `key`.

    >>> holdout_bucket("cus_0001", "cart_abandoners_24h", "7e57" * 16) in range(10_000)
    True
    """
    text = f"{checked_salt(salt)}:holdout:{key}:{customer_id}"
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % BUCKETS


def is_holdout(customer_id: str, key: str, holdout_percent: float, salt: str) -> bool:
    """Whether the customer is in the export's holdout at this percentage."""
    return holdout_bucket(customer_id, key, salt) < holdout_threshold(holdout_percent)


def holdout_bucket_sql(customer_id_expr: str, key: str, salt: str) -> str:
    """A DuckDB integer expression: the bucket of `customer_id_expr` for export `key`.

    The salt is checked to be hex and the key's quotes are doubled, so both are safe as
    literals; `customer_id_expr` is SQL and must come from code, not from users.
    """
    prefix = f"{checked_salt(salt)}:holdout:{key}:".replace("'", "''")
    digest = f"sha256('{prefix}' || cast({customer_id_expr} as varchar))"
    return f"cast(cast('0x' || substr({digest}, 1, 8) as ubigint) % {BUCKETS} as integer)"


def is_holdout_sql(customer_id_expr: str, key: str, holdout_percent: float, salt: str) -> str:
    """A DuckDB boolean expression: whether `customer_id_expr` is held out at this percentage."""
    threshold = holdout_threshold(holdout_percent)
    return f"({holdout_bucket_sql(customer_id_expr, key, salt)} < {threshold})"


__all__ = [
    "BUCKETS",
    "holdout_bucket",
    "holdout_bucket_sql",
    "holdout_threshold",
    "is_holdout",
    "is_holdout_sql",
]
