"""The whole job on generated data, in a temporary warehouse: exact counts against the ground truth.

Real components throughout: the generator writes files, Dagster runs `refresh_all` (landing,
Great Expectations, dbt build), and the assertions read the DuckDB file it wrote.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import dagster as dg
import duckdb
import pandas as pd
import pytest
from teal_testing import settings_for, table_counts

from ml.landing import contracts
from ml.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR

pytestmark = pytest.mark.integration

REASON_BY_KIND = {
    "bad_date": "is not a valid date",
    "bad_timestamp": "is not a valid timestamp",
    "negative_quantity": "is below 1",
    "wrong_column_count": "fields, expected",
    "non_utf8": "is not valid UTF-8",
    "unknown_enum": "is not one of",
    "bad_email": "is not a valid email address",
    "bad_phone": "phone number",
    "missing_required": "is missing",
    "broken_json": "is not valid JSON",
    "not_an_object": "expected an object",
    "bad_decimal": "is not a decimal number",
    "bad_reference": "is not an email",
}


@pytest.fixture(scope="module")
def run(sample_run):
    return sample_run


def check_results(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    evaluations = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluations[(data.asset_key.to_user_string(), data.check_name)] = data.passed
    return evaluations


def test_the_job_succeeds_and_every_error_check_passes(run):
    assert run.first.success
    checks = check_results(run.first)
    feeds = [f"{feed.name}/{feed.table}" for feed in contracts.load()]
    for key in feeds:
        assert checks[(key, "reconciles")], key
        assert checks[(key, "great_expectations")], key
        # the sample has malformed rows in every feed: the warning check says so
        assert checks[(key, "nothing_quarantined")] is False, key
    dbt_checks = {k: v for k, v in checks.items() if k[0].startswith("staging/")}
    assert len(dbt_checks) >= 30
    assert all(dbt_checks.values()), [k for k, v in dbt_checks.items() if not v]


def test_every_file_lands_exactly_as_the_ground_truth_says(run):
    expected = (
        pd.read_csv(run.truth / "expected_files.csv").sort_values("file").reset_index(drop=True)
    )
    with duckdb.connect(str(run.warehouse), read_only=True) as connection:
        ledger = connection.execute(
            "select feed, file, rows_read, rows_loaded, rows_quarantined, rows_duplicate, "
            "status = 'quarantined' as file_quarantined from landing.files order by file"
        ).df()
    expected["file_quarantined"] = expected["file_quarantined"].astype(bool)
    pd.testing.assert_frame_equal(ledger, expected[ledger.columns], check_dtype=False)


def test_quarantine_holds_exactly_the_malformed_rows_with_reasons(run):
    malformed = pd.read_csv(run.truth / "malformed.csv")
    with duckdb.connect(str(run.warehouse), read_only=True) as connection:
        quarantined = connection.execute(
            "select feed, file, row_number, reason from landing.quarantine where row_number is not null"
        ).df()
        whole_files = connection.execute(
            "select file from landing.quarantine where row_number is null"
        ).df()
    found = set(zip(quarantined.feed, quarantined.file, quarantined.row_number, strict=True))
    assert found == set(zip(malformed.feed, malformed.file, malformed.row_number, strict=True))
    reasons = dict(
        zip(
            zip(quarantined.file, quarantined.row_number, strict=True),
            quarantined.reason,
            strict=True,
        )
    )
    for row in malformed.itertuples():
        reason = reasons[(row.file, row.row_number)]
        assert REASON_BY_KIND[row.kind] in reason, (row.kind, reason)
        if isinstance(row.field, str) and row.kind not in (
            "wrong_column_count",
            "non_utf8",
            "broken_json",
            "not_an_object",
        ):
            assert row.field in reason, (row.field, reason)
    expected_files = pd.read_csv(run.truth / "expected_files.csv")
    assert set(whole_files.file) == set(
        expected_files.file[expected_files.file_quarantined.astype(bool)]
    )
    # every feed has at least one refused row
    assert set(quarantined.feed) == {feed.name for feed in contracts.load()}


def test_running_again_changes_nothing(run):
    assert run.second.success
    from ml.activation.config import load_exports

    # every table keeps its rows, except the logs that record each run: clustering and
    # prediction runs, one retention purge per feed with a retention, and one audit row per
    # export written again
    after_first, after_second = dict(run.tables_after_first), dict(run.tables_after_second)
    assert after_second.pop("ml.cluster_runs") == after_first.pop("ml.cluster_runs") + 1
    assert after_second.pop("ml.prediction_runs") == after_first.pop("ml.prediction_runs") + 1
    retained = sum(1 for feed in contracts.load() if feed.retention)
    assert retained == 2
    assert after_second.pop("privacy.retention_log") == (
        after_first.pop("privacy.retention_log") + retained
    )
    assert after_second.pop("privacy.audit_log") == (
        after_first.pop("privacy.audit_log") + len(load_exports())
    )
    assert after_second == after_first
    checks = check_results(run.second)
    assert checks[("orders/order_lines", "reconciles")]
    # nothing new was landed, so nothing new was quarantined
    assert checks[("orders/order_lines", "nothing_quarantined")]


def test_staging_models_have_one_row_per_key(run):
    with duckdb.connect(str(run.warehouse), read_only=True) as connection:

        def one(sql: str) -> int:
            return connection.execute(sql).fetchone()[0]

        assert one("select count(*) from staging.stg_crm__customers") == one(
            "select count(distinct crm_id) from crm.customers"
        )
        assert one("select count(*) from staging.stg_orders__order_lines") == one(
            "select count(*) from orders.order_lines"
        )
        assert one("select count(*) from staging.stg_clickstream__events") == one(
            "select count(*) from clickstream.events"
        )
        assert one("select count(*) from staging.stg_products__products") == one(
            "select count(distinct product_id) from products.items"
        )
        # timestamps are UTC: a London summer time order placed at 10:00 local lands as 09:00
        assert (
            one("select count(*) from staging.stg_orders__order_lines where ordered_at is null")
            == 0
        )


def test_run_summary_and_dbt_docs(run, tmp_path, capsys):
    from ml.summary import main as summary_main

    assert summary_main(run.settings) == 0
    summary = capsys.readouterr().out
    assert "crm" in summary and "quarantined" in summary
    assert "dbt build: 41 models built (0 not)" in summary
    assert "Erasure: 5 requests processed" in summary and "Exports (5): " in summary
    assert "RFM as of 2026-11-21 00:00:00: " in summary and "Segments (14): " in summary
    assert "Identity: " in summary and "customers from" in summary
    assert "Great Expectations: 7 of 7 suites passed" in summary
    assert "Predictions, held out: propensity AUC 0." in summary and "CLV fitted" in summary
    assert "Recommendations, NDCG@10 held out: popularity 0." in summary
    assert "not fitted" not in summary
    variables = json.dumps({"warehouse": str(run.warehouse)})
    docs = subprocess.run(
        [DBT_EXECUTABLE, "docs", "generate", "--target-path", str(tmp_path / "docs")]
        + ["--vars", variables, "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert docs.returncode == 0, docs.stdout[-2000:]
    assert (tmp_path / "docs" / "index.html").exists()
    assert (tmp_path / "docs" / "catalog.json").exists()


def test_identity_resolution_meets_the_bar_on_the_default_sample(run):
    from ml.identity.evaluate import evaluate

    with duckdb.connect(str(run.warehouse), read_only=True) as connection:
        evaluation = evaluate(connection, run.truth)
        unresolved_orders = connection.execute(
            "select count(*) from marts.fct_orders where customer_id is null and customer_ref_type is not null"
        ).fetchone()[0]
    people = evaluation.scopes["people"]
    assert people["precision"] >= 0.995, people
    assert people["recall"] >= 0.98, people
    # cookies and devices: never a stranger's browsing on someone's profile
    assert evaluation.scopes["all"]["precision"] >= 0.995
    # every order that names its customer resolves
    assert unresolved_orders == 0


def test_features_rfm_clusters_and_segments_as_of_the_last_day(run):
    from ml.segments import load_catalogue, load_segments
    from ml.segments.catalogue import SEGMENTS_DIR

    with duckdb.connect(str(run.warehouse), read_only=True) as connection:

        def one(sql: str) -> object:
            return connection.execute(sql).fetchone()[0]

        customers = one("select count(*) from marts.dim_customers")
        for table in ("customer_features", "customer_rfm", "dim_customer_attributes"):
            assert one(f"select count(*) from marts.{table}") == customers, table
        assert one("select count(*) from ml.customer_clusters") == customers
        # as of 2026-11-20 (conftest): everything before 2026-11-21 00:00, nothing after
        assert connection.execute(
            "select distinct as_of_at from marts.dim_customer_attributes"
        ).fetchall() == [(datetime(2026, 11, 21),)]
        assert one("select count(*) from marts.fct_sessions where ended_at >= '2026-11-21'") == 0
        # RFM: buyers are scored 1..5 and named; the others are their own bucket
        assert (
            one(
                "select count(*) from marts.customer_rfm where has_purchased and "
                "(r_score not between 1 and 5 or rfm_segment = 'No Purchases')"
            )
            == 0
        )
        assert (
            one(
                "select count(*) from marts.customer_rfm where not has_purchased "
                "and (r_score is not null or rfm_segment <> 'No Purchases')"
            )
            == 0
        )
        assert one("select count(*) from marts.customer_rfm where has_purchased") == one(
            "select count(distinct customer_id) from marts.fct_orders "
            "where is_completed and ordered_at < '2026-11-21'"
        )
        assert (
            one("select count(*) from marts.fct_rfm_snapshots where snapshot_date = '2026-11-20'")
            == customers
        )
        # the second run kept every cluster id (same data, same model)
        assert one(
            "select adjusted_rand_vs_previous from ml.cluster_runs order by fitted_at desc limit 1"
        ) == pytest.approx(1.0)
        # every shipped segment ran; its size is its open memberships
        names = {segment.name for segment in load_segments(SEGMENTS_DIR, load_catalogue())}
        sizes = dict(
            connection.execute(
                "select segment_name, members from segments.segment_sizes "
                "where snapshot_date = '2026-11-20'"
            ).fetchall()
        )
        assert set(sizes) == names
        open_rows = dict(
            connection.execute(
                "select segment_name, count(*) from segments.segment_memberships "
                "where valid_to is null group by all"
            ).fetchall()
        )
        assert {name: open_rows.get(name, 0) for name in names} == sizes
        # cart abandoners of the last 24 hours, counted straight from the events
        abandoners = {
            row[0]
            for row in connection.execute(
                """
                select customer_id from marts.fct_clickstream_events
                where customer_id is not null
                    and occurred_at >= timestamp '2026-11-20 00:00:00'
                    and occurred_at < timestamp '2026-11-21 00:00:00'
                group by customer_id
                having count(*) filter (where event_type = 'add_to_cart') > 0
                    and count(*) filter (where event_type = 'purchase') = 0
                """
            ).fetchall()
        }
        members = {
            row[0]
            for row in connection.execute(
                "select customer_id from segments.segment_memberships "
                "where segment_name = 'cart_abandoners_24h' and valid_to is null"
            ).fetchall()
        }
        assert abandoners and members == abandoners
    charts = run.warehouse.parent / "reports" / "charts"
    for name in ("rfm_grid.png", "segment_sizes.png"):
        assert (charts / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_segments_alone_refuse_a_cutoff_other_than_the_features(run):
    from orchestration.defs.audiences import rule_segments

    before = table_counts(run.warehouse)
    result = dg.materialize(
        [rule_segments],
        resources={"settings": settings_for(run.root, as_of="2026-11-19")},
        raise_on_error=False,
    )
    assert not result.success
    failures = [
        event.step_failure_data.error.message
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    ]
    assert len(failures) == 1
    assert "would run as of 2026-11-20 00:00:00" in failures[0]
    assert "holds features as of 2026-11-21 00:00:00: materialise" in failures[0]
    assert table_counts(run.warehouse) == before
