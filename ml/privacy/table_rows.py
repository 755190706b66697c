"""Delete every warehouse row that names an erased person.

`delete_rows_naming_erased` takes the person's identifiers (`erasure_values`, filled by
ml/privacy/subjects.py) and, table by table (the columns ml/privacy/personal_columns.py finds),
deletes every row where a searched column holds one of them as a whole word, lower-cased: in a
single value (` Ann.Lee@Gmail.com `), in text, keys, JSON or lists (`crm:C1000001`, a quarantined
line), but never inside a longer word (`ann@x.com` is not found in `joann@x.com`). An identifier
the word pattern cannot cut out whole (rare characters) is looked for anywhere in the text.

Landed feed tables go first, so that a duplicate whose key is the key of a deleted feed row
goes too. Rows removed from landed tables, the quarantine and the duplicates are counted per
file in `landing.removals` (reason `erased`, reference: the request), so the landing
reconciliation still adds up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ml.landing.checks import duplicate_key_sql
from ml.landing.contracts import Contracts, Feed
from ml.landing.tombstones import IDENTIFIER_TOKEN_PATTERN, identifier_tokens
from ml.normalise import listed_provider_sql, mailbox_key_sql
from ml.privacy.personal_columns import PersonalTable
from ml.privacy.subjects import IDENTIFIERS
from ml.sql import quote_ident, quote_literal

QUARANTINE = "landing.quarantine"
DUPLICATES = "landing.duplicates"

SEARCHED = "erasure_searched_values"  # request_id, value: every identifier to look for
MAILBOXES = "erasure_searched_mailboxes"  # request_id, value: the mailboxes among them
ODD = "erasure_odd_values"  # the ones the word pattern cannot cut out whole
DELETED_KEYS = "erasure_deleted_keys"  # feed, key, request_id of deleted feed rows
FOUND = "erasure_rows_found"  # row_id, request_id of the table at hand
_TEMPORARY_TABLES = (SEARCHED, MAILBOXES, ODD, DELETED_KEYS, FOUND)


def delete_rows_naming_erased(
    connection: duckdb.DuckDBPyConnection,
    tables: list[PersonalTable],
    contracts: Contracts,
    removed_at: datetime,
    searched: Searched,
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Delete every row naming an erased person (the values `prepare_search` set up);
    (request -> table -> rows, table -> rows)."""
    feeds = {feed.qualified_table: feed for feed in contracts}
    per_request: dict[str, dict[str, int]] = defaultdict(dict)
    per_table: dict[str, int] = {}
    # landed feed tables first: the keys of their deleted rows find the duplicates
    ordered = sorted(tables, key=lambda t: (t.qualified not in feeds, t.qualified == DUPLICATES))
    for table in ordered:
        found = _find_rows(connection, table, searched)
        if not found:
            continue
        per_table[table.qualified] = found
        for request_id, rows in connection.execute(
            f"select request_id, count(*) from {FOUND} group by all"
        ).fetchall():
            per_request[request_id][table.qualified] = rows
        _count_in_landing_ledger(connection, table, feeds.get(table.qualified), removed_at)
        connection.execute(f"delete from {table.sql} where rowid in (select row_id from {FOUND})")
    return per_request, per_table


def drop_search(connection: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables of the search (`prepare_search`)."""
    for temporary in _TEMPORARY_TABLES:
        connection.execute(f"drop table if exists temp.{temporary}")


@dataclass(frozen=True)
class Searched:
    """Which kinds of search the erased values need."""

    odd_values: bool  # some the word pattern cannot cut out whole
    mailboxes: bool  # some are mailboxes (ml/normalise.py `mailbox_key`)


def prepare_search(connection: duckdb.DuckDBPyConnection) -> Searched:
    """The values to look for (from the identifiers ml/privacy/subjects.py collected), the
    mailboxes among them, those the word pattern cannot cut out whole, and an empty list of
    deleted keys, in temporary tables that stay until `drop_search`."""
    connection.execute(
        f"create or replace temp table {SEARCHED} as "
        f"select distinct request_id, value from {IDENTIFIERS}"
    )
    connection.execute(
        f"create or replace temp table {MAILBOXES} as "
        f"select distinct request_id, value from {IDENTIFIERS} where kind = 'mailbox'"
    )
    values = [v for (v,) in connection.execute(f"select distinct value from {SEARCHED}").fetchall()]
    odd = [value for value in values if identifier_tokens(value) != {value}]
    connection.execute(
        f"create or replace temp table {ODD} as "
        f"select * from {SEARCHED} where list_contains(?::varchar[], value)",
        [odd],
    )
    connection.execute(
        f"create or replace temp table {DELETED_KEYS} "
        "(feed varchar, key varchar, request_id varchar)"
    )
    (mailboxes,) = connection.execute(f"select count(*) from {MAILBOXES}").fetchone()
    return Searched(bool(odd), bool(mailboxes))


def _find_rows(
    connection: duckdb.DuckDBPyConnection, table: PersonalTable, searched: Searched
) -> int:
    """The table's rows that name an erased person into FOUND (row_id, request_id); how many."""
    connection.execute(
        f"create or replace temp table {FOUND} as "
        "select row_id, min(request_id) as request_id from ("
        + rows_naming_erased_sql(table.sql, table.columns, searched)
        + _duplicates_of_deleted_keys_sql(table)
        + ") group by row_id"
    )
    return connection.execute(f"select count(*) from {FOUND}").fetchall()[0][0]


def rows_naming_erased_sql(table: str, columns: tuple[str, ...], searched: Searched) -> str:
    """SQL for (row_id, request_id) of every row of `table` (a table's SQL name, the rowid is
    the row's id) whose `columns` name an erased person: a word that is one of their
    identifiers, or an address that reaches their mailbox. ml/privacy/raw_files.py applies it
    to the records of landing files too.

    No word spans two columns (a word holds no blank), so each column is searched on its own,
    and each of its distinct values once: the regular expression that cuts out the words is
    most of the cost, and identifiers repeat (a cookie on every event of a visit)."""
    lookups = f"(select '=' || value as key, request_id from {SEARCHED}"
    lookups += (
        f" union all select '@' || value, request_id from {MAILBOXES})"
        if searched.mailboxes
        else ")"
    )
    # each word is looked up as itself ('=' + word) and, when it is an address at a listed
    # provider, by the mailbox it reaches ('@' + mailbox key)
    mailbox = (
        f"case when contains(word, '@') and {listed_provider_sql('word')} "
        f"then '@' || {mailbox_key_sql('word')} end"
        if searched.mailboxes
        else "null"
    )
    parts = []
    for column in columns:
        text = f"lower(cast(source.{quote_ident(column)} as varchar))"
        words = (
            f"select value, rtrim(unnest(regexp_extract_all(value, "
            f"{quote_literal(IDENTIFIER_TOKEN_PATTERN)})), '.') as word "
            f"from (select distinct {text} as value from {table} as source)"
        )
        naming = (
            f"select distinct words.value, erased.request_id from (select value, "
            f"unnest(['=' || word, {mailbox}]) as key from ({words})) as words "
            f"inner join {lookups} as erased on words.key = erased.key"
        )
        parts.append(
            f"select source.rowid as row_id, naming.request_id from {table} as source "
            f"inner join ({naming}) as naming on {text} = naming.value"
        )
    if searched.odd_values:
        cast = ", ".join(f"cast(source.{quote_ident(c)} as varchar)" for c in columns)
        parts.append(
            f"select source.rowid as row_id, erased.request_id from {table} as source "
            f"inner join {ODD} as erased on contains(lower(concat_ws(' ', {cast})), erased.value)"
        )
    return (
        "\nunion all\n".join(parts) or "select null::bigint as row_id, null as request_id limit 0"
    )


def _duplicates_of_deleted_keys_sql(table: PersonalTable) -> str:
    """For landing.duplicates: SQL (after a union) of the rows whose key is the key of a feed
    row deleted already."""
    if table.qualified != DUPLICATES:
        return ""
    return (
        "\nunion all\n"
        f"select source.rowid as row_id, erased.request_id from {DUPLICATES} as source "
        f"inner join {DELETED_KEYS} as erased on source.feed = erased.feed "
        "and regexp_replace(source.key, '\\s', '', 'g') = erased.key"
    )


def _count_in_landing_ledger(
    connection: duckdb.DuckDBPyConnection,
    table: PersonalTable,
    feed: Feed | None,
    removed_at: datetime,
) -> None:
    """Before FOUND's rows are deleted: count them per feed, file and request in
    landing.removals when they were landed rows, quarantined rows or duplicates, and keep the
    keys of landed rows so their duplicates are found."""
    if feed is not None:
        connection.execute(
            f"insert into {DELETED_KEYS} select {quote_literal(feed.name)}, "
            f"regexp_replace({duplicate_key_sql(feed, 'source')}, '\\s', '', 'g'), "
            f"found.request_id from {table.sql} as source "
            f"inner join {FOUND} as found on source.rowid = found.row_id"
        )
        place = (quote_literal(feed.name), "_source_file", "'table'")
    elif table.qualified == QUARANTINE:
        # a whole-file entry has no row number; the reconciliation does not count it per row
        row_or_file = (
            "case when source.row_number is null then 'quarantine_file' else 'quarantine' end"
        )
        place = ("source.feed", "file", row_or_file)
    elif table.qualified == DUPLICATES:
        place = ("source.feed", "file", "'duplicates'")
    else:
        return
    feed_sql, file_column, place_sql = place
    connection.execute(
        f"""
        insert into landing.removals
        select {feed_sql}, source.{quote_ident(file_column)}, {place_sql}, 'erased', count(*),
            {quote_literal(removed_at)}::timestamp, found.request_id
        from {table.sql} as source
        inner join {FOUND} as found on source.rowid = found.row_id
        group by all
        """
    )
