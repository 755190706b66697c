"""Step: erase every person with a pending request, resolve identity again, compact the file."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ml.identity.pipeline import IdentityOutcome, resolve_warehouse
from ml.privacy.compact import compact_warehouse
from ml.privacy.erasure import ErasureOutcome, process_erasure_requests, traces_left
from ml.privacy.personal_columns import DBT_MANIFEST
from ml.secrets import check_salt
from ml.settings import Settings


@dataclass
class ErasureStep:
    """What erasure did, and what its checks look at."""

    outcome: ErasureOutcome
    identity_after: IdentityOutcome | None
    compacted: tuple[int, int] | None
    requests_pending: int
    traces: pd.DataFrame


def erase_requested(settings: Settings, *, run_id: str) -> ErasureStep:
    """Erase every person with a pending request everywhere (ml/privacy/erasure.py); when
    anything was removed, resolve identity again without their rows (a link or shared flag
    they caused goes) and compact the DuckDB file so no deleted row lingers in it."""
    # which dbt columns hold personal data: from the manifest this run's dbt parts wrote (the
    # part `subjects` ran just before), else from the project's own
    run_manifest = settings.dbt_target / "manifest.json"
    manifest = run_manifest if run_manifest.is_file() else DBT_MANIFEST
    with settings.connect() as connection:
        salt = check_salt(connection, settings.salt)
        outcome = process_erasure_requests(
            connection,
            exports_root=settings.exports,
            salt=salt,
            run_id=run_id,
            dbt_manifest=manifest,
        )
        identity_after = None
        if outcome.anything_removed:
            identity_after = resolve_warehouse(connection, run_id=f"{run_id}-after-erasure")
    compacted = None
    if outcome.rows_removed:
        # no connection is open here: the file can be rewritten without the deleted rows
        compacted = compact_warehouse(settings.warehouse, settings.duckdb_config())
    with settings.connect() as connection:
        (pending,) = connection.execute(
            "select count(*) from erasure.requests as requests where not exists ("
            "select 1 from privacy.erasure_log as log "
            "where log.erasure_request_id = requests.request_id)"
        ).fetchone()
        traces = traces_left(connection, salt)
    return ErasureStep(outcome, identity_after, compacted, pending, traces)
