"""Teal's Dagster definitions, one module per domain, put together for one set of settings."""

from __future__ import annotations

import dagster as dg

from ml.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, with resources built from `settings`."""
    from orchestration.defs import (
        activation,
        audiences,
        hub,
        identity,
        jobs,
        landing,
        predictions,
        privacy,
        quality,
        reports,
        resources,
        transform,
    )

    return dg.Definitions.merge(
        landing.defs,
        transform.defs,
        identity.defs,
        privacy.defs,
        quality.defs,
        predictions.defs,
        audiences.defs,
        activation.defs,
        reports.defs,
        hub.defs,
        jobs.defs,
        dg.Definitions(resources=resources.resources(settings)),
    )
