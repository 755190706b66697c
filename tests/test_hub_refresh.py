"""A run of the pipeline while the hub is serving neither fails nor blocks a download.

The hub serves a copy of the shared sample run's snapshot. While a marketer downloads an
export over and over, the pipeline's last step, the Dagster asset `hub/snapshot`, runs for
real against the sample run's warehouse (holding the warehouse's run lock, as every run does)
and publishes new snapshots into the folder the hub is serving; a publication that fails
leaves the snapshot in place; and a process that holds DuckDB's write lock on the warehouse
stops no page and no download.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest
from hub_testing import LiveHub, add_users, form_token, hub_settings

from ml.hub.snapshot import current_folder
from orchestration.defs.hub import hub_snapshot
from orchestration.defs.resources import settings_resource

pytestmark = pytest.mark.integration

EXPORT = "lapsed_180d"


@pytest.fixture
def serving(sample_run, tmp_path):
    settings = hub_settings(sample_run, tmp_path / "hub")
    add_users(settings)
    live = LiveHub(settings).start()
    yield live
    live.stop()


class Downloads(threading.Thread):
    """Download one export file again and again until told to stop; every outcome is kept."""

    def __init__(self, hub: LiveHub):
        super().__init__(daemon=True)
        self.client = hub.signed_in("mia")
        page = self.client.get(f"/exports/{EXPORT}").text
        start = page.index('<form method="post" action="/exports/')
        self.action = page[start:].split('action="', 1)[1].split('"', 1)[0]
        self.token = form_token(page[start:])
        self.outcomes: list[tuple[float, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            response = self.client.post(self.action, data={"csrf_token": self.token})
            digest = hashlib.sha256(response.content).hexdigest()
            self.outcomes.append((time.monotonic(), response.status_code, digest))

    def finish(self) -> list[tuple[float, int, str]]:
        self.stop.set()
        self.join(timeout=60)
        return self.outcomes


def expected_sha256(sample_run) -> str:
    manifest = json.loads(
        (sample_run.settings.exports / EXPORT / "latest" / "manifest.json").read_text("utf-8")
    )
    return manifest["files"]["audience.csv"]["sha256"]


def test_publishing_while_downloading_changes_the_snapshot_and_fails_no_download(
    serving, sample_run
):
    # the run: the sample run's warehouse and files, publishing where the hub reads
    run_settings = sample_run.settings.replace(hub_snapshots=serving.settings.hub_snapshots)
    first = current_folder(serving.settings.hub_snapshots)
    downloads = Downloads(serving)
    downloads.start()
    began = time.monotonic()
    for _ in range(2):
        result = dg.materialize(
            [hub_snapshot],
            resources={"settings": settings_resource(run_settings)},
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
    ended = time.monotonic()
    time.sleep(0.5)
    outcomes = downloads.finish()
    published = current_folder(serving.settings.hub_snapshots)
    assert published != first
    # the previous snapshot is kept until the next swap, older ones are gone
    kept = sorted(p.name for p in serving.settings.hub_snapshots.iterdir() if p.name != "current")
    assert len(kept) == 2 and published.name in kept and first.name not in kept
    # ... without its copies of export files, which a run may have erased people from since
    (previous,) = [serving.settings.hub_snapshots / n for n in kept if n != published.name]
    assert sorted(p.name for p in (previous / "exports").rglob("*") if p.is_file()) == sorted(
        p.name for p in (published / "exports").rglob("*") if p.suffix in (".json", ".txt")
    )
    during = [o for o in outcomes if began <= o[0] <= ended]
    assert len(during) >= 3, f"only {len(during)} downloads while the run published"
    assert {(status, digest) for _, status, digest in outcomes} == {
        (200, expected_sha256(sample_run))
    }
    # pages show the new refresh time
    page = downloads.client.get("/").text
    about = json.loads((published / "snapshot.json").read_text(encoding="utf-8"))
    stamp = about["published_at"][:16].replace("T", " ")
    assert f"Data refreshed <strong>{stamp} UTC</strong>" in page
    assert about["run_id"] == result.run_id


def test_a_failed_publication_leaves_the_snapshot_being_served(serving, sample_run, tmp_path):
    before = current_folder(serving.settings.hub_snapshots)
    empty = tmp_path / "empty" / "warehouse.duckdb"
    empty.parent.mkdir()
    duckdb.connect(str(empty)).close()
    broken = sample_run.settings.replace(
        warehouse=empty, hub_snapshots=serving.settings.hub_snapshots
    )
    downloads = Downloads(serving)
    downloads.start()
    result = dg.materialize(
        [hub_snapshot],
        resources={"settings": settings_resource(broken)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    time.sleep(0.5)
    outcomes = downloads.finish()
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "run the whole pipeline (`make run`) once" in failure.step_failure_data.error.message
    assert current_folder(serving.settings.hub_snapshots) == before
    assert [
        p.name for p in serving.settings.hub_snapshots.iterdir() if p.name.startswith(".")
    ] == []
    assert outcomes and {(s, d) for _, s, d in outcomes} == {(200, expected_sha256(sample_run))}


def test_a_writer_holding_the_warehouse_blocks_no_page_and_no_download(sample_run, tmp_path):
    """DuckDB lets one process write a file and nobody else open it meanwhile: a run's lock.
    The hub is pointed at a warehouse a writer holds, and serves as if it were not there."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(sample_run.warehouse, warehouse)
    settings = hub_settings(sample_run, tmp_path / "hub").replace(
        warehouse=warehouse,
        exports=sample_run.settings.exports,
        reports=sample_run.settings.reports,
        models=sample_run.settings.models,
        hub_snapshots=tmp_path / "hub" / "snapshots",
        hub_database=tmp_path / "hub" / "hub.sqlite",
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"connection = duckdb.connect({str(warehouse)!r})\n"
            "connection.execute('begin transaction')\n"
            "connection.execute('create table hub_probe as select 1 as x')\n"
            "print('holding', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)
        add_users(settings)
        live = LiveHub(settings).start()
        try:
            downloads = Downloads(live)
            for path in ("/", "/segments", f"/segments/{EXPORT}", "/exports", f"/exports/{EXPORT}"):
                assert downloads.client.get(path).status_code == 200, path
            response = downloads.client.post(downloads.action, data={"csrf_token": downloads.token})
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == expected_sha256(sample_run)
        finally:
            live.stop()
    finally:
        holder.kill()
        holder.wait()
