"""Step: resolve every identifier to one stable customer id, and check the result."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from ml.identity import config as identity_config
from ml.identity import matching
from ml.identity.pipeline import IdentityOutcome, resolve_warehouse
from ml.settings import Settings
from ml.sql import quote_literal


@dataclass
class IdentityStep:
    """What identity resolution did, and the two things its checks look at."""

    outcome: IdentityOutcome
    over_limits: pd.DataFrame
    customers_without_creation: int


def resolve_identities(settings: Settings, *, run_id: str, threshold: float) -> IdentityStep:
    """Link every identifier into customers, keep their ids stable across runs, and find any
    customer over identity.yml's limits or without a recorded creation."""
    match_settings = matching.MatchSettings(threshold=threshold)
    with settings.connect() as connection:
        outcome = resolve_warehouse(connection, run_id=run_id, match_settings=match_settings)
        return IdentityStep(
            outcome=outcome,
            over_limits=customers_over_limits(connection, identity_config.load_config().limits),
            customers_without_creation=customers_without_creation(connection),
        )


def customers_over_limits(
    connection: duckdb.DuckDBPyConnection, limits: dict[str, int]
) -> pd.DataFrame:
    """Customers holding more distinct identifiers of a type than the limit."""
    if not limits:
        return pd.DataFrame(columns=["customer_id", "id_type", "identifiers", "limit"])
    values = ", ".join(f"({quote_literal(t)}, {int(n)})" for t, n in limits.items())
    return connection.execute(
        f"""
        with limits (id_type, max_count) as (values {values})
        select
            identifiers.customer_id,
            identifiers.id_type,
            count(*) as identifiers,
            limits.max_count as limit
        from identity.identifiers as identifiers
        inner join limits on identifiers.id_type = limits.id_type
        where identifiers.customer_id is not null
        group by all
        having count(*) > limits.max_count
        order by all
        """
    ).df()


def customers_without_creation(connection: duckdb.DuckDBPyConnection) -> int:
    """Customer ids in use with no `created` or `split` event in the history."""
    (count,) = connection.execute(
        """
        select count(*) from identity.customers as customers
        where not exists (
            select 1 from identity.history as history
            where history.customer_id = customers.customer_id
            and history.event_type in ('created', 'split')
        )
        """
    ).fetchone()
    return count
