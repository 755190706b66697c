"""Teal's settings: read once from the environment into one object, then passed down.

    settings = Settings.from_env()            # the CLIs, the bench and the Dagster code location
    settings = Settings.for_root(tmp_path)    # tests: everything under one folder

Nothing else in Teal reads these environment variables, and nothing writes any:

| variable | meaning | default |
|---|---|---|
| `TEAL_WAREHOUSE` | the DuckDB file (dbt's profiles.yml reads the same variable) | `data/warehouse.duckdb` |
| `TEAL_LANDING` | the folder of feed files, one sub-folder per feed | `data/landing/` |
| `TEAL_EXPORTS` | where audience exports are written | `exports/` beside the warehouse |
| `TEAL_REPORTS` | run reports and charts | `reports/` beside the warehouse |
| `TEAL_MODELS` | versioned models (clusters) | `models/` beside the warehouse |
| `TEAL_SALT` | the salt of tombstones and holdouts (ml/secrets.py) | none: a run that needs it stops |
| `TEAL_AS_OF` | the moment features and segments are computed as of (ml/as_of.py) | the run's start |
| `TEAL_DUCKDB_MEMORY` | DuckDB's memory limit, for every connection Teal and dbt open | `4GB` |
| `TEAL_DUCKDB_THREADS` | DuckDB's threads | the machine's cores |
| `TEAL_FEEDS` | a file of your own feed settings merged over ml/landing/feeds.yml | `feeds.local.yml` beside the landing folder, if there is one |
| `TEAL_GX_PROJECT` | the Great Expectations project (gx/great_expectations.yml, its stores and Data Docs) | `expectations/` |
| `TEAL_RAW_FILES` | what happens to landing files once landed: `rewrite` (they stay; erasure rewrites them without an erased person's rows) or `archive:<days>` (they also move to `<landing>_archive/<day>/` and are deleted after that many days) | `rewrite` |
| `TEAL_HUB_SNAPSHOTS` | where runs publish the audience hub's read-only snapshots (ml/hub) | `hub/snapshots/` beside the warehouse |
| `TEAL_HUB_DATABASE` | the hub's own SQLite file: users, sessions, its audit log | `hub/hub.sqlite` beside the warehouse |
| `TEAL_HUB_HOST`, `TEAL_HUB_PORT` | where `make serve` listens | `127.0.0.1`, `8080` |
| `TEAL_HUB_SECRET` | the key that signs the hub's cookies (make writes one to `.secrets/hub.env`) | none: the hub does not start |
| `TEAL_HUB_HTTPS` | `1` when the hub is reached over HTTPS: cookies marked Secure, HSTS sent | off |

No Dagster import here: the code location wraps this object in a resource.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_WAREHOUSE = REPO_ROOT / "data" / "warehouse.duckdb"
DEFAULT_LANDING = REPO_ROOT / "data" / "landing"
DEFAULT_GX_PROJECT = REPO_ROOT / "expectations"
# dbt from the same environment as this Python, whether or not that environment is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

WAREHOUSE_ENV = "TEAL_WAREHOUSE"
LANDING_ENV = "TEAL_LANDING"
EXPORTS_ENV = "TEAL_EXPORTS"
REPORTS_ENV = "TEAL_REPORTS"
MODELS_ENV = "TEAL_MODELS"
SALT_ENV = "TEAL_SALT"
AS_OF_ENV = "TEAL_AS_OF"
MEMORY_ENV = "TEAL_DUCKDB_MEMORY"
THREADS_ENV = "TEAL_DUCKDB_THREADS"
FEEDS_ENV = "TEAL_FEEDS"
GX_PROJECT_ENV = "TEAL_GX_PROJECT"
RAW_FILES_ENV = "TEAL_RAW_FILES"
RAW_FILES_REWRITE = "rewrite"
RAW_FILES_ARCHIVE = "archive"
HUB_SNAPSHOTS_ENV = "TEAL_HUB_SNAPSHOTS"
HUB_DATABASE_ENV = "TEAL_HUB_DATABASE"
HUB_HOST_ENV = "TEAL_HUB_HOST"
HUB_PORT_ENV = "TEAL_HUB_PORT"
HUB_SECRET_ENV = "TEAL_HUB_SECRET"
HUB_HTTPS_ENV = "TEAL_HUB_HTTPS"
DEFAULT_HUB_HOST = "127.0.0.1"
DEFAULT_HUB_PORT = 8080

DEFAULT_MEMORY_LIMIT = "4GB"
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_MEMORY_UNITS = {  # bytes, as DuckDB reads them: KB and up by 1000, KiB and up by 1024
    **{unit: 1000**power for power, unit in enumerate(("kb", "mb", "gb", "tb"), start=1)},
    **{unit: 1024**power for power, unit in enumerate(("kib", "mib", "gib", "tib"), start=1)},
}


class SettingsError(ValueError):
    """A setting has a value Teal cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Where Teal reads and writes, and how DuckDB may use the machine."""

    warehouse: Path = DEFAULT_WAREHOUSE
    landing: Path = DEFAULT_LANDING
    exports: Path | None = None
    reports: Path | None = None
    models: Path | None = None
    salt: str = ""
    as_of: str = ""
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    duckdb_threads: int = 0
    feeds_overrides: Path | None = None  # None: feeds.local.yml beside the landing folder
    gx_project: Path = DEFAULT_GX_PROJECT
    raw_files: str = RAW_FILES_REWRITE  # `rewrite`, or `archive:<days>` (see the table above)
    hub_snapshots: Path | None = None
    hub_database: Path | None = None
    hub_host: str = DEFAULT_HUB_HOST
    hub_port: int = DEFAULT_HUB_PORT
    hub_secret: str = dataclasses.field(default="", repr=False)  # never printed
    hub_https: bool = False

    def __post_init__(self) -> None:
        # derived folders default to siblings of the warehouse; paths are made absolute once
        data = Path(self.warehouse).resolve().parent
        fixed = {
            "warehouse": Path(self.warehouse).resolve(),
            "landing": Path(self.landing).resolve(),
            "exports": Path(self.exports or data / "exports").resolve(),
            "reports": Path(self.reports or data / "reports").resolve(),
            "models": Path(self.models or data / "models").resolve(),
            "gx_project": Path(self.gx_project or DEFAULT_GX_PROJECT).resolve(),
            "hub_snapshots": Path(self.hub_snapshots or data / "hub" / "snapshots").resolve(),
            "hub_database": Path(self.hub_database or data / "hub" / "hub.sqlite").resolve(),
            "hub_host": str(self.hub_host or DEFAULT_HUB_HOST).strip(),
            "hub_port": int(self.hub_port or DEFAULT_HUB_PORT),
            "hub_secret": str(self.hub_secret or "").strip(),
            "hub_https": bool(self.hub_https),
            "duckdb_threads": int(self.duckdb_threads) or (os.cpu_count() or 1),
            "salt": str(self.salt or "").strip(),
            "as_of": str(self.as_of or "").strip(),
            "raw_files": str(self.raw_files or RAW_FILES_REWRITE).strip().lower(),
        }
        for name, value in fixed.items():
            object.__setattr__(self, name, value)
        if not _MEMORY.match(self.duckdb_memory_limit.strip()):
            raise SettingsError(
                f"${MEMORY_ENV} must be an amount such as 4GB or 512MB, "
                f"not {self.duckdb_memory_limit!r}"
            )
        if self.duckdb_threads < 1:
            raise SettingsError(f"${THREADS_ENV} must be a positive number of threads")
        if not 1 <= self.hub_port <= 65535:
            raise SettingsError(f"${HUB_PORT_ENV} must be a port number from 1 to 65535")
        mode, _, days = self.raw_files.partition(":")
        if not (
            self.raw_files == RAW_FILES_REWRITE
            or (mode == RAW_FILES_ARCHIVE and days.isdigit() and int(days) >= 1)
        ):
            raise SettingsError(
                f"${RAW_FILES_ENV} must be `rewrite` or `archive:<days>` (such as archive:30), "
                f"not {self.raw_files!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings of this process: the variables above, then `overrides` on top."""
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        threads = env.get(THREADS_ENV, "").strip()
        if threads and not threads.isdigit():
            raise SettingsError(f"${THREADS_ENV} must be a whole number, not {threads!r}")
        port = env.get(HUB_PORT_ENV, "").strip()
        if port and not port.isdigit():
            raise SettingsError(f"${HUB_PORT_ENV} must be a port number, not {port!r}")
        https = env.get(HUB_HTTPS_ENV, "").strip().lower()
        if https not in ("", "0", "1", "true", "false", "yes", "no"):
            raise SettingsError(f"${HUB_HTTPS_ENV} must be 1 or 0, not {https!r}")
        values: dict[str, Any] = {
            "warehouse": path(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE,
            "landing": path(LANDING_ENV) or DEFAULT_LANDING,
            "exports": path(EXPORTS_ENV),
            "reports": path(REPORTS_ENV),
            "models": path(MODELS_ENV),
            "feeds_overrides": path(FEEDS_ENV),
            "salt": env.get(SALT_ENV, ""),
            "as_of": env.get(AS_OF_ENV, ""),
            "duckdb_memory_limit": env.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY_LIMIT,
            "duckdb_threads": int(threads) if threads else 0,
            "gx_project": path(GX_PROJECT_ENV) or DEFAULT_GX_PROJECT,
            "raw_files": env.get(RAW_FILES_ENV, "").strip() or RAW_FILES_REWRITE,
            "hub_snapshots": path(HUB_SNAPSHOTS_ENV),
            "hub_database": path(HUB_DATABASE_ENV),
            "hub_host": env.get(HUB_HOST_ENV, "").strip() or DEFAULT_HUB_HOST,
            "hub_port": int(port) if port else DEFAULT_HUB_PORT,
            "hub_secret": env.get(HUB_SECRET_ENV, ""),
            "hub_https": https in ("1", "true", "yes"),
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def for_root(cls, root: Path, **overrides: Any) -> Settings:
        """Everything under one folder (root/warehouse.duckdb, root/landing, ...): for tests
        and benchmarks, which must never touch the project's own data/."""
        root = Path(root)
        values: dict[str, Any] = {
            "warehouse": root / "warehouse.duckdb",
            "landing": root / "landing",
        }
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (derived folders follow a new warehouse unless set)."""
        if "warehouse" in changes:
            for derived in ("exports", "reports", "models", "hub_snapshots", "hub_database"):
                changes.setdefault(derived, None)
        return dataclasses.replace(self, **changes)

    @property
    def dbt_target(self) -> Path:
        """dbt's target folder for runs on this warehouse (artifacts and partial-parse state)."""
        return self.warehouse.parent / "dbt_target"

    @property
    def archive_days(self) -> int | None:
        """How many days landed files are kept in the archive; None when they stay in the
        landing folder (`rewrite`)."""
        mode, _, days = self.raw_files.partition(":")
        return int(days) if mode == RAW_FILES_ARCHIVE else None

    @property
    def landing_archive(self) -> Path:
        """Where landed files move in archive mode: `<landing>_archive/<day>/<feed>/...`
        beside the landing folder (erasure rewrites files there too)."""
        return self.landing.with_name(self.landing.name + "_archive")

    @property
    def cluster_models(self) -> Path:
        """Where clustering models are versioned."""
        return self.models / "clusters"

    def duckdb_config(self, *, memory_share: float = 1.0) -> dict[str, Any]:
        """DuckDB's configuration for every connection Teal opens; `memory_share` of the memory
        limit for work that streams and is no faster with more (compaction's copy)."""
        limit = self.duckdb_memory_limit
        if memory_share != 1.0:
            amount, unit = _MEMORY.match(limit.strip()).groups()  # type: ignore[union-attr]
            megabytes = float(amount) * _MEMORY_UNITS[unit.lower()] * memory_share / 10**6
            limit = f"{max(1, int(megabytes))}MB"
        return {"memory_limit": limit, "threads": self.duckdb_threads}

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection to the warehouse with Teal's memory limit and threads."""
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.warehouse), read_only=read_only, config=self.duckdb_config())

    def dbt_vars(self, as_of: str) -> dict[str, Any]:
        """The `--vars` of a dbt invocation: the cutoff, and the warehouse and DuckDB limits
        profiles.yml reads, so dbt opens the same file with the same limits as Python."""
        from ml.as_of import dbt_value

        return {
            "as_of": dbt_value(as_of),
            "warehouse": str(self.warehouse),
            "duckdb_memory_limit": self.duckdb_memory_limit,
            "duckdb_threads": self.duckdb_threads,
        }


# The dbt project runs in parts because Python sits between them:
# - feeds: the staging models and the identifiers identity resolution reads;
# - subjects: right after identity, the identity staging views and int_subjects_resolved, the
#   one subject -> customer resolution that the Python erasure (next), consent and suppression
#   read (views, so they exist before erasure even on a fresh warehouse);
# - customers: after erasure, the customer models, features, RFM, the consent ledger and the
#   suppression list;
# - audiences: the audience model, after the ML clusters;
# - activation: campaign outcomes, after the exports.
DBT_SELECTIONS = {
    "feeds": {
        "select": "path:models/staging path:models/intermediate/identity path:models/marts/quality",
        "exclude": "path:models/staging/identity path:models/staging/ml "
        "path:models/staging/activation",
    },
    "subjects": {
        "select": "path:models/staging/identity path:models/intermediate/privacy",
    },
    "customers": {
        "select": "path:models/intermediate/customers "
        "path:models/intermediate/behaviour path:models/marts/customers "
        "path:models/marts/features path:models/marts/products path:models/intermediate/consent "
        "path:models/marts/consent path:seeds",
    },
    "audiences": {
        "select": "path:models/staging/ml path:models/marts/audiences",
    },
    "activation": {"select": "path:models/staging/activation path:models/marts/activation"},
}
