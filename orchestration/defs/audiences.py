"""Audience assets: ML clusters over the features, rule segments from dbt_project/segments/,
and the charts a person would rather look at than read.

The clusters are written to ml.customer_clusters (the dbt source `ml`), so the audience models
(dim_customer_attributes) and with them the rule segments can use them.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.clustering import ClusterSettings
from ml.settings import Settings
from ml.workflow import StepError
from ml.workflow.audiences import cluster, draw_charts, refresh_segments
from orchestration.defs.metadata import image_markdown, table_metadata
from orchestration.defs.resources import run_as_of, step_failure
from orchestration.defs.transform import teal_dbt_audiences, teal_dbt_customers

CLUSTERS_KEY = dg.AssetKey(["ml", "customer_clusters"])
SEGMENT_TABLES = {
    "segment_memberships": "Who is in which segment since when (valid_from, valid_to).",
    "segment_sizes": "Members, entered and exited per segment and day.",
    "segment_definitions": "Each segment's definition, hash, owner, consent purpose and SQL.",
}
SEGMENT_KEYS = {table: dg.AssetKey(["segments", table]) for table in SEGMENT_TABLES}
CHECK_ONE_OPEN = "one_open_membership_per_member"
CHECK_SIZES = "sizes_match_memberships"


def _from_library(name: str):
    """A config field whose default and description are ClusterSettings' own."""
    spec = ClusterSettings.__dataclass_fields__[name]
    return Field(default=spec.default, description=spec.metadata["description"])


class ClusterConfig(dg.Config):
    """Hyperparameters of the customer clustering (defaults from ml/clustering/settings.py)."""

    k_min: int = _from_library("k_min")
    k_max: int = _from_library("k_max")
    sample_size: int = _from_library("sample_size")
    seed: int = _from_library("seed")
    contamination: float = _from_library("contamination")
    batch_size: int = _from_library("batch_size")


@dg.asset(
    key=CLUSTERS_KEY,
    group_name="audiences",
    kinds={"python", "scikitlearn", "duckdb"},
    deps=[get_asset_key_for_model([teal_dbt_customers], "customer_features")],
)
def customer_clusters(
    context: dg.AssetExecutionContext, config: ClusterConfig, settings: dg.ResourceParam[Settings]
):
    """K-Means clusters of customer_features with readable labels, outliers and stable ids."""
    run = cluster(
        settings,
        as_of=run_as_of(context, settings),
        cluster_settings=ClusterSettings(**config.model_dump()),
    )
    summary = run.as_dict()
    context.log.info(
        f"clusters: k={run.chosen_k}, sizes {summary['sizes']}, labels {summary['labels']}, "
        f"ARI vs previous {run.adjusted_rand_vs_previous}"
    )
    metadata = {
        "model_version": run.model_version,
        "customers": run.rows,
        "k": run.chosen_k,
        "silhouette": dg.MetadataValue.json(summary["silhouette_by_k"]),
        "inertia": dg.MetadataValue.json(summary["inertia_by_k"]),
        "adjusted_rand_vs_previous": dg.MetadataValue.float(
            float(run.adjusted_rand_vs_previous)
            if run.adjusted_rand_vs_previous is not None
            else float("nan")
        ),
        "outliers": run.outliers,
        "clusters": table_metadata(run.profiles[["cluster_id", "cluster_label", "size", "share"]]),
    }
    for name, path in run.charts.items():
        metadata[f"chart_{name}"] = image_markdown(path, name.replace("_", " "))
    return dg.MaterializeResult(metadata=metadata)


@dg.multi_asset(
    name="rule_segments",
    specs=[
        dg.AssetSpec(
            key,
            description=f"segments.{table}: {SEGMENT_TABLES[table]}",
            group_name="audiences",
            kinds={"python", "duckdb"},
            deps=[
                get_asset_key_for_model([teal_dbt_audiences], "dim_customer_attributes"),
                get_asset_key_for_model([teal_dbt_customers], "fct_clickstream_events"),
            ],
        )
        for table, key in SEGMENT_KEYS.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_ONE_OPEN,
            asset=SEGMENT_KEYS["segment_memberships"],
            description="A customer has at most one open membership (valid_to null) per segment.",
        ),
        dg.AssetCheckSpec(
            CHECK_SIZES,
            asset=SEGMENT_KEYS["segment_sizes"],
            description="Today's size of every segment equals its open memberships.",
        ),
    ],
)
def rule_segments(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Validate the segment files, then recompute dynamic segments and record who entered and left."""
    as_of = run_as_of(context, settings)
    try:
        step = refresh_segments(settings, as_of=as_of)
    except StepError as error:
        raise step_failure(error) from error
    table = "\n".join(
        ["| segment | type | members | entered | exited |", "|---|---|---:|---:|---:|"]
        + [
            f"| {run.segment_name} | {run.type}{'' if run.recomputed else ' (frozen)'} "
            f"| {run.members:,} | {run.entered:,} | {run.exited:,} |"
            for run in step.runs
        ]
    )
    for run in step.runs:
        if run.warning:
            context.log.warning(f"segment {run.segment_name}: {run.warning}")
    for name, key in SEGMENT_KEYS.items():
        metadata = {}
        if name == "segment_sizes":
            metadata = {
                "as_of": as_of,
                "segments": len(step.runs),
                "sizes": dg.MetadataValue.md(table),
            }
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key=SEGMENT_KEYS["segment_memberships"],
        check_name=CHECK_ONE_OPEN,
        passed=step.members_open_twice == 0,
        metadata={"members_open_twice": step.members_open_twice},
    )
    yield dg.AssetCheckResult(
        asset_key=SEGMENT_KEYS["segment_sizes"],
        check_name=CHECK_SIZES,
        passed=step.segments_mismatched == 0,
        metadata={"segments_mismatched": step.segments_mismatched},
    )


@dg.asset(
    key=dg.AssetKey(["reports", "audience_charts"]),
    group_name="audiences",
    kinds={"python"},
    deps=[
        SEGMENT_KEYS["segment_sizes"],
        get_asset_key_for_model([teal_dbt_customers], "customer_rfm"),
    ],
)
def audience_charts(settings: dg.ResourceParam[Settings]):
    """PNG charts of the RFM grid and segment sizes over time, in data/reports/charts/."""
    charts = draw_charts(settings)
    return dg.MaterializeResult(
        metadata={
            "rfm_grid": image_markdown(charts["rfm_grid"], "RFM grid"),
            "segment_sizes": image_markdown(charts["segment_sizes"], "Segment sizes over time"),
            "folder": str(settings.reports / "charts"),
        }
    )


defs = dg.Definitions(assets=[customer_clusters, rule_segments, audience_charts])
