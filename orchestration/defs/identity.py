"""Identity assets: resolve every identifier to one stable customer id (ml/identity/), with checks.

The multi-asset writes the tables that dbt reads as the `identity` source (records,
identifiers, customers, history), keyed like those sources, so the customer models follow it
in the graph.
"""

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from orchestration.defs.landing import _markdown
from orchestration.defs.transform import teal_dbt_feeds
from orchestration.settings import quiet_telemetry

quiet_telemetry()

IDENTITY_TABLES = {
    "records": "Every source record with the customer it belongs to (null when nobody).",
    "identifiers": "Every identifier with its cluster, customer id and linking status.",
    "customers": "One row per customer id in use, with its anchor identifier.",
    "history": "Every creation, merge, split and retirement of a customer id, with its reason.",
}
IDENTITY_KEYS = {table: dg.AssetKey(["identity", table]) for table in IDENTITY_TABLES}
CHECK_LIMITS = "profiles_within_limits"
CHECK_HISTORY = "every_customer_was_created"


class IdentitySettings(dg.Config):
    """Settings of one identity run (the merge protection itself is in ml/identity/identity.yml)."""

    match_threshold: float = Field(
        default=0.99,
        description="Match probability at or above which two CRM records that share no identifier are one person.",
    )


@dg.multi_asset(
    name="resolve_identities",
    specs=[
        dg.AssetSpec(
            key,
            description=f"identity.{table}: {IDENTITY_TABLES[table]}",
            group_name="identity",
            kinds={"python", "duckdb"},
            deps=[
                get_asset_key_for_model([teal_dbt_feeds], "int_identifiers_observed"),
                get_asset_key_for_model([teal_dbt_feeds], "stg_crm__customers"),
            ],
        )
        for table, key in IDENTITY_KEYS.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_LIMITS,
            asset=IDENTITY_KEYS["identifiers"],
            description="No customer holds more identifiers of a type than identity.yml allows.",
        ),
        dg.AssetCheckSpec(
            CHECK_HISTORY,
            asset=IDENTITY_KEYS["history"],
            description="Every customer id in use has a `created` or `split` event in the history.",
        ),
    ],
    required_resource_keys={"warehouse"},
)
def resolve_identities(context: dg.AssetExecutionContext, config: IdentitySettings):
    """Link every identifier into customers and keep their ids stable across runs."""
    from ml.identity import config as identity_config
    from ml.identity import matching
    from ml.identity.pipeline import resolve_warehouse

    settings = matching.MatchSettings(threshold=config.match_threshold)
    with context.resources.warehouse.get_connection() as connection:
        outcome = resolve_warehouse(connection, run_id=context.run_id, match_settings=settings)
        limits = identity_config.load_config().limits
        over = _over_limits(connection, limits)
        orphans = connection.execute(
            """
            select count(*) from identity.customers as customers
            where not exists (
                select 1 from identity.history as history
                where history.customer_id = customers.customer_id
                and history.event_type in ('created', 'split')
            )
            """
        ).fetchone()[0]
    context.log.info(f"identity: {outcome.as_dict()}")
    metadata = {
        "customers": outcome.customers,
        "records": outcome.records,
        "records_unresolved": outcome.records_unresolved,
        "probabilistic_links": outcome.match_links,
        "shared_identifiers": outcome.shared,
        "refused_merges": outcome.refused,
        "events": dg.MetadataValue.json(outcome.events),
    }
    for table, key in IDENTITY_KEYS.items():
        yield dg.MaterializeResult(asset_key=key, metadata=metadata if table == "customers" else {})
    yield dg.AssetCheckResult(
        asset_key=IDENTITY_KEYS["identifiers"],
        check_name=CHECK_LIMITS,
        passed=over.empty,
        metadata={"over_limit": dg.MetadataValue.md(_markdown(over.head(20)))},
    )
    yield dg.AssetCheckResult(
        asset_key=IDENTITY_KEYS["history"],
        check_name=CHECK_HISTORY,
        passed=orphans == 0,
        metadata={"customers_without_creation": orphans},
    )


def _over_limits(connection, limits: dict[str, int]) -> pd.DataFrame:
    """Customers holding more distinct identifiers of a type than the limit."""
    if not limits:
        return pd.DataFrame(columns=["customer_id", "id_type", "identifiers", "limit"])
    values = ", ".join(f"('{t}', {int(n)})" for t, n in limits.items())
    return connection.execute(
        f"""
        with limits (id_type, max_count) as (values {values})
        select identifiers.customer_id, identifiers.id_type, count(*) as identifiers, limits.max_count as limit
        from identity.identifiers as identifiers
        inner join limits on identifiers.id_type = limits.id_type
        where identifiers.customer_id is not null
        group by all
        having count(*) > limits.max_count
        order by all
        """
    ).df()


defs = dg.Definitions(assets=[resolve_identities])
