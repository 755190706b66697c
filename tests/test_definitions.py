"""The Dagster code location loads, and every job, schedule, sensor and check is wired."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from teal_testing import settings_for

from ml.landing import contracts
from ml.settings import DBT_PROJECT_DIR

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("definitions")]

FEED_KEYS = {dg.AssetKey([feed.name, feed.table]) for feed in contracts.load()}


@pytest.fixture(scope="module")
def defs(definitions, tmp_path_factory):
    return definitions(settings_for(tmp_path_factory.mktemp("definitions")))


def test_definitions_load_with_the_whole_graph(defs):
    repository = defs.get_repository_def()
    keys = set(repository.asset_graph.get_all_asset_keys())
    assert keys >= FEED_KEYS
    staging = {key for key in keys if key.path[0] == "staging"}
    assert {key.path[-1] for key in staging} == {
        "stg_crm__customers",
        "stg_orders__order_lines",
        "stg_clickstream__events",
        "stg_products__products",
        "stg_consent__events",
        "stg_erasure__requests",
        "stg_accounts__accounts",
        "stg_identity__records",
        "stg_identity__identifiers",
        "stg_identity__customers",
        "stg_identity__history",
        "stg_ml__customer_clusters",
        "stg_ml__customer_predictions",
        "stg_ml__customer_recommendations",
        "stg_activation__export_runs",
        "stg_activation__export_members",
    }
    # identity sits between the feed models and the customer models
    identity = dg.AssetKey(["identity", "records"])
    assert dg.AssetKey(["intermediate", "int_identifiers_observed"]) in graph_parents(
        defs, identity
    )
    assert dg.AssetKey(["staging", "stg_identity__records"]) in graph_children(defs, identity)
    # the clusters read the features and feed the audience model that rule segments read
    clusters = dg.AssetKey(["ml", "customer_clusters"])
    assert dg.AssetKey(["marts", "customer_features"]) in graph_parents(defs, clusters)
    assert dg.AssetKey(["staging", "stg_ml__customer_clusters"]) in graph_children(defs, clusters)
    memberships = dg.AssetKey(["segments", "segment_memberships"])
    assert dg.AssetKey(["marts", "dim_customer_attributes"]) in graph_parents(defs, memberships)
    # erasure runs after identity and the one subject view (the subjects part), and before
    # every customer model; exports follow the segments and the consent ledger; lift follows
    # the exports
    erasure = dg.AssetKey(["privacy", "erasure_log"])
    assert identity in graph_parents(defs, erasure)
    subjects = next(key for key in keys if key.path[-1] == "int_subjects_resolved")
    assert subjects in graph_parents(defs, erasure)
    assert identity in graph_parents(
        defs, next(key for key in keys if key.path[-1] == "stg_identity__records")
    )
    for model in ("dim_customers", "dim_consent_ledger", "fct_order_items"):
        assert erasure in graph_parents(defs, next(key for key in keys if key.path[-1] == model)), (
            model
        )
    candidates = dg.AssetKey(["activation", "export_candidates"])
    assert {memberships, dg.AssetKey(["marts", "dim_consent_ledger"])} <= graph_parents(
        defs, candidates
    )
    members = dg.AssetKey(["activation", "export_members"])
    assert candidates in graph_parents(defs, members)
    assert dg.AssetKey(["staging", "stg_activation__export_members"]) in graph_children(
        defs, members
    )
    # every staging model reads the landing asset that feeds it
    graph = repository.asset_graph
    for feed in contracts.load():
        children = {
            key.path[-1] for key in graph.get(dg.AssetKey([feed.name, feed.table])).child_keys
        }
        assert any(child.startswith(f"stg_{feed.name}__") for child in children), feed.name
    # every asset has a description and a group
    for key in keys:
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in {
            "landing",
            "staging",
            "intermediate",
            "identity",
            "marts",
            "seeds",
            "audiences",
            "privacy",
            "activation",
            "reports",
            "predictions",
        }, key


def graph_parents(defs, key: dg.AssetKey) -> set[dg.AssetKey]:
    return set(defs.get_repository_def().asset_graph.get(key).parent_keys)


def graph_children(defs, key: dg.AssetKey) -> set[dg.AssetKey]:
    return set(defs.get_repository_def().asset_graph.get(key).child_keys)


def test_the_code_location_loads_as_dagster_dev_loads_it(dbt_manifest):
    """`dagster dev` sets DAGSTER_IS_DEV_CLI and need not have the virtualenv on PATH."""
    env = {**os.environ, "DAGSTER_IS_DEV_CLI": "1", "PATH": "/usr/bin:/bin"}
    validated = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "orchestration.definitions",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0, validated.stderr[-3000:]


def test_dbt_source_tests_are_checks_of_the_landing_assets(defs):
    check_keys = set(defs.get_repository_def().asset_graph.asset_check_keys)
    orders = {
        check.name
        for check in check_keys
        if check.asset_key == dg.AssetKey(["orders", "order_lines"])
    }
    assert any(
        name.startswith("source_accepted_values_orders_order_lines_status") for name in orders
    ), orders


def test_landing_assets_carry_their_three_checks(defs):
    check_keys = set(defs.get_repository_def().asset_graph.asset_check_keys)
    for key in FEED_KEYS:
        names = {check.name for check in check_keys if check.asset_key == key}
        assert {"reconciles", "great_expectations", "nothing_quarantined"} <= names


def test_job_schedule_and_sensor(defs):
    job = defs.resolve_job_def("refresh_all")
    assert job.executor_def.name == "in_process"
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 6 * * *",
        "Europe/London",
        "refresh_all",
    )
    sensor = defs.resolve_sensor_def("new_landing_files")
    assert sensor.job_name == "refresh_all"


def test_sensor_requests_a_run_only_for_new_files(defs, tmp_path):
    sensor = defs.resolve_sensor_def("new_landing_files")
    resources = {"settings": settings_for(tmp_path / "warehouse", landing=tmp_path)}

    def context(**kwargs):
        return dg.build_sensor_context(instance=instance, resources=resources, **kwargs)

    with dg.instance_for_test() as instance:
        empty = sensor(context())
        assert isinstance(empty, dg.SkipReason)

        (tmp_path / "orders").mkdir()
        (tmp_path / "orders" / "web_2026-11-01.csv").write_text("order_id\n")
        first = sensor(context())
        assert len(first.run_requests) == 1
        assert first.run_requests[0].tags["teal/first_new_file"] == "orders/web_2026-11-01.csv"

        again = sensor(context(cursor=first.cursor))
        assert isinstance(again, dg.SkipReason)

        (tmp_path / "orders" / "web_2026-11-02.csv").write_text("order_id\n")
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "readme.txt").write_text("not a feed folder")
        second = sensor(context(cursor=first.cursor))
        assert second.run_requests[0].tags == {
            "teal/new_files": "1",
            "teal/first_new_file": "orders/web_2026-11-02.csv",
        }
        assert set(json.loads(second.cursor)) == {
            "orders/web_2026-11-01.csv",
            "orders/web_2026-11-02.csv",
        }


def test_dagster_home_config_turns_telemetry_off_and_queues_runs():
    import yaml

    path = os.path.join(os.path.dirname(__file__), "..", "orchestration", "dagster.yaml")
    with open(path) as handle:
        config = yaml.safe_load(handle)
    assert config["telemetry"] == {"enabled": False}
    # one run of the pipeline at a time: the job's tag is limited to one run in progress
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert limits == [{"key": "teal/exclusive", "value": "warehouse", "limit": 1}]
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_the_job_carries_the_tag_that_keeps_its_runs_apart(defs):
    assert defs.resolve_job_def("refresh_all").tags["teal/exclusive"] == "warehouse"


def test_every_step_of_the_job_hands_freed_memory_back(defs):
    """The steps share one process: after each, succeeded or failed, ml.memory.release_unused
    runs (orchestration/defs/jobs.py), so a step's peak does not stand on its predecessors'."""
    job = defs.resolve_job_def("refresh_all")
    assert {hook.name for hook in job.hook_defs} == {
        "hand_back_memory",
        "hand_back_memory_after_failure",
    }


def test_importing_the_code_location_writes_no_environment_and_starts_no_process(dbt_manifest):
    """Our modules read the settings and never write them, and run no subprocess at import
    (the third-party packages are imported first: what they do is not ours to test)."""
    probe = (
        "import os, subprocess\n"
        "import dagster, dagster_dbt, duckdb, pandas, sklearn, scipy, matplotlib\n"
        "before = dict(os.environ)\n"
        "def refuse(self, args, *rest, **kwargs):\n"
        "    raise SystemExit(f'a subprocess at import: {args!r}')\n"
        "subprocess.Popen.__init__ = refuse\n"
        "import orchestration.definitions\n"
        "assert dict(os.environ) == before, set(os.environ) ^ set(before)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=Path(DBT_PROJECT_DIR).parent,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
