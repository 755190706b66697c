"""Retention per feed: rows older than the feed's period are purged, counted and reconciled.

As of 2026-11-20 (cutoff 2026-11-21 00:00 UTC) clickstream keeps 395 days, so events before
2025-10-22 00:00 UTC go; orders keep 2557 days, so order lines before 2019-11-21 00:00 UTC go.
Orders are in Europe/London unless the text has an offset, as staging reads them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from teal_testing import TEST_SALT

from ml.landing.contracts import (
    CONTRACTS_FILE,
    ContractError,
    Retention,
    load,
    parse,
)
from ml.landing.loader import Loader, reconciliation
from ml.privacy.retention import purge_expired, utc_timestamp_sql

ORDER_HEADER = "order_id,line_number,customer_ref,ordered_at,channel,store_id,sku,quantity,unit_price,discount,currency,status"


def order(number: int, ordered_at: str) -> str:
    return f"O{number:09d},1,C0000001,{ordered_at},web,,SKU-000001,1,9.99,0,GBP,completed"


def event(number: int, occurred_at: str) -> str:
    return json.dumps(
        {
            "event_id": f"{number:032x}",
            "event_type": "page_view",
            "anonymous_id": "ck_abcdefabcdef",
            "occurred_at": occurred_at,
            "properties": {},
        }
    )


@pytest.fixture
def connection(tmp_path: Path):
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "clickstream").mkdir(parents=True)
    (landing / "orders" / "orders_2019.csv").write_text(
        "\n".join(
            [
                ORDER_HEADER,
                order(1, "2019-11-20T23:30:00"),  # London, GMT: 23:30 UTC -> purged
                order(2, "2019-11-21T00:30:00+01:00"),  # 2019-11-20 23:30 UTC -> purged
                order(3, "2019-11-21T00:30:00"),  # London, GMT: 00:30 UTC -> kept
                order(4, "2026-06-01T12:00:00"),
            ]
        )
        + "\n"
    )
    (landing / "clickstream" / "events_2025-10-21.jsonl").write_text(
        "\n".join(
            [
                event(1, "2025-10-21T23:59:59Z"),  # purged
                event(2, "2025-10-22T01:00:00+02:00"),  # 2025-10-21 23:00 UTC -> purged
                event(3, "2025-10-22T00:00:00Z"),  # exactly the cutoff -> kept
                event(1, "2025-10-21T23:59:59Z"),  # a retry: duplicate
                '{"event_id": broken',  # quarantined
            ]
        )
        + "\n"
    )
    (landing / "clickstream" / "events_2026-11-01.jsonl").write_text(
        event(4, "2026-11-01T10:00:00Z") + "\n"
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        # the quarantine and duplicates of the old file were written long ago
        connection.execute("update landing.quarantine set quarantined_at = '2025-01-01'")
        connection.execute("update landing.duplicates set dropped_at = '2025-01-01'")
        yield connection


def test_rows_older_than_the_retention_are_purged_and_reconcile(connection):
    purged = purge_expired(connection, load(), "2026-11-20", run_id="retention-1")
    assert purged == [
        {
            "feed": "orders",
            "table": "orders.order_lines",
            "column": "ordered_at",
            "days": 2557,
            "cutoff": datetime(2019, 11, 21),
            "rows_purged": 2,
            "quarantine_rows_purged": 0,
            "duplicate_rows_purged": 0,
        },
        {
            "feed": "clickstream",
            "table": "clickstream.events",
            "column": "occurred_at",
            "days": 395,
            "cutoff": datetime(2025, 10, 22),
            "rows_purged": 2,
            "quarantine_rows_purged": 1,
            "duplicate_rows_purged": 1,
        },
    ]
    assert connection.execute("select order_id from orders.order_lines order by 1").fetchall() == [
        ("O000000003",),
        ("O000000004",),
    ]
    assert connection.execute("select event_id from clickstream.events order by 1").fetchall() == [
        (f"{3:032x}",),
        (f"{4:032x}",),
    ]
    assert connection.execute(
        "select count(*) from landing.quarantine union all select count(*) from landing.duplicates"
    ).fetchall() == [(0,), (0,)]
    assert connection.execute(
        "select feed, file, place, reason, rows, reference from landing.removals order by all"
    ).fetchall() == [
        (
            "clickstream",
            "clickstream/events_2025-10-21.jsonl",
            "duplicates",
            "expired",
            1,
            "retention-1",
        ),
        (
            "clickstream",
            "clickstream/events_2025-10-21.jsonl",
            "quarantine",
            "expired",
            1,
            "retention-1",
        ),
        (
            "clickstream",
            "clickstream/events_2025-10-21.jsonl",
            "table",
            "expired",
            2,
            "retention-1",
        ),
        ("orders", "orders/orders_2019.csv", "table", "expired", 2, "retention-1"),
    ]
    for name in ("orders", "clickstream", "crm"):
        recon = reconciliation(connection, load()[name])
        assert recon["reconciles"].all(), recon.to_dict("records")
    recon = reconciliation(connection, load()["clickstream"])
    assert recon[["file", "rows_in_table", "rows_removed_later"]].values.tolist() == [
        ["clickstream/events_2025-10-21.jsonl", 1, 4],
        ["clickstream/events_2026-11-01.jsonl", 1, 0],
    ]
    assert connection.execute(
        "select feed, table_name, column_name, cutoff, rows_purged, quarantine_rows_purged, "
        "duplicate_rows_purged, run_id from privacy.retention_log order by feed"
    ).fetchall() == [
        (
            "clickstream",
            "clickstream.events",
            "occurred_at",
            datetime(2025, 10, 22),
            2,
            1,
            1,
            "retention-1",
        ),
        (
            "orders",
            "orders.order_lines",
            "ordered_at",
            datetime(2019, 11, 21),
            2,
            0,
            0,
            "retention-1",
        ),
    ]
    assert connection.execute(
        "select action, target, run_id, row_count from privacy.audit_log order by target"
    ).fetchall() == [
        ("retention", "clickstream", "retention-1", 4),
        ("retention", "orders", "retention-1", 2),
    ]


def test_a_second_run_purges_nothing_logs_it_and_audits_nothing(connection):
    purge_expired(connection, load(), "2026-11-20", run_id="retention-1")
    again = purge_expired(connection, load(), datetime(2026, 11, 21), run_id="retention-2")
    assert [(r["feed"], r["rows_purged"], r["quarantine_rows_purged"]) for r in again] == [
        ("orders", 0, 0),
        ("clickstream", 0, 0),
    ]
    assert connection.execute(
        "select run_id, count(*) from privacy.retention_log group by all order by 1"
    ).fetchall() == [("retention-1", 2), ("retention-2", 2)]
    assert connection.execute("select count(*) from privacy.audit_log").fetchone()[0] == 2
    assert connection.execute("select count(*) from orders.order_lines").fetchone()[0] == 2


def test_landed_timestamp_text_is_read_as_staging_reads_it():
    values = {
        "2019-07-01T12:00:00": datetime(2019, 7, 1, 11),  # London summer time, UTC+1
        "2019-07-01 12:00:00+00:00": datetime(2019, 7, 1, 12),
        "2019-07-01T12:00:00z": datetime(2019, 7, 1, 12),
        "2019-07-01T12:00:00-0230": datetime(2019, 7, 1, 14, 30),
        " 2019-01-01T00:00:00 ": datetime(2019, 1, 1),
        "yesterday": None,
        "": None,
    }
    with duckdb.connect() as connection:
        for text, expected in values.items():
            value = connection.execute(
                f"select {utc_timestamp_sql('value', 'Europe/London')} "
                "from (select ?::varchar as value)",
                [text],
            ).fetchone()[0]
            assert value == expected, text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["feeds"]["clickstream"].update(
                retention={"days": 0, "column": "occurred_at"}
            ),
            "feeds.yml: feed 'clickstream', retention: days 0 is not a whole number of days",
        ),
        (
            lambda d: d["feeds"]["clickstream"].update(retention={"days": 30, "column": "url"}),
            "feeds.yml: feed 'clickstream', retention: column 'url' is not a timestamp column",
        ),
        (
            lambda d: d["feeds"]["clickstream"].update(retention={"months": 13}),
            "feeds.yml: feed 'clickstream', retention: write it as {days: <whole days>, column:",
        ),
        (
            lambda d: d["feeds"]["crm"]["columns"][0].update(erase_by="yes"),
            "feeds.yml: feed 'crm', column 'crm_id': erase_by is true or false",
        ),
        (
            lambda d: d["feeds"]["crm"].update(retain={"days": 1}),
            "feeds.yml: feed 'crm': unknown field(s) ['retain']",
        ),
    ],
)
def test_a_wrong_retention_or_erase_by_says_where(change, message):
    document = yaml.safe_load(CONTRACTS_FILE.read_text())
    change(document)
    with pytest.raises(ContractError) as error:
        parse(document)
    assert str(error.value).startswith(message)


def test_the_contract_declares_retention_and_erase_by_columns():
    contracts = load()
    assert {feed.name: feed.retention for feed in contracts if feed.retention} == {
        "orders": Retention(days=2557, column="ordered_at"),
        "clickstream": Retention(days=395, column="occurred_at"),
    }
    assert {feed.name: [(c.name, c.erase_column) for c in feed.erase_by] for feed in contracts} == {
        "crm": [
            ("crm_id", "crm_id"),
            ("email", "email_normalised"),
            ("loyalty_id", "loyalty_id"),
        ],
        "orders": [("customer_ref", "customer_ref_normalised")],
        "clickstream": [("anonymous_id", "anonymous_id"), ("user_id", "user_id")],
        "accounts": [("user_id", "user_id"), ("email", "email_normalised")],
        "products": [],
        "consent": [("subject", "subject_normalised")],
        "erasure": [("subject", "subject_normalised")],
    }
