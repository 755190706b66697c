"""The loader on hand-made files: every row ends in exactly one place, with an exact reason."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from teal_testing import TEST_SALT

from ml.landing.contracts import load
from ml.landing.ledger import landed_batch
from ml.landing.loader import Loader, reconciliation

ORDER_HEADER = "order_id,line_number,customer_ref,ordered_at,channel,store_id,sku,quantity,unit_price,discount,currency,status"
GOOD_ORDER = (
    "O000000001,1,C0000001,2026-11-01T10:00:00+00:00,web,,SKU-000001,2,9.99,0,GBP,completed"
)


def event(event_id: str, **fields) -> str:
    document = {
        "event_id": event_id,
        "event_type": "page_view",
        "anonymous_id": "ck_abcdefabcdef",
        "occurred_at": "2026-11-01T10:00:00Z",
        "url": "https://shop.example/",
        "properties": {},
    }
    document.update(fields)
    return json.dumps(document)


def write_events(root: Path, day: str, ids) -> Path:
    """A clickstream file of one page view per event number, ids as 32 hex digits."""
    lines = "\n".join(event(f"{i:032x}") for i in ids) + "\n"
    return write(root, f"clickstream/events_{day}.jsonl", lines)


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def connection(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def quarantine_messages(connection, feed: str) -> list[str]:
    return [
        m
        for (m,) in connection.execute(
            "select message from landing.quarantine where feed = ? order by file, row_number",
            [feed],
        ).fetchall()
    ]


def test_each_kind_of_bad_order_row_is_quarantined_with_its_reason(landing, connection):
    rows = [
        ORDER_HEADER,
        GOOD_ORDER,
        "O000000002,1, Ann@Mail.COM ,2026-11-01T10:00:00+00:00,web,,SKU-000002,-3,9.99,,GBP,completed",
        "O000000003,1,,2026-11-01 10:00:00,store,S001,SKU-000001,1,9.99,0,GBP,shipped",
        "O000000004,1,C0000001,2026-11-01T10:00:00+00:00,web",
        "O000000005,1,L12345678,2026-13-01T10:00:00,store,S001,SKU-000001,1,9.99,0,GBP,completed",
        "O000000006,1,C0000001,2026-11-01T10:00:00+00:00,web,,SKU-000001,1,9.99,0,JPY,completed",
        "O000000007,1,nobody,2026-11-01T10:00:00+00:00,web,,SKU-000001,1,abc,0,GBP,completed",
        ",1,C0000001,2026-11-01T10:00:00+00:00,web,,SKU-000001,1,1.00,0,GBP,completed",
    ]
    data = (
        ("\n".join(rows) + "\n").encode()
        + b"O000000008,1,Zo\xeb,2026-11-01T10:00:00+00:00,web,,SKU-000001,1,1.00,0,GBP,completed\n"
    )
    write(landing, "orders/2026-11-01.csv", data)
    report = Loader(connection, landing, salt=TEST_SALT).land_feed("orders", progress=False)

    [result] = report.files
    assert (
        result.rows_read,
        result.rows_loaded,
        result.rows_quarantined,
        result.rows_duplicate,
    ) == (9, 1, 8, 0)
    assert quarantine_messages(connection, "orders") == [
        "orders/2026-11-01.csv row 3: quantity -3 is below 1",
        "orders/2026-11-01.csv row 4: status 'shipped' is not one of completed, refunded, cancelled",
        "orders/2026-11-01.csv row 5: has 5 fields, expected 12 as in the header",
        "orders/2026-11-01.csv row 6: ordered_at '2026-13-01T10:00:00' is not a valid timestamp "
        "(expected ISO 8601 such as 2026-11-01T10:22:03+00:00)",
        "orders/2026-11-01.csv row 7: currency 'JPY' is not one of GBP, EUR, USD",
        "orders/2026-11-01.csv row 8: customer_ref 'nobody' is not an email, a crm id (C + 7 digits) "
        "or a loyalty id (L + 8 digits); unit_price 'abc' is not a decimal number",
        "orders/2026-11-01.csv row 9: order_id is missing",
        "orders/2026-11-01.csv row 10: line is not valid UTF-8 (byte 0xeb at position 16)",
    ]
    raw = connection.execute(
        "select raw_text from landing.quarantine where row_number = 3"
    ).fetchone()[0]
    assert raw == rows[2]
    landed = connection.execute(
        "select order_id, customer_ref_normalised, customer_ref_type, discount, _source_file, _row_number, _load_id "
        "from orders.order_lines order by _row_number"
    ).fetchall()
    assert landed == [
        ("O000000001", "C0000001", "crm_id", "0", "orders/2026-11-01.csv", 2, report.load_id)
    ]


def test_bad_crm_rows_name_the_field(landing, connection):
    header = "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,country,created_at,updated_at,loyalty_id"
    rows = [
        header,
        "C0000001,Ann,Lee, Ann.Lee@Gmail.com ,(0)20 7946 0018,1984-03-02,F,1 High St,London,N1 1AA,GB,2025-01-01 10:00:00,2025-01-01 10:00:00,L00000001",
        "C0000002,Bo,Lee,bo@@mail.com,,1984-13-45,Q,,,,XX,2025-01-01 10:00:00,2025-01-01 10:00:00,",
        "C0000003,Cy,Lee,,07700 900123,,U,,,,GB,2025-01-01 10:00:00,2025-01-01 10:00:00,",
    ]
    write(landing, "crm/crm_2025-01-01.csv", "\n".join(rows) + "\n")
    Loader(connection, landing, salt=TEST_SALT).land_feed("crm", progress=False)
    assert quarantine_messages(connection, "crm") == [
        "crm/crm_2025-01-01.csv row 3: email 'bo@@mail.com' is not a valid email address (The part after the "
        "@-sign contains invalid characters: '@'.); birth_date '1984-13-45' is not a valid date (expected "
        "YYYY-MM-DD); gender 'Q' is not one of F, M, X, U; country 'XX' is not one of GB, IE, FR, DE, NL, ES, US",
        "crm/crm_2025-01-01.csv row 4: phone '07700 900123' is not a valid phone number in GB",
    ]
    assert connection.execute(
        "select email_normalised, phone_e164 from crm.customers"
    ).fetchall() == [("ann.lee@gmail.com", "+442079460018")]


def test_bad_json_lines_are_quarantined_and_retries_counted(landing, connection):
    lines = [
        event("0" * 32),
        event("0" * 32),  # retried delivery
        '{"event_id": "x", broken',
        "[1, 2]",
        event("1" * 32, event_type="teleport"),
        event("2" * 32, occurred_at="yesterday"),
        event("3" * 32, properties=[1]),
    ]
    write(landing, "clickstream/events_2026-11-01.jsonl", "\n".join(lines) + "\n")
    report = Loader(connection, landing, salt=TEST_SALT).land_feed("clickstream", progress=False)
    [result] = report.files
    assert (
        result.rows_read,
        result.rows_loaded,
        result.rows_quarantined,
        result.rows_duplicate,
    ) == (7, 1, 5, 1)
    assert quarantine_messages(connection, "clickstream") == [
        "clickstream/events_2026-11-01.jsonl row 3: line is not valid JSON (Expecting property name enclosed in double quotes at column 19)",
        "clickstream/events_2026-11-01.jsonl row 4: line is a JSON array, expected an object",
        "clickstream/events_2026-11-01.jsonl row 5: event_type 'teleport' is not one of page_view, product_view, "
        "search, add_to_cart, remove_from_cart, checkout_start, purchase, login, email_open, email_click",
        "clickstream/events_2026-11-01.jsonl row 6: occurred_at 'yesterday' is not a valid timestamp "
        "(expected ISO 8601 such as 2026-11-01T10:22:03+00:00)",
        "clickstream/events_2026-11-01.jsonl row 7: properties is not a JSON object",
    ]
    assert connection.execute("select key from landing.duplicates").fetchall() == [
        ("event_id=" + "0" * 32,)
    ]


def test_a_second_file_with_retried_events_adds_no_duplicates(landing, connection):
    write_events(landing, "2026-11-01", range(5))
    loader = Loader(connection, landing, salt=TEST_SALT)
    loader.land_feed("clickstream", progress=False)
    retried = [event(f"{i:032x}") for i in (3, 4)] + [event(f"{i:032x}") for i in (5, 6)]
    write(landing, "clickstream/events_2026-11-02.jsonl", "\n".join(retried) + "\n")
    [result] = loader.land_feed("clickstream", progress=False).files
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (4, 2, 2)
    ids = [
        i
        for (i,) in connection.execute(
            "select event_id from clickstream.events order by event_id"
        ).fetchall()
    ]
    assert ids == [f"{i:032x}" for i in range(7)]


def test_a_key_repeated_with_blanks_around_it_is_a_duplicate_in_a_later_run(landing, connection):
    """Keys are compared trimmed (spaces and Unicode space separators such as a no-break
    space), whichever side carried the blanks."""
    ids = [f"{i:032x}" for i in range(5)]
    first = [event(f" {ids[0]} "), event(ids[1] + "\u00a0"), event(ids[2]), event(ids[3])]
    write(landing, "clickstream/events_2026-11-01.jsonl", "\n".join(first) + "\n")
    loader = Loader(connection, landing, salt=TEST_SALT)
    [result] = loader.land_feed("clickstream", progress=False).files
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (4, 4, 0)
    later = [event(ids[0]), event(ids[1]), event(f"\u3000{ids[2]}"), event(ids[4])]
    write(landing, "clickstream/events_2026-11-02.jsonl", "\n".join(later) + "\n")
    [result] = loader.land_feed("clickstream", progress=False).files
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (4, 1, 3)
    assert connection.execute(
        "select row_number, key from landing.duplicates order by row_number"
    ).fetchall() == [
        (1, f"event_id={ids[0]}"),
        (2, f"event_id={ids[1]}"),
        (3, f"event_id=\u3000{ids[2]}"),  # as received
    ]


def test_rerunning_changes_nothing(landing, connection):
    write(landing, "orders/a.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n")
    write(landing, "clickstream/e.jsonl", event("a" * 32) + "\n")
    loader = Loader(connection, landing, salt=TEST_SALT)
    first = loader.land_all(progress=False)
    assert sum(len(r.files) for r in first) == 2
    snapshot = connection.execute(
        "select (select count(*) from landing.files), (select count(*) from orders.order_lines), "
        "(select count(*) from clickstream.events), (select count(*) from landing.quarantine)"
    ).fetchone()
    second = Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
    assert [r.files for r in second] == [[] for _ in second]
    assert (
        connection.execute(
            "select (select count(*) from landing.files), (select count(*) from orders.order_lines), "
            "(select count(*) from clickstream.events), (select count(*) from landing.quarantine)"
        ).fetchone()
        == snapshot
    )


def test_same_content_under_another_name_is_skipped_and_a_changed_file_reloads(landing, connection):
    loader = Loader(connection, landing, salt=TEST_SALT)
    write(landing, "orders/a.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n")
    loader.land_feed("orders", progress=False)
    write(landing, "orders/a_copy.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n")
    [copy] = loader.land_feed("orders", progress=False).files
    assert (copy.status, copy.reason) == ("skipped", "same content as orders/a.csv, already landed")
    second_line = GOOD_ORDER.replace("O000000001,1", "O000000001,2")
    write(landing, "orders/a.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n{second_line}\n")
    [changed] = loader.land_feed("orders", progress=False).files
    assert (changed.status, changed.rows_read, changed.rows_loaded, changed.rows_duplicate) == (
        "loaded",
        2,
        1,
        1,
    )
    assert connection.execute("select count(*) from orders.order_lines").fetchone()[0] == 2


def test_a_corrupt_file_is_quarantined_whole_and_the_others_still_load(landing, connection):
    good_item = (
        "<item><g:id>SKU-000001</g:id><title>Trainer</title><g:product_type>Shoes &gt; Trainers</g:product_type>"
        "<g:brand>Teal</g:brand><g:price>59.99 GBP</g:price><g:availability>in_stock</g:availability></item>"
    )
    bad_item = (
        "<item><title>No id</title><g:product_type>Shoes</g:product_type><g:price>abc GBP</g:price>"
        "<g:availability>limited</g:availability></item>"
    )
    feed = f'<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>{good_item}{bad_item}</channel></rss>'
    write(landing, "products/catalogue_2026-11-01.xml", feed)
    write(landing, "products/catalogue_2026-11-02_partial.xml", feed[:150])
    write(landing, "orders/store_2026-11-01.parquet", b"PAR1 this is not parquet")
    table = pa.table(
        {
            name: [value]
            for name, value in zip(ORDER_HEADER.split(","), GOOD_ORDER.split(","), strict=True)
        }
    )
    table = table.set_column(7, "quantity", pa.array([-2], pa.int64()))
    pq.write_table(table, landing / "orders" / "store_2026-11-02.parquet")
    write(landing, "orders/orders.txt", "not a feed file")

    loader = Loader(connection, landing, salt=TEST_SALT)
    products = loader.land_feed("products", progress=False)
    orders = loader.land_feed("orders", progress=False)
    assert [(f.file, f.status) for f in products.files] == [
        ("products/catalogue_2026-11-01.xml", "loaded"),
        ("products/catalogue_2026-11-02_partial.xml", "quarantined"),
    ]
    assert [(f.file, f.status) for f in orders.files] == [
        ("orders/orders.txt", "quarantined"),
        ("orders/store_2026-11-01.parquet", "quarantined"),
        ("orders/store_2026-11-02.parquet", "loaded"),
    ]
    messages = quarantine_messages(connection, "products") + quarantine_messages(
        connection, "orders"
    )
    assert messages[0] == (
        "products/catalogue_2026-11-01.xml row 2: product_id is missing; price 'abc' is not a decimal number; "
        "availability 'limited' is not one of in_stock, out_of_stock, preorder, backorder"
    )
    assert messages[1].startswith(
        "products/catalogue_2026-11-02_partial.xml: the whole file is not well-formed XML ("
    )
    assert (
        messages[2]
        == "orders/orders.txt: the whole file is not a file this feed takes (expected *.csv, *.parquet)"
    )
    assert messages[3].startswith(
        "orders/store_2026-11-01.parquet: the whole file is not a readable Parquet file ("
    )
    assert messages[4] == "orders/store_2026-11-02.parquet row 1: quantity -2 is below 1"
    assert connection.execute(
        "select product_id, price, currency from products.items"
    ).fetchall() == [("SKU-000001", "59.99", "GBP")]
    for name in ("products", "orders"):
        assert reconciliation(connection, load()[name])["reconciles"].all()


def test_a_csv_without_a_contract_column_is_quarantined_whole(landing, connection):
    write(
        landing,
        "erasure/erasure_2026-11-01.csv",
        "request_id,requested_at\nER0000001,2026-11-01T10:00:00Z\n",
    )
    [result] = (
        Loader(connection, landing, salt=TEST_SALT).land_feed("erasure", progress=False).files
    )
    assert result.status == "quarantined"
    assert (
        result.reason
        == "has a header without the column(s) subject; expected request_id, subject, requested_at"
    )


def tombstone(connection, *identifiers: str) -> None:
    """Tombstones as erasure leaves them: salted hashes of an erased person's identifiers."""
    from ml.privacy.erasure import ensure_tables
    from ml.secrets import salted_hash

    ensure_tables(connection)
    for value in identifiers:
        connection.execute(
            "insert into privacy.tombstones values (?, 'ER0000001', now()::timestamp)",
            [salted_hash(value, TEST_SALT)],
        )


def test_rows_of_an_erased_person_are_dropped_as_erased_and_reconcile(landing, connection):
    tombstone(connection, "ann@mail.com", "C0000001", "ck_ann000000001")
    rows = [
        ORDER_HEADER,
        GOOD_ORDER.replace("C0000001", "C0000002"),
        "O000000002,1, Ann@Mail.COM ,2026-11-01T10:00:00+00:00,web,,SKU-000002,1,9.99,0,GBP,completed",
        "O000000003,1,c0000001,2026-11-01T10:00:00+00:00,web,,SKU-000002,-3,9.99,0,GBP,completed",
        "O000000004,1,ann@mail.com,2026-11-01T10:00:00+00:00,web",
        "O000000005,1,C0000002,2026-11-01T10:00:00+00:00,web,,SKU-000002,1,9.99,0,JPY,completed",
        "O000000006,1,L12345678,2026-11-01T10:00:00+00:00,store,S001,SKU-000002,1,9.99,0,GBP,completed",
    ]
    write(landing, "orders/2026-11-01.csv", "\n".join(rows) + "\n")
    write(landing, "orders/2026-11-02.csv", "\n".join(rows[:3]) + "\n")  # replayed lines
    write(landing, "orders/notes.txt", "a note about ann@mail.com\n")
    lines = [
        event("a" * 32, anonymous_id="ck_ann000000001"),
        event("a" * 32, anonymous_id="ck_ann000000001"),  # a retry: erased, not a duplicate
        event("b" * 32, anonymous_id="ck_bob000000002", device_id="dv_shared0001"),
        '{"event_id": "' + "c" * 32 + '", "anonymous_id": "ck_ann000000001", broken',
    ]
    write(landing, "clickstream/events_2026-11-01.jsonl", "\n".join(lines) + "\n")

    loader = Loader(connection, landing, salt=TEST_SALT)
    orders = loader.land_feed("orders", progress=False)
    clicks = loader.land_feed("clickstream", progress=False)
    counted = {
        f.file: (
            f.status,
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.rows_duplicate,
            f.rows_erased,
        )
        for f in orders.files + clicks.files
    }
    assert counted == {
        "orders/2026-11-01.csv": ("loaded", 6, 2, 1, 0, 3),
        "orders/2026-11-02.csv": ("loaded", 2, 0, 0, 1, 1),
        "orders/notes.txt": ("quarantined", 0, 0, 0, 0, 0),
        "clickstream/events_2026-11-01.jsonl": ("loaded", 4, 1, 0, 0, 3),
    }
    assert orders.as_dict()["rows_erased"] == 4
    assert connection.execute(
        "select feed, file, row_number from landing.erased_rows order by all"
    ).fetchall() == [
        ("clickstream", "clickstream/events_2026-11-01.jsonl", 1),
        ("clickstream", "clickstream/events_2026-11-01.jsonl", 2),
        ("clickstream", "clickstream/events_2026-11-01.jsonl", 4),
        ("orders", "orders/2026-11-01.csv", 3),
        ("orders", "orders/2026-11-01.csv", 4),
        ("orders", "orders/2026-11-01.csv", 5),
        ("orders", "orders/2026-11-02.csv", 3),
    ]
    assert connection.execute("select rows_erased from landing.files order by file").fetchall() == [
        (3,),
        (3,),
        (1,),
        (0,),
    ]
    assert quarantine_messages(connection, "orders") == [
        "orders/2026-11-01.csv row 6: currency 'JPY' is not one of GBP, EUR, USD",
        "orders/notes.txt: the whole file is not a file this feed takes (expected *.csv, "
        "*.parquet) (its first bytes are not kept: they name an erased person)",
    ]
    assert connection.execute(
        "select customer_ref_normalised from orders.order_lines order by _row_number"
    ).fetchall() == [("C0000002",), ("L12345678",)]
    # the erased person's raw text is nowhere: not in any table, quarantine or duplicates key
    for needle in ("ann@mail.com", "c0000001", "ck_ann000000001"):
        for table, column in (
            ("landing.quarantine", "raw_text"),
            ("landing.quarantine", "message"),
            ("landing.duplicates", "key"),
            ("orders.order_lines", "customer_ref"),
            ("clickstream.events", "anonymous_id"),
        ):
            hits = connection.execute(
                f"select count(*) from {table} where contains(lower({column}), ?)", [needle]
            ).fetchone()[0]
            assert hits == 0, (table, column, needle)
    for name in ("orders", "clickstream"):
        recon = reconciliation(connection, load()[name])
        assert recon["reconciles"].all(), recon.to_dict("records")
    recon = reconciliation(connection, load()["orders"])
    assert recon[["file", "rows_erased", "rows_removed_later"]].values.tolist() == [
        ["orders/2026-11-01.csv", 3, 0],
        ["orders/2026-11-02.csv", 1, 0],
        ["orders/notes.txt", 0, 0],
    ]


def test_a_ledger_from_before_erasure_gains_the_erased_count(landing, connection):
    connection.execute(
        """
        create schema landing;
        create table landing.files (
            load_id varchar not null, feed varchar not null, file varchar not null,
            checksum varchar not null, size_bytes bigint not null, file_format varchar,
            status varchar not null, reason varchar, rows_read bigint not null,
            rows_loaded bigint not null, rows_quarantined bigint not null,
            rows_duplicate bigint not null, landed_at timestamp not null
        );
        insert into landing.files values ('old', 'orders', 'orders/old.csv', 'x', 1, 'csv',
            'loaded', null, 0, 0, 0, 0, now()::timestamp);
        """
    )
    write(landing, "orders/a.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n")
    Loader(connection, landing, salt=TEST_SALT).land_feed("orders", progress=False)
    assert connection.execute(
        "select file, rows_loaded, rows_erased from landing.files order by file"
    ).fetchall() == [("orders/a.csv", 1, 0), ("orders/old.csv", 0, 0)]
    assert reconciliation(connection, load()["orders"])["reconciles"].all()


def test_a_large_load_is_validated_on_a_repeatable_sample_of_its_own_rows(landing, connection):
    write_events(landing, "2026-11-01", range(30))
    loader = Loader(connection, landing, salt=TEST_SALT)
    first = loader.land_feed("clickstream", progress=False).load_id
    write_events(landing, "2026-11-02", range(30, 40))
    loader.land_feed("clickstream", progress=False)
    feed = load()["clickstream"]
    sample, total = landed_batch(connection, feed, first, limit=12)
    again, _ = landed_batch(connection, feed, first, limit=12)
    assert (total, len(sample)) == (30, 12)
    assert sample["event_id"].is_unique and set(sample["_load_id"]) == {first}
    assert set(sample["event_id"]) <= {f"{i:032x}" for i in range(30)}
    assert sorted(sample["event_id"]) == sorted(again["event_id"])
    whole, total = landed_batch(connection, feed, first, limit=30)
    assert (total, len(whole)) == (30, 30)
