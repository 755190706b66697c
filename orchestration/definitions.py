"""The Teal code location: only wiring. Assets, checks, jobs and resources live in defs/."""

import os

import dagster as dg

from orchestration.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV, quiet_telemetry

os.environ.setdefault(WAREHOUSE_ENV, str(DEFAULT_WAREHOUSE))
quiet_telemetry()

from orchestration.defs import (  # noqa: E402
    activation,
    audiences,
    identity,
    jobs,
    landing,
    privacy,
    resources,
    transform,
)

defs = dg.Definitions.merge(
    resources.defs,
    landing.defs,
    transform.defs,
    identity.defs,
    privacy.defs,
    audiences.defs,
    activation.defs,
    jobs.defs,
)
