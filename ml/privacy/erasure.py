"""Erasure (GDPR article 17): delete every row about a person, everywhere, and keep them out.

    outcome = process_erasure_requests(connection, exports_root=..., salt=..., run_id=...)

One call processes every pending request (a row of the landed `erasure.requests` whose id is
not in `privacy.erasure_log` yet), all of them together, in one transaction:

1. Who (ml/privacy/subjects.py): each request's subject resolves to its customer through dbt's
   `intermediate.int_subjects_resolved`, the resolution consent and suppression use too. The
   person's identifiers are every identifier identity links to that customer, the customer id
   and the subject, less any identifier someone else holds too (shared, never-link, or linked
   to a customer not being erased). A subject nobody resolves to still erases the rows that
   carry it, unless identity marks it shared.
2. Where (ml/privacy/personal_columns.py, ml/privacy/table_rows.py): every base table outside
   `privacy`, searched in the columns its owner marks personal (feed contracts, the dbt ymls,
   the Python module that writes the table; every text column of a table nobody declared). A
   row goes when one of them holds one of the identifiers as a whole word; removed landed,
   quarantined and duplicate rows are counted per file in `landing.removals`.
3. Export files (ml/privacy/export_files.py, ml/privacy/export_matching.py): the person's rows
   leave every file of every export folder, whose manifest records the amendment.
4. Tombstones (ml/privacy/tombstones.py): salted hashes of the identifiers that name one person,
   so the loader drops their rows if they are sent again.
5. The log (ml/privacy/erasure_log.py): each request in `privacy.erasure_log`, its rows per
   table and file in `privacy.erasure_removals`, and the audit log; no identifier in any.

A request is `erased` when its person had data beyond the request itself (identity saw them in
another feed, or rows went from a feed table or an export file), else `no_match`.
`compact_warehouse` (ml/privacy/compact.py) then rewrites the DuckDB file so that the deleted
rows do not linger in free blocks; `traces_left` checks that nothing erased is left.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml import secrets
from ml.landing import contracts as contracts_module
from ml.landing.contracts import Contracts
from ml.landing.ledger import ensure_ledger
from ml.privacy import export_files, export_matching, subjects, table_rows, tombstones
from ml.privacy.compact import compact_warehouse
from ml.privacy.erasure_log import (
    ERASURE_LOG_DDL,
    STATUS_ERASED,
    STATUS_NO_MATCH,
    ErasureOutcome,
    RequestOutcome,
    write_erasure_log,
)
from ml.privacy.personal_columns import DBT_MANIFEST, find_personal_tables
from ml.privacy.tombstones import TOMBSTONES_DDL, traces_left

__all__ = [
    "ErasureOutcome",
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


def process_erasure_requests(
    connection: duckdb.DuckDBPyConnection,
    *,
    exports_root: Path | str,
    salt: str,
    run_id: str,
    contracts: Contracts | None = None,
    dbt_manifest: Path = DBT_MANIFEST,
) -> ErasureOutcome:
    """Erase every person with a pending request, everywhere (see the module docstring)."""
    contracts = contracts or contracts_module.load()
    salt = secrets.validated(salt)
    ensure_tables(connection)
    outcome = ErasureOutcome(run_id=run_id)
    connection.execute("begin transaction")
    try:
        pending = subjects.load_pending_requests(connection, contracts)
        if not pending.empty:
            _erase_pending(
                connection, pending, outcome, contracts, dbt_manifest, Path(exports_root), salt
            )
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    finally:
        subjects.drop_temporary_tables(connection)
    return outcome


def _erase_pending(
    connection: duckdb.DuckDBPyConnection,
    pending: pd.DataFrame,
    outcome: ErasureOutcome,
    contracts: Contracts,
    dbt_manifest: Path,
    exports_root: Path,
    salt: str,
) -> None:
    """Steps 1 to 5 of the module docstring for the pending requests, into `outcome`."""
    processed_at = _now()
    subjects.collect_identifiers(connection)
    requests = subjects.describe_requests(connection)  # before identity loses their rows
    people = export_matching.erased_people(connection)
    tables = find_personal_tables(connection, contracts, dbt_manifest)
    in_tables, by_table = table_rows.delete_rows_naming_erased(
        connection, tables, contracts, processed_at
    )
    in_files = export_files.amend_exports(
        connection, exports_root, people, outcome.run_id, processed_at
    )
    outcome.tombstones_added = tombstones.add_tombstones(connection, salt, processed_at)
    outcome.rows_removed_by_table = {**by_table, **in_files.by_file}
    outcome.export_files_amended = in_files.files
    for row in pending.itertuples(index=False):
        rows = {**in_tables.get(row.request_id, {}), **in_files.by_request.get(row.request_id, {})}
        outcome.requests.append(_request_outcome(row, requests[row.request_id], rows, contracts))
    write_erasure_log(connection, outcome, processed_at, _now())


def _request_outcome(
    row: Any, subject: subjects.RequestSubject, rows: dict[str, int], contracts: Contracts
) -> RequestOutcome:
    """One request's outcome: `erased` when the person had data beyond the request itself and
    what identity made of it (identity saw them in another feed, or rows went from another
    feed table or an export file), else `no_match`."""
    data_tables = {feed.qualified_table for feed in contracts if feed.name != "erasure"}
    found = subject.known_elsewhere or any(
        table in data_tables or table.startswith("exports/") for table in rows
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


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
