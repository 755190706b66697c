"""Hand-made warehouses for the activation tests: the tables an export reads, with their contract
columns and types, filled from a few dicts.

`create_inputs(connection)` creates (empty) marts.dim_customers, marts.dim_customer_attributes,
marts.dim_consent_ledger, marts.dim_suppression_list and segments.segment_memberships.
`insert(connection, table, rows)` adds rows given as dicts (missing columns are null).
`copy_live_views(connection)` makes intermediate.int_consent_states and
intermediate.int_suppressions as plain tables copied from the marts, so a test can then change
the "live" state alone (a withdrawal that arrived after the marts were built).
`segment(...)` and `export_config(...)` build the validated objects the functions take.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb

from ml.activation.config import ExportConfig, parse_exports
from ml.segments import Catalogue
from ml.segments.rules import Segment, parse_segments

PROFILE_COLUMNS: dict[str, str] = {
    "customer_id": "varchar",
    "first_name": "varchar",
    "last_name": "varchar",
    "email": "varchar",
    "phone": "varchar",
    "birth_date": "date",
    "gender": "varchar",
    "street": "varchar",
    "city": "varchar",
    "postcode": "varchar",
    "country_code": "varchar",
    "loyalty_id": "varchar",
}
ATTRIBUTE_COLUMNS: dict[str, str] = {
    "customer_id": "varchar",
    "lifetime_orders": "integer",
    "lifetime_revenue_gbp": "double",
    "rfm_segment": "varchar",
    "favourite_category": "varchar",
    "is_outlier": "boolean",
}
LEDGER_COLUMNS: dict[str, str] = {
    "customer_id": "varchar",
    "purpose": "varchar",
    "consent_state": "varchar",
    "has_consent": "boolean",
    "decided_at": "timestamp",
    "consent_source": "varchar",
    "consent_event_id": "varchar",
    "event_count": "integer",
}
SUPPRESSION_COLUMNS: dict[str, str] = {
    "customer_id": "varchar",
    "suppression_reason": "varchar",
    "suppressed_since": "timestamp",
    "source_event_id": "varchar",
}
MEMBERSHIP_COLUMNS: dict[str, str] = {
    "segment_name": "varchar",
    "customer_id": "varchar",
    "valid_from": "timestamp",
    "valid_to": "timestamp",
}
TABLES: dict[str, dict[str, str]] = {
    "marts.dim_customers": PROFILE_COLUMNS,
    "marts.dim_customer_attributes": ATTRIBUTE_COLUMNS,
    "marts.dim_consent_ledger": LEDGER_COLUMNS,
    "marts.dim_suppression_list": SUPPRESSION_COLUMNS,
    "segments.segment_memberships": MEMBERSHIP_COLUMNS,
}
CATALOGUE = Catalogue.from_columns(ATTRIBUTE_COLUMNS, origin="activation_builders.py")
DECIDED_AT = datetime(2026, 10, 1, 9, 30)


def create_inputs(connection: duckdb.DuckDBPyConnection) -> None:
    """The input tables of an export, empty, with their contract types."""
    for schema in ("marts", "segments", "intermediate"):
        connection.execute(f"create schema if not exists {schema}")
    for table, columns in TABLES.items():
        body = ", ".join(f"{name} {data_type}" for name, data_type in columns.items())
        connection.execute(f"create or replace table {table} ({body})")


def insert(
    connection: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Insert dict rows into one of TABLES (columns not given are null)."""
    columns = list(TABLES[table])
    placeholders = ", ".join("?" for _ in columns)
    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise KeyError(f"{table} has no column {sorted(unknown)}")
        connection.execute(
            f"insert into {table} values ({placeholders})", [row.get(c) for c in columns]
        )


def consent(customer_id: str, purpose: str, state: str) -> dict[str, Any]:
    """One consent ledger row: granted, withdrawn or no_record."""
    decided = state != "no_record"
    return {
        "customer_id": customer_id,
        "purpose": purpose,
        "consent_state": state,
        "has_consent": state == "granted",
        "decided_at": DECIDED_AT if decided else None,
        "consent_source": "web" if decided else None,
        "consent_event_id": f"evt_{customer_id}_{purpose}" if decided else None,
        "event_count": 1 if decided else 0,
    }


def suppression(customer_id: str, reason: str) -> dict[str, Any]:
    """One suppression list row."""
    return {
        "customer_id": customer_id,
        "suppression_reason": reason,
        "suppressed_since": DECIDED_AT,
        "source_event_id": f"evt_{customer_id}_{reason}",
    }


def copy_live_views(connection: duckdb.DuckDBPyConnection) -> None:
    """intermediate.int_consent_states / int_suppressions as tables copied from the marts."""
    connection.execute(
        "create or replace table intermediate.int_consent_states as "
        "select * from marts.dim_consent_ledger where consent_state != 'no_record'"
    )
    connection.execute(
        "create or replace table intermediate.int_suppressions as "
        "select * from marts.dim_suppression_list"
    )


def segment(name: str = "test_audience", consent_purpose: str = "email_marketing") -> Segment:
    """A validated dynamic segment (its rules do not matter: memberships are given)."""
    data = {
        "name": name,
        "description": "Customers for an export test.",
        "owner": "crm-team@teal.example",
        "type": "dynamic",
        "consent_purpose": consent_purpose,
        "rules": {"field": "lifetime_orders", "operator": ">=", "value": 0},
    }
    return parse_segments(data, "test_segments.yml", CATALOGUE)[0]


def export_config(the_segment: Segment, **keys: Any) -> ExportConfig:
    """A validated export of `the_segment`; `keys` override the export file's keys."""
    data = {
        "segment": the_segment.name,
        "description": "An export for a test.",
        "holdout_percent": 10,
        "measurement_window_days": 14,
        **keys,
    }
    return parse_exports(data, "test_exports.yml", {the_segment.name: the_segment}, CATALOGUE)[0]
