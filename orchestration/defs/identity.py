"""Identity assets: resolve every identifier to one stable customer id (ml/identity/), with checks.

The multi-asset writes the tables that dbt reads as the `identity` source (records,
identifiers, customers, history), keyed like those sources, so the customer models follow it
in the graph.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.identity.matching import MatchSettings
from ml.settings import Settings
from ml.workflow.identity import resolve_identities as resolve
from orchestration.defs.metadata import table_metadata
from orchestration.defs.transform import teal_dbt_feeds

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
        default=MatchSettings().threshold,
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
)
def resolve_identities(
    context: dg.AssetExecutionContext,
    config: IdentitySettings,
    settings: dg.ResourceParam[Settings],
):
    """Link every identifier into customers and keep their ids stable across runs."""
    step = resolve(settings, run_id=context.run_id, threshold=config.match_threshold)
    outcome = step.outcome
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
        passed=step.over_limits.empty,
        # how many customers break each limit, never which (a customer id is personal)
        metadata={
            "over_limit": table_metadata(
                step.over_limits.groupby(["id_type", "limit"], as_index=False).agg(
                    customers=("customer_id", "nunique"), most=("identifiers", "max")
                )
            )
        },
    )
    yield dg.AssetCheckResult(
        asset_key=IDENTITY_KEYS["history"],
        check_name=CHECK_HISTORY,
        passed=step.customers_without_creation == 0,
        metadata={"customers_without_creation": step.customers_without_creation},
    )


defs = dg.Definitions(assets=[resolve_identities])
