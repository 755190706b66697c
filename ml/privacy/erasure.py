"""Erasure (GDPR article 17): delete every row about a person, everywhere, and keep them out.

    outcome = process_erasure_requests(connection, salt=..., run_id=..., places=Places(...))

One call processes every pending request (a row of the landed `erasure.requests` whose id is
not in `privacy.erasure_log` yet), all of them together, in one transaction:

1. Who (ml/privacy/subjects.py): each request's subject resolves to its customer through dbt's
   `intermediate.int_subjects_resolved`, the resolution consent and suppression use too. The
   person's identifiers are every identifier identity links to that customer (every spelling
   of their emails and the mailboxes they reach), the customer id and the subject, less any
   identifier someone else holds too (shared, never-link, or linked to a customer not being
   erased). A subject nobody resolves to still erases the rows that carry it, unless identity
   marks it shared.
2. Where (ml/privacy/personal_columns.py, ml/privacy/table_rows.py): every base table outside
   `privacy`, searched in the columns its owner marks personal (feed contracts, the dbt ymls,
   the Python module that writes the table; every text column of a table nobody declared). A
   row goes when one of them holds one of the identifiers as a whole word, or an address that
   reaches their mailbox; removed landed, quarantined and duplicate rows are counted per file
   in `landing.removals`.
3. Export files (ml/privacy/export_files.py, ml/privacy/export_matching.py): the person's rows
   leave every file of every export folder, whose manifest records the amendment, and the
   copies the audience hub keeps in its snapshots.
4. Tombstones (ml/privacy/tombstones.py): salted hashes of the identifiers that name one person,
   so the loader drops their rows if they are sent again.
5. Landing files (ml/privacy/raw_files.py): every landing file that held a row about them is
   rewritten without it, in its own format; the ledger keeps both checksums.
6. The log (ml/privacy/erasure_log.py): each request in `privacy.erasure_log`, its rows per
   table and file in `privacy.erasure_removals`, the stores searched in
   `privacy.erasure_stores`, and the audit log; no identifier in any.

A request is `erased` when its person had data beyond the request itself (identity saw them in
another feed, or rows went from a feed table, an export file or a landing file of another
feed), else `no_match`. `compact_warehouse` (ml/privacy/compact.py) then rewrites the DuckDB
file so that the deleted rows do not linger in free blocks; `traces_left` checks that nothing
erased is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml import secrets
from ml.landing import contracts as contracts_module
from ml.landing.contracts import Contracts
from ml.landing.ledger import ensure_ledger
from ml.privacy import export_files, export_matching, raw_files, subjects, table_rows, tombstones
from ml.privacy.compact import compact_warehouse
from ml.privacy.erasure_log import (
    ERASURE_LOG_DDL,
    STATUS_ERASED,
    STATUS_NO_MATCH,
    STORE_EXPORTS,
    STORE_HUB,
    STORE_LANDING,
    STORE_TABLES,
    ErasureOutcome,
    RequestOutcome,
    StoreSearch,
    write_erasure_log,
)
from ml.privacy.export_files import ExportAmendments
from ml.privacy.personal_columns import DBT_MANIFEST, find_personal_tables
from ml.privacy.raw_files import RawFilesOutcome
from ml.privacy.tombstones import TOMBSTONES_DDL, traces_left
from ml.timing import Stopwatch

__all__ = [
    "ErasureOutcome",
    "Places",
    "RequestOutcome",
    "compact_warehouse",
    "ensure_tables",
    "process_erasure_requests",
    "traces_left",
]


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the privacy tables erasure writes and the landing ledger it counts removals in."""
    connection.execute(TOMBSTONES_DDL)
    connection.execute(ERASURE_LOG_DDL)
    ensure_ledger(connection)


@dataclass(frozen=True)
class Places:
    """Where erasure looks besides the warehouse (None: that store is not searched)."""

    exports: Path | None = None  # the export folders (Settings.exports)
    hub_snapshots: Path | None = None  # the audience hub's snapshots (Settings.hub_snapshots)
    landing: Path | None = None  # the landing files (Settings.landing)
    archive: Path | None = None  # landed files archived (Settings.landing_archive)


def process_erasure_requests(
    connection: duckdb.DuckDBPyConnection,
    *,
    exports_root: Path | str | None = None,
    salt: str,
    run_id: str,
    contracts: Contracts | None = None,
    dbt_manifest: Path = DBT_MANIFEST,
    places: Places | None = None,
) -> ErasureOutcome:
    """Erase every person with a pending request, everywhere (see the module docstring).

    `places` says where the export folders, hub snapshots and landing files are;
    `exports_root` alone is the export folders (the other stores are then not searched).
    With no request pending, landing files that still hold rows of people erased before (a
    replay the tombstones dropped rows of, an original put back) are rewritten all the same.
    """
    contracts = contracts or contracts_module.load()
    salt = secrets.validated(salt)
    if places is None:
        places = Places(exports=Path(exports_root) if exports_root is not None else None)
    ensure_tables(connection)
    outcome = ErasureOutcome(run_id=run_id)
    watch = Stopwatch(outcome.seconds)
    connection.execute("begin transaction")
    try:
        pending = subjects.load_pending_requests(connection, contracts)
        if not pending.empty:
            _erase_pending(
                connection, pending, outcome, contracts, dbt_manifest, places, salt, watch
            )
        elif places.landing is not None:
            with watch.phase("landing files"):
                raw = _follow_into_landing_files(
                    connection, contracts, places, salt, run_id, _now()
                )
            outcome.landing_files_rewritten = len(raw.rewrites)
        with watch.phase("commit"):
            connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    finally:
        table_rows.drop_search(connection)
        subjects.drop_temporary_tables(connection)
    return outcome


def _erase_pending(
    connection: duckdb.DuckDBPyConnection,
    pending: pd.DataFrame,
    outcome: ErasureOutcome,
    contracts: Contracts,
    dbt_manifest: Path,
    places: Places,
    salt: str,
    watch: Stopwatch,
) -> None:
    """Steps 1 to 6 of the module docstring for the pending requests, into `outcome`."""
    processed_at = _now()
    request_ids = list(pending["request_id"])
    with watch.phase("who"):
        subjects.collect_identifiers(connection)
        requests = subjects.describe_requests(connection)  # before identity loses their rows
        people = export_matching.erased_people(connection)
    with watch.phase("tables"):
        tables = find_personal_tables(connection, contracts, dbt_manifest)
        searched = table_rows.prepare_search(connection)
        in_tables, by_table = table_rows.delete_rows_naming_erased(
            connection, tables, contracts, processed_at, searched
        )
    in_files = ExportAmendments()
    if places.exports is not None:
        with watch.phase("export files"):
            in_files = export_files.amend_exports(
                connection, places.exports, people, outcome.run_id, processed_at
            )
    in_hub = ExportAmendments()
    if places.hub_snapshots is not None:
        with watch.phase("hub snapshots"):
            in_hub = export_files.amend_hub_snapshots(places.hub_snapshots, people, processed_at)
    with watch.phase("tombstones"):
        outcome.tombstones_added = tombstones.add_tombstones(connection, salt, processed_at)
    raw = RawFilesOutcome()
    if places.landing is not None:
        with watch.phase("landing files"):
            raw = _follow_into_landing_files(
                connection, contracts, places, salt, outcome.run_id, processed_at,
                request_ids, searched,
            )  # fmt: skip
    in_landing = raw.by_request()
    outcome.landing_files_rewritten = len(raw.rewrites)
    outcome.rows_removed_by_table = {
        **by_table,
        **in_files.by_file,
        **in_hub.by_file,
        **{r.location: r.rows_removed for r in raw.rewrites},
    }
    outcome.export_files_amended = in_files.files
    outcome.stores = _stores_searched(tables, in_tables, places, in_files, in_hub, raw)
    for row in pending.itertuples(index=False):
        rows = {
            **in_tables.get(row.request_id, {}),
            **in_files.by_request.get(row.request_id, {}),
            **in_hub.by_request.get(row.request_id, {}),
            **in_landing.get(row.request_id, {}),
        }
        outcome.requests.append(_request_outcome(row, requests[row.request_id], rows, contracts))
    with watch.phase("log"):
        write_erasure_log(connection, outcome, processed_at, _now())


def _follow_into_landing_files(
    connection: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    places: Places,
    salt: str,
    run_id: str,
    at: datetime,
    request_ids: list[str] | None = None,
    searched: table_rows.Searched | None = None,
) -> RawFilesOutcome:
    assert places.landing is not None
    return raw_files.follow_erasure(
        connection,
        landing=places.landing,
        archive=places.archive or places.landing.with_name(places.landing.name + "_archive"),
        contracts=contracts,
        salt=salt,
        reference=run_id,
        at=at,
        request_ids=request_ids,
        searched=searched,
    )


def _stores_searched(
    tables: list,
    in_tables: dict[str, dict[str, int]],
    places: Places,
    in_files: ExportAmendments,
    in_hub: ExportAmendments,
    raw: RawFilesOutcome,
) -> list[StoreSearch]:
    """What the transaction searched, store by store, and removed per request."""

    def total(by_request: dict[str, dict[str, int]]) -> dict[str, int]:
        return {request: sum(rows.values()) for request, rows in by_request.items()}

    stores = [StoreSearch(STORE_TABLES, len(tables), "tables", total(in_tables))]
    if places.exports is not None:
        stores.append(
            StoreSearch(
                STORE_EXPORTS, in_files.searched, "export folders", total(in_files.by_request)
            )
        )
    if places.hub_snapshots is not None:
        stores.append(
            StoreSearch(
                STORE_HUB,
                in_hub.searched,
                "snapshot export folders and tables",
                total(in_hub.by_request),
            )
        )
    if places.landing is not None:
        note = ""
        if raw.missing:
            note = (
                f"{len(raw.missing)} landed file(s) no longer at hand: {', '.join(raw.missing[:5])}"
            )
        stores.append(
            StoreSearch(STORE_LANDING, raw.files_searched, "files", total(raw.by_request()), note)
        )
    return stores


def _request_outcome(
    row: Any, subject: subjects.RequestSubject, rows: dict[str, int], contracts: Contracts
) -> RequestOutcome:
    """One request's outcome: `erased` when the person had data beyond the request itself and
    what identity made of it (identity saw them in another feed, or rows went from another
    feed table or an export file), else `no_match`."""
    data_tables = {feed.qualified_table for feed in contracts if feed.name != "erasure"}
    found = subject.known_elsewhere or any(
        table in data_tables or _is_data_file(table, contracts) for table in rows
    )
    requested_at = None if pd.isna(row.requested_at) else row.requested_at.to_pydatetime()
    return RequestOutcome(
        request_id=row.request_id,
        requested_at=requested_at,
        status=STATUS_ERASED if found else STATUS_NO_MATCH,
        customers=subject.customers,
        identifiers_erased=subject.identifiers,
        rows_removed=rows,
    )


def _is_data_file(label: str, contracts: Contracts) -> bool:
    """An export file, a hub snapshot's copy, or a landing file of a feed other than erasure
    (`landing/<feed>/...`, `landing_archive/<day>/<feed>/...`)."""
    parts = label.split("/")
    if parts[0] in ("exports", "hub"):
        return True
    feed = {raw_files.LANDING_LABEL: 1, raw_files.ARCHIVE_LABEL: 2}.get(parts[0])
    return (
        feed is not None
        and len(parts) > feed
        and parts[feed] in contracts.feeds
        and parts[feed] != "erasure"
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
