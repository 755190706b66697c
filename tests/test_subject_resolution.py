"""Consent, suppression and erasure agree on who a subject is: one resolution, in dbt.

Ann has two CRM records (C1000001 with ann.lee@gmail.com, C1000002 with ann.work@office.co.uk,
one loyalty card), so identity makes one customer of them; Bob is someone else. Feeds are
landed by the real loader, staged by a real `dbt build` of the parts the pipeline runs, and
resolved by the real identity resolution. Then, after that identity run, a withdrawal and an
erasure request arrive for each of four tricky subjects: her email in another case with
spaces, her second email, her second crm id, and a crm id nobody has. The live consent and
suppression views, the erasure facts and the Python erasure must all give the same answer:
Ann's customer for the first three, nobody for the last.

Her Gmail mailbox is written several ways, each reaching her (Gmail ignores dots and +tags,
googlemail.com is gmail.com): a grant under one spelling and a later withdrawal under
another leave her withdrawn, a withdrawal and a later grant leave her granted, and an erasure
request under yet another spelling erases her.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from teal_testing import TEST_SALT, run_dbt

from ml import secrets
from ml.identity.pipeline import resolve_warehouse
from ml.landing import contracts
from ml.landing.loader import Loader
from ml.privacy import subjects
from ml.privacy.erasure import ensure_tables, process_erasure_requests, traces_left
from ml.settings import DBT_SELECTIONS

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("subject_resolution")]

CRM = [
    "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,country,"
    "created_at,updated_at,loyalty_id",
    "C1000001,Ann,Lee,ann.lee@gmail.com,020 7946 0222,1984-03-02,F,1 High St,London,N1 1AA,GB,"
    "2026-01-01 10:00:00,2026-01-01 10:00:00,L10000001",
    "C1000002,Ann,Lee,ann.work@office.co.uk,,1984-03-02,F,1 High St,London,N1 1AA,GB,"
    "2026-02-01 10:00:00,2026-02-01 10:00:00,L10000001",
    "C1000003,Bob,Stone,bob.stone@outlook.com,020 7946 0333,1980-05-06,M,2 Low Rd,Leeds,"
    "LS1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,",
]
CONSENT_HEADER = "event_id,subject,purpose,status,recorded_at,source"
# seen by identity: these resolve through identity's decision for their own record
CONSENT_BEFORE = [
    CONSENT_HEADER,
    "CE100000001,C1000001,email_marketing,granted,2026-10-01T09:00:00Z,signup_form",
    "CE100000002,bob.stone@outlook.com,email_marketing,granted,2026-10-01T09:05:00Z,checkout",
    "CE100000003,ann.work@office.co.uk,data_sale,granted,2026-10-02T09:00:00Z,preference_centre",
    "CE100000004,annlee+news@googlemail.com,ads_personalization,granted,2026-10-03T09:00:00Z,signup_form",
    "CE100000005,Ann.Lee+shop@gmail.com,analytics,withdrawn,2026-10-04T09:00:00Z,cookie_banner",
]
# landed after the identity run: these resolve through their typed identifier
CONSENT_LATE = [
    CONSENT_HEADER,
    "CE100000011, Ann.Lee@Gmail.COM ,all_marketing,withdrawn,2026-11-20T08:00:00Z,preference_centre",
    "CE100000012,ann.work@office.co.uk,data_sale,withdrawn,2026-11-20T08:05:00Z,preference_centre",
    "CE100000013,C1000002,email_marketing,withdrawn,2026-11-20T08:10:00Z,customer_service",
    "CE100000014,C1999999,all_marketing,withdrawn,2026-11-20T08:15:00Z,preference_centre",
    # her mailbox in spellings identity has never seen: they resolve through the mailbox
    "CE100000015,a.n.n.lee@gmail.com,ads_personalization,withdrawn,2026-11-20T08:20:00Z,preference_centre",
    "CE100000016,annlee@googlemail.com,analytics,granted,2026-11-20T08:25:00Z,cookie_banner",
]
ERASURE_LATE = [
    "request_id,subject,requested_at",
    "ER1000001, Ann.Lee@Gmail.COM ,2026-11-20T09:00:00Z",
    "ER1000002,ann.work@office.co.uk,2026-11-20T09:05:00Z",
    "ER1000003,C1000002,2026-11-20T09:10:00Z",
    "ER1000004,C1999999,2026-11-20T09:15:00Z",
    "ER1000005,annlee+bye@googlemail.com,2026-11-20T09:20:00Z",
]
ANN_IDENTIFIERS = [
    "C1000001",
    "C1000002",
    "ann.lee@gmail.com",
    "ann.work@office.co.uk",
    "L10000001",
    "+442079460222",
    "annlee",
    "ann.lee+shop@gmail.com",
    "a.n.n.lee@gmail.com",
]
BOB_IDENTIFIERS = ["C1000003", "bob.stone@outlook.com", "+442079460333"]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def land(warehouse: Path, landing: Path) -> None:
    with duckdb.connect(str(warehouse)) as connection:
        Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)


def build(warehouse: Path, target: Path, part: str) -> None:
    selection = DBT_SELECTIONS[part]
    run_dbt("build", warehouse, target, selection["select"], selection.get("exclude", ""))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The pipeline up to erasure on the hand-made feeds, then the late events landed."""
    root = tmp_path_factory.mktemp("subjects")
    landing, warehouse, target = root / "landing", root / "warehouse.duckdb", root / "dbt_target"
    write_lines(landing / "crm" / "crm_2026-01-01.csv", CRM)
    write_lines(landing / "consent" / "consent_2026-10-02.csv", CONSENT_BEFORE)
    land(warehouse, landing)
    build(warehouse, target, "feeds")
    with duckdb.connect(str(warehouse)) as connection:
        resolve_warehouse(connection, run_id="identity-1")
    build(warehouse, target, "subjects")
    build(warehouse, target, "customers")
    # after the identity run: withdrawals and erasure requests for the tricky subjects
    write_lines(landing / "consent" / "consent_2026-11-20.csv", CONSENT_LATE)
    write_lines(landing / "erasure" / "erasure_2026-11-20.csv", ERASURE_LATE)
    land(warehouse, landing)
    run_dbt("run", warehouse, target, "fct_erasure_requests")
    return warehouse


@pytest.fixture(scope="module")
def customers(warehouse: Path) -> dict[str, str]:
    """Ann's and Bob's customer ids, as identity gave them to their first crm id."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        ids = dict(
            connection.execute(
                "select id_value, customer_id from identity.identifiers "
                "where id_type = 'crm_id' order by id_value"
            ).fetchall()
        )
    assert set(ids) == {"C1000001", "C1000002", "C1000003"}
    # one customer for Ann's two CRM records, another for Bob
    assert ids["C1000001"] == ids["C1000002"] != ids["C1000003"]
    return {"ann": ids["C1000001"], "bob": ids["C1000003"]}


def test_the_subject_view_resolves_every_event_and_request(warehouse, customers):
    ann, bob = customers["ann"], customers["bob"]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select record_key, subject_type, subject, customer_id, resolved_through "
            "from intermediate.int_subjects_resolved order by record_key"
        ).fetchall()
    assert rows == [
        ("consent:CE100000001", "crm_id", "C1000001", ann, "identity_record"),
        ("consent:CE100000002", "email", "bob.stone@outlook.com", bob, "identity_record"),
        ("consent:CE100000003", "email", "ann.work@office.co.uk", ann, "identity_record"),
        ("consent:CE100000004", "email", "annlee+news@googlemail.com", ann, "identity_record"),
        ("consent:CE100000005", "email", "ann.lee+shop@gmail.com", ann, "identity_record"),
        ("consent:CE100000011", "email", "ann.lee@gmail.com", ann, "subject_identifier"),
        ("consent:CE100000012", "email", "ann.work@office.co.uk", ann, "subject_identifier"),
        ("consent:CE100000013", "crm_id", "C1000002", ann, "subject_identifier"),
        ("consent:CE100000014", "crm_id", "C1999999", None, None),
        ("consent:CE100000015", "email", "a.n.n.lee@gmail.com", ann, "subject_mailbox"),
        ("consent:CE100000016", "email", "annlee@googlemail.com", ann, "subject_mailbox"),
        ("erasure:ER1000001", "email", "ann.lee@gmail.com", ann, "subject_identifier"),
        ("erasure:ER1000002", "email", "ann.work@office.co.uk", ann, "subject_identifier"),
        ("erasure:ER1000003", "crm_id", "C1000002", ann, "subject_identifier"),
        ("erasure:ER1000004", "crm_id", "C1999999", None, None),
        ("erasure:ER1000005", "email", "annlee+bye@googlemail.com", ann, "subject_mailbox"),
    ]


def test_consent_suppression_and_erasure_facts_agree(warehouse, customers):
    ann, bob = customers["ann"], customers["bob"]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        consent = connection.execute(
            "select consent_event_id, customer_id from intermediate.int_consent_events_resolved "
            "order by consent_event_id"
        ).fetchall()
        states = connection.execute(
            "select customer_id, purpose, consent_state, consent_event_id "
            "from intermediate.int_consent_states order by customer_id = ?, purpose",
            [bob],
        ).fetchall()
        suppressions = connection.execute(
            "select customer_id, suppression_reason, suppressed_since, source_event_id "
            "from intermediate.int_suppressions order by source_event_id"
        ).fetchall()
        erasure_facts = connection.execute(
            "select erasure_request_id, customer_id from marts.fct_erasure_requests order by 1"
        ).fetchall()
    assert consent == [
        ("CE100000001", ann),
        ("CE100000002", bob),
        ("CE100000003", ann),
        ("CE100000004", ann),
        ("CE100000005", ann),
        ("CE100000011", ann),
        ("CE100000012", ann),
        ("CE100000013", ann),
        ("CE100000014", None),
        ("CE100000015", ann),
        ("CE100000016", ann),
    ]
    # her withdrawals under three different subjects all count for her one customer
    assert states == [
        # granted under one spelling of her mailbox, withdrawn later under another
        (ann, "ads_personalization", "withdrawn", "CE100000015"),
        (ann, "all_marketing", "withdrawn", "CE100000011"),
        # withdrawn under one spelling, granted later under another
        (ann, "analytics", "granted", "CE100000016"),
        (ann, "data_sale", "withdrawn", "CE100000012"),
        (ann, "email_marketing", "withdrawn", "CE100000013"),
        (bob, "email_marketing", "granted", "CE100000002"),
    ]
    assert [(c, r, str(t), e) for c, r, t, e in suppressions] == [
        (ann, "global_unsubscribe", "2026-11-20 08:00:00", "CE100000011"),
        (ann, "do_not_sell", "2026-11-20 08:05:00", "CE100000012"),
        (ann, "erasure_requested", "2026-11-20 09:00:00", "ER1000001"),
    ]
    assert erasure_facts == [
        ("ER1000001", ann),
        ("ER1000002", ann),
        ("ER1000003", ann),
        ("ER1000004", None),
        ("ER1000005", ann),
    ]


def test_erasure_resolves_the_same_customers_and_erases_only_them(warehouse, customers, tmp_path):
    ann, bob = customers["ann"], customers["bob"]
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    manifest = warehouse.parent / "dbt_target" / "manifest.json"
    with duckdb.connect(str(copy)) as connection:
        # the Python erasure's own view of who each pending request is
        ensure_tables(connection)
        connection.execute("begin transaction")
        subjects.load_pending_requests(connection, contracts.load())
        subjects.collect_identifiers(connection)
        resolved = connection.execute(
            f"select request_id, customer_id from {subjects.CUSTOMERS} order by 1"
        ).fetchall()
        connection.execute("rollback")
        subjects.drop_temporary_tables(connection)
        assert resolved == [
            ("ER1000001", ann),
            ("ER1000002", ann),
            ("ER1000003", ann),
            ("ER1000005", ann),
        ]

        bob_before = rows_naming(connection, BOB_IDENTIFIERS + [bob])
        outcome = process_erasure_requests(
            connection,
            exports_root=tmp_path / "exports",
            salt=TEST_SALT,
            run_id="erasure-1",
            dbt_manifest=manifest,
        )
        assert [(r.request_id, r.status, r.customers) for r in outcome.requests] == [
            ("ER1000001", "erased", 1),
            ("ER1000002", "erased", 1),
            ("ER1000003", "erased", 1),
            # nobody resolves to C1999999: only the rows that carry it go
            ("ER1000004", "erased", 0),
            ("ER1000005", "erased", 1),
        ]
        assert outcome.requests[3].rows_removed == {"consent.events": 1, "erasure.requests": 1}
        assert rows_naming(connection, ANN_IDENTIFIERS + [ann, "C1999999"]) == {}
        assert rows_naming(connection, BOB_IDENTIFIERS + [bob]) == bob_before
        assert connection.execute("select crm_id from crm.customers order by 1").fetchall() == [
            ("C1000003",)
        ]
        assert connection.execute("select event_id from consent.events order by 1").fetchall() == [
            ("CE100000002",)
        ]
        assert connection.execute(
            "select id_type, id_value, customer_id from identity.identifiers order by 1, 2"
        ).fetchall() == [
            ("crm_id", "C1000003", bob),
            ("email", "bob.stone@outlook.com", bob),
            ("mailbox", "bob.stone@outlook.com", bob),  # outlook.com: +tags only
            ("phone", "+442079460333", bob),
        ]
        # the live suppression view has nobody left to suppress
        assert connection.execute(
            "select count(*) from intermediate.int_suppressions"
        ).fetchall() == [(0,)]
        tombstones = connection.execute(
            "select identifier_hash from privacy.tombstones order by 1"
        ).fetchall()
        assert sorted(h for (h,) in tombstones) == sorted(
            secrets.salted_hash(value, TEST_SALT)
            for value in (
                "C1000001",
                "C1000002",
                "ann.lee@gmail.com",
                "ann.work@office.co.uk",
                "L10000001",
                "C1999999",
                # her mailbox, the spellings identity saw, and the last request's subject
                "annlee@gmail.com",
                "annlee+news@googlemail.com",
                "ann.lee+shop@gmail.com",
                "annlee+bye@googlemail.com",
            )
        )
        assert traces_left(connection, TEST_SALT).empty


def rows_naming(connection, needles: list[str]) -> dict[str, int]:
    """Rows per base table where any text column contains any needle, any case."""
    columns = connection.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "inner join information_schema.tables using (table_catalog, table_schema, table_name) "
        "where table_type = 'BASE TABLE' and table_catalog = current_database() "
        "and (data_type like '%VARCHAR%' or data_type = 'JSON')"
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for schema, table, column in columns:
        tables.setdefault(f'"{schema}"."{table}"', []).append(column)
    found = {}
    for table, names in sorted(tables.items()):
        condition = " or ".join(
            f'contains(lower(cast("{c}" as varchar)), {needle.lower()!r})'
            for c in names
            for needle in needles
        )
        (count,) = connection.execute(f"select count(*) from {table} where {condition}").fetchall()[
            0
        ]
        if count:
            found[table] = count
    return found
