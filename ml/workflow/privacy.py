"""Step: erase every person with a pending request, resolve identity again, compact the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.identity.pipeline import IdentityOutcome, resolve_warehouse
from ml.landing import contracts as contracts_module
from ml.memory import release_unused
from ml.privacy.artefacts import search_artefacts
from ml.privacy.compact import compact_warehouse
from ml.privacy.erasure import ErasureOutcome, Places, process_erasure_requests, traces_left
from ml.privacy.erasure_log import STORE_FILE, StoreSearch, record_store_searches
from ml.privacy.personal_columns import DBT_MANIFEST
from ml.privacy.tombstones import ErasedWords
from ml.secrets import check_salt
from ml.settings import Settings
from ml.timing import Stopwatch


@dataclass
class ErasureStep:
    """What erasure did, and what its checks look at."""

    outcome: ErasureOutcome
    identity_after: IdentityOutcome | None
    compacted: tuple[int, int] | None
    requests_pending: int
    traces: pd.DataFrame
    words: ErasedWords | None  # finds this run's erased people in text, by their tombstones

    @property
    def request_ids(self) -> list[str]:
        return [request.request_id for request in self.outcome.requests]


def places(settings: Settings) -> Places:
    """Every folder erasure searches besides the warehouse."""
    return Places(
        exports=settings.exports,
        hub_snapshots=settings.hub_snapshots,
        landing=settings.landing,
        archive=settings.landing_archive,
    )


def erase_requested(settings: Settings, *, run_id: str) -> ErasureStep:
    """Erase every person with a pending request everywhere (ml/privacy/erasure.py): the
    warehouse, the export files and the hub's copies of them, the landing files; when anything
    was removed, resolve identity again without their rows (a link or shared flag they caused
    goes; the matcher's pairs between the records left are reused, not scored again) and compact the DuckDB file so no deleted row lingers in it; then search the run
    artefacts (GX results and Data Docs, dbt's target and logs, the reports)."""
    # which dbt columns hold personal data: from the manifest this run's dbt parts wrote (the
    # part `subjects` ran just before), else from the project's own
    run_manifest = settings.dbt_target / "manifest.json"
    manifest = run_manifest if run_manifest.is_file() else DBT_MANIFEST
    contracts = contracts_module.load(
        overrides=contracts_module.overrides_file(settings.landing, settings.feeds_overrides)
    )
    with settings.connect() as connection:
        salt = check_salt(connection, settings.salt)
        outcome = process_erasure_requests(
            connection,
            salt=salt,
            run_id=run_id,
            contracts=contracts,
            dbt_manifest=manifest,
            places=places(settings),
        )
    # identity runs on a connection of its own: closing erasure's lets DuckDB's buffers go
    # first (on the 1M warehouse the phase's peak went from 6,084 MB to 5,819 MB)
    release_unused()
    watch = Stopwatch(outcome.seconds)  # the phases below join erasure's own
    identity_after = None
    if outcome.anything_removed:
        with watch.phase("identity again"), settings.connect() as connection:
            identity_after = resolve_warehouse(
                connection, run_id=f"{run_id}-after-erasure", reuse_links=True
            )
    compacted = None
    if outcome.rows_removed:
        # no connection is open here: the file can be rewritten without the deleted rows. The
        # copy streams: with half the memory limit it is as fast (1M customers: 30 s with 2 GB,
        # 29 s with 4 GB) and the step's peak is 1.7 GB lower
        with watch.phase("compaction"):
            config = settings.duckdb_config(memory_share=0.5)
            compacted = compact_warehouse(settings.warehouse, config)
    request_ids = [request.request_id for request in outcome.requests]
    with settings.connect() as connection:
        (pending,) = connection.execute(
            "select count(*) from erasure.requests as requests where not exists ("
            "select 1 from privacy.erasure_log as log "
            "where log.erasure_request_id = requests.request_id)"
        ).fetchone()
        with watch.phase("traces"):
            traces = traces_left(connection, salt, contracts)
        words = None
        if request_ids:
            with watch.phase("run artefacts"):
                words = ErasedWords.of_requests(connection, salt, request_ids)
                stores = [
                    _file_store(compacted),
                    search_artefacts(artefact_folders(settings), words),
                ]
                record_store_searches(connection, request_ids, stores, run_id)
    return ErasureStep(outcome, identity_after, compacted, pending, traces, words)


def artefact_folders(settings: Settings) -> dict[str, Path]:
    """The folders of run artefacts erasure searches (ml/privacy/artefacts.py)."""
    return {
        "great expectations results and data docs": settings.gx_project / "gx" / "uncommitted",
        "dbt target and logs": settings.dbt_target,
        "reports": settings.reports,
    }


def _file_store(compacted: tuple[int, int] | None) -> StoreSearch:
    note = (
        f"compacted from {compacted[0]:,} to {compacted[1]:,} bytes, deleted rows gone"
        if compacted
        else "nothing was deleted, so nothing lingers"
    )
    return StoreSearch(STORE_FILE, 1, "files", {}, note)


def record_run_history_search(settings: Settings, step: ErasureStep, search: StoreSearch) -> None:
    """The Dagster code location's search of its run history, in the erasure report."""
    if not step.request_ids:
        return
    with settings.connect() as connection:
        record_store_searches(connection, step.request_ids, [search], step.outcome.run_id)
