"""Tests of the sample data generator (ml.synthetic) on a small run.

The landing files are re-read here independently of the generator: every row is checked
against the feed contracts (ml/landing/feeds.yml) with the normalisers the loader
uses (ml.normalise), duplicates are found from the contract keys in sorted path order, and the
result must equal the ground truth exactly.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.landing import contracts
from ml.normalise import (
    REFERENCE_KINDS,
    InvalidValue,
    classify_reference,
    normalise_email,
    normalise_phone,
)
from ml.synthetic import columns, phones
from ml.synthetic.generator import generate

CUSTOMERS = 300
END = date(2026, 11, 20)
NS = {"g": "http://base.google.com/ns/1.0"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    manifest = generate(
        root / "landing", root / "truth", customers=CUSTOMERS, seed=42, end_date=END, progress=False
    )
    return root / "landing", root / "truth", manifest


@pytest.fixture(scope="session")
def landing(run: tuple[Path, Path, dict]) -> Path:
    return run[0]


@pytest.fixture(scope="session")
def truth(run: tuple[Path, Path, dict]) -> Path:
    return run[1]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- an independent validator

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INT_RE = re.compile(r"^[+-]?\d+$")
DEC_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
# ISO 8601 date-time with an optional offset, the shape the loader accepts
TIMESTAMP_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def _number(text: str, kind: str) -> Decimal | None:
    if kind == "integer":
        return Decimal(text) if INT_RE.match(text) else None
    if not DEC_RE.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def check_row(feed: contracts.Feed, row: dict[str, object]) -> tuple[str, str] | None:
    """(field, kind) of the first contract rule the row breaks, or None when it is valid."""
    for column in feed.columns:
        value = row.get(column.name)
        if column.type == "json":
            if value is None:
                continue
            if not isinstance(value, dict):
                return column.name, "not_an_object"
            continue
        if value is not None and not isinstance(value, str):
            value = str(value)
        if value is None or not value.strip():
            if column.required:
                return column.name, "missing_required"
            continue
        if column.type in ("integer", "decimal"):
            number = _number(value, column.type)
            if number is None:
                return column.name, "bad_decimal" if column.type == "decimal" else "bad_integer"
            if column.min is not None and number < Decimal(str(column.min)):
                return (
                    column.name,
                    "negative_quantity"
                    if number < 0 and column.name == "quantity"
                    else "out_of_range",
                )
            if column.max is not None and number > Decimal(str(column.max)):
                return column.name, "out_of_range"
        if column.type == "date":
            try:
                parsed = date.fromisoformat(value) if DATE_RE.match(value) else None
            except ValueError:
                parsed = None
            if parsed is None or not str(column.min) <= value <= str(column.max):
                return column.name, "bad_date"
        if column.type == "timestamp":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return column.name, "bad_timestamp"
            if not TIMESTAMP_RE.match(value):
                return column.name, "bad_timestamp"
        if column.allowed and value not in column.allowed:
            return column.name, "unknown_enum"
        if column.pattern and not re.fullmatch(column.pattern, value):
            return column.name, "bad_pattern"
        try:
            if column.format == "email":
                normalise_email(value)
            elif column.format == "phone":
                normalise_phone(value, str(row.get(column.region_from) or ""))
            elif column.format == "reference":
                classify_reference(value, column.kinds or REFERENCE_KINDS)
        except InvalidValue:
            return column.name, {
                "email": "bad_email",
                "phone": "bad_phone",
                "reference": "bad_reference",
            }[column.format]
    return None


def _undecodable_field(names: tuple[str, ...], values: list[object]) -> str:
    for name, value in zip(names, values, strict=False):
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            return name
    return ""


def parse_file(
    feed: contracts.Feed, path: Path
) -> tuple[bool, list[tuple[dict | None, tuple[str, str] | None]]]:
    """(file quarantined, [(row, problem)]) with rows in file order."""
    names = feed.column_names
    fmt = feed.file_format(path)
    rows: list[tuple[dict | None, tuple[str, str] | None]] = []
    if fmt == "merchant_xml":
        try:
            items = ET.parse(path).getroot().iter("item")
        except ET.ParseError:
            return True, []
        for item in items:
            row: dict[str, object] = {}
            for column in feed.columns:
                element = item.find(column.source, NS)
                text = element.text if element is not None else None
                if text is not None and column.part:
                    amount, _, currency = text.strip().partition(" ")
                    text = amount if column.part == "amount" else currency
                row[column.name] = text
            rows.append((row, check_row(feed, row)))
        return False, rows
    if fmt == "parquet":
        for row in pq.read_table(path).to_pylist():
            rows.append((row, check_row(feed, row)))
        return False, rows
    data = path.read_bytes()
    if not data and fmt == "jsonl":  # a quiet day at a tiny size: an empty file, no records
        return False, rows
    assert data.endswith(b"\n") and b"\r" not in data, path
    lines = data[:-1].split(b"\n")
    if fmt == "csv":
        assert lines[0].decode() == ",".join(names), path
        lines = lines[1:]
    for raw in lines:
        assert raw, f"blank line in {path}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "surrogateescape")
            if fmt == "csv":
                values: list[object] = next(csv.reader([text]))
            else:
                obj = json.loads(text)
                values = [obj.get(n) for n in names]
            assert _undecodable_field(names, values)  # the bytes sit in one field...
            rows.append((None, ("", "non_utf8")))  # ...but the line as a whole cannot be read
            continue
        if fmt == "csv":
            fields = next(csv.reader([text]))
            if len(fields) != len(names):
                rows.append((None, ("", "wrong_column_count")))
                continue
            row = dict(zip(names, fields, strict=True))
        else:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                rows.append((None, ("", "broken_json")))
                continue
            if not isinstance(obj, dict):
                rows.append((None, ("", "not_an_object")))
                continue
            row = obj
        rows.append((row, check_row(feed, row)))
    return False, rows


@pytest.fixture(scope="session")
def validated(landing: Path) -> dict:
    """Per file: stats as the loader must compute them, malformed rows, valid rows."""
    stats, malformed, valid = {}, set(), defaultdict(list)
    for feed in contracts.load():
        seen: set[tuple] = set()
        for path in sorted((landing / feed.name).iterdir()):
            rel = f"{feed.name}/{path.name}"
            if feed.key_scope == "file":
                seen = set()
            broken, rows = parse_file(feed, path)
            loaded = quarantined = duplicate = 0
            for number, (row, problem) in enumerate(rows, start=2 if path.suffix == ".csv" else 1):
                if problem is not None:
                    quarantined += 1
                    malformed.add((feed.name, rel, number, problem[0], problem[1]))
                    continue
                assert row is not None
                key = tuple(str(row[k]) for k in feed.key)
                if key in seen:
                    duplicate += 1
                    continue
                seen.add(key)
                loaded += 1
                valid[rel].append(row)
            stats[rel] = (feed.name, len(rows), loaded, quarantined, duplicate, broken)
    return {"stats": stats, "malformed": malformed, "valid": valid}


def valid_rows(validated: dict, feed: str) -> list[dict]:
    return [
        r
        for rel, rows in sorted(validated["valid"].items())
        if rel.startswith(feed + "/")
        for r in rows
    ]


# --------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_other_seed_differs(
    run: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    landing, truth, _ = run
    # the command line, in another process with another string hash seed: the same bytes
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ml.synthetic",
            "--customers",
            str(CUSTOMERS),
            "--seed",
            "42",
            "--end-date",
            END.isoformat(),
            "--out",
            str(tmp_path / "a" / "landing"),
            "--truth",
            str(tmp_path / "a" / "truth"),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).resolve().parents[1],
    )
    first = checksums(landing) | {"truth/" + k: v for k, v in checksums(truth).items()}
    again = checksums(tmp_path / "a" / "landing") | {
        "truth/" + k: v for k, v in checksums(tmp_path / "a" / "truth").items()
    }
    assert first == again
    generate(
        tmp_path / "b" / "landing",
        tmp_path / "b" / "truth",
        customers=CUSTOMERS,
        seed=7,
        end_date=END,
        progress=False,
    )
    other = checksums(tmp_path / "b" / "landing")
    assert set(other) == set(checksums(landing))  # same calendar of files
    differing = [k for k in other if other[k] != first[k]]
    assert len(differing) > 0.9 * len(other)


def test_every_file_matches_expected_files(validated: dict, truth: Path, landing: Path) -> None:
    expected = {r["file"]: r for r in read_csv(truth / "expected_files.csv")}
    written = {str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file()}
    assert set(expected) == written
    for rel, (feed, read, loaded, quarantined, duplicate, broken) in validated["stats"].items():
        row = expected[rel]
        assert row["feed"] == feed
        assert (
            int(row["rows_read"]),
            int(row["rows_loaded"]),
            int(row["rows_quarantined"]),
            int(row["rows_duplicate"]),
            row["file_quarantined"],
        ) == (read, loaded, quarantined, duplicate, "true" if broken else "false"), rel


def test_expected_counts_add_up(truth: Path, run: tuple[Path, Path, dict]) -> None:
    rows = read_csv(truth / "expected_files.csv")
    for r in rows:
        assert int(r["rows_read"]) == int(r["rows_loaded"]) + int(r["rows_quarantined"]) + int(
            r["rows_duplicate"]
        )
        if r["file_quarantined"] == "true":
            assert (
                r["rows_read"],
                r["rows_loaded"],
                r["rows_quarantined"],
                r["rows_duplicate"],
            ) == ("0",) * 4
    assert [r["file"] for r in rows if r["file_quarantined"] == "true"] == [
        f"products/catalogue_{END - timedelta(days=1)}_partial.xml"
    ]
    malformed = Counter(r["file"] for r in read_csv(truth / "malformed.csv"))
    assert malformed == Counter(
        {r["file"]: int(r["rows_quarantined"]) for r in rows if int(r["rows_quarantined"])}
    )
    manifest = json.loads((truth / "manifest.json").read_text())
    assert manifest == run[2]
    assert manifest["arguments"] == {
        "customers": CUSTOMERS,
        "seed": 42,
        "end_date": END.isoformat(),
    }
    for feed, totals in manifest["feeds"].items():
        assert totals["rows_read"] == sum(int(r["rows_read"]) for r in rows if r["feed"] == feed)


def test_malformed_rows_are_exactly_the_ground_truth(validated: dict, truth: Path) -> None:
    expected = {
        (r["feed"], r["file"], int(r["row_number"]), r["field"], r["kind"])
        for r in read_csv(truth / "malformed.csv")
    }
    assert validated["malformed"] == expected


REQUIRED_MALFORMED = {
    "crm": {
        ("birth_date", "bad_date"),
        ("", "wrong_column_count"),
        ("", "non_utf8"),
        ("gender", "unknown_enum"),
        ("country", "unknown_enum"),
        ("email", "bad_email"),
        ("crm_id", "missing_required"),
        ("phone", "bad_phone"),
    },
    "orders.csv": {
        ("quantity", "negative_quantity"),
        ("ordered_at", "bad_timestamp"),
        ("status", "unknown_enum"),
        ("currency", "unknown_enum"),
        ("", "wrong_column_count"),
        ("", "non_utf8"),
    },
    "orders.parquet": {("quantity", "negative_quantity"), ("channel", "unknown_enum")},
    "clickstream": {
        ("", "broken_json"),
        ("", "not_an_object"),
        ("event_type", "unknown_enum"),
        ("occurred_at", "bad_timestamp"),
        ("event_id", "missing_required"),
        ("", "non_utf8"),
    },
    "products": {
        ("product_id", "missing_required"),
        ("price", "bad_decimal"),
        ("availability", "unknown_enum"),
    },
    "consent": {
        ("purpose", "unknown_enum"),
        ("status", "unknown_enum"),
        ("recorded_at", "bad_timestamp"),
        ("", "wrong_column_count"),
    },
    "erasure": {("requested_at", "bad_timestamp"), ("subject", "bad_reference")},
    "accounts": {
        ("email", "bad_email"),
        ("user_id", "missing_required"),
        ("created_at", "bad_timestamp"),
    },
}


def test_each_malformed_kind_exists_per_feed(truth: Path) -> None:
    found: dict[str, set] = defaultdict(set)
    for r in read_csv(truth / "malformed.csv"):
        group = r["feed"] if r["feed"] != "orders" else "orders" + Path(r["file"]).suffix
        found[group].add((r["field"], r["kind"]))
    for group, kinds in REQUIRED_MALFORMED.items():
        assert kinds <= found[group], (group, kinds - found[group])
    assert set(found) == set(REQUIRED_MALFORMED)


def test_malformed_rows_never_share_a_key(landing: Path, truth: Path) -> None:
    """Malformed rows are about fresh ids: no other line of the feed mentions their id."""
    for r in read_csv(truth / "malformed.csv"):
        if r["feed"] not in ("crm", "orders", "consent", "erasure") or r["file"].endswith(
            ".parquet"
        ):
            continue
        lines = (landing / r["file"]).read_bytes().split(b"\n")
        first_field = lines[int(r["row_number"]) - 1].split(b",")[0]
        if not first_field:
            continue
        mentions = sum(
            p.read_bytes().count(first_field + b",") for p in (landing / r["feed"]).glob("*.csv")
        )
        assert mentions == 1, r


def test_phones_and_emails_are_valid_for_their_country(validated: dict) -> None:
    rows = valid_rows(validated, "crm")
    notations = defaultdict(set)
    for row in rows:
        if row["phone"]:
            e164 = normalise_phone(row["phone"], row["country"])
            assert e164.startswith("+" + phones.COUNTRY_CODE[row["country"]])
            notations[row["country"]].add(re.sub(r"\d", "9", row["phone"]))
        normalise_email(row["email"])
    counts = Counter(r["country"] for r in rows if r["phone"])
    assert all(len(notations[c]) >= 4 for c, n in counts.items() if n >= 30), notations
    assert any(r["email"] != r["email"].strip() for r in rows)
    assert any(r["email"].strip() != r["email"].strip().lower() for r in rows)
    assert {"+44 20 7946 0018", "(0)20 7946 0018", "020-7946-0018", "020 7946 0018"} == {
        phones.render(phones.PLANS[0], "2079460018", n)
        for n in ("intl_space", "trunk_paren", "nat_dash", "nat_space")
    }


def test_crm_duplicates_of_every_kind(truth: Path, validated: dict) -> None:
    records = read_csv(truth / "crm_records.csv")
    persons = {p["person_id"]: p for p in read_csv(truth / "persons.csv")}
    variants = Counter(r["variant"] for r in records)
    assert set(variants) == {
        "original",
        "typo",
        "nickname",
        "swapped",
        "other_email",
        "phone_format",
    }
    assert variants["original"] == CUSTOMERS
    assert 0.03 * CUSTOMERS <= len(records) - CUSTOMERS <= 0.06 * CUSTOMERS
    crm = {}
    for row in valid_rows(validated, "crm"):
        crm.setdefault(row["crm_id"], row)  # the first version: before any later change
    by_person = defaultdict(dict)
    for r in records:
        by_person[r["person_id"]][r["variant"]] = crm[r["crm_id"]]
    from ml.synthetic.vocab import NICKNAMES

    for person_id, versions in by_person.items():
        original = versions["original"]
        assert original["first_name"] == persons[person_id]["first_name"]
        for variant, dup in versions.items():
            if variant == "typo":
                assert (dup["first_name"], dup["last_name"]) != (
                    original["first_name"],
                    original["last_name"],
                )
                assert (
                    dup["first_name"] == original["first_name"]
                    or dup["last_name"] == original["last_name"]
                )
            elif variant == "nickname":
                assert dup["first_name"] in NICKNAMES[original["first_name"]]
            elif variant == "swapped":
                assert (dup["first_name"], dup["last_name"]) == (
                    original["last_name"],
                    original["first_name"],
                )
            elif variant == "other_email":
                assert normalise_email(dup["email"]) != normalise_email(original["email"])
            elif variant == "phone_format":
                assert dup["phone"] != original["phone"]
                assert normalise_phone(dup["phone"], dup["country"]) == normalise_phone(
                    original["phone"], original["country"]
                )


def test_twins_and_households(truth: Path) -> None:
    persons = {p["person_id"]: p for p in read_csv(truth / "persons.csv")}
    twins = [p for p in persons.values() if p["twin_of"]]
    assert len(twins) >= 4
    for p in twins:
        other = persons[p["twin_of"]]
        assert other["twin_of"] == p["person_id"]
        assert (p["last_name"], p["birth_date"], p["household_id"]) == (
            other["last_name"],
            other["birth_date"],
            other["household_id"],
        )
        assert p["first_name"] != other["first_name"] and p["email"] != other["email"]
    assert len({p["email"] for p in persons.values()}) == len(persons)


def test_references_resolve(validated: dict, truth: Path) -> None:
    crm = valid_rows(validated, "crm")
    crm_ids = {r["crm_id"] for r in crm}
    loyalty = {r["loyalty_id"] for r in crm if r["loyalty_id"]}
    skus = {r["product_id"] for r in valid_rows(validated, "products")}
    identifiers = defaultdict(set)
    for r in read_csv(truth / "identifiers.csv"):
        identifiers[r["kind"]].add(r["value"])
    orders = valid_rows(validated, "orders")
    kinds = Counter()
    for row in orders:
        assert row["sku"] in skus
        if row["customer_ref"]:
            value, kind = classify_reference(row["customer_ref"])
            kinds[(row["channel"], kind)] += 1
            assert value in identifiers[kind]
            assert value in {"crm_id": crm_ids, "loyalty_id": loyalty}.get(
                kind, identifiers["email"]
            )
        else:
            kinds[(row["channel"], "anonymous")] += 1
        assert (row["channel"] == "store") == bool(row["store_id"])
    assert set(kinds) == {
        ("web", "crm_id"),
        ("web", "email"),
        ("store", "loyalty_id"),
        ("store", "anonymous"),
    }
    assert any(
        r["customer_ref"] != r["customer_ref"].strip().lower()
        for r in orders
        if r["channel"] == "web" and "@" in (r["customer_ref"] or "")
    )
    assert {r["ordered_at"][-6:] for r in orders} >= {"+00:00", "+01:00"}
    order_ids = {r["order_id"] for r in orders}
    events = valid_rows(validated, "clickstream")
    purchases = [e for e in events if e["event_type"] == "purchase"]
    assert purchases and all(e["properties"]["order_id"] in order_ids for e in purchases)
    ref_of = {r["order_id"]: r["customer_ref"] for r in orders}
    for e in purchases:  # account holders buy logged in (crm id), guests anonymously (e-mail)
        assert bool(e["user_id"]) == ("@" not in ref_of[e["properties"]["order_id"]])
    for e in events:
        if e["product_sku"]:
            assert e["product_sku"] in skus
    for feed in ("consent", "erasure"):
        for row in valid_rows(validated, feed):
            value, kind = classify_reference(row["subject"])
            assert value in identifiers[kind], (feed, row)
    assert crm_ids == identifiers["crm_id"]
    assert loyalty == identifiers["loyalty_id"]


def test_clickstream_mess(validated: dict, landing: Path) -> None:
    files = sorted((landing / "clickstream").glob("*.jsonl"))
    assert len(files) == 90 and files[-1].name == f"events_{END.isoformat()}.jsonl"
    allowed = contracts.load()["clickstream"].column("event_type").allowed
    where: dict[str, list[tuple[str, int]]] = defaultdict(list)
    occurred: dict[str, str] = {}
    for path in files:
        for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
            try:
                event = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(event, dict) and "event_id" in event and event["event_type"] in allowed:
                try:
                    datetime.fromisoformat(event["occurred_at"])
                except ValueError:
                    continue
                where[event["event_id"]].append((path.name, number))
                occurred[event["event_id"]] = event["occurred_at"][:10]
    # late: first delivered in a file 1-3 days after the day it happened
    delays = Counter(
        (date.fromisoformat(v[0][0][7:17]) - date.fromisoformat(occurred[k])).days
        for k, v in where.items()
    )
    late = sum(n for d, n in delays.items() if d > 0)
    assert set(delays) <= {0, 1, 2, 3} and 0.003 < late / sum(delays.values()) < 0.03
    same_file = [v for v in where.values() if len(v) > 1 and len({f for f, _ in v}) == 1]
    across = [v for v in where.values() if len({f for f, _ in v}) > 1]
    assert same_file and across and late
    for copies in across:  # re-sent in the very next day's file
        days = sorted({date.fromisoformat(f[7:17]) for f, _ in copies})
        assert len(days) == 2 and days[1] - days[0] == timedelta(days=1)
    events = valid_rows(validated, "clickstream")
    # log in: per cookie, no user id until the login, the same user id from then on
    by_cookie = defaultdict(list)
    for e in events:
        by_cookie[e["anonymous_id"]].append(e)
    logins = 0
    for cookie_events in by_cookie.values():
        cookie_events.sort(key=lambda e: (e["occurred_at"], e["event_type"] != "login"))
        users = [e["user_id"] for e in cookie_events]
        assert len({u for u in users if u}) <= 1
        first = next((i for i, u in enumerate(users) if u), None)
        if first is None:
            continue
        assert all(users[first:])
        if first > 0:
            assert cookie_events[first]["event_type"] == "login"
            logins += 1
    assert logins > 0
    kinds = Counter(e["event_type"] for e in events)
    assert set(kinds) == set(contracts.load()["clickstream"].column("event_type").allowed)
    search = next(e for e in events if e["event_type"] == "search")
    assert "query" in search["properties"]
    assert all(
        "campaign" in e["properties"] for e in events if e["event_type"].startswith("email_")
    )
    # skewed activity: the busiest tenth of users make a large share of the events
    per_user = sorted(Counter(e["user_id"] for e in events if e["user_id"]).values(), reverse=True)
    assert sum(per_user[: len(per_user) // 10]) > 0.3 * sum(per_user)


def test_identifiers(truth: Path, validated: dict) -> None:
    rows = read_csv(truth / "identifiers.csv")
    assert len(rows) == len({(r["kind"], r["value"], r["person_id"]) for r in rows})
    by_kind = defaultdict(lambda: defaultdict(set))
    for r in rows:
        by_kind[r["kind"]][r["value"]].add(r["person_id"])
    assert set(by_kind) == {
        "crm_id",
        "loyalty_id",
        "email",
        "phone_e164",
        "user_id",
        "anonymous_id",
        "device_id",
    }
    shared = [v for v, persons in by_kind["device_id"].items() if len(persons) >= 2]
    assert shared and all(2 <= len(by_kind["device_id"][v]) <= 4 for v in shared)
    assert all(len(p) == 1 for p in by_kind["anonymous_id"].values())
    assert all(len(p) == 1 for p in by_kind["email"].values())
    events = valid_rows(validated, "clickstream")
    cookies = {e["anonymous_id"] for e in events}
    assert set(by_kind["anonymous_id"]) <= cookies
    # several cookies per person over time
    per_person = Counter(next(iter(p)) for p in by_kind["anonymous_id"].values())
    assert max(per_person.values()) >= 3
    for e in events:
        if e["user_id"]:
            assert e["user_id"] in by_kind["user_id"]
            assert by_kind["user_id"][e["user_id"]] == by_kind["anonymous_id"][e["anonymous_id"]]
    persons = {p["person_id"]: p for p in read_csv(truth / "persons.csv")}
    assert all(
        v == {pid} or pid not in v
        for pid, p in persons.items()
        for v in [by_kind["email"].get(p["email"], {pid})]
    )
    erased = [p for p in persons.values() if p["erased"] == "true"]
    assert len(erased) >= 2


def test_crm_files_and_deltas(validated: dict, landing: Path, truth: Path) -> None:
    names = sorted(p.name for p in (landing / "crm").iterdir())
    assert names == [f"crm_{(END - timedelta(days=d)).isoformat()}.csv" for d in range(14, -1, -1)]
    full = validated["valid"][f"crm/crm_{END - timedelta(days=14)}.csv"]
    assert len(full) > 0.9 * CUSTOMERS
    expected = {r["file"]: r for r in read_csv(truth / "expected_files.csv")}
    for name in names[1:]:
        assert int(expected[f"crm/{name}"]["rows_duplicate"]) >= 1
        for row in validated["valid"][f"crm/{name}"]:
            assert row["updated_at"][:10] == name[4:14]
    orders = sorted(p.name for p in (landing / "orders").iterdir())
    assert orders[0] == "orders_2024-11.csv" and "orders_2026-11.csv" in orders
    assert "web_2026-11-07.csv" in orders and "store_2026-11-20.parquet" in orders
    table = pq.read_table(landing / "orders" / "store_2026-11-20.parquet")
    assert {str(t) for t in table.schema.types} == {"string"}


def test_utc_offsets_match_zoneinfo() -> None:
    instants = np.arange(1_600_000_000, 1_900_000_000, 3 * 3600 + 17, dtype=np.int64)
    for zone in ("Europe/London", "Europe/Paris", "America/New_York"):
        ours = columns.utc_offset(instants, zone)
        info = ZoneInfo(zone)
        theirs = [
            datetime.fromtimestamp(int(t), UTC).astimezone(info).utcoffset().total_seconds()
            for t in instants[::50]
        ]
        assert ours[::50].tolist() == theirs


def test_every_phone_block_is_valid() -> None:
    rng = np.random.default_rng(0)
    for plan_id, plan in enumerate(phones.PLANS):
        for nsn in phones.random_nsn(np.full(20, plan_id), rng):
            for notation, _ in phones.NOTATIONS[plan.country]:
                assert normalise_phone(
                    phones.render(plan, nsn, notation), plan.country
                ) == phones.e164(plan, nsn)
    with pytest.raises(InvalidValue):
        normalise_phone("07700 900123", "GB")


def test_every_account_belongs_to_one_person_and_reaches_one_of_their_mailboxes(
    truth: Path,
) -> None:
    """accounts.csv says whose each web account is; its email, however written (Gmail without
    its dots, a +tag, googlemail.com), reaches a mailbox of that person's own addresses, and
    no two people share a mailbox."""
    from ml.normalise import mailbox_key

    accounts = read_csv(truth / "accounts.csv")
    owners = defaultdict(set)
    for row in accounts:
        owners[row["user_id"]].add(row["person_id"])
    assert accounts and all(len(people) == 1 for people in owners.values())
    mailboxes = defaultdict(set)
    for row in read_csv(truth / "identifiers.csv"):
        if row["kind"] == "email":
            mailboxes[row["person_id"]].add(mailbox_key(row["value"]))
    for row in accounts:
        assert mailbox_key(row["email"]) in mailboxes[row["person_id"]], row
    people_per_mailbox = defaultdict(set)
    for person, boxes in mailboxes.items():
        for box in boxes:
            people_per_mailbox[box].add(person)
    assert max(len(people) for people in people_per_mailbox.values()) == 1
    # the mess: some accounts are written as another spelling of the same mailbox
    spellings = [r for r in accounts if mailbox_key(r["email"]) != r["email"].lower()]
    assert len(spellings) >= 50
