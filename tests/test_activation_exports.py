"""Exports (ml/activation): configuration checks, one outcome per member, sticky holdouts, the
four files byte by byte, which files each consent purpose gets, the manifest, match readiness,
`latest`, the run tables and the blocking check, on a hand-made DuckDB warehouse of 15 segment
members.

The members and why each ends where it does (consent purpose email_marketing, export name
`basket_reminder`, buckets from the test salt in tests/conftest.py):

    cus_0001  export     gmail-style address at googlemail.com, UK phone, titled name
    cus_0002  holdout    bucket 561  (< 1000: held out at 10%)
    cus_0003  export     Google's own examples: alexz@example.com, (800) 555-0100
    cus_0004  export     a first name that is a spreadsheet formula; no phone
    cus_0005  export     no email and no phone: in audience.csv, not in the platform files
    cus_0006  holdout    bucket 647
    cus_0007  export     bucket 1537: exported at 10%, held out at 20%; invalid phone
    cus_0008  export     phone only
    cus_0009  left out   erasure_requested (also unsubscribed: erasure comes first)
    cus_0010  left out   global_unsubscribe (also do-not-sell)
    cus_0011  left out   do_not_sell
    cus_0012  left out   consent_withdrawn
    cus_0013  left out   no_consent (ledger says no_record; ads consent does not count)
    cus_0014  left out   no_consent (no ledger row at all)
    cus_0026  left out   consent_withdrawn, although its bucket (272) is in the holdout
Not members: cus_0015 (membership closed), cus_0016 (another segment).

The same people, with the same consents given for ads_personalization (or analytics) instead,
make the ads (analytics) export: same export name, so the same buckets and outcomes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import textwrap
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from activation_builders import (
    CATALOGUE,
    consent,
    copy_live_views,
    create_inputs,
    export_config,
    insert,
    segment,
    suppression,
)

from ml.activation import (
    AUDIENCE_CSV,
    AUDIENCE_PARQUET,
    FILE_NAMES,
    GOOGLE_CSV,
    MANIFEST,
    META_CSV,
    ExportValidationError,
    build_candidates,
    describe_file,
    holdout_bucket,
    holdout_bucket_sql,
    load_exports,
    record_blocked,
    verify_candidates,
    verify_export_folder,
    write_export,
)
from ml.activation.candidates import live_state
from ml.activation.config import PURPOSE_FORMATS, ExportConfig

TEST_SALT = "7e57" * 16  # the salt tests/conftest.py sets in $TEAL_SALT
EXPORT = "basket_reminder"
AS_OF = "2026-11-20"
RUN = "run-0001"
GENERATED_AT = datetime(2026, 11, 21, 6, 30)
SEGMENT = segment("test_audience")
CONFIG = export_config(
    SEGMENT,
    name=EXPORT,
    attributes=["rfm_segment", "lifetime_revenue_gbp", "favourite_category"],
    holdout_percent=10,
)
ADS_SEGMENT = segment("ads_audience", "ads_personalization")
ADS_CONFIG = export_config(ADS_SEGMENT, name=EXPORT, holdout_percent=10)
ANALYTICS_SEGMENT = segment("analytics_audience", "analytics")
ANALYTICS_CONFIG = export_config(ANALYTICS_SEGMENT, name=EXPORT, holdout_percent=10)
BY_PURPOSE = {
    "email_marketing": (SEGMENT, CONFIG),
    "ads_personalization": (ADS_SEGMENT, ADS_CONFIG),
    "analytics": (ANALYTICS_SEGMENT, ANALYTICS_CONFIG),
}
MEMBERS = [f"cus_{i:04d}" for i in range(1, 15)] + ["cus_0026"]
EXPORTED = ["cus_0001", "cus_0003", "cus_0004", "cus_0005", "cus_0007", "cus_0008"]
HOLDOUT = ["cus_0002", "cus_0006"]
EXPECTED_OUTCOMES = {
    **dict.fromkeys(EXPORTED, ("export", None)),
    **dict.fromkeys(HOLDOUT, ("holdout", None)),
    "cus_0009": ("left_out", "erasure_requested"),
    "cus_0010": ("left_out", "global_unsubscribe"),
    "cus_0011": ("left_out", "do_not_sell"),
    "cus_0012": ("left_out", "consent_withdrawn"),
    "cus_0013": ("left_out", "no_consent"),
    "cus_0014": ("left_out", "no_consent"),
    "cus_0026": ("left_out", "consent_withdrawn"),
}
LEFT_OUT = {
    "erasure_requested": 1,
    "global_unsubscribe": 1,
    "do_not_sell": 1,
    "consent_withdrawn": 2,
    "no_consent": 2,
}

PROFILES = [
    {
        "customer_id": "cus_0001",
        "first_name": "Mrs. Zoë",
        "last_name": "Pérez, Jr.",
        "email": "Jefferson.LOVES.Hiking@googlemail.com",
        "phone": "+442079460018",
        "birth_date": date(1984, 3, 2),
        "gender": "F",
        "city": "London",
        "postcode": "SW1A 1AA",
        "country_code": "GB",
    },
    {"customer_id": "cus_0002", "first_name": "Held", "email": "held.out@example.com"},
    {
        "customer_id": "cus_0003",
        "first_name": "Alex",
        "last_name": "Z",
        "email": "alexz@example.com",
        "phone": "+18005550100",
        "gender": "M",
        "city": "Menlo Park",
        "postcode": "94025-1234",
        "country_code": "US",
    },
    {
        "customer_id": "cus_0004",
        "first_name": '=HYPERLINK("http://evil.example","x")',
        "last_name": "Smith, Ltd",
        "email": "user.name+NYC@Example.com",
    },
    {"customer_id": "cus_0005", "first_name": "Nobody", "last_name": "Known"},
    {"customer_id": "cus_0006", "first_name": "Also", "email": "also.held@example.com"},
    {"customer_id": "cus_0007", "email": "jane.doe@gmail.com", "phone": "12345"},
    {"customer_id": "cus_0008", "phone": "+448444124653", "gender": "U", "country_code": "GB"},
    *({"customer_id": f"cus_{i:04d}", "email": f"c{i}@example.com"} for i in range(9, 17)),
    {"customer_id": "cus_0026", "email": "c26@example.com"},
]
ATTRIBUTES = [
    {
        "customer_id": "cus_0001",
        "lifetime_orders": 4,
        "lifetime_revenue_gbp": 120.5,
        "rfm_segment": "Champions",
        "favourite_category": "Women, Shoes",
        "is_outlier": False,
    },
    {
        "customer_id": "cus_0003",
        "lifetime_orders": 1,
        "lifetime_revenue_gbp": -12.5,
        "rfm_segment": "New",
        "favourite_category": "@home",
        "is_outlier": True,
    },
    {"customer_id": "cus_0004", "lifetime_orders": 0, "rfm_segment": "-Lost"},
    {"customer_id": "cus_0007", "lifetime_orders": 2, "lifetime_revenue_gbp": 40.0},
    {"customer_id": "cus_0002", "lifetime_orders": 9, "rfm_segment": "Loyal"},
]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def bucket(customer_id: str, key: str = EXPORT) -> int:
    """The holdout bucket, computed here independently of ml.activation.holdouts."""
    digest = sha(f"{TEST_SALT}:holdout:{key}:{customer_id}")
    return int(digest[:8], 16) % 10_000


def build(path: Path, purpose: str = "email_marketing") -> duckdb.DuckDBPyConnection:
    """The warehouse; the consents are for `purpose` (cus_0013 has only another one)."""
    the_segment = BY_PURPOSE[purpose][0]
    other = "ads_personalization" if purpose == "email_marketing" else "email_marketing"
    connection = duckdb.connect(str(path))
    create_inputs(connection)
    insert(connection, "marts.dim_customers", PROFILES)
    insert(connection, "marts.dim_customer_attributes", ATTRIBUTES)
    opened = datetime(2026, 11, 20, 12)
    memberships = [
        {"segment_name": the_segment.name, "customer_id": c, "valid_from": opened} for c in MEMBERS
    ]
    memberships += [
        {
            "segment_name": the_segment.name,
            "customer_id": "cus_0015",
            "valid_from": datetime(2026, 11, 1),
            "valid_to": datetime(2026, 11, 10),
        },
        {"segment_name": "another_segment", "customer_id": "cus_0016", "valid_from": opened},
    ]
    insert(connection, "segments.segment_memberships", memberships)
    granted = [c for c in MEMBERS if c not in ("cus_0012", "cus_0013", "cus_0014", "cus_0026")]
    ledger = [consent(c, purpose, "granted") for c in granted]
    ledger += [
        consent("cus_0012", purpose, "withdrawn"),
        consent("cus_0026", purpose, "withdrawn"),
        consent("cus_0013", purpose, "no_record"),
        consent("cus_0013", other, "granted"),
        consent("cus_0015", purpose, "granted"),
        consent("cus_0016", purpose, "granted"),
    ]
    insert(connection, "marts.dim_consent_ledger", ledger)
    insert(
        connection,
        "marts.dim_suppression_list",
        [
            suppression("cus_0009", "global_unsubscribe"),
            suppression("cus_0009", "erasure_requested"),
            suppression("cus_0010", "do_not_sell"),
            suppression("cus_0010", "global_unsubscribe"),
            suppression("cus_0011", "do_not_sell"),
        ],
    )
    copy_live_views(connection)
    return connection


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = build(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def export_for(
    connection: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    purpose: str = "email_marketing",
    config: ExportConfig | None = None,
):
    the_segment, default = BY_PURPOSE[purpose]
    config = config or default
    build_candidates(connection, config, the_segment, RUN, AS_OF, salt=TEST_SALT)
    return write_export(
        connection, config, the_segment, RUN, AS_OF, tmp_path / "exports", GENERATED_AT
    )


@pytest.fixture
def exported(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path):
    """The email_marketing export: audience.csv and audience.parquet."""
    return warehouse, export_for(warehouse, tmp_path)


@pytest.fixture
def exported_ads(tmp_path: Path):
    """The ads_personalization export: the Google and Meta files and audience.parquet."""
    connection = build(tmp_path / "ads.duckdb", "ads_personalization")
    yield connection, export_for(connection, tmp_path, "ads_personalization")
    connection.close()


def outcomes(connection: duckdb.DuckDBPyConnection, run_id: str = RUN) -> dict:
    rows = connection.execute(
        "select customer_id, outcome, left_out_reason from activation.export_candidates "
        "where run_id = ? order by customer_id",
        [run_id],
    ).fetchall()
    return {customer: (outcome, reason) for customer, outcome, reason in rows}


def data_rows(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))[1:]


# --- candidates and holdouts --------------------------------------------------------------------


def test_every_member_gets_exactly_one_outcome(warehouse: duckdb.DuckDBPyConnection) -> None:
    summary = build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    assert outcomes(warehouse) == EXPECTED_OUTCOMES
    assert summary["members"] == 15
    assert summary["export"] == 6
    assert summary["holdout"] == 2
    assert summary["left_out"] == LEFT_OUT
    assert summary["left_out_total"] == 7
    assert summary["export"] + summary["holdout"] + summary["left_out_total"] == 15
    assert summary["as_of"] == datetime(2026, 11, 21)
    purposes = warehouse.execute(
        "select distinct consent_purpose, segment_name, export_name "
        "from activation.export_candidates"
    ).fetchall()
    assert purposes == [("email_marketing", "test_audience", EXPORT)]


def test_rebuilding_a_run_replaces_its_rows(warehouse: duckdb.DuckDBPyConnection) -> None:
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    (count,) = warehouse.execute("select count(*) from activation.export_candidates").fetchone()
    assert count == 15


def test_holdout_buckets_match_an_independent_hash(warehouse: duckdb.DuckDBPyConnection) -> None:
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    stored = dict(
        warehouse.execute(
            "select customer_id, holdout_bucket from activation.export_candidates"
        ).fetchall()
    )
    assert stored == {c: bucket(c) for c in MEMBERS}
    assert stored["cus_0002"] == 561
    assert stored["cus_0006"] == 647
    assert stored["cus_0007"] == 1537
    assert stored["cus_0026"] == 272
    assert holdout_bucket("cus_0002", EXPORT, TEST_SALT) == 561
    # The SQL expression and the Python function agree on many ids.
    ids = [f"id-{n}" for n in range(2000)]
    sql = warehouse.execute(
        f"select id, {holdout_bucket_sql('id', EXPORT, TEST_SALT)} from unnest($ids) as t(id)",
        {"ids": ids},
    ).fetchall()
    assert dict(sql) == {i: bucket(i) for i in ids}


def test_holdout_is_sticky_and_raising_it_only_adds(warehouse: duckdb.DuckDBPyConnection) -> None:
    def held(run_id: str) -> list[str]:
        return sorted(c for c, (o, _) in outcomes(warehouse, run_id).items() if o == "holdout")

    # each build replaces the export's candidates: look at each run right after it
    build_candidates(warehouse, CONFIG, SEGMENT, "run-a", AS_OF, salt=TEST_SALT)
    assert held("run-a") == HOLDOUT
    build_candidates(warehouse, CONFIG, SEGMENT, "run-b", "2026-11-21", salt=TEST_SALT)
    assert held("run-b") == HOLDOUT
    assert held("run-a") == []
    wider = export_config(SEGMENT, name=EXPORT, holdout_percent=20)
    build_candidates(warehouse, wider, SEGMENT, "run-c", "2026-11-22", salt=TEST_SALT)
    assert held("run-c") == ["cus_0002", "cus_0006", "cus_0007"]
    # Another export of the same people draws its own holdout.
    other = export_config(SEGMENT, name="another_export", holdout_percent=10)
    build_candidates(warehouse, other, SEGMENT, "run-d", AS_OF, salt=TEST_SALT)
    eligible = [c for c, (o, _) in EXPECTED_OUTCOMES.items() if o != "left_out"]
    assert held("run-d") == sorted(c for c in eligible if bucket(c, "another_export") < 1000)


def test_zero_holdout_exports_every_eligible_member(warehouse: duckdb.DuckDBPyConnection) -> None:
    config = export_config(SEGMENT, name=EXPORT, holdout_percent=0)
    summary = build_candidates(warehouse, config, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    assert (summary["export"], summary["holdout"]) == (8, 0)


def test_an_unknown_suppression_reason_stops_the_build(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    insert(warehouse, "marts.dim_suppression_list", [suppression("cus_0001", "bounced")])
    with pytest.raises(ValueError, match=r"marts.dim_suppression_list.*\['bounced'\]"):
        build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    with (
        duckdb.connect(str(tmp_path / "empty.duckdb")) as connection,
        pytest.raises(RuntimeError, match="segments.segment_memberships and"),
    ):
        build_candidates(connection, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)


# --- verification (the blocking check) ----------------------------------------------------------


def test_verify_passes_a_clean_run(warehouse: duckdb.DuckDBPyConnection) -> None:
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    problems = verify_candidates(
        warehouse, RUN, EXPORT, "email_marketing", holdout_percent=10, salt=TEST_SALT
    )
    assert problems.empty
    assert list(problems.columns) == ["customer_id", "problem", "detail"]


@pytest.mark.parametrize("read_once", [False, True], ids=["views", "one reading"])
def test_verify_finds_planted_bad_rows(warehouse: duckdb.DuckDBPyConnection, read_once) -> None:
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    # A withdrawal that arrived after the marts were built: only the live view knows it.
    warehouse.execute(
        "update intermediate.int_consent_states set consent_state = 'withdrawn', "
        "has_consent = false where customer_id = 'cus_0003' and purpose = 'email_marketing'"
    )
    # A new do-not-sell request, also only live.
    warehouse.execute(
        "insert into intermediate.int_suppressions values "
        "('cus_0004', 'do_not_sell', '2026-11-20 10:00:00', 'evt_late')"
    )
    # Rows tampered with in the candidates table: a suppressed one, a held-out one, and a
    # bucket that is not the one this salt gives.
    warehouse.execute(
        "update activation.export_candidates set outcome = 'export', left_out_reason = null "
        "where customer_id in ('cus_0011', 'cus_0002')"
    )
    warehouse.execute(
        "update activation.export_candidates set holdout_bucket = 9999 "
        "where customer_id = 'cus_0008'"
    )
    if read_once:  # as the pipeline checks all its exports: the live views read once
        with live_state(warehouse) as live:
            problems = verify_candidates(
                warehouse, RUN, EXPORT, "email_marketing", salt=TEST_SALT, live=live
            )
        assert warehouse.execute(
            "select count(*) from duckdb_tables() where temporary"
        ).fetchone() == (0,)
    else:
        problems = verify_candidates(warehouse, RUN, EXPORT, "email_marketing", salt=TEST_SALT)
    found = list(problems[["customer_id", "problem"]].itertuples(index=False, name=None))
    assert found == [
        ("cus_0002", "holdout"),
        ("cus_0003", "no_consent"),
        ("cus_0004", "suppressed"),
        ("cus_0008", "bucket_mismatch"),
        ("cus_0011", "suppressed"),
    ]
    details = dict(zip(problems["customer_id"], problems["detail"], strict=True))
    assert details["cus_0011"] == "do_not_sell"
    assert details["cus_0002"] == "bucket 561 is below the holdout threshold 648"
    assert details["cus_0008"].startswith("stored bucket 9999 is not 8410")


def test_a_blocked_export_is_recorded_and_writes_nothing(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    build_candidates(warehouse, CONFIG, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    warehouse.execute(
        "delete from intermediate.int_consent_states where customer_id in ('cus_0001', 'cus_0003')"
    )
    problems = verify_candidates(warehouse, RUN, EXPORT, "email_marketing", salt=TEST_SALT)
    record_blocked(warehouse, CONFIG, SEGMENT, RUN, AS_OF, problems, tmp_path / "exports")
    assert not (tmp_path / "exports").exists()
    assert warehouse.execute(
        "select status, rows_exported, rows_holdout from activation.export_runs"
    ).fetchall() == [("blocked", 0, 0)]
    assert warehouse.execute("select count(*) from activation.export_members").fetchone() == (0,)
    action, rows, details = warehouse.execute(
        "select action, row_count, details from privacy.audit_log"
    ).fetchone()
    assert (action, rows) == ("export_blocked", 2)
    assert json.loads(details)["problems"] == {"no_consent": 2}


# --- files ----------------------------------------------------------------------------------------


def test_audience_csv_exact_bytes(exported) -> None:
    _, result = exported
    raw = result.path(AUDIENCE_CSV).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    assert raw.count(b"\r\n") == 7 and raw.count(b"\n") == 7  # CRLF only, header + 6 rows
    expected = (
        "\ufeffcustomer_id,email,first_name,last_name,rfm_segment,lifetime_revenue_gbp,"
        "favourite_category\r\n"
        'cus_0001,Jefferson.LOVES.Hiking@googlemail.com,Mrs. Zoë,"Pérez, Jr.",Champions,'
        '120.5,"Women, Shoes"\r\n'
        "cus_0003,alexz@example.com,Alex,Z,New,-12.5,'@home\r\n"
        'cus_0004,user.name+NYC@Example.com,"\'=HYPERLINK(""http://evil.example"",""x"")",'
        '"Smith, Ltd",\'-Lost,,\r\n'
        "cus_0005,,Nobody,Known,,,\r\n"
        "cus_0007,jane.doe@gmail.com,,,,40.0,\r\n"
        "cus_0008,,,,,,\r\n"
    )
    assert raw.decode("utf-8") == expected


def test_google_file_headers_and_hashes(exported_ads) -> None:
    _, result = exported_ads
    text = result.path(GOOGLE_CSV).read_bytes().decode("utf-8")
    assert not text.startswith("\ufeff")
    lines = text.split("\n")
    assert lines[0] == "Email,Phone,First Name,Last Name,Country,Zip"
    rows = data_rows(result.path(GOOGLE_CSV))
    assert len(rows) == 5  # cus_0005 has neither a valid email nor a valid phone
    first, alex, formula, jane, phone_only = rows
    # cus_0001: googlemail dots removed; Google's template names (titles/suffixes dropped).
    assert first == [
        "2824967181c781aced84c32bf8bb51fc6401202eeff88263776f63c99df9314c",
        "faad3b10918e39b5f4d5334f1e1e128719608e8bd3ad3b963dc30187b4518e23",
        "2752b88686847fa5c86f47b94ce652b7b3f22a91c37617d451a4db9afa431450",  # zoë
        "6654977d57dddd3c0329ca741b109ef6cd6430bedd00008aad213df25683d77f",  # pérez
        "GB",
        "SW1A 1AA",
    ]
    # cus_0003: the hashes Google publishes for alexz@example.com and +18005550100.
    assert alex[:2] == [
        "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a",
        "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
    ]
    assert alex[4:] == ["US", "94025-1234"]
    assert formula[0] == sha("user.name+nyc@example.com")
    assert formula[1] == "" and formula[4:] == ["", ""]
    assert jane[:2] == [sha("janedoe@gmail.com"), ""]  # gmail rewrite; 12345 is no phone
    assert phone_only == ["", sha("+448444124653"), "", "", "GB", ""]


def test_meta_file_headers_and_hashes(exported_ads) -> None:
    _, result = exported_ads
    text = result.path(META_CSV).read_bytes().decode("utf-8")
    assert text.split("\n")[0] == "email,phone,fn,ln,ct,st,zip,country,doby,gen"
    rows = data_rows(result.path(META_CSV))
    assert len(rows) == 5
    first, alex, _, jane, phone_only = rows
    assert first == [
        sha("jefferson.loves.hiking@googlemail.com"),  # Meta keeps the dots
        sha("442079460018"),
        sha("mrszoë"),  # Meta: letters only; no title or suffix rule
        sha("pérezjr"),
        sha("london"),
        "",  # no state column in the profile
        sha("sw1a1"),  # UK: area, district and sector
        sha("gb"),
        sha("1984"),
        sha("f"),
    ]
    assert alex == [
        "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a",
        "92cfdc5fbcd4a20fbe5d3857af6c1aba31762105bba7f21a17155e920653046c",  # 18005550100
        sha("alex"),
        sha("z"),
        sha("menlopark"),
        "",
        "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7",  # 94025
        "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",  # us
        "",
        "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a",  # m
    ]
    assert jane[0] == sha("jane.doe@gmail.com")  # no gmail rewrite for Meta
    assert phone_only == ["", sha("448444124653"), "", "", "", "", "", sha("gb"), "", ""]


def test_parquet_has_every_attribute_and_the_same_rows(exported) -> None:
    _, result = exported
    table = pq.read_table(result.path(AUDIENCE_PARQUET))
    assert table.column_names == [
        "customer_id",
        "lifetime_orders",
        "lifetime_revenue_gbp",
        "rfm_segment",
        "favourite_category",
        "is_outlier",
    ]
    assert table.column("customer_id").to_pylist() == EXPORTED
    assert table.column("lifetime_orders").to_pylist() == [4, 1, 0, None, 2, None]
    audience = [row[0] for row in data_rows(result.path(AUDIENCE_CSV), "utf-8-sig")]
    assert audience == EXPORTED


@pytest.mark.parametrize("fixture", ["exported", "exported_ads"])
def test_no_holdout_or_left_out_person_in_any_file(fixture: str, request) -> None:
    _, result = request.getfixturevalue(fixture)
    absent = [c for c in MEMBERS if c not in EXPORTED]
    emails = {p["customer_id"]: p.get("email") for p in PROFILES}
    needles = absent + [emails[c] for c in absent if emails[c]]
    needles += [sha(emails[c]) for c in absent if emails[c]]
    for name in (*result.files, MANIFEST):
        content = result.path(name).read_bytes()
        for needle in needles:
            assert needle.encode() not in content, f"{needle} found in {name}"
    ids = pq.read_table(result.path(AUDIENCE_PARQUET)).column("customer_id").to_pylist()
    assert not set(ids) & set(absent)


def test_manifest_describes_every_file(exported) -> None:
    _, result = exported
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert manifest["formats"] == ["csv", "parquet"]
    assert manifest["export_name"] == EXPORT
    assert manifest["segment"] == "test_audience"
    assert manifest["definition_hash"] == SEGMENT.definition_hash
    assert manifest["consent_purpose"] == "email_marketing"
    assert manifest["run_id"] == RUN
    assert manifest["as_of"] == "2026-11-21T00:00:00Z"
    assert manifest["export_date"] == "2026-11-20"
    assert manifest["generated_at"] == "2026-11-21T06:30:00Z"
    assert manifest["rows"] == 6
    assert manifest["holdout_rows"] == 2
    assert manifest["left_out"] == LEFT_OUT
    assert manifest["amendments"] == []
    assert list(manifest["files"]) == [AUDIENCE_CSV, AUDIENCE_PARQUET]
    assert_files_match_manifest(result, manifest)


def assert_files_match_manifest(result, manifest: dict) -> None:
    rows = {AUDIENCE_CSV: 6, GOOGLE_CSV: 5, META_CSV: 5, AUDIENCE_PARQUET: 6}
    for name, entry in manifest["files"].items():
        content = result.path(name).read_bytes()
        assert entry == {"rows": rows[name], "sha256": sha256_bytes(content), "bytes": len(content)}
        assert describe_file(result.path(name)) == entry  # rows counted again from the file
    assert manifest["files"] == result.files


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


READINESS = {
    "rows": 6,
    "valid_email": 4,  # 0001, 0003, 0004, 0007
    "valid_email_share": 0.6667,
    "valid_phone": 3,  # 0001, 0003, 0008 (0007's 12345 is not a number)
    "valid_phone_share": 0.5,
    "gmail_rewrites": 2,  # 0001 (googlemail dots), 0007 (gmail dot)
    "no_usable_identifier": 1,  # 0005
}


def test_match_readiness(exported) -> None:
    _, result = exported
    assert result.readiness == READINESS
    assert json.loads(result.manifest.read_text())["match_readiness"] == READINESS


# --- which files each consent purpose gets ----------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "formats", "files"),
    [
        ("email_marketing", ["csv", "parquet"], [AUDIENCE_CSV, AUDIENCE_PARQUET]),
        (
            "ads_personalization",
            ["google", "meta", "parquet"],
            [GOOGLE_CSV, META_CSV, AUDIENCE_PARQUET],
        ),
        ("analytics", ["parquet"], [AUDIENCE_PARQUET]),
    ],
)
def test_each_purpose_writes_exactly_its_files(
    purpose: str, formats: list[str], files: list[str], tmp_path: Path
) -> None:
    connection = build(tmp_path / "warehouse.duckdb", purpose)
    result = export_for(connection, tmp_path, purpose)
    assert result.formats == tuple(formats)
    assert sorted(p.name for p in result.directory.iterdir()) == sorted([*files, MANIFEST])
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert (manifest["consent_purpose"], manifest["formats"]) == (purpose, formats)
    assert list(manifest["files"]) == files
    assert_files_match_manifest(result, manifest)
    # Readiness is about the exported rows' identifiers, so every purpose gets the same.
    assert manifest["match_readiness"] == READINESS == result.readiness
    assert manifest["rows"] == 6
    assert verify_export_folder(connection, result.directory, RUN) == []
    audit_files, details = connection.execute(
        "select files, details from privacy.audit_log"
    ).fetchone()
    assert [Path(f).name for f in audit_files] == [*files, MANIFEST]
    assert json.loads(details)["formats"] == formats
    connection.close()


@pytest.mark.parametrize(
    ("purpose", "formats", "files"),
    [
        ("email_marketing", ["csv"], [AUDIENCE_CSV]),
        ("email_marketing", ["parquet"], [AUDIENCE_PARQUET]),
        ("ads_personalization", ["meta", "google"], [GOOGLE_CSV, META_CSV]),
        ("ads_personalization", ["meta"], [META_CSV]),
    ],
)
def test_configured_formats_write_only_those_files(
    purpose: str, formats: list[str], files: list[str], tmp_path: Path
) -> None:
    connection = build(tmp_path / "warehouse.duckdb", purpose)
    the_segment = BY_PURPOSE[purpose][0]
    config = export_config(the_segment, name=EXPORT, formats=formats)
    result = export_for(connection, tmp_path, purpose, config)
    assert sorted(p.name for p in result.directory.iterdir()) == sorted([*files, MANIFEST])
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert manifest["formats"] == sorted(formats, key=["csv", "google", "meta", "parquet"].index)
    assert list(manifest["files"]) == files
    assert_files_match_manifest(result, manifest)
    assert manifest["match_readiness"] == READINESS
    assert verify_export_folder(connection, result.directory, RUN) == []
    connection.close()


def test_write_export_refuses_a_format_the_purpose_does_not_allow(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Built by hand, past load_exports' checks: write_export checks again and writes nothing.
    config = ExportConfig(
        name=EXPORT,
        segment=SEGMENT.name,
        description="Hand-made.",
        attributes=(),
        holdout_percent=10,
        measurement_window_days=14,
        file="hand.yml",
        formats=("csv", "google"),
    )
    build_candidates(warehouse, config, SEGMENT, RUN, AS_OF, salt=TEST_SALT)
    with pytest.raises(ValueError) as caught:
        write_export(warehouse, config, SEGMENT, RUN, AS_OF, tmp_path / "exports")
    assert str(caught.value) == (
        "export 'basket_reminder' (hand.yml): formats google are not allowed for consent "
        "purpose email_marketing (it allows csv, parquet); remove them from `formats`"
    )
    assert not (tmp_path / "exports").exists()


def test_verify_export_folder_finds_files_beyond_the_formats(exported_ads) -> None:
    connection, result = exported_ads
    assert verify_export_folder(connection, result.directory, RUN) == []
    # A plain-email CSV dropped into an ads folder: not the export's file.
    planted = result.path(AUDIENCE_CSV)
    planted.write_text("customer_id,email\ncus_0001,a@example.com\n", encoding="utf-8")
    assert verify_export_folder(connection, result.directory, RUN) == [
        f"{planted}: not listed in manifest.json, so not written by this export (its formats "
        "do not include it); delete it"
    ]
    # Listed in the manifest as if the export had written it: the purpose does not allow it.
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    manifest["files"][AUDIENCE_CSV] = describe_file(planted)
    result.manifest.write_text(json.dumps(manifest), encoding="utf-8")
    found = verify_export_folder(connection, result.directory, RUN)
    assert found == [
        f"{planted}: consent purpose ads_personalization does not allow this file (it allows "
        "audience.parquet, google_customer_match.csv, meta_custom_audience.csv); delete it and "
        "write the export again",
        # Checked like any audience.csv, too: it is not the run's exported rows.
        f"{planted}: holds 1 rows for 6 exported candidates (or not in customer_id order)",
        f"{result.path(GOOGLE_CSV)}: 5 rows, more than the 1 of audience.csv",
        f"{result.path(META_CSV)}: 5 rows, more than the 1 of audience.csv",
    ]


def test_platform_files_are_checked_against_the_exported_rows(exported_ads) -> None:
    connection, result = exported_ads
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    manifest["rows"] = 4  # fewer than the 5 rows of each platform file
    result.manifest.write_text(json.dumps(manifest), encoding="utf-8")
    found = verify_export_folder(connection, result.directory, RUN)
    assert found == [
        f"{result.path(GOOGLE_CSV)}: 5 rows, more than the 4 exported rows in the manifest",
        f"{result.path(META_CSV)}: 5 rows, more than the 4 exported rows in the manifest",
    ]


def test_layout_and_latest_pointer(exported, tmp_path: Path) -> None:
    _, result = exported
    folder = tmp_path / "exports" / EXPORT
    assert result.directory == folder / "2026-11-20"
    assert sorted(p.name for p in result.directory.iterdir()) == [
        AUDIENCE_CSV,
        AUDIENCE_PARQUET,
        MANIFEST,
    ]
    latest = folder / "latest"
    assert latest.is_symlink()
    assert os.readlink(latest) == "2026-11-20"  # relative: the folder can be moved
    assert latest.resolve() == result.directory.resolve()
    assert sorted(p.name for p in folder.iterdir()) == ["2026-11-20", "latest"]


def test_run_tables_and_audit(exported) -> None:
    connection, result = exported
    runs = connection.execute(
        "select run_id, export_name, segment_name, definition_hash, consent_purpose, as_of, "
        "export_date, generated_at, directory, rows_exported, rows_holdout, left_out, "
        "holdout_percent, measurement_window_days, status from activation.export_runs"
    ).fetchall()
    runs = [(*row[:11], json.loads(row[11]), *row[12:]) for row in runs]
    assert runs == [
        (
            RUN,
            EXPORT,
            "test_audience",
            SEGMENT.definition_hash,
            "email_marketing",
            datetime(2026, 11, 21),
            date(2026, 11, 20),
            GENERATED_AT,
            str(result.directory),
            6,
            2,
            LEFT_OUT,
            10.0,
            14,
            "written",
        )
    ]
    members = connection.execute(
        "select customer_id, group_name, export_date, as_of, segment_name "
        "from activation.export_members order by customer_id"
    ).fetchall()
    expected_groups = {**dict.fromkeys(EXPORTED, "treatment"), **dict.fromkeys(HOLDOUT, "holdout")}
    assert [(c, g) for c, g, *_ in members] == sorted(expected_groups.items())
    assert {tuple(rest) for _, _, *rest in members} == {
        (date(2026, 11, 20), datetime(2026, 11, 21), "test_audience")
    }
    audit = connection.execute(
        "select action, target, run_id, row_count, len(files), details from privacy.audit_log"
    ).fetchall()
    assert [row[:5] for row in audit] == [("export", EXPORT, RUN, 6, 3)]  # 2 files, manifest
    details = json.loads(audit[0][5])
    assert details["left_out"] == LEFT_OUT
    assert details["files"][AUDIENCE_CSV] == result.files[AUDIENCE_CSV]["sha256"]


def test_verify_export_folder_finds_changed_files_and_held_out_ids(exported) -> None:
    connection, result = exported
    assert verify_export_folder(connection, result.directory, RUN) == []
    assert verify_export_folder(connection, result.directory, "another-run") == [
        f"{result.manifest}: run_id is 'run-0001', not this run's 'another-run'; the folder "
        "was not written by this run"
    ]
    audience = result.path(AUDIENCE_CSV)
    with open(audience, "a", encoding="utf-8", newline="") as handle:
        handle.write("cus_0002,held.out@example.com,Held,,,,\r\n")
    found = verify_export_folder(connection, result.directory, RUN)
    assert found[0] == (
        f"{audience}: rows is 7, but manifest.json says 6; the file changed after it was written"
    )
    assert found[1].startswith(f"{audience}: sha256 is ")
    assert found[2].startswith(f"{audience}: bytes is ")
    assert found[3] == (
        f"{audience}: 1 customer(s) that are not exported by run 'run-0001' (held out or left "
        "out), e.g. ['cus_0002']"
    )
    assert len(found) == 4


def test_rerun_on_the_same_day_replaces_folder_and_rows(exported, tmp_path: Path) -> None:
    connection, first = exported
    connection.execute(
        "update marts.dim_customers set first_name = 'Alexandra' where customer_id = 'cus_0003'"
    )
    build_candidates(connection, CONFIG, SEGMENT, "run-0002", AS_OF, salt=TEST_SALT)
    second = write_export(connection, CONFIG, SEGMENT, "run-0002", AS_OF, tmp_path / "exports")
    assert second.directory == first.directory
    assert "Alexandra" in second.path(AUDIENCE_CSV).read_text(encoding="utf-8-sig")
    assert json.loads(second.manifest.read_text())["run_id"] == "run-0002"
    assert connection.execute(
        "select run_id, count(*) from activation.export_members group by run_id"
    ).fetchall() == [("run-0002", 8)]
    assert connection.execute("select run_id from activation.export_runs").fetchall() == [
        ("run-0002",)
    ]
    leftovers = [p.name for p in second.directory.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # A later day moves `latest`; the earlier day stays.
    build_candidates(connection, CONFIG, SEGMENT, "run-0003", "2026-11-21", salt=TEST_SALT)
    third = write_export(
        connection, CONFIG, SEGMENT, "run-0003", "2026-11-21", tmp_path / "exports"
    )
    assert os.readlink(third.directory.parent / "latest") == "2026-11-21"
    assert first.directory.exists()


@pytest.mark.parametrize("purpose", ["email_marketing", "ads_personalization"])
def test_an_empty_audience_writes_headers_only(purpose: str, tmp_path: Path) -> None:
    connection = build(tmp_path / "warehouse.duckdb", purpose)
    connection.execute("delete from marts.dim_consent_ledger")
    result = export_for(connection, tmp_path, purpose)
    assert result.rows == 0
    assert result.left_out["no_consent"] == 12
    headers = {
        AUDIENCE_CSV: "\ufeffcustomer_id,email,first_name,last_name,rfm_segment,"
        "lifetime_revenue_gbp,favourite_category\r\n",
        GOOGLE_CSV: "Email,Phone,First Name,Last Name,Country,Zip\n",
        META_CSV: "email,phone,fn,ln,ct,st,zip,country,doby,gen\n",
    }
    written = [FILE_NAMES[["csv", "google", "meta", "parquet"].index(f)] for f in result.formats]
    assert list(result.files) == written
    for name in written:
        if name in headers:
            assert result.path(name).read_bytes().decode("utf-8") == headers[name]
    assert {name: entry["rows"] for name, entry in result.files.items()} == dict.fromkeys(
        written, 0
    )
    assert result.readiness["valid_email_share"] == 0.0
    connection.close()


# --- configuration -------------------------------------------------------------------------------

SEGMENTS = {s.name: s for s in (SEGMENT, ADS_SEGMENT, ANALYTICS_SEGMENT)}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(folder: Path) -> list[str]:
    with pytest.raises(ExportValidationError) as caught:
        load_exports(folder, SEGMENTS, CATALOGUE)
    return [m.replace(f"{folder}/", "") for m in caught.value.messages()]


def test_load_exports_reads_a_valid_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "exports.yml",
        """\
        exports:
          - segment: test_audience
            name: basket_reminder
            description: Basket reminder   email.
            attributes: [rfm_segment, lifetime_orders]
            holdout_percent: 12.5
            measurement_window_days: 14
          - segment: ads_audience
            description: Ads.
            holdout_percent: 0
            measurement_window_days: 30
        """,
    )
    first, second = load_exports(tmp_path, SEGMENTS, CATALOGUE)
    assert first.name == "basket_reminder"
    assert first.description == "Basket reminder email."
    assert first.attributes == ("rfm_segment", "lifetime_orders")
    assert (first.holdout_percent, first.holdout_threshold) == (12.5, 1250)
    assert second.name == "ads_audience"  # the segment's name by default
    assert second.attributes == ()
    # No `formats`: every format the purpose allows.
    assert first.formats == ("csv", "parquet")
    assert second.formats == ("google", "meta", "parquet")


def test_the_purpose_rule() -> None:
    assert PURPOSE_FORMATS == {
        "email_marketing": ("csv", "parquet"),
        "ads_personalization": ("google", "meta", "parquet"),
        "analytics": ("parquet",),
    }


def test_formats_default_to_the_purpose_and_keep_a_fixed_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "exports.yml",
        """\
        exports:
          - segment: test_audience
            description: Email.
            holdout_percent: 10
            measurement_window_days: 14
          - segment: ads_audience
            description: Ads, Meta and analysts only.
            formats: [parquet, meta]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: analytics_audience
            description: Analysts.
            holdout_percent: 0
            measurement_window_days: 14
        """,
    )
    email, ads, analytics = load_exports(tmp_path, SEGMENTS, CATALOGUE)
    assert email.formats == ("csv", "parquet")
    assert ads.formats == ("meta", "parquet")
    assert analytics.formats == ("parquet",)


def test_formats_the_purpose_does_not_allow_are_named(tmp_path: Path) -> None:
    write(
        tmp_path,
        "formats.yml",
        """\
        exports:
          - segment: ads_audience
            description: Plain emails for an ads purpose.
            formats: [google, csv]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            description: Hashed files for an email purpose.
            formats: [csv, meta]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: analytics_audience
            description: Google for analytics.
            formats: [google]
            holdout_percent: 0
            measurement_window_days: 14
        """,
    )
    assert problems(tmp_path) == [
        "formats.yml: export 'ads_audience': formats[1]: csv (audience.csv: plain email "
        "addresses and names for email and CRM tools) is not allowed: segment 'ads_audience' "
        "has consent_purpose ads_personalization, which allows only google, meta, parquet; csv "
        "needs a segment whose consent_purpose is email_marketing. Remove it, or export a "
        "segment with that purpose",
        "formats.yml: export 'test_audience': formats[1]: meta (meta_custom_audience.csv: "
        "hashed identifiers for Meta Custom Audiences) is not allowed: segment "
        "'test_audience' has consent_purpose email_marketing, which allows only csv, parquet; "
        "meta needs a segment whose consent_purpose is ads_personalization. Remove it, or "
        "export a segment with that purpose",
        "formats.yml: export 'analytics_audience': formats[0]: google "
        "(google_customer_match.csv: hashed identifiers for Google Customer Match) is not "
        "allowed: segment 'analytics_audience' has consent_purpose analytics, which allows "
        "only parquet; google needs a segment whose consent_purpose is ads_personalization. "
        "Remove it, or export a segment with that purpose",
    ]


def test_malformed_formats_are_named(tmp_path: Path) -> None:
    write(
        tmp_path,
        "formats.yml",
        """\
        exports:
          - segment: ads_audience
            name: typo
            description: Unknown format.
            formats: [gogle, meta]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: ads_audience
            name: not_a_list
            description: A string.
            formats: google
            holdout_percent: 10
            measurement_window_days: 14
          - segment: ads_audience
            name: nothing
            description: Empty.
            formats: []
            holdout_percent: 10
            measurement_window_days: 14
          - segment: ads_audience
            name: twice
            description: Twice.
            formats: [meta, meta]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: ads_audience
            name: attributes_nowhere
            description: Attributes without audience.csv.
            attributes: [rfm_segment]
            holdout_percent: 10
            measurement_window_days: 14
        """,
    )
    assert problems(tmp_path) == [
        "formats.yml: export 'typo': formats[0]: unknown format 'gogle' (did you mean "
        "'google'?); formats are csv (audience.csv), google (google_customer_match.csv), meta "
        "(meta_custom_audience.csv), parquet (audience.parquet)",
        "formats.yml: export 'not_a_list': formats: expected a list of formats from csv, "
        "google, meta, parquet, e.g. [google, meta, parquet], got 'google'; leave it out to "
        "write every format ads_personalization allows",
        "formats.yml: export 'nothing': formats: is empty, so the export would write no file; "
        "list at least one of google, meta, parquet (what ads_personalization allows), or "
        "leave `formats` out for all of them",
        "formats.yml: export 'twice': formats[1]: 'meta' is listed twice",
        "formats.yml: export 'attributes_nowhere': attributes: only audience.csv carries "
        "chosen attributes, and this export writes no csv (formats: google, meta, parquet); "
        "remove `attributes` (audience.parquet always has every attribute)",
    ]


def test_bad_exports_are_named_by_file_export_and_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yml",
        """\
        exports:
          - segment: test_audience
            description: Typo in a key.
            holdout_percentage: 10
            measurement_window_days: 14
          - segment: test_audiense
            description: Unknown segment.
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            name: attrs
            description: Unknown attribute.
            attributes: [rfm_segmnt]
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            name: too_many_held
            description: Holdout too big.
            holdout_percent: 75
            measurement_window_days: 14
          - segment: test_audience
            name: long_window
            description: Window too long.
            holdout_percent: 10
            measurement_window_days: 120
          - segment: test_audience
            name: no_description
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            name: Bad Name
            description: Not a slug.
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            name: email_again
            description: A fixed column as an attribute.
            attributes: [email]
            holdout_percent: 10
            measurement_window_days: 14
        """,
    )
    assert problems(tmp_path) == [
        "bad.yml: export 'test_audience': holdout_percentage: unknown key (did you mean "
        "'holdout_percent'?); an export has name, segment, description, attributes, "
        "holdout_percent, measurement_window_days, formats",
        "bad.yml: export 'test_audiense': segment: unknown segment 'test_audiense' (did you "
        "mean 'test_audience'?); name a segment from dbt_project/segments",
        "bad.yml: export 'attrs': attributes[0]: unknown attribute 'rfm_segmnt' (did you mean "
        "'rfm_segment'?); use a column of dim_customer_attributes listed in "
        "activation_builders.py",
        "bad.yml: export 'too_many_held': holdout_percent: 75 is not a number from 0 to 50 (the "
        "percentage of the audience kept out of the files to measure lift; 0 means no holdout)",
        "bad.yml: export 'long_window': measurement_window_days: 120 is not a whole number of "
        "days from 1 to 90 (how long after the export date conversions count)",
        "bad.yml: export 'no_description': description: missing; every export needs segment, "
        "description, holdout_percent, measurement_window_days (name and attributes are "
        "optional)",
        "bad.yml: export 'Bad Name': name: 'Bad Name' is not a slug; use lower-case letters, "
        "digits and underscores, starting with a letter (it names the folder under "
        "data/exports)",
        "bad.yml: export 'email_again': attributes[0]: 'email' is always in audience.csv "
        "(customer_id, email, first_name, last_name come first); remove it",
    ]


def test_clashes_between_exports_are_named(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
        segment: test_audience
        name: reminder
        description: First.
        holdout_percent: 10
        measurement_window_days: 14
        """,
    )
    write(
        tmp_path,
        "b.yml",
        """\
        exports:
          - segment: ads_audience
            name: reminder
            description: Same name.
            holdout_percent: 10
            measurement_window_days: 14
          - segment: test_audience
            name: second_reminder
            description: Same segment.
            holdout_percent: 10
            measurement_window_days: 14
        """,
    )
    assert problems(tmp_path) == [
        "b.yml: export 'reminder': name: export name already used in a.yml; export names must "
        "be unique (set `name:` to tell them apart)",
        "b.yml: export 'second_reminder': segment: segment 'test_audience' already has an "
        "export ('reminder' in a.yml); a segment has at most one export, so add the attributes "
        "you need to that one",
    ]


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    write(tmp_path, "broken.yml", "exports:\n  - segment: [unclosed\n")
    write(tmp_path, "twice.yml", "segment: test_audience\nsegment: ads_audience\n")
    write(tmp_path, "extra.yml", "exports: []\nversion: 2\n")
    messages = problems(tmp_path)
    assert len(messages) == 3
    # the file, the place and the problem
    assert messages[0] == (
        "broken.yml: line 3, column 1: is not valid YAML: expected ',' or ']', but got "
        "'<stream end>'"
    )
    assert messages[1] == (
        "extra.yml: unknown key 'version' beside `exports:`; put it inside an export"
    )
    assert messages[2] == (
        "twice.yml: line 2, column 1: is not valid YAML: key 'segment' is given twice in one "
        "mapping (first on line 1)"
    )


def test_holdout_percent_needs_at_most_two_decimals(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yml",
        "segment: test_audience\ndescription: X.\nholdout_percent: 10.005\n"
        "measurement_window_days: 7\n",
    )
    assert problems(tmp_path) == [
        "x.yml: export 'test_audience': holdout_percent: 10.005 has more than two decimals; "
        "holdouts are drawn in steps of 0.01%"
    ]


def test_the_shipped_exports_validate() -> None:
    exports = load_exports()
    assert [(e.segment, e.formats) for e in exports] == [
        ("cart_abandoners_24h", ("csv", "parquet")),  # email_marketing
        ("lapsed_180d", ("csv",)),  # email_marketing
        ("cluster_2_lookalike_seed", ("google", "meta")),  # ads_personalization
        ("spend_outliers_review", ("parquet",)),  # analytics
        ("likely_buyers_this_month", ("csv", "parquet")),  # email_marketing
    ]
    assert all(0 <= e.holdout_percent <= 50 for e in exports)


def test_audience_csv_opens_in_a_csv_reader(exported) -> None:
    _, result = exported
    text = result.path(AUDIENCE_CSV).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[3][2] == '\'=HYPERLINK("http://evil.example","x")'
    assert all(len(row) == 7 for row in rows)
