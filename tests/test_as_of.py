"""The as_of rule that Python and the dbt macro share (ml/as_of.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ml.as_of import cutoff, dbt_value, snapshot_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20", datetime(2026, 11, 21)),
        (" 2026-02-28 ", datetime(2026, 3, 1)),
        ("2026-11-20 06:30", datetime(2026, 11, 20, 6, 30)),
        ("2026-11-20T06:30:15", datetime(2026, 11, 20, 6, 30, 15)),
        ("2026-11-20T07:30:00+01:00", datetime(2026, 11, 20, 6, 30)),
        (date(2026, 12, 31), datetime(2027, 1, 1)),
        (
            datetime(2026, 11, 20, 23, 0, tzinfo=timezone(timedelta(hours=-2))),
            datetime(2026, 11, 21, 1, 0),
        ),
    ],
)
def test_cutoff(value, expected) -> None:
    assert cutoff(value) == expected


def test_snapshot_date_and_dbt_value() -> None:
    assert snapshot_date("2026-11-20") == date(2026, 11, 20)
    assert snapshot_date("2026-11-20 06:30") == date(2026, 11, 20)
    assert dbt_value("2026-11-20") == "2026-11-20"
    assert dbt_value("2026-11-20T07:30:00+01:00") == "2026-11-20 06:30:00"


@pytest.mark.parametrize(
    "value", ["20/11/2026", "2026-13-01", "yesterday", "2026-11-20; drop table x"]
)
def test_bad_as_of_is_explained(value) -> None:
    with pytest.raises(ValueError, match=r"is not a date \(YYYY-MM-DD\) or a timestamp"):
        cutoff(value)
