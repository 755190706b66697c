"""Identity resolution over a real warehouse: stable ids across an added day and a full rebuild.

Generated data is landed by the real loader, staged by a real `dbt build`, and resolved by
`ml.identity.pipeline.resolve_warehouse`, the function the Dagster asset calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from teal_testing import TEST_SALT

from ml.identity.pipeline import resolve_warehouse
from ml.landing import contracts
from ml.landing.loader import Loader
from ml.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR, DBT_SELECTIONS

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("identity_pipeline")]

CUSTOMERS = 800
SEED = 11
LAST_DAY = "2026-11-20"


def dbt_build(warehouse: Path, part: str, target: Path) -> None:
    selection = DBT_SELECTIONS[part]
    command = [DBT_EXECUTABLE, "build", "--quiet", "--target-path", str(target)]
    command += ["--profiles-dir", str(DBT_PROJECT_DIR)]
    command += ["--vars", json.dumps({"warehouse": str(warehouse), "as_of": LAST_DAY})]
    command += ["--select", *selection["select"].split()]
    if selection.get("exclude"):
        command += ["--exclude", *selection["exclude"].split()]
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def land_and_resolve(warehouse: Path, landing: Path, run_id: str, target: Path) -> None:
    with duckdb.connect(str(warehouse)) as connection:
        loader = Loader(connection, landing, salt=TEST_SALT)
        for feed in contracts.load():
            loader.land_feed(feed.name, progress=False)
    dbt_build(warehouse, "feeds", target)
    with duckdb.connect(str(warehouse)) as connection:
        resolve_warehouse(connection, run_id=run_id)


def mapping(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            "select id_type, id_value, customer_id from identity.identifiers "
            "where customer_id is not null order by id_type, id_value"
        ).df()


@dataclass
class Runs:
    incremental: Path
    rebuild: Path
    before: pd.DataFrame
    after: pd.DataFrame
    rebuilt: pd.DataFrame
    truth: Path
    target: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    from ml.synthetic import generate

    root = tmp_path_factory.mktemp("identity")
    landing, held_back = root / "landing", root / "held_back"
    generate(landing, root / "truth", customers=CUSTOMERS, seed=SEED, progress=False)
    # the last day's files arrive later
    for path in sorted(landing.rglob(f"*{LAST_DAY}*")):
        destination = held_back / path.relative_to(landing)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, destination)
    incremental = root / "incremental.duckdb"
    land_and_resolve(incremental, landing, "day-1", root / "target")
    before = mapping(incremental)
    for path in sorted(held_back.rglob("*.*")):
        shutil.move(path, landing / path.relative_to(held_back))
    land_and_resolve(incremental, landing, "day-2", root / "target")
    after = mapping(incremental)
    rebuild = root / "rebuild.duckdb"
    land_and_resolve(rebuild, landing, "rebuild", root / "target")
    return Runs(
        incremental, rebuild, before, after, mapping(rebuild), root / "truth", root / "target"
    )


def history(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute("select * from identity.history").df()


def test_an_added_day_keeps_every_id_except_recorded_merges(runs):
    assert len(runs.after) > len(runs.before)
    events = history(runs.incremental)
    day2 = events[events["run_id"] == "day-2"]
    merged_into = dict(
        zip(
            day2.loc[day2["event_type"] == "merged", "customer_id"],
            day2.loc[day2["event_type"] == "merged", "other_customer_id"],
            strict=True,
        )
    )
    gone = set(runs.before["customer_id"]) - set(runs.after["customer_id"])
    assert gone == set(merged_into) | set(day2.loc[day2["event_type"] == "retired", "customer_id"])
    joined = runs.before.merge(runs.after, on=["id_type", "id_value"], suffixes=("_1", "_2"))
    expected = joined["customer_id_1"].map(lambda cid: merged_into.get(cid, cid))
    moved = joined[joined["customer_id_2"] != expected]
    split_ids = set(day2.loc[day2["event_type"] == "split", "customer_id"])
    assert set(moved["customer_id_1"]) <= split_ids
    # every id in use was created (or split off) in one of the two runs
    created = set(events.loc[events["event_type"].isin(["created", "split"]), "customer_id"])
    created |= set(events.loc[events["event_type"] == "split", "other_customer_id"].dropna())
    assert set(runs.after["customer_id"]) <= created


def test_a_full_rebuild_reproduces_the_ids(runs):
    pd.testing.assert_frame_equal(runs.rebuilt, runs.after)


def test_rerunning_identity_changes_nothing(runs, tmp_path):
    copy = tmp_path / "again.duckdb"
    shutil.copy(runs.incremental, copy)
    with duckdb.connect(str(copy)) as connection:
        resolve_warehouse(connection, run_id="again")
    pd.testing.assert_frame_equal(mapping(copy), runs.after)
    again = history(copy)
    assert again[again["run_id"] == "again"].empty


def test_without_one_record_the_stored_links_rebuild_the_graph_alone(runs, tmp_path):
    """What erasure does after deleting a person: the matcher's pairs between the records left
    are reused (nothing scored again), the record and its pairs go, every other pair and the
    model stay, and nobody else's customer id moves."""
    copy = tmp_path / "reuse.duckdb"
    shutil.copy(runs.rebuild, copy)
    with duckdb.connect(str(copy)) as connection:
        pairs_before = connection.execute(
            "select record_id_l, record_id_r, is_match from identity.match_links order by all"
        ).fetchall()
        model_before = connection.execute("select * from identity.match_model").fetchall()
        # a CRM record the matcher linked to another
        (gone, partner) = connection.execute(
            "select record_id_l, record_id_r from identity.match_links where is_match "
            "order by all limit 1"
        ).fetchone()
        cluster = connection.execute(
            "select customer_id from identity.records where record_key = ?", [f"crm:{gone}"]
        ).fetchone()[0]
        connection.execute("delete from crm.customers where crm_id = ?", [gone])
        connection.execute(
            "delete from intermediate.int_identifiers_observed where record_key = ?",
            [f"crm:{gone}"],
        )
        outcome = resolve_warehouse(connection, run_id="reuse", reuse_links=True)
        pairs_after = connection.execute(
            "select record_id_l, record_id_r, is_match from identity.match_links order by all"
        ).fetchall()
        assert outcome.match_report["links_reused"] is True
        assert pairs_after == [pair for pair in pairs_before if gone not in pair[:2]]
        assert len(pairs_after) < len(pairs_before)
        assert connection.execute("select * from identity.match_model").fetchall() == model_before
        assert connection.execute(
            "select count(*) from identity.records where record_key = ?", [f"crm:{gone}"]
        ).fetchone() == (0,)
        assert connection.execute(
            "select count(*) from identity.records where record_key = ?", [f"crm:{partner}"]
        ).fetchone() == (1,)
    # everyone outside the changed customer keeps their id
    after = mapping(copy)
    before = runs.rebuilt[runs.rebuilt["customer_id"] != cluster]
    kept = before.merge(after, on=["id_type", "id_value"], suffixes=("_before", "_after"))
    assert len(kept) == len(before)
    assert (kept["customer_id_before"] == kept["customer_id_after"]).all()


def test_every_fact_carries_its_customer_and_unresolved_rows_are_counted(runs):
    dbt_build(runs.incremental, "subjects", runs.target)
    dbt_build(runs.incremental, "customers", runs.target)
    with duckdb.connect(str(runs.incremental), read_only=True) as connection:

        def one(sql: str) -> int:
            return connection.execute(sql).fetchone()[0]

        customers = one("select count(*) from identity.customers")
        assert one("select count(*) from marts.dim_customers") == customers
        assert one("select count(*) from marts.dim_customer_summary") == customers
        # no order line is lost, and an order without a customer reference has no customer
        assert one("select count(*) from marts.fct_order_items") == one(
            "select count(*) from staging.stg_orders__order_lines"
        )
        assert (
            one(
                "select count(*) from marts.fct_order_items where customer_ref_type is null "
                "and customer_id is not null"
            )
            == 0
        )
        # every order that names a crm id resolves (crm ids are never junk or shared)
        assert (
            one(
                "select count(*) from marts.fct_order_items where customer_ref_type = 'crm_id' "
                "and customer_id is null"
            )
            == 0
        )
        assert one("select count(*) from marts.fct_clickstream_events") == one(
            "select count(*) from staging.stg_clickstream__events"
        )
        # logged-in events always resolve; anonymous ones only through a cookie that logged in
        assert (
            one(
                "select count(*) from marts.fct_clickstream_events where user_id is not null "
                "and customer_id is null"
            )
            == 0
        )
        # golden record lineage points at a record of the same customer
        assert (
            one(
                """
            select count(*) from marts.dim_customers as customers
            inner join identity.records as records on customers.name_source_record = records.record_key
            where records.customer_id != customers.customer_id
            """
            )
            == 0
        )


def test_explain_says_why_two_records_are_and_are_not_one_customer(runs):
    from ml.identity.inspect import explain_pair

    with duckdb.connect(str(runs.incremental), read_only=True) as connection:
        pair = connection.execute(
            """
            select min(id_value), max(id_value) from identity.identifiers
            where id_type = 'crm_id' and customer_id is not null
            group by customer_id having count(*) = 2
            order by 1 limit 1
            """
        ).fetchone()
        same = explain_pair(connection, f"crm:{pair[0]}", f"crm:{pair[1]}")
        strangers = connection.execute(
            "select min(id_value) from identity.identifiers "
            "where id_type = 'crm_id' and customer_id is not null group by customer_id order by 1 limit 2"
        ).fetchall()
        apart = explain_pair(connection, f"crm:{strangers[0][0]}", f"crm:{strangers[1][0]}")
        with pytest.raises(ValueError, match="no such record"):
            explain_pair(connection, "crm:C0000000", f"crm:{pair[0]}")
    assert "Same customer, because:" in same
    assert f"crm_id:{pair[0]}" in same and f"crm_id:{pair[1]}" in same
    assert "Not the same customer." in apart
    assert "same customer: no" in apart  # the matcher's field-by-field verdict


def test_preview_shows_the_splits_a_stricter_limit_would_cause(runs, tmp_path):
    from ml.identity.inspect import preview_config

    text = (Path(__file__).resolve().parents[1] / "ml" / "identity" / "identity.yml").read_text()
    stricter = text.replace(
        "limits:\n  user_id: 1\n  crm_id: 3\n", "limits:\n  user_id: 1\n  crm_id: 1\n"
    )
    assert stricter != text
    path = tmp_path / "identity.yml"
    path.write_text(stricter)
    with duckdb.connect(str(runs.incremental), read_only=True) as connection:
        changes = preview_config(connection, path)
    assert not changes.empty
    assert set(changes["event_type"]) <= {"split", "merged", "retired"}
    # a profile may no longer hold two CRM records: resolved CRM duplicates would split apart
    with duckdb.connect(str(runs.incremental), read_only=True) as connection:
        duplicated = connection.execute(
            "select count(*) from (select customer_id from identity.identifiers "
            "where id_type = 'crm_id' and customer_id is not null group by 1 having count(*) > 1)"
        ).fetchone()[0]
    assert duplicated > 0
    assert (changes["event_type"] == "split").sum() == duplicated
    # nothing was written: the warehouse still holds the applied mapping
    pd.testing.assert_frame_equal(mapping(runs.incremental), runs.after)
