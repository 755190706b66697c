"""Who is erased: the pending requests, the customer each subject resolves to, and every
identifier of that person that erasure may delete.

The subject -> customer rule is not written here. It is dbt's `intermediate.int_subjects_resolved`
(dbt_project/models/intermediate/privacy/), the one resolution consent and suppression read
too: identity's decision for the request's own record, else the request's typed identifier
(an email to the customer of that email, a crm id to the customer of that crm id). It is a
view, built by the dbt part `subjects` right after identity, so a request landed after the last
identity run resolves as well.

What erasure adds on top, in temporary tables of the connection (`load_pending_requests`, then
`collect_identifiers`):

- `erasure_pending` (request_id, requested_at): landed requests not in `privacy.erasure_log`;
- `erasure_customers` (request_id, customer_id): the customer the view gives each request;
- `erasure_values` (request_id, kind, value): the person's identifiers, lower-cased: every
  identifier identity links to the customer (crm ids, emails, phones, loyalty and user ids,
  cookies, devices), the customer id, and the subject itself. An identifier identity marks as
  shared or never-link, or that also belongs to a customer not being erased now (a family phone
  or device), is left out: erasing it would delete someone else's rows. So a subject nobody
  resolves to still erases the rows that carry it, unless identity marks it shared. Values
  shorter than `MIN_IDENTIFIER_LENGTH` are left out too ("0", "n/a" would match strangers).

`describe_requests` then counts, per request and before anything is deleted, its customers and
identifiers and whether identity saw the person in a feed other than erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from ml.landing.contracts import Contracts
from ml.privacy.retention import utc_timestamp_sql
from ml.settings import DBT_SELECTIONS
from ml.sql import quote_ident
from ml.warehouse import table_exists

SUBJECTS_VIEW = "intermediate.int_subjects_resolved"
PENDING = "erasure_pending"
CUSTOMERS = "erasure_customers"
IDENTIFIERS = "erasure_values"
TEMPORARY_TABLES = (PENDING, CUSTOMERS, IDENTIFIERS)

# No identifier is this short; a shorter value ("0", "n/a") would match strangers' rows.
MIN_IDENTIFIER_LENGTH = 5


class SubjectsNotResolved(RuntimeError):
    """The dbt view that resolves subjects to customers is missing from the warehouse."""


def load_pending_requests(
    connection: duckdb.DuckDBPyConnection, contracts: Contracts
) -> pd.DataFrame:
    """Landed requests not processed yet into `erasure_pending`; returned as a frame
    (request_id, requested_at) in request order."""
    feed = contracts["erasure"]
    if not table_exists(connection, feed.name, feed.table):
        connection.execute(
            f"create or replace temp table {PENDING} (request_id varchar, requested_at timestamp)"
        )
    else:
        requests = f"{quote_ident(feed.name)}.{quote_ident(feed.table)}"
        requested_at = utc_timestamp_sql("requested_at", feed.timezone)
        connection.execute(
            f"""
            create or replace temp table {PENDING} as
            select request_id, min({requested_at}) as requested_at
            from {requests} as requests
            where not exists (
                select 1 from privacy.erasure_log as log
                where log.erasure_request_id = requests.request_id
            )
            group by request_id
            """
        )
    return connection.execute(
        f"select request_id, requested_at from {PENDING} order by request_id"
    ).df()


def collect_identifiers(connection: duckdb.DuckDBPyConnection) -> None:
    """Fill `erasure_customers` from the subjects view and `erasure_values` with the identifiers
    of each pending request's person that nobody else holds (see the module docstring)."""
    _require_subjects_view(connection)
    connection.execute(
        f"""
        create or replace temp table {CUSTOMERS} as
        select pending.request_id, subjects.customer_id
        from {PENDING} as pending
        inner join {SUBJECTS_VIEW} as subjects
            on subjects.source = 'erasure' and subjects.source_event_id = pending.request_id
        where subjects.customer_id is not null
        """
    )
    connection.execute(
        f"""
        create or replace temp table {IDENTIFIERS} as
        with candidates as (
            select customers.request_id, identifiers.id_type as kind,
                lower(trim(identifiers.id_value)) as value
            from {CUSTOMERS} as customers
            inner join identity.identifiers as identifiers using (customer_id)
            where identifiers.status = 'linked'
            union all
            select request_id, 'customer_id', lower(trim(customer_id)) from {CUSTOMERS}
            union all
            select pending.request_id, 'subject', lower(trim(subjects.subject))
            from {PENDING} as pending
            inner join {SUBJECTS_VIEW} as subjects
                on subjects.source = 'erasure' and subjects.source_event_id = pending.request_id
        )
        select distinct request_id, kind, value
        from candidates
        where length(value) >= {MIN_IDENTIFIER_LENGTH}
            and not exists (
                -- someone else's too: shared or never-link, or linked to a customer kept
                select 1 from identity.identifiers as other
                where lower(trim(other.id_value)) = candidates.value
                    and (
                        other.status <> 'linked'
                        or (
                            other.customer_id is not null
                            and other.customer_id not in (select customer_id from {CUSTOMERS})
                        )
                    )
            )
        """
    )


def _require_subjects_view(connection: duckdb.DuckDBPyConnection) -> None:
    schema, view = SUBJECTS_VIEW.split(".")
    found = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, view],
    ).fetchall()[0][0]
    if not found:
        raise SubjectsNotResolved(
            f"{SUBJECTS_VIEW} is missing from the warehouse: erasure resolves each request's "
            "subject to its customer through it. Build the dbt part `subjects` after identity "
            f"(from dbt_project/: dbt build --select {DBT_SELECTIONS['subjects']['select']}); "
            "the Dagster job refresh_all does it before erasure."
        )


@dataclass(frozen=True)
class RequestSubject:
    """What erasure found about one request's subject before deleting anything."""

    customers: int  # customers the subject resolves to: 1, or 0 for nobody
    identifiers: int  # distinct identifiers to erase
    known_elsewhere: bool  # identity saw the customer in a feed other than erasure


def describe_requests(connection: duckdb.DuckDBPyConnection) -> dict[str, RequestSubject]:
    """request_id -> its RequestSubject, for every pending request (after collect_identifiers)."""
    rows = connection.execute(
        f"""
        select
            pending.request_id,
            (select count(distinct customer_id) from {CUSTOMERS} as customers
                where customers.request_id = pending.request_id),
            (select count(distinct value) from {IDENTIFIERS} as identifiers
                where identifiers.request_id = pending.request_id),
            exists (
                select 1 from {CUSTOMERS} as customers
                inner join identity.records as records using (customer_id)
                where customers.request_id = pending.request_id and records.source <> 'erasure'
            )
        from {PENDING} as pending
        order by pending.request_id
        """
    ).fetchall()
    return {
        request_id: RequestSubject(customers, identifiers, known)
        for request_id, customers, identifiers, known in rows
    }


def drop_temporary_tables(connection: duckdb.DuckDBPyConnection) -> None:
    for table in TEMPORARY_TABLES:
        connection.execute(f"drop table if exists temp.{table}")
