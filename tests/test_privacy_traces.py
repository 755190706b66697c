"""Erasure leaves nothing behind, anywhere Teal writes: the audit of issue 12, end to end.

On a copy of the shared sample run, a customer who was exported, has a web login (an account
and its clickstream), cookies and consent events sends two more CRM rows that are refused (a
phone that is no number in the United States, an impossible birth date) and asks to be erased
under a spelling of their Gmail address nobody has seen (no dots, a +tag). One run of
`refresh_all`, with Dagster's instance stored in the test folder, lands the rows (the
quarantine's reasons go to Dagster, masked) and erases them. Then none of their values is in
the warehouse or its file's bytes, the export files, the reports, the hub's snapshots, the
Dagster instance (its SQLite files included), the GX stores and Data Docs, dbt's target and
logs, or the landing files; the erasure report lists every store searched; and replaying
every file they were in brings nothing back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from teal_testing import copy_of_sample_run

from ml.activation import hashing
from ml.settings import Settings
from orchestration.bench import NO_TELEMETRY

pytestmark = pytest.mark.integration

BAD_PHONE = "0113 217 3517"  # a Leeds number, no phone number in the United States
BAD_BIRTH_DATE = "1984-02-30"
REQUEST = "ER0000901"


@dataclass
class ErasedRun:
    """The copy after the run that erased one person, and what identified them."""

    root: Path
    settings: Settings
    dagster_home: Path
    result: dg.ExecuteInProcessResult
    customer_id: str
    needles: set[str]  # their values nobody else has, and the hashes ad platforms got
    originals: Path  # every landing file as it was before the run


def choose_person(warehouse: Path) -> tuple[str, list[str], str]:
    """(customer id, crm ids, gmail address) of an exported customer with a web login, cookies,
    consent events and a Gmail address."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        customer_id, email = connection.execute(
            """
            select members.customer_id, min(emails.id_value)
            from activation.export_members as members
            inner join identity.identifiers as emails
                on emails.customer_id = members.customer_id and emails.id_type = 'email'
                and emails.id_value like '%.%@gmail.com'
            where members.group_name = 'treatment'
                and exists (select 1 from identity.identifiers as ids
                    where ids.customer_id = members.customer_id and ids.id_type = 'user_id')
                and exists (select 1 from identity.identifiers as ids
                    where ids.customer_id = members.customer_id and ids.id_type = 'anonymous_id')
                and exists (select 1 from intermediate.int_subjects_resolved as subjects
                    where subjects.customer_id = members.customer_id and subjects.source = 'consent')
            group by 1 order by 1 limit 1
            """
        ).fetchone()
        crm_ids = [
            value
            for (value,) in connection.execute(
                "select id_value from identity.identifiers where customer_id = ? "
                "and id_type = 'crm_id' order by 1",
                [customer_id],
            ).fetchall()
        ]
    return customer_id, crm_ids, email


def their_values(truth: Path, crm_ids: list[str]) -> tuple[set[str], dict[str, str]]:
    """The person's identifiers nobody else has (lower-cased), and their CRM profile."""
    records = pd.read_csv(truth / "crm_records.csv", dtype=str)
    person = records.person_id[records.crm_id == crm_ids[0]].iloc[0]
    identifiers = pd.read_csv(truth / "identifiers.csv", dtype=str)
    owners = identifiers.groupby("value")["person_id"].nunique()
    mine = identifiers[(identifiers.person_id == person) & identifiers.value.map(owners).eq(1)]
    persons = pd.read_csv(truth / "persons.csv", dtype=str).set_index("person_id")
    return set(mine.value.str.lower()), persons.loc[person].to_dict()


def platform_hashes(values: set[str]) -> set[str]:
    hashes = set()
    for value in values:
        if "@" in value:
            prepared = [hashing.google_email(value), hashing.meta_email(value)]
        elif value.startswith("+"):
            prepared = [hashing.google_phone(value), hashing.meta_phone(value)]
        else:
            continue
        hashes |= {hashing.sha256_hex(v) for v in prepared if v}
    return hashes


@pytest.fixture(scope="module")
def erased_run(sample_run, tmp_path_factory, definitions) -> ErasedRun:
    root = tmp_path_factory.mktemp("traces") / "run"
    settings = copy_of_sample_run(sample_run, root)
    customer_id, crm_ids, email = choose_person(settings.warehouse)
    identifiers, profile = their_values(root / "truth", crm_ids)
    local, domain = email.split("@")
    spelling = f"{local.replace('.', '')}+privacy@{domain}"  # their mailbox, written anew
    crm = settings.landing / "crm" / "crm_2026-11-21.csv"
    header = (
        "crm_id,first_name,last_name,email,phone,birth_date,gender,street,city,postcode,"
        "country,created_at,updated_at,loyalty_id"
    )
    name = f"{profile['first_name']},{profile['last_name']}"
    crm.write_text(
        f"{header}\n"
        f"{crm_ids[0]},{name},{email},{BAD_PHONE},,F,1 Elm St,Austin,78701,US,"
        "2026-11-21 09:00:00,2026-11-21 09:00:00,\n"
        f"{crm_ids[0]},{name},{email},,{BAD_BIRTH_DATE},F,1 Elm St,Austin,78701,US,"
        "2026-11-21 09:05:00,2026-11-21 09:05:00,\n",
        encoding="utf-8",
    )
    (settings.landing / "erasure" / "erasure_2026-11-21.csv").write_text(
        f"request_id,subject,requested_at\n{REQUEST},{spelling},2026-11-21T10:00:00Z\n",
        encoding="utf-8",
    )
    originals = root.parent / "originals"
    shutil.copytree(settings.landing, originals)
    values = identifiers | {email, spelling, customer_id.lower(), BAD_PHONE, BAD_BIRTH_DATE}
    dagster_home = root / ".dagster_home"
    dagster_home.mkdir()
    job = definitions(settings).resolve_job_def("refresh_all")
    with dg.DagsterInstance.local_temp(str(dagster_home), NO_TELEMETRY) as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return ErasedRun(
        root,
        settings,
        dagster_home,
        result,
        customer_id,
        values | platform_hashes(values),
        originals,
    )


def files_naming(folder: Path, needles: set[str]) -> list[tuple[str, str]]:
    """(file, needle) for every file under `folder` whose bytes (or, for Parquet, whose rows)
    hold a needle, in any case; SQLite files and binary files included, byte for byte."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        text = data.decode("utf-8", "replace").lower()
        if path.suffix == ".parquet" and data[:4] == b"PAR1":
            text += json.dumps(pq.read_table(path).to_pylist(), default=str).lower()
        found += [(str(path.relative_to(folder)), n) for n in sorted(needles) if n in text]
    return found


def test_the_run_succeeds_and_the_quarantine_reasons_reach_dagster_masked(erased_run):
    assert erased_run.result.success
    checks = {
        (e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name): e
        for e in erased_run.result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    quarantine = checks[("crm/customers", "nothing_quarantined")].event_specific_data
    reasons = quarantine.metadata["first_reasons"].value
    assert (
        "crm/crm_2026-11-21.csv row 2: phone '01** *** **17' is not a valid phone number in US"
        in reasons
    )
    assert "crm/crm_2026-11-21.csv row 3: birth_date '19**-**-30' is not a valid date" in reasons
    nothing_left = checks[("privacy/erasure_log", "erased_people_leave_no_trace")]
    assert nothing_left.event_specific_data.passed
    assert nothing_left.event_specific_data.metadata["run_history_events_naming_erased"].value == 0


def test_erasure_says_how_long_each_of_its_phases_took(erased_run):
    """The erasure step's metadata times every phase, in the order they ran (make bench prints
    them under the step)."""
    (materialization,) = [
        e.event_specific_data.materialization
        for e in erased_run.result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key.to_user_string()
        == "privacy/erasure_log"
    ]
    phases = materialization.metadata["seconds_by_phase"].value
    assert [item["phase"] for item in phases] == [
        "who",
        "tables",
        "export files",
        "hub snapshots",
        "tombstones",
        "landing files",
        "log",
        "commit",
        "identity again",
        "compaction",
        "traces",
        "run artefacts",
        "run history",
    ]
    assert all(item["seconds"] >= 0 for item in phases)


def test_the_request_under_another_spelling_of_their_mailbox_erased_them(erased_run):
    with duckdb.connect(str(erased_run.settings.warehouse), read_only=True) as connection:
        log = connection.execute(
            "select status, rows_removed > 0 from privacy.erasure_log where erasure_request_id = ?",
            [REQUEST],
        ).fetchall()
        stores = connection.execute(
            "select store, searched > 0, removed from privacy.erasure_stores "
            "where erasure_request_id = ? order by store",
            [REQUEST],
        ).fetchall()
        removed = dict(
            connection.execute(
                "select table_name, rows_removed from privacy.erasure_removals "
                "where erasure_request_id = ?",
                [REQUEST],
            ).fetchall()
        )
        audited = connection.execute(
            "select action from privacy.audit_log where target = ? order by action", [REQUEST]
        ).fetchall()
        still_there = connection.execute(
            "select count(*) from identity.identifiers where customer_id = ?",
            [erased_run.customer_id],
        ).fetchone()[0]
    assert log == [("erased", True)]
    # the report: every store searched, and what went from each
    assert [store for store, _, _ in stores] == [
        "dagster run history",
        "export files",
        "hub snapshots",
        "landing files",
        "run artefacts",
        "warehouse file",
        "warehouse tables",
    ]
    searched = {store: was_searched for store, was_searched, _ in stores}
    assert all(searched.values()), searched
    went = {store: rows for store, _, rows in stores}
    assert went["warehouse tables"] > 0 and went["landing files"] > 0
    assert went["export files"] > 0 and went["hub snapshots"] > 0
    assert went["dagster run history"] == 0 and went["run artefacts"] == 0
    # their web login went: the account, its logins in the clickstream, the identity rows
    assert removed["accounts.accounts"] >= 1 and removed["clickstream.events"] >= 1
    assert any(place.startswith("landing/accounts/") for place in removed)
    assert any(place.startswith("landing/clickstream/") for place in removed)
    assert any(place.startswith("exports/") for place in removed)
    assert any(place.startswith("hub/") for place in removed)
    assert audited == [("erasure",), ("erasure_verified",), ("erasure_verified",)]
    assert still_there == 0


def test_none_of_their_values_remains_anywhere(erased_run):
    """The warehouse's tables and file bytes, exports, reports, hub snapshots, Dagster's
    instance, the GX project, dbt's target and logs, the landing files."""
    settings = erased_run.settings
    needles = erased_run.needles
    assert len(needles) >= 12
    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
        columns = connection.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "join information_schema.tables using (table_schema, table_name) "
            "where table_type = 'BASE TABLE'"
        ).fetchall()
        in_tables = [
            (f"{schema}.{table}.{column}", needle)
            for schema, table, column in columns
            for needle in sorted(needles)
            if connection.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where contains(lower(cast("{column}" as varchar)), ?)',
                [needle],
            ).fetchone()[0]
        ]
    assert in_tables == []
    places = {
        "warehouse file": settings.warehouse.parent / settings.warehouse.name,
        "exports": settings.exports,
        "reports": settings.reports,
        "hub snapshots": settings.hub_snapshots,
        ".dagster_home": erased_run.dagster_home,
        "gx project": settings.gx_project / "gx",
        "dbt target": settings.dbt_target,
        "landing": settings.landing,
    }
    for place, path in places.items():
        assert path.exists(), place
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace").lower()
            assert [n for n in needles if n in text] == [], place
        else:
            assert files_naming(path, needles) == [], place
    # the places were not empty: there was something to search
    assert any((erased_run.dagster_home / "history").rglob("*.db"))
    assert any((settings.dbt_target).rglob("dbt.log"))
    assert any((settings.gx_project / "gx" / "uncommitted").rglob("*.json"))


def test_replaying_their_old_files_brings_nothing_back(erased_run):
    """Every landing file as it was before the run, dropped in again under a new name: their
    rows are dropped as erased, and the next erasure pass rewrites the copies."""
    from ml.landing.loader import Loader, reconciliation
    from ml.workflow.privacy import erase_requested

    settings = erased_run.settings
    replayed = []
    for original in sorted(p for p in erased_run.originals.rglob("*") if p.is_file()):
        relative = original.relative_to(erased_run.originals)
        target = settings.landing / relative.parent / f"replay_{relative.name}"
        if (settings.landing / relative).read_bytes() != original.read_bytes():
            shutil.copyfile(original, target)
            replayed.append(target.relative_to(settings.landing).as_posix())
            if original.suffix in {".csv", ".jsonl"}:  # the same rows exported again
                again = target.with_name(f"again_{relative.name}")
                again.write_bytes(original.read_bytes() + b"\n")
                replayed.append(again.relative_to(settings.landing).as_posix())
    assert len(replayed) >= 4
    with settings.connect() as connection:
        reports = Loader(connection, settings.landing, salt=settings.salt).land_all(progress=False)
        results = {f.file: f for report in reports for f in report.files}
        from ml.landing import contracts

        for feed in contracts.load():
            assert reconciliation(connection, feed)["reconciles"].all(), feed.name
    # a file as it was is recognised by its content and skipped; the same rows in a new file
    # are read, and the person's rows are dropped as erased (the tombstones), nobody's loaded
    copies = [results[name] for name in replayed if "/replay_" in name]
    exports = [results[name] for name in replayed if "/again_" in name]
    assert copies and all(
        f.status == "skipped" and f.reason.startswith("same content as") for f in copies
    )
    assert exports and sum(f.rows_erased for f in exports) > 0
    assert sum(f.rows_loaded for f in exports) == 0, [(f.file, f.rows_loaded) for f in exports]
    step = erase_requested(settings, run_id="replay-pass")
    assert step.outcome.requests == [] and step.outcome.landing_files_rewritten >= len(replayed)
    # nothing pending: the copies are rewritten and checked, nobody is searched for
    assert list(step.outcome.seconds) == ["landing files", "commit", "traces"]
    assert step.traces.empty
    assert files_naming(settings.landing, erased_run.needles) == []
    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
        for needle in sorted(erased_run.needles):
            assert not connection.execute(
                "select count(*) from intermediate.int_identifiers_observed "
                "where contains(lower(id_value), ?)",
                [needle],
            ).fetchone()[0]
