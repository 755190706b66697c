"""Shared fixtures: a generated sample, and a warehouse the whole pipeline has run on once."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Telemetry off and the warehouse pointed somewhere harmless before anything imports the tools.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_PROFILES_DIR", str(REPO_ROOT / "dbt_project"))
os.environ.setdefault("TEAL_WAREHOUSE", str(REPO_ROOT / "data" / "test-unused.duckdb"))
# Features and segments as of the sample data's last day (the generator's default end date).
os.environ.setdefault("TEAL_AS_OF", "2026-11-20")
# A fixed salt, so holdouts and tombstones in tests are the same on every machine.
TEST_SALT = "7e57" * 16
os.environ["TEAL_SALT"] = TEST_SALT
