"""Audience assets: ML clusters over the features, rule segments from dbt_project/segments/,
and the charts a person would rather look at than read.

The clusters are written to ml.customer_clusters (the dbt source `ml`), so the audience models
(dim_customer_attributes) and with them the rule segments can use them.
"""

import base64
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.as_of import cutoff, snapshot_date
from orchestration.defs.landing import _markdown
from orchestration.defs.resources import run_as_of
from orchestration.defs.transform import teal_dbt_audiences, teal_dbt_customers
from orchestration.settings import reports_path, warehouse_path

CLUSTERS_KEY = dg.AssetKey(["ml", "customer_clusters"])
SEGMENT_TABLES = {
    "segment_memberships": "Who is in which segment since when (valid_from, valid_to).",
    "segment_sizes": "Members, entered and exited per segment and day.",
    "segment_definitions": "Each segment's definition, hash, owner, consent purpose and SQL.",
}
SEGMENT_KEYS = {table: dg.AssetKey(["segments", table]) for table in SEGMENT_TABLES}
CHECK_ONE_OPEN = "one_open_membership_per_member"
CHECK_SIZES = "sizes_match_memberships"


def model_dir() -> Path:
    """Where clustering models are versioned: data/models/clusters/ beside the warehouse."""
    return warehouse_path().parent / "models" / "clusters"


def image_markdown(path: Path, title: str) -> dg.MetadataValue:
    """A PNG embedded in markdown metadata, so the Dagster UI shows the picture itself."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(
        f"**{title}** (`{path}`)\n\n![{title}](data:image/png;base64,{data})"
    )


class ClusterConfig(dg.Config):
    """Hyperparameters of the customer clustering (see ml/clustering/settings.py)."""

    k_min: int = Field(default=3, description="Smallest number of clusters tried.")
    k_max: int = Field(default=8, description="Largest number of clusters tried.")
    sample_size: int = Field(
        default=20_000, description="Customers the scaler, K-Means and Isolation Forest are fit on."
    )
    seed: int = Field(default=42, description="Seed of the sample and the models.")
    contamination: float = Field(
        default=0.01, description="Expected share of outliers for the Isolation Forest."
    )
    batch_size: int = Field(
        default=100_000, description="Customers assigned at a time (bounds memory)."
    )


@dg.asset(
    key=CLUSTERS_KEY,
    group_name="audiences",
    kinds={"python", "scikitlearn", "duckdb"},
    deps=[get_asset_key_for_model([teal_dbt_customers], "customer_features")],
    required_resource_keys={"warehouse"},
)
def customer_clusters(context: dg.AssetExecutionContext, config: ClusterConfig):
    """K-Means clusters of customer_features with readable labels, outliers and stable ids."""
    from ml.clustering import ClusterSettings, cluster_customers

    settings = ClusterSettings(
        k_min=config.k_min,
        k_max=config.k_max,
        sample_size=config.sample_size,
        seed=config.seed,
        contamination=config.contamination,
        batch_size=config.batch_size,
    )
    with context.resources.warehouse.get_connection() as connection:
        run = cluster_customers(
            connection,
            model_dir=model_dir(),
            settings=settings,
            as_of=cutoff(run_as_of(context)),
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
        "clusters": dg.MetadataValue.md(
            _markdown(run.profiles[["cluster_id", "cluster_label", "size", "share"]])
        ),
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
    required_resource_keys={"warehouse"},
)
def rule_segments(context: dg.AssetExecutionContext):
    """Validate the segment files, then recompute dynamic segments and record who entered and left."""
    from ml.segments import SegmentValidationError, load_catalogue, load_segments, run_segments
    from ml.segments.catalogue import SEGMENTS_DIR

    try:
        segments = load_segments(SEGMENTS_DIR, load_catalogue())
    except SegmentValidationError as error:
        raise dg.Failure(
            description="segment files are not valid:\n" + "\n".join(error.messages()),
        ) from error
    as_of = run_as_of(context)
    moment = cutoff(as_of)
    # checked before anything is written (and outside the connection's block: a failure raised
    # inside it would leave the warehouse open in this process)
    with context.resources.warehouse.get_connection() as connection:
        held = [
            row[0]
            for row in connection.execute(
                "select distinct as_of_at from marts.dim_customer_attributes"
            ).fetchall()
        ]
    if held != [moment]:
        raise dg.Failure(
            description=f"the segments would run as of {moment} but "
            "marts.dim_customer_attributes holds features as of "
            f"{', '.join(str(value) for value in held) or 'nothing'}: materialise the "
            "features, clusters and audience model in the same run (or set $TEAL_AS_OF "
            "to the features' as_of), so behaviour and features share one cutoff"
        )
    with context.resources.warehouse.get_connection() as connection:
        runs = run_segments(connection, segments, as_of)
        day = snapshot_date(as_of)
        duplicated = connection.execute(
            """
            select count(*) from (
                select segment_name, customer_id from segments.segment_memberships
                where valid_to is null group by all having count(*) > 1
            )
            """
        ).fetchone()[0]
        mismatched = connection.execute(
            """
            select count(*) from segments.segment_sizes as sizes
            where sizes.snapshot_date = ? and sizes.members <> (
                select count(*) from segments.segment_memberships as memberships
                where memberships.segment_name = sizes.segment_name and memberships.valid_to is null
            )
            """,
            [day],
        ).fetchone()[0]
    table = "\n".join(
        ["| segment | type | members | entered | exited |", "|---|---|---:|---:|---:|"]
        + [
            f"| {run.segment_name} | {run.type}{'' if run.recomputed else ' (frozen)'} "
            f"| {run.members:,} | {run.entered:,} | {run.exited:,} |"
            for run in runs
        ]
    )
    for run in runs:
        if run.warning:
            context.log.warning(f"segment {run.segment_name}: {run.warning}")
    for name, key in SEGMENT_KEYS.items():
        metadata = {}
        if name == "segment_sizes":
            metadata = {
                "as_of": as_of,
                "segments": len(runs),
                "sizes": dg.MetadataValue.md(table),
            }
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key=SEGMENT_KEYS["segment_memberships"],
        check_name=CHECK_ONE_OPEN,
        passed=duplicated == 0,
        metadata={"members_open_twice": duplicated},
    )
    yield dg.AssetCheckResult(
        asset_key=SEGMENT_KEYS["segment_sizes"],
        check_name=CHECK_SIZES,
        passed=mismatched == 0,
        metadata={"segments_mismatched": mismatched},
    )


@dg.asset(
    key=dg.AssetKey(["reports", "audience_charts"]),
    group_name="audiences",
    kinds={"python"},
    deps=[
        SEGMENT_KEYS["segment_sizes"],
        get_asset_key_for_model([teal_dbt_customers], "customer_rfm"),
    ],
    required_resource_keys={"warehouse"},
)
def audience_charts(context: dg.AssetExecutionContext):
    """PNG charts of the RFM grid and segment sizes over time, in data/reports/charts/."""
    from ml.clustering.charts import rfm_grid_chart, segment_sizes_chart

    folder = reports_path() / "charts"
    folder.mkdir(parents=True, exist_ok=True)
    with context.resources.warehouse.get_connection() as connection:
        rfm = connection.execute(
            """
            select r_score, f_score, rfm_segment, count(*) as customers
            from marts.customer_rfm where has_purchased group by all
            """
        ).df()
        sizes = connection.execute(
            "select snapshot_date, segment_name, members from segments.segment_sizes order by all"
        ).df()
    grid = rfm_grid_chart(rfm, folder / "rfm_grid.png")
    lines = segment_sizes_chart(sizes, folder / "segment_sizes.png")
    return dg.MaterializeResult(
        metadata={
            "rfm_grid": image_markdown(grid, "RFM grid"),
            "segment_sizes": image_markdown(lines, "Segment sizes over time"),
            "folder": str(folder),
        }
    )


defs = dg.Definitions(assets=[customer_clusters, rule_segments, audience_charts])
