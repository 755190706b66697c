"""Steps: cluster customers, refresh the rule segments, draw the audience charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.as_of import cutoff, snapshot_date
from ml.clustering import ClusterRun, ClusterSettings, cluster_customers
from ml.segments import (
    SEGMENTS_DIR,
    SegmentRun,
    SegmentValidationError,
    load_catalogue,
    load_segments,
)
from ml.segments import run_segments as run_segment_definitions
from ml.settings import Settings
from ml.workflow.errors import StepError


def cluster(settings: Settings, *, as_of: str, cluster_settings: ClusterSettings) -> ClusterRun:
    """K-Means clusters of customer_features with readable labels, outliers and stable ids;
    models are versioned under `settings.cluster_models`."""
    with settings.connect() as connection:
        return cluster_customers(
            connection,
            model_dir=settings.cluster_models,
            settings=cluster_settings,
            as_of=cutoff(as_of),
        )


@dataclass
class SegmentsStep:
    """What refreshing the segments did, and what its checks look at."""

    runs: list[SegmentRun]
    members_open_twice: int
    segments_mismatched: int


def load_shipped_segments():
    """The segment files, validated; a StepError lists every problem."""
    try:
        return load_segments(SEGMENTS_DIR, load_catalogue())
    except SegmentValidationError as error:
        raise StepError("segment files are not valid:\n" + "\n".join(error.messages())) from error


def refresh_segments(settings: Settings, *, as_of: str) -> SegmentsStep:
    """Validate the segment files, recompute dynamic segments and record who entered and left.

    Refuses (before writing anything) when the audience model holds features as of another
    moment than `as_of`: behaviour and features must share one cutoff.
    """
    segments = load_shipped_segments()
    moment = cutoff(as_of)
    with settings.connect() as connection:
        held = [
            row[0]
            for row in connection.execute(
                "select distinct as_of_at from marts.dim_customer_attributes"
            ).fetchall()
        ]
        if held != [moment]:
            raise StepError(
                f"the segments would run as of {moment} but "
                "marts.dim_customer_attributes holds features as of "
                f"{', '.join(str(value) for value in held) or 'nothing'}: materialise the "
                "features, clusters and audience model in the same run (or set $TEAL_AS_OF "
                "to the features' as_of), so behaviour and features share one cutoff"
            )
        runs = run_segment_definitions(connection, segments, as_of)
        (duplicated,) = connection.execute(
            """
            select count(*) from (
                select segment_name, customer_id from segments.segment_memberships
                where valid_to is null group by all having count(*) > 1
            )
            """
        ).fetchone()
        (mismatched,) = connection.execute(
            """
            select count(*) from segments.segment_sizes as sizes
            where sizes.snapshot_date = ? and sizes.members <> (
                select count(*) from segments.segment_memberships as memberships
                where memberships.segment_name = sizes.segment_name
                and memberships.valid_to is null
            )
            """,
            [snapshot_date(as_of)],
        ).fetchone()
    return SegmentsStep(runs, duplicated, mismatched)


def draw_charts(settings: Settings) -> dict[str, Path]:
    """PNG charts of the RFM grid and segment sizes over time, in `<reports>/charts/`."""
    from ml.clustering.charts import rfm_grid_chart, segment_sizes_chart

    folder = settings.reports / "charts"
    folder.mkdir(parents=True, exist_ok=True)
    with settings.connect() as connection:
        rfm = connection.execute(
            """
            select r_score, f_score, rfm_segment, count(*) as customers
            from marts.customer_rfm where has_purchased group by all
            """
        ).df()
        sizes = connection.execute(
            "select snapshot_date, segment_name, members from segments.segment_sizes order by all"
        ).df()
    return {
        "rfm_grid": rfm_grid_chart(rfm, folder / "rfm_grid.png"),
        "segment_sizes": segment_sizes_chart(sizes, folder / "segment_sizes.png"),
    }
