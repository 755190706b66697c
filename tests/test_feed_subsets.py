"""Any subset of feeds runs end to end: the job succeeds, every mart exists (empty where its
inputs are absent), identity, RFM, segments and exports work on what there is, and the summary
says which feeds were absent.

Each subset lands a small generated sample's folders for those feeds only, in a warehouse of
its own, and runs the real `refresh_all` job.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from teal_testing import run_refresh_all, settings_for

from ml.landing import contracts
from ml.settings import DBT_PROJECT_DIR

pytestmark = pytest.mark.integration

CUSTOMERS = 300
SEED = 5
SUBSETS = {
    "orders_only": ["orders"],
    "crm_only": ["crm"],
    "clickstream_only": ["clickstream"],
    "crm_and_orders": ["crm", "orders", "products"],
    "no_consent_or_erasure": ["crm", "orders", "products", "clickstream"],
}


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    from ml.synthetic import generate

    root = tmp_path_factory.mktemp("subsets_sample")
    generate(root / "landing", root / "truth", customers=CUSTOMERS, seed=SEED, progress=False)
    return root / "landing"


def marts() -> list[str]:
    """Every model the dbt project builds under marts/."""
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    return sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["original_file_path"].startswith("models/marts/")
    )


@pytest.mark.parametrize("subset", sorted(SUBSETS))
def test_a_subset_of_feeds_runs_end_to_end(subset, small_sample, tmp_path, definitions, capsys):
    feeds = SUBSETS[subset]
    settings = settings_for(tmp_path)
    for feed in feeds:
        shutil.copytree(small_sample / feed, settings.landing / feed)
    run_refresh_all(definitions, settings)

    absent = [feed.name for feed in contracts.load() if feed.name not in feeds]
    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:

        def rows(table: str) -> int:
            return connection.execute(f"select count(*) from {table}").fetchone()[0]

        # every mart exists; the staging view of an absent feed is empty
        for model in marts():
            rows(f"marts.{model}")
        staging = {
            "crm": "stg_crm__customers",
            "orders": "stg_orders__order_lines",
            "clickstream": "stg_clickstream__events",
            "products": "stg_products__products",
            "consent": "stg_consent__events",
            "erasure": "stg_erasure__requests",
        }
        for feed, model in staging.items():
            assert (rows(f"staging.{model}") == 0) == (feed in absent), (feed, subset)
        # identity, features, RFM, segments and exports ran on what there is
        customers = rows("identity.customers")
        assert rows("marts.dim_customers") == customers
        assert rows("marts.customer_rfm") == customers
        assert rows("marts.dim_customer_attributes") == customers
        assert rows("ml.customer_clusters") == customers
        if "crm" in feeds or "orders" in feeds:
            assert customers > 0
        segments = connection.execute(
            "select count(distinct segment_name) from segments.segment_sizes"
        ).fetchone()[0]
        assert segments >= 12
        assert rows("activation.export_runs") >= 4
        # without orders no model has anything to learn: each is skipped with its reason, its
        # columns empty, and the run goes on (docs/predictions.md, not enough data)
        (metrics,) = connection.execute("select metrics from ml.prediction_runs").fetchone()
        skipped = json.loads(metrics).get("skipped", {})
        scored = connection.execute(
            "select count(purchase_propensity), count(churn_risk), count(clv_12m_gbp) "
            "from marts.dim_customer_attributes"
        ).fetchone()
        if "orders" not in feeds:
            assert sorted(skipped) == ["churn", "clv", "propensity"], skipped
            assert scored == (0, 0, 0)
        else:
            assert skipped == {}, skipped
            assert scored[0] == customers and scored[2] > 0
        # orders without a catalogue: every sku is an unresolved reference, reported, not fatal
        if feeds == ["orders"]:
            present, unresolved, checked = connection.execute(
                "select is_referenced_feed_present, rows_unresolved, rows_checked "
                "from marts.fct_unresolved_references where reference_name = 'order_line_product'"
            ).fetchone()
            assert (present, unresolved) == (False, checked) and checked > 0
            assert rows("marts.dim_products") == 1  # the unknown member alone

    from ml.summary import main as summary

    assert summary(settings) == 0
    printed = capsys.readouterr().out
    assert (
        f"Feeds absent (no file landed; what depends on them is empty): {', '.join(absent)}"
        in printed
    )
    if "orders" not in feeds:
        assert "not fitted (columns empty): churn, clv, propensity" in printed
