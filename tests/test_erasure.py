"""Erasure through every layer, on a hand-made warehouse of two people who share a phone.

Ann asks to be erased; Bob shares her family phone (+442079460111) and device (dv_shared0001).
The feeds are landed by the real loader from hand-made files; identity, marts, segments, ML
outputs, activation and an analyst's scratch table are hand-made rows in the real shapes; a real
dbt run builds the views that resolve each request's subject (the dbt part `subjects`); one
export folder holds the four files and manifest. After erasure none of Ann's identifiers (nor
the hashes the ad platforms got) is anywhere, every row of Bob is still there, and replaying
every old feed file brings none of Ann back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from teal_testing import TEST_SALT, run_dbt

from ml import secrets
from ml.activation import hashing
from ml.activation.folders import FILE_NAMES
from ml.landing.contracts import load
from ml.landing.loader import Loader, reconciliation
from ml.privacy import export_matching
from ml.privacy.erasure import Places, compact_warehouse, process_erasure_requests, traces_left
from ml.privacy.personal_columns import find_personal_tables
from ml.privacy.subjects import SubjectsNotResolved
from ml.settings import DBT_SELECTIONS

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("erasure")]

ANN = {
    "crm_id": "C0000001",
    "email": "ann.lee@gmail.com",
    "phone": "+442079460222",
    "loyalty_id": "L00000001",
    "user_id": "U00000001",
    "anonymous_id": "ck_ann000000001",
    "device_id": "dv_ann0000001",
    "customer_id": "cus_ann",
}
BOB = {
    "crm_id": "C0000002",
    "email": "bob.stone@outlook.com",
    "user_id": "U00000002",
    "anonymous_id": "ck_bob000000002",
    "customer_id": "cus_bob",
}
SHARED_PHONE = "+442079460111"
SHARED_DEVICE = "dv_shared0001"
STRANGER_COOKIE = "ck_zzz000000009"
NOBODY = "nobody@nowhere.net"
RUN = "run-erasure-1"
EXPORT_RUN = "run-export-1"
FOLDER = "basket_reminder/2026-03-04"
SNAPSHOT = "20260304T180000000000Z"
EXPORT_FILES = (
    "audience.csv",
    "audience.parquet",
    "google_customer_match.csv",
    "meta_custom_audience.csv",
)

CRM_HEADER = "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,country,created_at,updated_at,loyalty_id"
ORDER_HEADER = "order_id,line_number,customer_ref,ordered_at,channel,store_id,sku,quantity,unit_price,discount,currency,status"
ANN_CRM = "C0000001,Ann,Lee, Ann.Lee@Gmail.com ,020 7946 0222,1984-03-02,F,1 High St,London,N1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,L00000001"
BOB_CRM = "C0000002,Bob,Stone,bob.stone@outlook.com,020 7946 0111,1980-05-06,M,2 Low Rd,Leeds,LS1 1AA,GB,2026-01-01 10:00:00,2026-01-01 10:00:00,"
ANN_ORDER = "O000000101,1, Ann.Lee@Gmail.com ,2026-03-01T10:00:00+00:00,web,,SKU-000001,1,9.99,0,GBP,completed"
BOB_ORDER = (
    "O000000103,1,C0000002,2026-03-01T12:00:00+00:00,web,,SKU-000003,1,19.99,0,GBP,completed"
)


def event(number: int, cookie: str, **fields) -> str:
    document = {
        "event_id": f"{number:032x}",
        "event_type": "page_view",
        "anonymous_id": cookie,
        "occurred_at": "2026-03-01T10:00:00Z",
        "url": "https://shop.example/",
        "properties": {},
    }
    document.update(fields)
    return json.dumps(document)


LANDING_FILES = {
    "crm/crm_2026-01-01.csv": [
        CRM_HEADER,
        ANN_CRM,
        BOB_CRM,
        "C0000001,Ann,Lee,ann.lee@gmail.com,,1984-13-45,F,1 High St,London,N1 1AA,GB,2026-01-02 10:00:00,2026-01-02 10:00:00,L00000001",
        "C0000002,Bob,Stone,bob.stone@outlook.com,,1980-99-99,M,2 Low Rd,Leeds,LS1 1AA,GB,2026-01-02 10:00:00,2026-01-02 10:00:00,",
        "C0000001,Ann,Lee,ann.lee@gmail.com,020 7946 0111,1984-03-02,F,1 High St,London,N1 1AA,GB,2026-01-01 10:00:00,2026-02-01 10:00:00,L00000001",
    ],
    "crm/crm_2026-02-01.csv": [CRM_HEADER, ANN_CRM, BOB_CRM],
    "orders/orders_2026-03-01.csv": [
        ORDER_HEADER,
        ANN_ORDER,
        "O000000102,1,L00000001,2026-03-01T11:00:00+00:00,store,S001,SKU-000002,2,5.00,0,GBP,completed",
        BOB_ORDER,
        "O000000104,1,,2026-03-01T13:00:00+00:00,store,S002,SKU-000004,1,3.50,0,GBP,completed",
        "O000000105,1,ann.lee@gmail.com,2026-03-01T14:00:00+00:00,web,,SKU-000005,-1,1.00,0,GBP,completed",
    ],
    "orders/orders_2026-03-02.csv": [ORDER_HEADER, ANN_ORDER, BOB_ORDER],
    "clickstream/events_2026-03-01.jsonl": [
        event(1, ANN["anonymous_id"], user_id=ANN["user_id"], device_id=ANN["device_id"]),
        event(2, ANN["anonymous_id"], device_id=SHARED_DEVICE),
        event(3, BOB["anonymous_id"], user_id=BOB["user_id"], device_id=SHARED_DEVICE),
        event(4, STRANGER_COOKIE, device_id=SHARED_DEVICE),
        event(5, ANN["anonymous_id"], event_type="teleport"),
        '{"event_id": "00000000000000000000000000000006", "anonymous_id": "ck_ann000000001", broken',
        event(3, BOB["anonymous_id"], user_id=BOB["user_id"], device_id=SHARED_DEVICE),
        event(1, ANN["anonymous_id"], user_id=ANN["user_id"], device_id=ANN["device_id"]),
    ],
    "consent/consent_2026-03-01.csv": [
        "event_id,subject,purpose,status,recorded_at,source",
        "CE000000001, Ann.Lee@Gmail.com ,email_marketing,granted,2026-03-01T09:00:00Z,signup_form",
        "CE000000002,C0000001,ads_personalization,granted,2026-03-01T09:01:00Z,cookie_banner",
        "CE000000003,bob.stone@outlook.com,email_marketing,granted,2026-03-01T09:02:00Z,checkout",
        # Ann's mailbox written another way: Gmail ignores the dots and the +tag
        "CE000000004,annlee+news@googlemail.com,email_marketing,withdrawn,2026-03-02T09:00:00Z,preference_centre",
    ],
    "erasure/erasure_2026-03-05.csv": [
        "request_id,subject,requested_at",
        "ER0000001, Ann.Lee@Gmail.com ,2026-03-05T09:00:00Z",
        f"ER0000002,{NOBODY},2026-03-05T10:00:00Z",
    ],
}

IDENTITY_SQL = f"""
create schema identity;
create table identity.identifiers (
    id_type varchar, id_value varchar, cluster_id varchar, customer_id varchar, status varchar,
    first_seen_at timestamp
);
insert into identity.identifiers values
    ('crm_id', 'C0000001', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-01-01'),
    ('email', 'ann.lee@gmail.com', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-01-01'),
    ('mailbox', 'annlee@gmail.com', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-01-01'),
    ('phone', '+442079460222', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-01-01'),
    ('loyalty_id', 'L00000001', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-01-01'),
    ('user_id', 'U00000001', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-03-01'),
    ('anonymous_id', 'ck_ann000000001', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-03-01'),
    ('device_id', 'dv_ann0000001', 'crm_id:C0000001', 'cus_ann', 'linked', '2026-03-01'),
    ('phone', '{SHARED_PHONE}', null, null, 'shared', '2026-01-01'),
    ('device_id', '{SHARED_DEVICE}', null, null, 'shared', '2026-03-01'),
    ('crm_id', 'C0000002', 'crm_id:C0000002', 'cus_bob', 'linked', '2026-01-01'),
    ('email', 'bob.stone@outlook.com', 'crm_id:C0000002', 'cus_bob', 'linked', '2026-01-01'),
    ('user_id', 'U00000002', 'crm_id:C0000002', 'cus_bob', 'linked', '2026-03-01'),
    ('anonymous_id', 'ck_bob000000002', 'crm_id:C0000002', 'cus_bob', 'linked', '2026-03-01'),
    ('anonymous_id', '{STRANGER_COOKIE}', 'anonymous_id:{STRANGER_COOKIE}', null, 'linked',
        '2026-03-01'),
    ('email', '{NOBODY}', 'email:{NOBODY}', 'cus_nobody', 'linked', '2026-03-05');
create table identity.records (record_key varchar, source varchar, cluster_id varchar,
    customer_id varchar);
insert into identity.records values
    ('crm:C0000001', 'crm', 'crm_id:C0000001', 'cus_ann'),
    ('order:O000000101', 'orders', 'crm_id:C0000001', 'cus_ann'),
    ('order:O000000102', 'orders', 'crm_id:C0000001', 'cus_ann'),
    ('visit:v1', 'clickstream', 'crm_id:C0000001', 'cus_ann'),
    ('consent:CE000000001', 'consent', 'crm_id:C0000001', 'cus_ann'),
    ('consent:CE000000002', 'consent', 'crm_id:C0000001', 'cus_ann'),
    ('erasure:ER0000001', 'erasure', 'crm_id:C0000001', 'cus_ann'),
    ('crm:C0000002', 'crm', 'crm_id:C0000002', 'cus_bob'),
    ('order:O000000103', 'orders', 'crm_id:C0000002', 'cus_bob'),
    ('visit:v3', 'clickstream', 'crm_id:C0000002', 'cus_bob'),
    ('consent:CE000000003', 'consent', 'crm_id:C0000002', 'cus_bob'),
    ('visit:v4', 'clickstream', 'anonymous_id:{STRANGER_COOKIE}', null),
    ('erasure:ER0000002', 'erasure', 'email:{NOBODY}', 'cus_nobody');
create table identity.customers (customer_id varchar, cluster_id varchar, anchor varchar,
    first_seen_at timestamp, identifier_count bigint);
insert into identity.customers values
    ('cus_ann', 'crm_id:C0000001', 'crm_id:C0000001', '2026-01-01', 7),
    ('cus_bob', 'crm_id:C0000002', 'crm_id:C0000002', '2026-01-01', 4),
    ('cus_nobody', 'email:{NOBODY}', 'email:{NOBODY}', '2026-03-05', 1);
create table identity.history (event_at timestamp, run_id varchar, event_type varchar,
    customer_id varchar, other_customer_id varchar, reason varchar);
insert into identity.history values
    ('2026-03-01', 'r1', 'created', 'cus_ann', null, 'new profile'),
    ('2026-03-02', 'r2', 'merged', 'cus_ann2', null,
        'joined by same_record:crm (record crm:C0000001): crm_id:C0000001 ~ email:ann.lee@gmail.com'),
    ('2026-03-01', 'r1', 'created', 'cus_bob', null, 'new profile'),
    ('2026-03-05', 'r3', 'created', 'cus_nobody', null, 'new profile');
create table identity.evidence (step bigint, id_type_l varchar, id_value_l varchar,
    id_type_r varchar, id_value_r varchar, rule varchar, record_key varchar, score double);
insert into identity.evidence values
    (1, 'crm_id', 'C0000001', 'email', 'ann.lee@gmail.com', 'same_record:crm', 'crm:C0000001', null),
    (2, 'crm_id', 'C0000001', 'phone', '+442079460222', 'same_record:crm', 'crm:C0000001', null),
    (3, 'anonymous_id', 'ck_ann000000001', 'device_id', 'dv_ann0000001', 'same_record:clickstream',
        'visit:v1', null),
    (4, 'crm_id', 'C0000002', 'email', 'bob.stone@outlook.com', 'same_record:crm', 'crm:C0000002',
        null);
create table identity.shared_identifiers (id_type varchar, id_value varchar,
    counted_type varchar, distinct_values bigint, "limit" bigint, records bigint);
insert into identity.shared_identifiers values
    ('phone', '{SHARED_PHONE}', 'email', 2, 1, 2),
    ('device_id', '{SHARED_DEVICE}', 'user_id', 2, 1, 3);

create schema intermediate;
create table intermediate.int_identifiers_observed (record_key varchar, source varchar,
    id_type varchar, id_value varchar, first_seen_at timestamp);
insert into intermediate.int_identifiers_observed values
    ('crm:C0000001', 'crm', 'crm_id', 'C0000001', '2026-01-01'),
    ('crm:C0000001', 'crm', 'email', 'ann.lee@gmail.com', '2026-01-01'),
    ('crm:C0000001', 'crm', 'phone', '{SHARED_PHONE}', '2026-02-01'),
    ('crm:C0000002', 'crm', 'crm_id', 'C0000002', '2026-01-01'),
    ('crm:C0000002', 'crm', 'phone', '{SHARED_PHONE}', '2026-01-01'),
    ('visit:v4', 'clickstream', 'anonymous_id', '{STRANGER_COOKIE}', '2026-03-01'),
    ('visit:v4', 'clickstream', 'device_id', '{SHARED_DEVICE}', '2026-03-01');

create schema marts;
create table marts.dim_customers (customer_id varchar, first_name varchar, last_name varchar,
    email varchar, phone varchar, loyalty_id varchar, email_source_record varchar);
insert into marts.dim_customers values
    ('cus_ann', 'Ann', 'Lee', 'ann.lee@gmail.com', '{SHARED_PHONE}', 'L00000001', 'crm:C0000001'),
    ('cus_bob', 'Bob', 'Stone', 'bob.stone@outlook.com', '{SHARED_PHONE}', null, 'crm:C0000002'),
    ('cus_nobody', null, null, '{NOBODY}', null, null, 'erasure:ER0000002');
create table marts.fct_orders (order_id varchar, customer_id varchar, ordered_at timestamp,
    net_amount_gbp decimal(18, 2));
insert into marts.fct_orders values
    ('O000000101', 'cus_ann', '2026-03-01 10:00', 9.99),
    ('O000000102', 'cus_ann', '2026-03-01 11:00', 10.00),
    ('O000000103', 'cus_bob', '2026-03-01 12:00', 19.99),
    ('O000000104', null, '2026-03-01 13:00', 3.50);
create table marts.fct_clickstream_events (event_id varchar, customer_id varchar,
    anonymous_id varchar, user_id varchar, device_id varchar, properties json);
insert into marts.fct_clickstream_events values
    ('{1:032x}', 'cus_ann', 'ck_ann000000001', 'U00000001', 'dv_ann0000001', '{{}}'),
    ('{2:032x}', 'cus_ann', 'ck_ann000000001', null, '{SHARED_DEVICE}', '{{}}'),
    ('{3:032x}', 'cus_bob', 'ck_bob000000002', 'U00000002', '{SHARED_DEVICE}', '{{}}'),
    ('{4:032x}', null, '{STRANGER_COOKIE}', null, '{SHARED_DEVICE}', '{{"query": "shoes"}}');
create table marts.fct_consent_events (consent_event_id varchar, customer_id varchar,
    subject_type varchar, purpose varchar, consent_status varchar, is_granted boolean,
    consent_source varchar, recorded_at timestamp);
insert into marts.fct_consent_events values
    ('CE000000001', 'cus_ann', 'email', 'email_marketing', 'granted', true, 'signup_form',
        '2026-03-01 09:00'),
    ('CE000000002', 'cus_ann', 'crm_id', 'ads_personalization', 'granted', true,
        'cookie_banner', '2026-03-01 09:01'),
    ('CE000000003', 'cus_bob', 'email', 'email_marketing', 'granted', true, 'checkout',
        '2026-03-01 09:02');
create table marts.fct_erasure_requests (erasure_request_id varchar, customer_id varchar,
    subject_type varchar, requested_at timestamp);
insert into marts.fct_erasure_requests values
    ('ER0000001', 'cus_ann', 'email', '2026-03-05 09:00'),
    ('ER0000002', 'cus_nobody', 'email', '2026-03-05 10:00');

create schema segments;
create table segments.segment_memberships (segment_name varchar, customer_id varchar,
    valid_from timestamp, valid_to timestamp);
insert into segments.segment_memberships values
    ('basket_reminder', 'cus_ann', '2026-02-01', '2026-02-20'),
    ('basket_reminder', 'cus_ann', '2026-03-01', null),
    ('basket_reminder', 'cus_bob', '2026-03-01', null);

create schema ml;
create table ml.customer_clusters (customer_id varchar, cluster_id integer,
    cluster_label varchar);
insert into ml.customer_clusters values ('cus_ann', 1, 'loyal'), ('cus_bob', 2, 'new');

create schema activation;
create table activation.export_runs (run_id varchar, export_name varchar, segment_name varchar,
    rows_exported bigint, status varchar);
insert into activation.export_runs values
    ('{EXPORT_RUN}', 'basket_reminder', 'basket_reminder', 3, 'written');
create table activation.export_members (run_id varchar, export_name varchar,
    segment_name varchar, export_date date, as_of timestamp, customer_id varchar,
    group_name varchar);
insert into activation.export_members values
    ('{EXPORT_RUN}', 'basket_reminder', 'basket_reminder', '2026-03-04', '2026-03-05', 'cus_ann',
        'treatment'),
    ('{EXPORT_RUN}', 'basket_reminder', 'basket_reminder', '2026-03-04', '2026-03-05', 'cus_bob',
        'treatment'),
    ('{EXPORT_RUN}', 'basket_reminder', 'basket_reminder', '2026-03-04', '2026-03-05', 'cus_cara',
        'treatment'),
    ('{EXPORT_RUN}', 'basket_reminder', 'basket_reminder', '2026-03-04', '2026-03-05', 'cus_dan',
        'holdout');

create schema scratch;
create table scratch.analyst_extract (extract_id integer, recipients varchar[], payload json);
insert into scratch.analyst_extract values
    (1, ['Ann.Lee@Gmail.com', 'cara@mail.net'], '{{}}'),
    (2, ['cara@mail.net'], '{{"note": "called bob.stone@outlook.com"}}'),
    (3, [], '{{"customer": "CUS_ANN", "when": "2026-03-02"}}');
"""

# Rows each table holds before erasure, and the rows of Ann (ER0000001) and of the unknown
# subject's own traces (ER0000002) that must go.
ROWS_BEFORE = {
    "crm.customers": 3,
    "orders.order_lines": 4,
    "clickstream.events": 4,
    "consent.events": 4,
    "erasure.requests": 2,
    "accounts.accounts": 0,
    "products.items": 0,
    "landing.quarantine": 5,
    "landing.duplicates": 6,
    "identity.identifiers": 16,
    "identity.records": 13,
    "identity.customers": 3,
    "identity.history": 4,
    "identity.evidence": 4,
    "identity.shared_identifiers": 2,
    "intermediate.int_identifiers_observed": 7,
    "marts.dim_customers": 3,
    "marts.fct_orders": 4,
    "marts.fct_clickstream_events": 4,
    "marts.fct_consent_events": 3,
    "marts.fct_erasure_requests": 2,
    "segments.segment_memberships": 3,
    "ml.customer_clusters": 2,
    "activation.export_runs": 1,
    "activation.export_members": 4,
    "scratch.analyst_extract": 3,
}
ANN_REMOVED = {
    "crm.customers": 2,
    "orders.order_lines": 2,
    "clickstream.events": 2,
    "consent.events": 3,
    "erasure.requests": 1,
    "landing.quarantine": 4,
    "landing.duplicates": 3,
    "identity.identifiers": 8,
    "identity.records": 7,
    "identity.customers": 1,
    "identity.history": 2,
    "identity.evidence": 3,
    "intermediate.int_identifiers_observed": 3,
    "marts.dim_customers": 1,
    "marts.fct_orders": 2,
    "marts.fct_clickstream_events": 2,
    "marts.fct_consent_events": 2,
    "marts.fct_erasure_requests": 1,
    "segments.segment_memberships": 2,
    "ml.customer_clusters": 1,
    "activation.export_members": 1,
    "scratch.analyst_extract": 2,
    f"exports/{FOLDER}/audience.csv": 1,
    f"exports/{FOLDER}/audience.parquet": 1,
    f"exports/{FOLDER}/google_customer_match.csv": 1,
    f"exports/{FOLDER}/meta_custom_audience.csv": 1,
    # the hub's copies of the export files
    **{f"hub/{SNAPSHOT}/exports/{FOLDER}/{name}": 1 for name in EXPORT_FILES},
    # the landing files, rewritten without her rows
    "landing/crm/crm_2026-01-01.csv": 3,
    "landing/crm/crm_2026-02-01.csv": 1,
    "landing/orders/orders_2026-03-01.csv": 3,
    "landing/orders/orders_2026-03-02.csv": 1,
    "landing/clickstream/events_2026-03-01.jsonl": 5,
    "landing/consent/consent_2026-03-01.csv": 3,
    "landing/erasure/erasure_2026-03-05.csv": 1,
}
NOBODY_REMOVED = {
    "erasure.requests": 1,
    "identity.identifiers": 1,
    "identity.records": 1,
    "identity.customers": 1,
    "identity.history": 1,
    "marts.dim_customers": 1,
    "marts.fct_erasure_requests": 1,
    "landing/erasure/erasure_2026-03-05.csv": 1,
}


def write_lines(path: Path, lines: list[str], ending: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((ending.join(lines) + ending).encode("utf-8"))


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def google(field: str, value: str) -> str:
    return hashing.prepare(hashing.GOOGLE_FIELDS[field], value)


def meta(field: str, value: str) -> str:
    return hashing.prepare(hashing.META_FIELDS[field], value)


def write_exports(root: Path) -> Path:
    """One export folder as the activation writer lays it out, and its `latest` link."""
    folder = root / FOLDER
    folder.mkdir(parents=True)
    files = {
        "audience.csv": [
            ["customer_id", "email", "first_name", "last_name", "rfm_segment"],
            ["cus_ann", "ann.lee@gmail.com", "Ann", "Lee", "champions"],
            ["cus_bob", "bob.stone@outlook.com", "Bob", "Stone, Jr.", "loyal"],
            ["cus_cara", "cara@mail.net", "Cara", "=Cole", "new"],
        ],
        "google_customer_match.csv": [
            ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"],
            [
                google("Email", ANN["email"]),
                google("Phone", SHARED_PHONE),
                google("First Name", "Ann"),
                google("Last Name", "Lee"),
                "GB",
                "N1 1AA",
            ],
            [
                google("Email", BOB["email"]),
                google("Phone", SHARED_PHONE),
                google("First Name", "Bob"),
                google("Last Name", "Stone"),
                "GB",
                "LS1 1AA",
            ],
            [google("Email", "cara@mail.net"), "", "", "", "GB", ""],
        ],
        "meta_custom_audience.csv": [
            ["email", "phone", "fn", "ln", "ct", "st", "zip", "country", "doby", "gen"],
            # Ann's family phone and her names, no email: hers by phone and name together
            [
                "",
                meta("phone", SHARED_PHONE),
                meta("fn", "Ann"),
                meta("ln", "Lee"),
                *[""] * 6,
            ],
            # Bob has the same phone, his own email and names: he stays
            [
                meta("email", BOB["email"]),
                meta("phone", SHARED_PHONE),
                meta("fn", "Bob"),
                meta("ln", "Stone"),
                *[""] * 6,
            ],
            [meta("email", "cara@mail.net"), "", "", "", "", "", "", "", "", ""],
        ],
    }
    for name, rows in files.items():
        (folder / name).write_bytes(csv_bytes(rows))
    pq.write_table(
        pa.table(
            {
                "customer_id": ["cus_ann", "cus_bob", "cus_cara"],
                "rfm_segment": ["champions", "loyal", "new"],
            }
        ),
        folder / "audience.parquet",
    )
    manifest = {
        "export_name": "basket_reminder",
        "segment": "basket_reminder",
        "run_id": EXPORT_RUN,
        "rows": 3,
        "holdout_rows": 1,
        "files": {
            name: {"rows": 3, "sha256": sha256_file(folder / name), "bytes": 0}
            for name in (*files, "audience.parquet")
        },
        "amendments": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    os.symlink("2026-03-04", root / "basket_reminder" / "latest")
    return folder


# The views erasure resolves subjects through (the dbt part `subjects`) and their inputs.
SUBJECT_VIEWS = "+int_subjects_resolved"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The warehouse before erasure, built once: landed feeds, hand-made tables, dbt's views,
    and the export folder. Its dbt manifest is at dbt_target/manifest.json."""
    root = tmp_path_factory.mktemp("erasure")
    landing = root / "landing"
    for relative, lines in LANDING_FILES.items():
        write_lines(landing / relative, lines)
    path = root / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        connection.execute(IDENTITY_SQL)
    run_dbt("run", path, root / "dbt_target", SUBJECT_VIEWS)
    write_exports(root / "exports")
    write_hub_snapshot(root / "hub" / "snapshots", root / "exports")
    return root


@pytest.fixture
def warehouse(template: Path, tmp_path: Path) -> Path:
    """A copy of the template a test may change (the same file name: dbt's views name it)."""
    shutil.copytree(template, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path / "warehouse.duckdb"


def erase(connection, warehouse: Path, run_id: str = RUN):
    """The real erasure, reading the personal columns from the template's fresh dbt manifest,
    through the exports, the hub's snapshot and the landing files of the template."""
    root = warehouse.parent
    return process_erasure_requests(
        connection,
        salt=TEST_SALT,
        run_id=run_id,
        dbt_manifest=root / "dbt_target" / "manifest.json",
        places=Places(
            exports=root / "exports",
            hub_snapshots=root / "hub" / "snapshots",
            landing=root / "landing",
            archive=root / "landing_archive",
        ),
    )


def write_hub_snapshot(root: Path, exports: Path) -> Path:
    """A snapshot of the audience hub as ml/hub/snapshot.py publishes it: copies of the export
    folder with their index, read-only."""
    snapshot = root / SNAPSHOT
    shutil.copytree(exports / FOLDER, snapshot / "exports" / FOLDER)
    index = {
        f"{FOLDER}/{name}": {"sha256": sha256_file(exports / FOLDER / name), "bytes": 0}
        for name in EXPORT_FILES
    }
    (snapshot / "exports" / "files.json").write_text(json.dumps(index))
    for path in sorted(snapshot.rglob("*"), reverse=True):
        path.chmod(0o440 if path.is_file() else 0o550)
    snapshot.chmod(0o550)
    return snapshot


def counts(connection) -> dict[str, int]:
    tables = connection.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_catalog = current_database() "
        "and table_schema not in ('privacy') "
        "and not (table_schema = 'landing' and table_name in "
        "('files', 'removals', 'erased_rows', 'validations', 'rewrites', 'rewritten_rows'))"
    ).fetchall()
    return {
        f"{schema}.{table}": connection.execute(
            f'select count(*) from "{schema}"."{table}"'
        ).fetchone()[0]
        for schema, table in tables
    }


def removed_by_store(removed: dict[str, int]) -> dict[str, int]:
    """Rows removed per store of the erasure report, from rows removed per table or file."""
    stores = {"exports": "export files", "hub": "hub snapshots", "landing": "landing files"}
    totals = dict.fromkeys(["warehouse tables", *stores.values()], 0)
    for place, rows in removed.items():
        totals[stores.get(place.split("/")[0], "warehouse tables")] += rows
    return totals


def ann_identifiers() -> list[str]:
    return list(ANN.values())


def ann_hashes() -> list[str]:
    return [
        google("Email", ANN["email"]),
        google("Phone", ANN["phone"]),
        meta("email", ANN["email"]),
        meta("phone", ANN["phone"]),
    ]


def search_tables(connection, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) wherever a column of any table contains a needle, any case."""
    columns = connection.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = current_database() and (data_type like '%VARCHAR%' "
        "or data_type = 'JSON')"
    ).fetchall()
    found = []
    for schema, table, column in columns:
        for needle in needles:
            hit = connection.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where contains(lower(cast("{column}" as varchar)), ?)',
                [needle.lower()],
            ).fetchone()[0]
            if hit:
                found.append((f"{schema}.{table}", column, needle))
    return found


def search_files(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist())
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        found += [(path.name, n) for n in needles if n.lower() in text.lower()]
    return found


def bob_rows(connection) -> int:
    """Rows anywhere that name Bob (he shares the phone and device with Ann)."""
    needles = [v.lower() for v in BOB.values()]
    total = 0
    for table in counts(connection):
        schema, name = table.split(".")
        columns = connection.execute(
            "select column_name from information_schema.columns where table_schema = ? "
            "and table_name = ? and (data_type like '%VARCHAR%' or data_type = 'JSON')",
            [schema, name],
        ).fetchall()
        if not columns:
            continue
        condition = " or ".join(
            f'contains(lower(cast("{c}" as varchar)), {n!r})' for (c,) in columns for n in needles
        )
        total += connection.execute(
            f'select count(*) from "{schema}"."{name}" where {condition}'
        ).fetchone()[0]
    return total


def read_csv_rows(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_erasure_removes_the_person_everywhere_and_keeps_the_other(warehouse: Path):
    exports = warehouse.parent / "exports"
    with duckdb.connect(str(warehouse)) as connection:
        assert counts(connection) == ROWS_BEFORE
        bob_before = bob_rows(connection)
        assert search_tables(connection, ann_identifiers())  # Ann is everywhere before
        outcome = erase(connection, warehouse)

        # every row of Ann gone, every row of Bob kept: exact counts per table
        after = counts(connection)
        expected = {
            table: n - ANN_REMOVED.get(table, 0) - NOBODY_REMOVED.get(table, 0)
            for table, n in ROWS_BEFORE.items()
        }
        assert after == expected
        assert bob_rows(connection) == bob_before
        assert search_tables(connection, ann_identifiers() + ann_hashes()) == []
        assert connection.execute("select key from landing.duplicates order by key").fetchall() == [
            ("crm_id=C0000002, updated_at=2026-01-01 10:00:00",),
            (f"event_id={3:032x}",),
            ("order_id=O000000103, line_number=1",),
        ]
        assert connection.execute("select feed, row_number from landing.quarantine").fetchall() == [
            ("crm", 5)
        ]
        assert connection.execute("select customer_id from marts.dim_customers").fetchall() == [
            ("cus_bob",)
        ]
        assert connection.execute(
            "select id_value from identity.identifiers where status = 'shared' order by 1"
        ).fetchall() == [(SHARED_PHONE,), (SHARED_DEVICE,)]

        # the outcome and the logs: exact counts, no identifiers
        assert [(r.request_id, r.status, r.identifiers_erased) for r in outcome.requests] == [
            ("ER0000001", "erased", 9),
            ("ER0000002", "no_match", 2),
        ]
        assert outcome.requests[0].rows_removed == ANN_REMOVED
        assert outcome.requests[1].rows_removed == NOBODY_REMOVED
        total = sum(ANN_REMOVED.values()) + sum(NOBODY_REMOVED.values())
        assert outcome.rows_removed == total
        assert outcome.as_dict()["requests"] == 2
        log = connection.execute(
            "select erasure_request_id, requested_at, status, identifiers_erased, rows_removed, "
            "completed_at >= processed_at from privacy.erasure_log order by 1"
        ).fetchall()
        assert [row[:5] for row in log] == [
            ("ER0000001", datetime(2026, 3, 5, 9), "erased", 9, sum(ANN_REMOVED.values())),
            ("ER0000002", datetime(2026, 3, 5, 10), "no_match", 2, sum(NOBODY_REMOVED.values())),
        ]
        assert all(row[5] for row in log)
        removals = connection.execute(
            "select erasure_request_id, table_name, rows_removed from privacy.erasure_removals"
        ).fetchall()
        assert {(r, t): n for r, t, n in removals} == {
            **{("ER0000001", t): n for t, n in ANN_REMOVED.items()},
            **{("ER0000002", t): n for t, n in NOBODY_REMOVED.items()},
        }
        assert sum(n for _, _, n in removals) == total
        assert connection.execute(
            "select action, target, row_count from privacy.audit_log order by action, target"
        ).fetchall() == [
            ("erasure", "ER0000001", sum(ANN_REMOVED.values())),
            ("erasure", "ER0000002", sum(NOBODY_REMOVED.values())),
            ("export_amended", "basket_reminder", 1),
            ("landing_file_rewritten", "clickstream/events_2026-03-01.jsonl", 5),
            ("landing_file_rewritten", "consent/consent_2026-03-01.csv", 3),
            ("landing_file_rewritten", "crm/crm_2026-01-01.csv", 3),
            ("landing_file_rewritten", "crm/crm_2026-02-01.csv", 1),
            ("landing_file_rewritten", "erasure/erasure_2026-03-05.csv", 2),
            ("landing_file_rewritten", "orders/orders_2026-03-01.csv", 3),
            ("landing_file_rewritten", "orders/orders_2026-03-02.csv", 1),
        ]
        # the report: every store searched, and what went from each, per request
        assert connection.execute(
            "select erasure_request_id, store, searched, searched_unit, removed "
            "from privacy.erasure_stores order by all"
        ).fetchall() == sorted(
            (request, store, searched, unit, removed)
            for request, removed_by_store in {
                "ER0000001": removed_by_store(ANN_REMOVED),
                "ER0000002": removed_by_store(NOBODY_REMOVED),
            }.items()
            for store, searched, unit in (
                ("warehouse tables", 24, "tables"),
                ("export files", 1, "export folders"),
                ("hub snapshots", 1, "snapshot export folders and tables"),
                ("landing files", 7, "files"),
            )
            for removed in [removed_by_store[store]]
        )  # fmt: skip

        # tombstones: salted hashes of the identifiers that name one person, never phones/devices
        tombstones = connection.execute(
            "select identifier_hash, erasure_request_id from privacy.tombstones order by 2, 1"
        ).fetchall()
        salt = TEST_SALT
        assert sorted(tombstones) == sorted(
            [
                (secrets.salted_hash(ANN[k], salt), "ER0000001")
                for k in ("crm_id", "email", "loyalty_id", "user_id", "anonymous_id")
            ]
            + [(secrets.salted_hash("annlee@gmail.com", salt), "ER0000001")]  # her mailbox
            + [(secrets.salted_hash(NOBODY, salt), "ER0000002")]
        )
        assert outcome.tombstones_added == 7
        assert search_tables(connection, [NOBODY]) == []
        assert traces_left(connection, salt).empty

        # the landing ledger still adds up: removed rows are counted in landing.removals
        for feed in load():
            recon = reconciliation(connection, feed)
            assert recon["reconciles"].all(), recon.to_dict("records")
        assert connection.execute(
            "select feed, file, place, sum(rows) from landing.removals group by all order by all"
        ).fetchall() == [
            ("clickstream", "clickstream/events_2026-03-01.jsonl", "duplicates", 1),
            ("clickstream", "clickstream/events_2026-03-01.jsonl", "quarantine", 2),
            ("clickstream", "clickstream/events_2026-03-01.jsonl", "table", 2),
            ("consent", "consent/consent_2026-03-01.csv", "table", 3),
            ("crm", "crm/crm_2026-01-01.csv", "quarantine", 1),
            ("crm", "crm/crm_2026-01-01.csv", "table", 2),
            ("crm", "crm/crm_2026-02-01.csv", "duplicates", 1),
            ("erasure", "erasure/erasure_2026-03-05.csv", "table", 2),
            ("orders", "orders/orders_2026-03-01.csv", "quarantine", 1),
            ("orders", "orders/orders_2026-03-01.csv", "table", 2),
            ("orders", "orders/orders_2026-03-02.csv", "duplicates", 1),
        ]
        assert connection.execute("select status from activation.export_runs").fetchall() == [
            ("amended",)
        ]

        # a second run finds nothing pending and changes nothing
        again = erase(connection, warehouse, run_id="run-erasure-2")
        assert again.requests == [] and again.rows_removed == 0
        assert counts(connection) == expected

    # export files: only Bob and Cara left, same format, manifest matches the files
    folder = exports / FOLDER
    assert read_csv_rows(folder / "audience.csv") == [
        ["customer_id", "email", "first_name", "last_name", "rfm_segment"],
        ["cus_bob", "bob.stone@outlook.com", "Bob", "Stone, Jr.", "loyal"],
        ["cus_cara", "cara@mail.net", "Cara", "=Cole", "new"],
    ]
    assert [row[0] for row in read_csv_rows(folder / "google_customer_match.csv")] == [
        "Email",
        google("Email", BOB["email"]),
        google("Email", "cara@mail.net"),
    ]
    assert [row[0] for row in read_csv_rows(folder / "meta_custom_audience.csv")] == [
        "email",
        meta("email", BOB["email"]),
        meta("email", "cara@mail.net"),
    ]
    assert pq.read_table(folder / "audience.parquet").to_pylist() == [
        {"customer_id": "cus_bob", "rfm_segment": "loyal"},
        {"customer_id": "cus_cara", "rfm_segment": "new"},
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"] == 2
    for name, facts in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert facts["rows"] == 2, name
        assert facts["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert facts["bytes"] == len(data), name
    [amendment] = manifest["amendments"]
    assert (amendment["reason"], amendment["request_count"], amendment["rows_removed"]) == (
        "erasure",
        1,
        1,
    )
    assert amendment["rows_removed_by_file"] == {
        "audience.csv": 1,
        "audience.parquet": 1,
        "google_customer_match.csv": 1,
        "meta_custom_audience.csv": 1,
    }
    assert (exports / "basket_reminder" / "latest").is_symlink()
    assert search_files(exports, ann_identifiers() + ann_hashes()) == []

    # the hub's copies: the same rows gone, the index right, the snapshot read-only again
    hub = warehouse.parent / "hub" / "snapshots" / SNAPSHOT
    copy = hub / "exports" / FOLDER
    for name in EXPORT_FILES:
        assert (copy / name).read_bytes() == (folder / name).read_bytes(), name
        assert not (copy / name).stat().st_mode & 0o222, name
    index = json.loads((hub / "exports" / "files.json").read_text())
    assert index[f"{FOLDER}/audience.csv"]["sha256"] == sha256_file(folder / "audience.csv")
    assert search_files(hub, ann_identifiers() + ann_hashes()) == []

    # the landing files: her rows gone, every other byte as it was
    landing = warehouse.parent / "landing"
    assert (landing / "crm/crm_2026-01-01.csv").read_text() == "\n".join(
        [CRM_HEADER, BOB_CRM, LANDING_FILES["crm/crm_2026-01-01.csv"][4], ""]
    )
    assert (landing / "erasure/erasure_2026-03-05.csv").read_text() == (
        "request_id,subject,requested_at\n"
    )
    assert (landing / "consent/consent_2026-03-01.csv").read_text() == "\n".join(
        LANDING_FILES["consent/consent_2026-03-01.csv"][0:1]
        + LANDING_FILES["consent/consent_2026-03-01.csv"][3:4]
        + [""]
    )
    assert search_files(landing, ann_identifiers() + ["annlee", NOBODY]) == []


def test_replayed_feeds_bring_nobody_back(warehouse: Path):
    """Every old feed file again, under a new name and with CRLF endings: Ann's rows are erased."""
    landing = warehouse.parent / "landing"
    with duckdb.connect(str(warehouse)) as connection:
        erase(connection, warehouse)
        for relative, lines in LANDING_FILES.items():
            folder, name = relative.split("/")
            write_lines(landing / folder / f"replay_{name}", lines, ending="\r\n")
        reports = Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        replayed = {
            f.file: (
                f.rows_read,
                f.rows_loaded,
                f.rows_quarantined,
                f.rows_duplicate,
                f.rows_erased,
            )
            for report in reports
            for f in report.files
        }
        assert replayed == {
            "crm/replay_crm_2026-01-01.csv": (5, 0, 1, 1, 3),
            "crm/replay_crm_2026-02-01.csv": (2, 0, 0, 1, 1),
            "orders/replay_orders_2026-03-01.csv": (5, 0, 0, 2, 3),
            "orders/replay_orders_2026-03-02.csv": (2, 0, 0, 1, 1),
            "clickstream/replay_events_2026-03-01.jsonl": (8, 0, 0, 3, 5),
            # the withdrawal under another spelling of her mailbox is hers too
            "consent/replay_consent_2026-03-01.csv": (4, 0, 0, 1, 3),
            "erasure/replay_erasure_2026-03-05.csv": (2, 0, 0, 0, 2),
        }
        assert search_tables(connection, ann_identifiers() + [NOBODY]) == []
        assert traces_left(connection, TEST_SALT).empty
        for feed in load():
            assert reconciliation(connection, feed)["reconciles"].all(), feed.name
        assert connection.execute("select count(*) from landing.erased_rows").fetchone()[0] == 18
        # the next erasure run, with nobody new to erase, rewrites the replayed files too
        later = erase(connection, warehouse, run_id="run-erasure-2")
        assert later.requests == [] and later.landing_files_rewritten == 7
        assert search_files(landing, ann_identifiers() + ["annlee", NOBODY]) == []
        assert (landing / "crm/replay_crm_2026-02-01.csv").read_bytes() == (
            f"{CRM_HEADER}\r\n{BOB_CRM}\r\n".encode()
        )
        reports = Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        assert [f.file for report in reports for f in report.files] == []  # none lands again
        # a row written around the loader is caught by the check the erasure asset runs
        connection.execute(
            "insert into clickstream.events (event_id, event_type, anonymous_id, occurred_at, "
            "_source_file, _row_number, _load_id, _loaded_at) values ('x', 'page_view', "
            "' CK_ANN000000001', '2026-03-01', 'manual', 1, 'manual', now()::timestamp)"
        )
        assert traces_left(connection, TEST_SALT).to_dict("records") == [
            {"table": "clickstream.events", "column": "anonymous_id", "rows": 1}
        ]


def test_an_unknown_subject_is_no_match(warehouse: Path):
    """A request landed after the last identity run, for a crm id nobody carries: the subjects
    view resolves it to nobody; logged as no_match, only the request itself removed."""
    landing = warehouse.parent / "landing"
    with duckdb.connect(str(warehouse)) as connection:
        erase(connection, warehouse)
        before = counts(connection)
        write_lines(
            landing / "erasure" / "erasure_2026-03-06.csv",
            ["request_id,subject,requested_at", "ER0000009,C9999999,2026-03-06T09:00:00Z"],
        )
        Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        outcome = erase(connection, warehouse, run_id="run-erasure-2")
        [request] = outcome.requests
        assert (request.request_id, request.status, request.customers) == (
            "ER0000009",
            "no_match",
            0,
        )
        # the request itself, in the table and in its landing file
        assert request.rows_removed == {
            "erasure.requests": 1,
            "landing/erasure/erasure_2026-03-06.csv": 1,
        }
        assert counts(connection) == before
        assert connection.execute("select count(*) from crm.customers").fetchone()[0] == 1
        assert connection.execute(
            "select status, identifiers_erased, rows_removed from privacy.erasure_log "
            "where erasure_request_id = 'ER0000009'"
        ).fetchall() == [("no_match", 1, 2)]


def test_without_the_subjects_view_erasure_stops_and_changes_nothing(tmp_path: Path):
    """Identity and the dbt part `subjects` have not run: a clear error, nothing erased or logged."""
    landing = tmp_path / "landing"
    write_lines(
        landing / "erasure" / "erasure_2026-03-05.csv",
        ["request_id,subject,requested_at", "ER0000009,C9999999,2026-03-05T09:00:00Z"],
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        Loader(connection, landing, salt=TEST_SALT).land_all(progress=False)
        with pytest.raises(SubjectsNotResolved) as error:
            process_erasure_requests(
                connection, exports_root=tmp_path / "exports", salt=TEST_SALT, run_id=RUN
            )
        message = str(error.value)
        assert "intermediate.int_subjects_resolved is missing" in message
        assert DBT_SELECTIONS["subjects"]["select"] in message
        assert "C9999999" not in message
        assert connection.execute("select count(*) from erasure.requests").fetchone()[0] == 1
        assert connection.execute("select count(*) from privacy.erasure_log").fetchone()[0] == 0


def test_whole_words_only_a_longer_address_is_someone_else(warehouse: Path):
    """Erasing ann.lee@gmail.com keeps joann.lee@gmail.com's rows, in columns and in text."""
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            """
            create table scratch.notes (note_id integer, email varchar, note varchar);
            insert into scratch.notes values
                (1, 'joann.lee@gmail.com', 'wrote from joann.lee@gmail.com'),
                (2, 'bob@mail.test', 'cc ann.lee@gmail.com.'),
                (3, 'ANN.LEE@GMAIL.COM ', null);
            """
        )
        erase(connection, warehouse)
        assert connection.execute("select note_id from scratch.notes").fetchall() == [(1,)]


def test_personal_columns_come_from_their_owners_declarations(template: Path):
    """Feed contracts, the dbt ymls (and the customer id) and the Python owners' PERSONAL_COLUMNS
    say where to look; a table nobody declared is searched in every text column; the ledger,
    the seeds and the privacy schema not at all."""
    with duckdb.connect(str(template / "warehouse.duckdb"), read_only=True) as connection:
        tables = find_personal_tables(connection, load(), template / "dbt_target" / "manifest.json")
    searched = {table.qualified: table.columns for table in tables}
    assert searched == {
        # feeds.yml: pii and erase_by columns, and what the loader derives from them
        "crm.customers": (
            "crm_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "birth_date",
            "street",
            "city",
            "postcode",
            "loyalty_id",
            "email_normalised",
            "phone_e164",
        ),
        "orders.order_lines": ("customer_ref", "customer_ref_normalised", "customer_ref_type"),
        "clickstream.events": ("anonymous_id", "user_id", "device_id"),
        "consent.events": ("subject", "subject_normalised", "subject_type"),
        "erasure.requests": ("subject", "subject_normalised", "subject_type"),
        "accounts.accounts": ("user_id", "email", "email_normalised"),
        # the Python modules that write the tables
        "landing.quarantine": ("reason", "raw_text", "message"),
        "landing.duplicates": ("key",),
        "identity.identifiers": ("id_value", "cluster_id", "customer_id"),
        "identity.records": ("record_key", "cluster_id", "customer_id"),
        "identity.customers": ("customer_id", "cluster_id", "anchor"),
        "identity.history": ("customer_id", "other_customer_id", "reason"),
        "identity.evidence": ("id_value_l", "id_value_r", "record_key"),
        "identity.shared_identifiers": ("id_value",),
        "segments.segment_memberships": ("customer_id",),
        "ml.customer_clusters": ("customer_id",),
        "activation.export_members": ("customer_id",),
        # the dbt ymls' pii columns and the customer id
        "intermediate.int_identifiers_observed": ("record_key", "id_value"),
        "marts.dim_customers": (
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "loyalty_id",
        ),
        "marts.fct_orders": ("customer_id",),
        "marts.fct_clickstream_events": ("customer_id", "anonymous_id", "user_id", "device_id"),
        "marts.fct_consent_events": ("customer_id",),
        "marts.fct_erasure_requests": ("customer_id",),
        # nobody declared it: every text column
        "scratch.analyst_extract": ("recipients", "payload"),
    }


def test_every_export_file_has_an_erasure_rule():
    """Each file an export can write (ml/activation/config.py) has a rule; a new one must get one."""
    assert {name: export_matching.rule_for(name) for name in FILE_NAMES} == {
        "audience.csv": export_matching.BY_CUSTOMER_OR_EMAIL,
        "google_customer_match.csv": export_matching.BY_HASHES,
        "meta_custom_audience.csv": export_matching.BY_HASHES,
        "audience.parquet": export_matching.BY_CUSTOMER,
    }
    with pytest.raises(NotImplementedError, match="tiktok_audience.csv"):
        export_matching.rule_for("tiktok_audience.csv")


def test_compaction_keeps_every_row_and_does_not_grow_the_file(warehouse: Path):
    with duckdb.connect(str(warehouse)) as connection:
        erase(connection, warehouse)
        before_counts = counts(connection)
        views = connection.execute(
            "select count(*) from duckdb_views() where not internal"
        ).fetchone()
    before, after = compact_warehouse(warehouse)
    assert after <= before
    assert not warehouse.with_name(warehouse.name + ".wal").exists()
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert counts(connection) == before_counts
        assert (
            connection.execute("select count(*) from duckdb_views() where not internal").fetchone()
            == views
        )
        assert connection.execute("select count(*) from privacy.tombstones").fetchone()[0] == 7
