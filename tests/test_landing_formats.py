"""Real exports land like clean files: other delimiters, encodings, names, dates and gzip.

Each test lands a file written the way a user's system exports it next to its clean twin (the
same rows written as feeds.yml's defaults expect) and compares the landed tables, row for row.
The export's settings come from a feeds.local.yml beside its landing folder, as a user writes
them. The rest covers how the set-based reader reads awkward files exactly as Python's csv and
json modules did: quoted fields over several lines, CRLF, blank lines, wrong encodings.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from teal_testing import TEST_SALT

from ml.landing.contracts import load
from ml.landing.loader import Loader, reconciliation

CRM_HEADER = (
    "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,country,"
    "created_at,updated_at,loyalty_id"
)
CRM_CLEAN = [
    "C0000001,Zoë,Lefèvre,zoe.lefevre@example.fr,+33 1 23 45 67 89,1984-03-02,F,"
    "Flat 2; 12 rue de la Paix,Paris,75002,FR,2025-01-01T10:00:00,2025-01-02T09:30:00,L00000001",
    "C0000002,Jürgen,Müller,j.mueller@example.de,030 12345678,1990-12-31,M,Hauptstraße 5,"
    "Berlin,10115,DE,2025-01-01T11:15:00,2025-01-01T11:15:00,",
    'C0000003,Ann,O\'Neil,ann@@example.com,020 7946 0018,1975-07-14,F,"1, High St",London,'
    "N1 1AA,GB,2025-01-03T08:00:00,2025-01-03T08:00:00,",
    "C0000004,Seán,Ó Briain,sean@example.ie,01 234 5678,2001-01-09,M,2 Main St,Dublin,D02,IE,"
    "2025-01-04T23:59:00,2025-01-05T00:01:00,L00000004",
    "C0000001,Zoë,Lefèvre,zoe.lefevre@example.fr,+33 1 23 45 67 89,1984-03-02,F,"
    "Flat 2; 12 rue de la Paix,Paris,75002,FR,2025-01-01T10:00:00,2025-01-02T09:30:00,L00000001",
]
# The same rows as a CRM system exports them: other names, day-first dates, semicolons.
CRM_EXPORT_HEADER = (
    "Customer ID;First Name;Surname;E-Mail;Phone number;Date of birth;GENDER;Street;Town;"
    "Post code;Country;Created;Last modified;Loyalty card"
)
CRM_EXPORT = [
    'C0000001;Zoë;Lefèvre;zoe.lefevre@example.fr;+33 1 23 45 67 89;02/03/1984;F;"Flat 2; 12 rue '
    'de la Paix";Paris;75002;FR;01/01/2025 10:00;02/01/2025 09:30;L00000001',
    "C0000002;Jürgen;Müller;j.mueller@example.de;030 12345678;31/12/1990;M;Hauptstraße 5;Berlin;"
    "10115;DE;01/01/2025 11:15;01/01/2025 11:15;",
    "C0000003;Ann;O'Neil;ann@@example.com;020 7946 0018;14/07/1975;F;1, High St;London;N1 1AA;GB;"
    "03/01/2025 08:00;03/01/2025 08:00;",
    "C0000004;Seán;Ó Briain;sean@example.ie;01 234 5678;09/01/2001;M;2 Main St;Dublin;D02;IE;"
    "04/01/2025 23:59;05/01/2025 00:01;L00000004",
    'C0000001;Zoë;Lefèvre;zoe.lefevre@example.fr;+33 1 23 45 67 89;02/03/1984;F;"Flat 2; 12 rue '
    'de la Paix";Paris;75002;FR;01/01/2025 10:00;02/01/2025 09:30;L00000001',
]
CRM_LOCAL = """\
feeds:
  crm:
    read:
      delimiter: ";"
      encoding: windows-1252
      date_format: "%d/%m/%Y"
      timestamp_format: "%d/%m/%Y %H:%M"
    aliases:
      crm_id: [Customer ID]
      last_name: [surname]
      email: [e-mail]
      phone: [Phone Number]
      birth_date: [Date of birth]
      city: [Town]
      postcode: [Post code]
      created_at: [Created]
      updated_at: [Last modified]
      loyalty_id: [Loyalty card]
"""


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def land(root: Path, feed: str) -> tuple[list[tuple], list[tuple], dict]:
    """Land the feed of root/landing into root/warehouse.duckdb: (rows, quarantine, totals)."""
    with duckdb.connect(str(root / "warehouse.duckdb")) as connection:
        report = Loader(connection, root / "landing", salt=TEST_SALT).land_feed(
            feed, progress=False
        )
        contract = load()[feed]
        rows = connection.execute(
            f"select * exclude (_source_file, _load_id, _loaded_at) from {contract.qualified_table} "
            "order by _row_number"
        ).fetchall()
        refused = connection.execute(
            "select row_number, reason from landing.quarantine order by row_number"
        ).fetchall()
        assert reconciliation(connection, contract)["reconciles"].all()
    return rows, refused, report.as_dict()


def test_a_gzipped_semicolon_windows_1252_export_lands_like_its_clean_twin(tmp_path):
    clean, export = tmp_path / "clean", tmp_path / "export"
    write(clean, "landing/crm/crm_2025-01-05.csv", "\n".join([CRM_HEADER, *CRM_CLEAN]) + "\n")
    text = "\r\n".join([CRM_EXPORT_HEADER, *CRM_EXPORT]) + "\r\n"
    write(export, "landing/crm/crm_2025-01-05.csv.gz", gzip.compress(text.encode("cp1252")))
    write(export, "feeds.local.yml", CRM_LOCAL)

    clean_rows, clean_refused, clean_totals = land(clean, "crm")
    export_rows, export_refused, export_totals = land(export, "crm")

    assert export_rows == clean_rows
    assert [row[:2] for row in clean_rows] == [
        ("C0000001", "Zoë"),
        ("C0000002", "Jürgen"),
        ("C0000004", "Seán"),
    ]
    assert clean_rows[0][5] == "1984-03-02" and clean_rows[0][11] == "2025-01-01T10:00:00"
    assert (
        export_refused
        == clean_refused
        == [
            (
                4,
                "email 'ann@@example.com' is not a valid email address (The part after the @-sign "
                "contains invalid characters: '@'.)",
            )
        ]
    )
    for totals in (clean_totals, export_totals):
        assert (totals["rows_read"], totals["rows_loaded"]) == (5, 3)
        assert (totals["rows_quarantined"], totals["rows_duplicate"]) == (1, 1)
    assert export_totals["files"][0]["file"] == "crm/crm_2025-01-05.csv.gz"


ORDERS_HEADER = (
    "order_id,line_number,customer_ref,ordered_at,channel,store_id,sku,quantity,unit_price,"
    "discount,currency,status"
)
ORDERS_CLEAN = [
    "O000000001,1,C0000001,2026-11-01T09:00:00Z,web,,SKU-000001,2,9.99,0.50,EUR,completed",
    "O000000002,1,ann@example.com,2026-11-01T23:30:00Z,store,S001,SKU-000002,1,1250.00,,EUR,"
    "completed",
    "O000000003,1,L12345678,2026-11-02T10:00:00Z,web,,SKU-000003,1,abc,,EUR,completed",
]
ORDERS_EXPORT = [
    "Order\tLine\tCustomer\tDate\tchannel\tStore\tSKU\tqty\tPrice\tDiscount\tCurrency\tStatus",
    "O000000001\t1\tC0000001\t01.11.2026 10:00:00 +0100\tweb\t\tSKU-000001\t2\t9,99\t0,50\tEUR\t"
    "completed",
    "O000000002\t1\tann@example.com\t02.11.2026 00:30:00 +0100\tstore\tS001\tSKU-000002\t1\t"
    "1250,00\t\tEUR\tcompleted",
    "O000000003\t1\tL12345678\t02.11.2026 11:00:00 +0100\tweb\t\tSKU-000003\t1\tabc\t\tEUR\t"
    "completed",
]
ORDERS_LOCAL = """\
feeds:
  orders:
    read: {delimiter: "\\t", decimal: ",", timestamp_format: "%d.%m.%Y %H:%M:%S %z"}
    aliases:
      order_id: [order]
      line_number: [line]
      customer_ref: [customer]
      ordered_at: [date]
      store_id: [store]
      quantity: [qty]
      unit_price: [price]
"""


def test_a_tab_separated_export_with_decimal_commas_and_offsets_lands_like_its_twin(tmp_path):
    clean, export = tmp_path / "clean", tmp_path / "export"
    write(clean, "landing/orders/orders.csv", "\n".join([ORDERS_HEADER, *ORDERS_CLEAN]) + "\n")
    write(export, "landing/orders/orders.csv", "\n".join(ORDERS_EXPORT) + "\n")
    write(export, "feeds.local.yml", ORDERS_LOCAL)

    clean_rows, clean_refused, _ = land(clean, "orders")
    export_rows, export_refused, _ = land(export, "orders")

    assert export_rows == clean_rows
    assert [(r[0], r[3], r[8], r[9]) for r in export_rows] == [
        ("O000000001", "2026-11-01T09:00:00Z", "9.99", "0.50"),
        ("O000000002", "2026-11-01T23:30:00Z", "1250.00", None),
    ]
    assert clean_refused == [(4, "unit_price 'abc' is not a decimal number")]
    assert export_refused == clean_refused


def test_a_date_that_does_not_fit_the_feeds_format_is_quarantined_naming_it(tmp_path):
    rows = [CRM_EXPORT_HEADER, CRM_EXPORT[1].replace("31/12/1990", "1990-12-31")]
    write(tmp_path, "landing/crm/crm.csv", ("\n".join(rows) + "\n").encode("cp1252"))
    write(tmp_path, "feeds.local.yml", CRM_LOCAL)
    _, refused, _ = land(tmp_path, "crm")
    assert refused == [(2, "birth_date '1990-12-31' is not a valid date (expected %d/%m/%Y)")]


def test_a_line_not_in_the_feeds_encoding_is_quarantined_naming_the_byte(tmp_path):
    local = CRM_LOCAL.replace("windows-1252", "utf-8")
    write(tmp_path, "feeds.local.yml", local)
    data = ("\n".join([CRM_EXPORT_HEADER, CRM_EXPORT[1]]) + "\n").encode("utf-8")
    data += CRM_EXPORT[3].encode("cp1252") + b"\n"
    write(tmp_path, "landing/crm/crm.csv", data)
    rows, refused, _ = land(tmp_path, "crm")
    assert [r[0] for r in rows] == ["C0000002"]
    assert refused == [(3, "line is not valid UTF-8 (byte 0xe1 at position 12)")]


# --------------------------------------------------------------------------- CSV as Python read it

CONSENT_HEADER = "event_id,subject,purpose,status,recorded_at,source"


def consent(number: int, subject: str = "C0000001", purpose: str = "analytics") -> str:
    return f"CE{number:09d},{subject},{purpose},granted,2026-11-01T10:00:00Z,checkout"


def test_csv_records_are_read_as_pythons_csv_module_reads_them(tmp_path):
    lines = [
        CONSENT_HEADER,
        consent(1),
        "",  # a blank line is a record with no fields
        f'"CE000000002","{"C0000002"}",analytics,granted,2026-11-01T10:00:00Z,checkout',
        'CE000000003,C0000003,"analy',  # a quoted field that runs on over three lines
        "tics",
        'cs",granted,2026-11-01T10:00:00Z,checkout',
        consent(4) + ",extra",
        'CE000000005,C0000005,"a,""quoted"" purpose",granted,2026-11-01T10:00:00Z,checkout',
        consent(6, purpose='email_marketing"x'),  # a quote inside an unquoted field is text
        consent(7),
    ]
    write(tmp_path, "landing/consent/consent.csv", "\r\n".join(lines) + "\r\n")
    rows, refused, totals = land(tmp_path, "consent")
    assert [(r[-1], r[0], r[2]) for r in rows] == [
        (2, "CE000000001", "analytics"),
        (4, "CE000000002", "analytics"),
        (11, "CE000000007", "analytics"),
    ]
    assert refused == [
        (3, "has 0 fields, expected 6 as in the header"),
        (
            5,
            "purpose 'analyticscs' is not one of email_marketing, ads_personalization, "
            "analytics, all_marketing, data_sale",
        ),
        (8, "has 7 fields, expected 6 as in the header"),
        (
            9,
            "purpose 'a,\"quoted\" purpose' is not one of email_marketing, ads_personalization, "
            "analytics, all_marketing, data_sale",
        ),
        (
            10,
            "purpose 'email_marketing\"x' is not one of email_marketing, ads_personalization, "
            "analytics, all_marketing, data_sale",
        ),
    ]
    assert (totals["rows_read"], totals["rows_loaded"], totals["rows_quarantined"]) == (8, 3, 5)


def test_carriage_returns_end_a_line_as_pythons_csv_module_took_them(tmp_path):
    data = (CONSENT_HEADER + "\n" + consent(1) + "\r\r\n" + consent(2) + "\r\n").encode()
    data += (consent(3).replace("C0000001", '"C00\r00001"') + "\n").encode()
    write(tmp_path, "landing/consent/consent.csv", data)
    rows, refused, _ = land(tmp_path, "consent")
    assert [r[0] for r in rows] == ["CE000000001", "CE000000002"]
    assert refused == [
        (4, "subject 'C00\r00001' is not an email or a crm id (C + 7 digits)"),
    ]


# --------------------------------------------------------------------------- JSON Lines


def event(event_id: str, **fields) -> dict:
    document = {
        "event_id": event_id,
        "event_type": "page_view",
        "anonymous_id": "ck_abcdefabcdef",
        "occurred_at": "2026-11-01T10:00:00Z",
        "url": "https://shop.example/",
        "properties": {},
    }
    document.update(fields)
    return document


def test_gzipped_json_lines_with_a_byte_order_mark_land_like_plain_ones(tmp_path):
    documents = [event(f"{i:032x}", properties={"n": i, "price": 12.5}) for i in range(3)]
    text = "\n".join(json.dumps(d) for d in documents) + "\n"
    clean, export = tmp_path / "clean", tmp_path / "export"
    write(clean, "landing/clickstream/e.jsonl", text)
    write(export, "landing/clickstream/e.jsonl.gz", gzip.compress(b"\xef\xbb\xbf" + text.encode()))
    write(export, "feeds.local.yml", "feeds: {clickstream: {read: {encoding: utf-8-sig}}}\n")
    clean_rows, _, _ = land(clean, "clickstream")
    export_rows, _, _ = land(export, "clickstream")
    assert export_rows == clean_rows
    assert [r[8] for r in clean_rows] == [f'{{"n":{i},"price":12.5}}' for i in range(3)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # values DuckDB would write otherwise go through Python's json, as before
        (json.dumps(event("a" * 32, properties={"big": 1e16, "tiny": 1e-05})), "loaded"),
        (json.dumps(event("a" * 32, url=2.5e-07)), "loaded"),
        (json.dumps(event("a" * 32, url=True, product_sku=None)), "loaded"),
        (json.dumps(event("a" * 32, url=12345678901234567890)), "loaded"),
        ('{"event_id": "' + "a" * 32 + '", "properties": {},}', "not valid JSON"),
        ('  {"event_id": "' + "a" * 32 + '"}', "event_type is missing"),
        ("[1, 2]", "line is a JSON array, expected an object"),
        ('"text"', "line is a JSON str, expected an object"),
    ],
)
def test_json_lines_are_read_as_pythons_json_module_reads_them(tmp_path, line, expected):
    write(tmp_path, "landing/clickstream/e.jsonl", line + "\n   \n")
    rows, refused, totals = land(tmp_path, "clickstream")
    assert totals["rows_read"] == 1  # the blank line is no record
    if expected == "loaded":
        document = json.loads(line)
        assert rows[0][:9] == tuple(
            None
            if document.get(k) is None
            else json.dumps(document[k], separators=(",", ":"))
            if k == "properties" or isinstance(document[k], dict | list)
            else ("true" if document[k] is True else str(document[k]))
            for k in (
                "event_id",
                "event_type",
                "anonymous_id",
                "user_id",
                "device_id",
                "occurred_at",
                "url",
                "product_sku",
                "properties",
            )
        )
    else:
        assert expected in refused[0][1]
