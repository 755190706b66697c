"""A batch of files through the contract: read, normalise, check, mark erased and duplicate rows.

This is the one code path of both the loader (which then writes what it found) and the dry run
(`python -m ml.landing check`, which only counts it). A user's overrides first fill in and
rewrite values (ml/landing/supplied.py). It leaves the temp table
`landing_staged`: every record of every readable file, with its landed values (converted where
feeds.yml `read:` says), its normalised columns, its reason (empty when it passes every rule),
whether it names an erased person (`_erased`) and whether its key was landed before
(`_is_duplicate`: earlier in the batch, or, when the key scope is the feed, in the table).
The rows refused with a reason are then searched in Python for tombstoned identifiers in their
raw text: those count as erased, the others go to the quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ml.sql import quote_ident

from .checks import feed_checks, landed_value
from .contracts import Feed
from .ledger import target_table
from .normalised import NormalisedColumn, normalise_columns
from .readers import ROWS, FileUnreadable, Reading, SourceFile, read_files
from .supplied import Supplied, supply_columns
from .tombstones import Tombstones, erased_sql

STAGED = "landing_staged"
LANDED = "landing_landed"
BATCH_BYTES = 256 * 2**20  # files are read and checked together up to this much content


@dataclass
class Refused:
    """A row the contract refuses: where, why, and its text as received."""

    file: int
    row_number: int
    reason: str
    raw_text: str | None
    kinds: list[str] = field(default_factory=list)  # the dry run's grouping of its reasons


@dataclass
class StagedBatch:
    """What the contract made of a batch; the rows themselves are in `landing_staged`."""

    feed: Feed
    sources: list[SourceFile]
    readings: dict[int, Reading]
    unreadable: dict[int, FileUnreadable]
    quarantined: list[Refused]
    erased_by_text: list[Refused]
    supplied: Supplied = field(default_factory=Supplied)  # what feeds.local.yml filled in


def stage_batch(
    connection: duckdb.DuckDBPyConnection,
    feed: Feed,
    sources: list[SourceFile],
    tombstones: Tombstones | None,
    *,
    with_kinds: bool = False,
    duplicates: bool = True,
) -> StagedBatch:
    """Read and check `sources` (one feed's files, each with its index); see the module.
    `duplicates=False` leaves every `_is_duplicate` false, for a caller that does not land
    the rows (erasure's search of landing files)."""
    readings, unreadable = read_files(connection, feed, sources)
    supplied = supply_columns(connection, feed, readings)
    normalised = normalise_columns(connection, feed, ROWS)
    connection.execute(_checked_sql(feed, normalised, tombstones, with_kinds))
    if duplicates:
        _mark_duplicates(connection, feed)
    connection.execute(landed_view_sql(feed))
    refused = _refused_rows(connection, readings, with_kinds)
    quarantined, erased = [], []
    for row in refused:
        (erased if tombstones and tombstones.names_erased(row.raw_text) else quarantined).append(
            row
        )
    return StagedBatch(feed, sources, readings, unreadable, quarantined, erased, supplied)


def drop_staged(connection: duckdb.DuckDBPyConnection) -> None:
    """Drop the batch's temp view and tables (rows, lookups, staged) to free their memory."""
    connection.execute(f"drop view if exists temp.{LANDED}")
    tables = connection.execute(
        "select table_name from duckdb_tables() where temporary and starts_with(table_name, ?)",
        ["landing_"],
    ).fetchall()
    for (table,) in tables:
        connection.execute(f"drop table if exists temp.{quote_ident(table)}")


def _key_sql(feed: Feed, alias: str = "") -> str:
    """SQL for a row's key as duplicates compare it: the key columns' text, trimmed."""
    parts = [f"trim(cast({alias}{quote_ident(k)} as varchar))" for k in feed.key]
    return parts[0] if len(parts) == 1 else "row(" + ", ".join(parts) + ")"


def _checked_sql(
    feed: Feed, normalised: list[NormalisedColumn], tombstones: Tombstones | None, kinds: bool
) -> str:
    """The statement that builds `landing_staged`: per row of `landing_rows` (`_rid`), its
    converted and normalised values, reason, erased mark and key; duplicates are marked next
    (`_mark_duplicates`). The values as received stay in `landing_rows` (see `LANDED`)."""
    joins = " ".join(n.join for n in normalised)
    selected = "".join(f", {n.selected}" for n in normalised)
    derived = {name: sql for n in normalised for name, sql in n.derived.items()}
    checks = feed_checks(feed)
    reasons = [n.reason for n in normalised] + [c.sql for c in checks]
    values = [f"{landed_value(c, feed.read)} as {quote_ident(c.name)}" for c in feed.columns]
    values += [f"{derived[name]} as {quote_ident(name)}" for name in feed.derived_columns]
    kept = [quote_ident(name) for name in feed.column_names + feed.derived_columns]
    kinds_sql = ""
    if kinds:
        kind_list = [n.kind for n in normalised] + [
            f"case when ({c.sql}) is not null then '{c.kind.replace(chr(39), chr(39) * 2)}' end"
            for c in checks
        ]
        kinds_sql = (
            f", case when _parse_reason is null then list_filter([{', '.join(kind_list)}], "
            "lambda k: k is not null) else [] end as _kinds"
        )
    return f"""
        create or replace temp table {STAGED} as
        select _rid, _file, _row_number, {"".join(k + ", " for k in kept)}_reason, _erased,
            _reason = '' and not _erased as _clean, {_key_sql(feed)} as _key,
            false as _is_duplicate{", _kinds" if kinds else ""}
        from (
            select *, {erased_sql(feed, tombstones)} as _erased
            from (
                select _rid, _file, _row_number, {", ".join(values)},
                    coalesce(_parse_reason, concat_ws('; ', {", ".join(reasons)})) as _reason
                    {kinds_sql}
                from (select {ROWS}.rowid as _rid, {ROWS}.*{selected} from {ROWS} {joins})
            )
        )
    """


def landed_view_sql(feed: Feed) -> str:
    """The view `landing_landed`: each staged row with every landed value, as the loader
    writes it."""
    values = ", ".join(quote_ident(n) for n in feed.column_names + feed.derived_columns)
    return (
        f"create or replace temp view {LANDED} as select _file, _row_number, _clean, _erased, "
        f"_is_duplicate, {values} from {STAGED}"
    )


def _landed_keys_sql(feed: Feed) -> str:
    """SQL for the keys of this batch's clean rows that the feed's table holds already.

    A key is compared trimmed, but trimming every row of a large table is the slow part; a
    stored value can only differ from its trimmed text when it starts or ends with a space or
    holds a character outside ASCII (DuckDB's trim removes Unicode space separators), so
    the rows without are matched by their text as stored and only the others are trimmed."""
    texts = [f"cast({quote_ident(k)} as varchar)" for k in feed.key]
    as_stored = texts[0] if len(texts) == 1 else "row(" + ", ".join(texts) + ")"
    may_be_padded = " or ".join(
        f"{t} like ' %' or {t} like '% ' or strlen({t}) <> length({t})" for t in texts
    )
    batch = f"select _key from {STAGED} where _clean"
    table = target_table(feed)
    return (
        f"select {as_stored} from {table} where {as_stored} in ({batch}) "
        f"union all select {_key_sql(feed)} from {table} "
        f"where ({may_be_padded}) and {_key_sql(feed)} in ({batch})"
    )


def _mark_duplicates(connection: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """Mark the clean rows whose key came earlier in the batch (file order, then row), or,
    for key scope feed, is in the feed's table already. Only repeated keys are ranked."""
    partition = "_key" if feed.key_scope == "feed" else "_file, _key"
    seen = f" or _key in ({_landed_keys_sql(feed)})" if feed.key_scope == "feed" else ""
    connection.execute(
        f"""
        update {STAGED} set _is_duplicate = true
        where _clean and ((_file, _row_number) in (
            select (_file, _row_number) from (
                select _file, _row_number, row_number() over (
                    partition by {partition} order by _file, _row_number) as _rank
                from {STAGED}
                where _clean and ({partition}) in (
                    select ({partition}) from {STAGED} where _clean
                    group by {partition} having count(*) > 1
                )
            )
            where _rank > 1
        ){seen})
        """
    )


def _refused_rows(
    connection: duckdb.DuckDBPyConnection, readings: dict[int, Reading], kinds: bool
) -> list[Refused]:
    """The rows with a reason that no erase_by column marks erased, with their raw text."""
    rows = connection.execute(
        f"select _file, _row_number, _reason{', _kinds' if kinds else ''} from {STAGED} "
        "where _reason <> '' and not _erased order by _file, _row_number"
    ).fetchall()
    refused = []
    for row in rows:
        reading = readings[row[0]]
        raw = reading.rejected_text.get(row[1])
        if raw is None:
            raw = reading.raw_text(row[1])
        refused.append(Refused(row[0], row[1], row[2], raw, list(row[3]) if kinds else []))
    return refused
