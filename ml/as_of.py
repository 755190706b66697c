"""The point in time features and segments are computed as of.

An ``as_of`` value is an ISO date or timestamp in UTC. A bare date means the end of that day:
``2026-11-20`` takes every row strictly before 2026-11-21 00:00. A timestamp is the cutoff
itself (an offset, if given, is converted to UTC). The dbt macro `as_of_cutoff()` reads the dbt
var `as_of` by the same rule, so Python and SQL agree on what "as of" means.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def naive_utc(moment: datetime) -> datetime:
    """The same instant as a naive UTC datetime (naive input is taken to be UTC already)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def cutoff(value: str | date | datetime) -> datetime:
    """The exclusive cutoff (naive UTC) of an as_of value; ValueError names what is wrong."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), datetime.min.time())
    else:
        text = str(value).strip()
        try:
            if _DATE.match(text):
                return datetime.combine(
                    date.fromisoformat(text) + timedelta(days=1), datetime.min.time()
                )
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"as_of {value!r} is not a date (YYYY-MM-DD) or a timestamp "
                "(YYYY-MM-DD HH:MM[:SS], UTC)"
            ) from None
    return naive_utc(moment)


def snapshot_date(value: str | date | datetime) -> date:
    """The day a run as of `value` describes: the date itself, or the cutoff's date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        return date.fromisoformat(value.strip())
    return cutoff(value).date()


def dbt_value(value: str | date | datetime) -> str:
    """The as_of value as the dbt var: a bare date stays a date, anything else a UTC timestamp."""
    if isinstance(value, str) and _DATE.match(value.strip()):
        return value.strip()
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return cutoff(value).isoformat(sep=" ", timespec="seconds")
