"""Raw files follow erasure: landing files lose an erased person's rows, in their own format.

Ann (crm id C0000001, ann.lee@gmail.com, loyalty card L00000001, cookie ck_ann000000001) is
erased; Bob stays. Her rows are in a CSV with a byte-order mark, CRLF line ends and a quoted
street that spans two lines, in gzip-compressed JSON Lines, in a Parquet file of till orders and
in a Merchant-style XML feed of product reviews (a feed of this test's own contract). The real
loader lands the files, the tombstones say who is erased, and `follow_erasure` rewrites them:
every other byte stays, the ledger knows both checksums, nothing lands twice, and an original
put back (under its own name or another) is rewritten to the very same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from teal_testing import TEST_SALT

from ml import secrets
from ml.landing import contracts as contracts_module
from ml.landing.archive import archive_landed_files, expire_archive
from ml.landing.loader import Loader, reconciliation
from ml.privacy.raw_files import FOR_ERASED_ROWS, FOR_ERASURE, FOR_ORIGINAL, follow_erasure
from ml.privacy.tombstones import TOMBSTONES_DDL

ANN = ("C0000001", "ann.lee@gmail.com", "L00000001", "ck_ann000000001", "annlee@gmail.com")
REQUEST = "ER0000001"
AT = datetime(2026, 3, 6, 9)
BOM = b"\xef\xbb\xbf"

CRM = (
    BOM + b"crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,"
    b"country,created_at,updated_at,loyalty_id\r\n"
    b'C0000001,Ann,Lee, Ann.Lee@Gmail.com ,020 7946 0222,1984-03-02,F,"Flat 1,\r\n'
    b'1 High St",London,N1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,L00000001\r\n'
    b"C0000002,Bob,Stone,bob.stone@outlook.com,020 7946 0111,1980-05-06,M,2 Low Rd,Leeds,"
    b"LS1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,\r\n"
    b"C0000001,Ann,Lee,ann.lee@gmail.com,,1984-02-30,F,1 High St,London,N1 1AA,GB,"
    b"2026-01-02 10:00:00,2026-01-02 10:00:00,L00000001\r\n"
)
# Bob's row alone, every byte as it was (the header and its byte-order mark too)
CRM_WITHOUT_ANN = (
    CRM[: CRM.index(b"\r\n") + 2]
    + b"C0000002,Bob,Stone,bob.stone@outlook.com,020 7946 0111,1980-05-06,M,2 Low Rd,Leeds,"
    b"LS1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,\r\n"
)


def event(number: int, cookie: str, **fields) -> bytes:
    document = {
        "event_id": f"{number:032x}",
        "event_type": "page_view",
        "anonymous_id": cookie,
        "occurred_at": "2026-03-01T10:00:00Z",
        "properties": {},
        **fields,
    }
    return json.dumps(document).encode() + b"\n"


EVENTS = [
    event(1, "ck_ann000000001", user_id="U00000001"),
    event(2, "ck_bob000000002"),
    b"\n",
    event(3, "ck_ann000000001"),
    b'{"event_id": "broken", "anonymous_id": "ck_ann000000001"\n',  # quarantined: not JSON
    event(4, "ck_bob000000002", event_type="teleport"),  # quarantined: Bob's, stays
]
ORDER_COLUMNS = [
    "order_id", "line_number", "customer_ref", "ordered_at", "channel", "store_id", "sku",
    "quantity", "unit_price", "discount", "currency", "status",
]  # fmt: skip
ORDERS = [
    ["O000000101", "1", "L00000001", "2026-03-01T10:00:00Z", "store", "S001", "SKU-000001",
     "1", "9.99", "0", "GBP", "completed"],
    ["O000000102", "1", "L00000002", "2026-03-01T11:00:00Z", "store", "S001", "SKU-000002",
     "1", "5.00", "0", "GBP", "completed"],
    ["O000000103", "1", None, "2026-03-01T12:00:00Z", "store", "S002", "SKU-000003",
     "2", "3.50", "0", "GBP", "completed"],
    ["O000000104", "1", "L00000001", "2026-03-02T10:00:00Z", "store", "S001", "SKU-000004",
     "1", "1.00", "0", "GBP", "completed"],
]  # fmt: skip
REVIEWS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">\n'
    "<channel>\n  <title>Reviews</title>\n"
)
ANN_REVIEW = (
    "  <item>\n    <g:id>R0001</g:id>\n    <g:reviewer> Ann.Lee@Gmail.com </g:reviewer>\n"
    "    <g:rating>5</g:rating>\n  </item>\n"
)
BOB_REVIEW = (
    "  <item><g:id>R0002</g:id><g:reviewer>bob.stone@outlook.com</g:reviewer>"
    "<g:rating>4</g:rating></item>\n"
)
# the same mailbox as Ann's, written as nobody wrote it before: her tombstoned mailbox finds it
ANN_OTHER_SPELLING = (
    "  <item><g:id>R0003</g:id><g:reviewer>annlee+reviews@googlemail.com</g:reviewer>"
    "<g:rating>3</g:rating></item>\n"
)
REVIEWS = REVIEWS_HEAD + ANN_REVIEW + BOB_REVIEW + ANN_OTHER_SPELLING + "</channel>\n</rss>\n"
REVIEWS_WITHOUT_ANN = REVIEWS_HEAD + BOB_REVIEW + "</channel>\n</rss>\n"

FILES = {
    "crm/crm_2026-03-01.csv": CRM,
    "clickstream/events_2026-03-01.jsonl.gz": gzip.compress(b"".join(EVENTS), mtime=0),
    "orders/store_2026-03-01.parquet": None,  # written by write_parquet
    "reviews/reviews_2026-03-01.xml": REVIEWS.encode(),
}


def contracts_with_reviews():
    """Teal's contracts and a feed of product reviews as a Merchant-style XML feed, whose
    reviewer is personal data that names whose row it is."""
    document = yaml.safe_load(contracts_module.CONTRACTS_FILE.read_text(encoding="utf-8"))
    document["feeds"]["reviews"] = {
        "description": "Product reviews.",
        "table": "reviews",
        "formats": {"merchant_xml": "*.xml"},
        "timezone": "UTC",
        "key": ["review_id"],
        "key_scope": "feed",
        "columns": [
            {"name": "review_id", "type": "string", "required": True, "source": "g:id",
             "description": "Review id."},
            {"name": "reviewer", "type": "string", "format": "email", "pii": True,
             "erase_by": True, "source": "g:reviewer", "description": "Who wrote it."},
            {"name": "rating", "type": "integer", "source": "g:rating", "description": "1-5."},
        ],
    }  # fmt: skip
    return contracts_module.parse(document)


def write_parquet(path: Path) -> None:
    columns = {name: [row[i] for row in ORDERS] for i, name in enumerate(ORDER_COLUMNS)}
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    pq.write_table(table.replace_schema_metadata({"exported_by": "till"}), path, compression="zstd")


def write_landing(landing: Path) -> dict[str, bytes]:
    originals = {}
    for relative, content in FILES.items():
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            write_parquet(path)
        else:
            path.write_bytes(content)
        originals[relative] = path.read_bytes()
    return originals


def tombstone_ann(connection) -> None:
    """The tombstones erasure leaves for Ann (ml/privacy/tombstones.py)."""
    connection.execute(TOMBSTONES_DDL)
    connection.executemany(
        "insert into privacy.tombstones values (?, ?, ?)",
        [[secrets.salted_hash(value, TEST_SALT), REQUEST, AT] for value in ANN],
    )


def removed_for_request(connection, files: list[str]) -> None:
    """The files the request touched, as erasure's deletion leaves them in landing.removals
    (here without deleting any row, so 0 rows: the tables keep adding up)."""
    for file in files:
        connection.execute(
            "insert into landing.removals values (?, ?, 'table', 'erased', 0, ?, ?)",
            [file.split("/")[0], file, AT, REQUEST],
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def landed(tmp_path: Path):
    landing = tmp_path / "landing"
    originals = write_landing(landing)
    contracts = contracts_with_reviews()
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    Loader(connection, landing, contracts, salt=TEST_SALT).land_all(progress=False)
    tombstone_ann(connection)
    yield connection, landing, contracts, originals
    connection.close()


def follow(connection, landing, contracts, requests=None):
    return follow_erasure(
        connection,
        landing=landing,
        archive=landing.with_name("landing_archive"),
        contracts=contracts,
        salt=TEST_SALT,
        reference="run-erasure",
        at=AT,
        request_ids=requests,
    )


def test_each_format_loses_the_erased_persons_rows_and_keeps_every_other_byte(landed):
    connection, landing, contracts, originals = landed
    removed_for_request(connection, list(FILES))
    outcome = follow(connection, landing, contracts, [REQUEST])

    assert (landing / "crm/crm_2026-03-01.csv").read_bytes() == CRM_WITHOUT_ANN
    events = gzip.decompress((landing / "clickstream/events_2026-03-01.jsonl.gz").read_bytes())
    assert events == EVENTS[1] + EVENTS[2] + EVENTS[5]  # the blank line stays, it is no record
    table = pq.read_table(landing / "orders/store_2026-03-01.parquet")
    assert table.column("order_id").to_pylist() == ["O000000102", "O000000103"]
    assert table.schema.metadata[b"exported_by"] == b"till"
    metadata = pq.ParquetFile(landing / "orders/store_2026-03-01.parquet").metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert (landing / "reviews/reviews_2026-03-01.xml").read_text() == REVIEWS_WITHOUT_ANN

    # one rewrite per file, rows counted per request, every ledger fact exact
    assert {
        (r.location, r.action, r.rows_before, r.rows_removed, r.reason): r.by_request
        for r in outcome.rewrites
    } == {
        ("landing/clickstream/events_2026-03-01.jsonl.gz", "rewritten", 5, 3, FOR_ERASURE): {
            REQUEST: 3
        },
        ("landing/crm/crm_2026-03-01.csv", "rewritten", 3, 2, FOR_ERASURE): {REQUEST: 2},
        ("landing/orders/store_2026-03-01.parquet", "rewritten", 4, 2, FOR_ERASURE): {REQUEST: 2},
        ("landing/reviews/reviews_2026-03-01.xml", "rewritten", 3, 2, FOR_ERASURE): {REQUEST: 2},
    }
    ledger = connection.execute(
        "select file, checksum_before, checksum_after from landing.rewrites order by file"
    ).fetchall()
    assert ledger == sorted(
        (file, sha256(originals[file]), sha256((landing / file).read_bytes())) for file in FILES
    )
    assert connection.execute(
        "select target, row_count from privacy.audit_log "
        "where action = 'landing_file_rewritten' order by target"
    ).fetchall() == sorted((r.file, r.rows_removed) for r in outcome.rewrites)
    assert outcome.files_searched == 4 and outcome.missing == []
    for text in ("ann.lee", "annlee", "C0000001", "L00000001", "ck_ann"):
        assert all(text.lower() not in _text(landing / f).lower() for f in FILES), text

    # the rewritten files are never landed again, and every landed file still reconciles
    again = Loader(connection, landing, contracts, salt=TEST_SALT).land_all(progress=False)
    assert [f.file for report in again for f in report.files] == []
    for feed in contracts:
        assert reconciliation(connection, feed)["reconciles"].all(), feed.name


BOB_ROW = CRM_WITHOUT_ANN[CRM_WITHOUT_ANN.index(b"\r\n") + 2 :]
ANN_ROW = CRM[CRM.rindex(b"C0000001") :]


def test_files_of_one_feed_searched_together_are_each_rewritten_by_their_own_rows(landed):
    """Erasure stages a feed's files in batches, like the loader: each file keeps its own row
    numbers, a file without the person is left alone, and one the loader refused whole (here
    it lacks columns) loses only the line that names her."""
    connection, landing, contracts, originals = landed
    header = CRM[: CRM.index(b"\r\n") + 2]
    more = {
        "crm/crm_2026-03-02.csv": header + BOB_ROW,
        "crm/crm_2026-03-03.csv": header + BOB_ROW + ANN_ROW,
        "crm/crm_2026-03-04.csv": b"crm_id,email\r\nC0000002,bob.stone@outlook.com\r\n"
        b"C0000009,ANN.LEE@gmail.com\r\n",
    }
    for relative, content in more.items():
        (landing / relative).write_bytes(content)
    Loader(connection, landing, contracts, salt=TEST_SALT).land_all(progress=False)
    removed_for_request(connection, ["crm/crm_2026-03-01.csv", *more])

    outcome = follow(connection, landing, contracts, [REQUEST])

    assert [(r.location, r.action, r.rows_before, r.rows_removed) for r in outcome.rewrites] == [
        ("landing/crm/crm_2026-03-01.csv", "rewritten", 3, 2),
        ("landing/crm/crm_2026-03-03.csv", "rewritten", 2, 1),
        ("landing/crm/crm_2026-03-04.csv", "rewritten", 3, 1),
    ]
    assert outcome.files_searched == 4
    assert (landing / "crm/crm_2026-03-01.csv").read_bytes() == CRM_WITHOUT_ANN
    assert (landing / "crm/crm_2026-03-02.csv").read_bytes() == more["crm/crm_2026-03-02.csv"]
    assert (landing / "crm/crm_2026-03-03.csv").read_bytes() == header + BOB_ROW
    assert (landing / "crm/crm_2026-03-04.csv").read_bytes() == (
        b"crm_id,email\r\nC0000002,bob.stone@outlook.com\r\n"
    )
    assert [r.rows for r in outcome.rewrites] == [(2, 5), (3,), (3,)]


def test_an_original_put_back_is_rewritten_to_the_same_bytes(landed):
    connection, landing, contracts, originals = landed
    removed_for_request(connection, ["crm/crm_2026-03-01.csv", "orders/store_2026-03-01.parquet"])
    follow(connection, landing, contracts, [REQUEST])
    rewritten = {f: (landing / f).read_bytes() for f in FILES}
    # restored from a backup under its own name, and dropped in again under another
    (landing / "crm/crm_2026-03-01.csv").write_bytes(originals["crm/crm_2026-03-01.csv"])
    (landing / "crm/crm_copy.csv").write_bytes(originals["crm/crm_2026-03-01.csv"])
    store = originals["orders/store_2026-03-01.parquet"]
    (landing / "orders/store_2026-03-01.parquet").write_bytes(store)
    reports = Loader(connection, landing, contracts, salt=TEST_SALT).land_all(progress=False)
    [copy] = [f for report in reports for f in report.files]
    assert (copy.file, copy.status, copy.rows_loaded) == ("crm/crm_copy.csv", "skipped", 0)

    outcome = follow(connection, landing, contracts)  # a later run: nobody new to erase
    assert sorted((r.location, r.reason) for r in outcome.rewrites) == [
        ("landing/crm/crm_2026-03-01.csv", FOR_ORIGINAL),
        ("landing/crm/crm_copy.csv", FOR_ORIGINAL),
        ("landing/orders/store_2026-03-01.parquet", FOR_ORIGINAL),
    ]
    assert (landing / "crm/crm_2026-03-01.csv").read_bytes() == rewritten["crm/crm_2026-03-01.csv"]
    assert (landing / "crm/crm_copy.csv").read_bytes() == CRM_WITHOUT_ANN
    assert (landing / "orders/store_2026-03-01.parquet").read_bytes() == rewritten[
        "orders/store_2026-03-01.parquet"
    ]
    assert follow(connection, landing, contracts).rewrites == []  # nothing left to do


def test_a_replay_landed_after_erasure_is_rewritten_once_the_tombstones_dropped_its_rows(landed):
    connection, landing, contracts, originals = landed
    replay = landing / "crm/replay.csv"
    replay.write_bytes(CRM.replace(b"2026-01-01 10:00:00,\r\n", b"2026-01-03 10:00:00,\r\n"))
    [report] = [
        r
        for r in Loader(connection, landing, contracts, salt=TEST_SALT).land_all(progress=False)
        if r.feed == "crm"
    ]
    [landed_replay] = report.files
    assert (landed_replay.rows_loaded, landed_replay.rows_erased) == (1, 2)
    outcome = follow(connection, landing, contracts)
    assert [(r.location, r.rows_removed, r.reason, r.by_request) for r in outcome.rewrites] == [
        ("landing/crm/replay.csv", 2, FOR_ERASED_ROWS, {REQUEST: 2})
    ]
    assert b"C0000001" not in replay.read_bytes() and b"C0000002" in replay.read_bytes()
    assert follow(connection, landing, contracts).rewrites == []


def test_archived_files_are_found_and_rewritten_and_expire(landed):
    connection, landing, contracts, originals = landed
    archive = landing.with_name("landing_archive")
    moved = archive_landed_files(connection, landing, archive, contracts["crm"], date(2026, 3, 5))
    assert moved == ["crm/crm_2026-03-01.csv"]
    assert not (landing / "crm/crm_2026-03-01.csv").exists()
    removed_for_request(connection, ["crm/crm_2026-03-01.csv"])
    outcome = follow(connection, landing, contracts, [REQUEST])
    assert [(r.location, r.rows_removed) for r in outcome.rewrites] == [
        ("landing_archive/2026-03-05/crm/crm_2026-03-01.csv", 2)
    ]
    assert (archive / "2026-03-05/crm/crm_2026-03-01.csv").read_bytes() == CRM_WITHOUT_ANN
    assert expire_archive(archive, 30, date(2026, 4, 4)) == []
    assert expire_archive(archive, 30, date(2026, 4, 5)) == ["2026-03-05"]
    assert not (archive / "2026-03-05").exists()


def _text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist())
    return data.decode("utf-8")
