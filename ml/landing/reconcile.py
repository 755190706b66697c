"""Reconciliation: does every landed file still add up?

A file reconciles when rows read = loaded + quarantined + duplicate + erased in the ledger,
the erased rows are in `landing.erased_rows`, and each of loaded, quarantined and duplicate
equals the rows its table holds for the file plus the rows removed from it later (by erasure
or retention, in `landing.removals`).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from .contracts import Feed
from .ledger import ensure_ledger, target_table

RECONCILIATION_SQL = """
with landed as (select _source_file as file, count(*) as n from {target} group by all),
quarantined as (
    select file, count(*) as n from landing.quarantine
    where feed = $feed and row_number is not null group by all
),
duplicates as (
    select file, count(*) as n from landing.duplicates where feed = $feed group by all
),
erased as (
    select file, count(*) as n from landing.erased_rows where feed = $feed group by all
),
removed as (
    select
        file,
        coalesce(sum(rows) filter (where place = 'table'), 0) as from_table,
        coalesce(sum(rows) filter (where place = 'quarantine'), 0) as from_quarantine,
        coalesce(sum(rows) filter (where place = 'duplicates'), 0) as from_duplicates
    from landing.removals
    where feed = $feed
    group by all
),
counted as (
    select
        files.file,
        files.status,
        files.rows_read,
        files.rows_loaded,
        files.rows_quarantined,
        files.rows_duplicate,
        coalesce(files.rows_erased, 0) as rows_erased,
        coalesce(landed.n, 0) as rows_in_table,
        coalesce(quarantined.n, 0) as rows_in_quarantine,
        coalesce(duplicates.n, 0) as rows_in_duplicates,
        coalesce(erased.n, 0) as rows_in_erased,
        coalesce(removed.from_table, 0) as removed_from_table,
        coalesce(removed.from_quarantine, 0) as removed_from_quarantine,
        coalesce(removed.from_duplicates, 0) as removed_from_duplicates
    from landing.files as files
    left join landed using (file)
    left join quarantined using (file)
    left join duplicates using (file)
    left join erased using (file)
    left join removed using (file)
    where files.feed = $feed
)
select
    file,
    status,
    rows_read,
    rows_loaded,
    rows_quarantined,
    rows_duplicate,
    rows_erased,
    rows_in_table,
    rows_in_quarantine,
    rows_in_duplicates,
    removed_from_table + removed_from_quarantine + removed_from_duplicates
        as rows_removed_later,
    rows_read = rows_loaded + rows_quarantined + rows_duplicate + rows_erased
        and rows_erased = rows_in_erased
        and rows_loaded = rows_in_table + removed_from_table
        and rows_quarantined = rows_in_quarantine + removed_from_quarantine
        and rows_duplicate = rows_in_duplicates + removed_from_duplicates as reconciles
from counted
order by file
"""


def reconciliation(connection: duckdb.DuckDBPyConnection, feed: Feed) -> pd.DataFrame:
    """Per file of a feed: the ledger's counts next to the rows actually in each table.

    A file reconciles when rows read = loaded + quarantined + duplicate + erased in the ledger,
    the erased rows are in `landing.erased_rows`, and each of loaded, quarantined and duplicate
    equals the rows its table holds for the file plus the rows removed from it later (by
    erasure or retention, in `landing.removals`).
    """
    ensure_ledger(connection)
    return connection.execute(
        RECONCILIATION_SQL.format(target=target_table(feed)), {"feed": feed.name}
    ).df()
