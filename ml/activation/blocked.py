"""Blocked exports: an export that `verify_candidates` refused is recorded, never written.

The run gets an `export_runs` row with status 'blocked' and an `export_blocked` audit row
with the problem counts. No file is written or touched (an earlier day's files stay as they
were) and no members are recorded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ml import audit
from ml.activation.candidates import candidate_summary
from ml.activation.config import ExportConfig
from ml.activation.folders import exports_dir_for
from ml.activation.runs import record_blocked_run, transaction
from ml.as_of import cutoff, naive_utc, snapshot_date
from ml.segments.rules import Segment


def problem_counts(problems: pd.DataFrame) -> dict[str, int]:
    """{problem: rows} of what `verify_candidates` returned, sorted by problem."""
    return {str(k): int(v) for k, v in problems["problem"].value_counts().sort_index().items()}


def record_blocked(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    as_of: str | date | datetime,
    problems: pd.DataFrame,
    exports_root: str | Path,
    generated_at: datetime | None = None,
) -> None:
    """Record an export the check refused: an export_runs row with status 'blocked' and an
    `export_blocked` audit row with the problem counts. No file is written or touched (an
    earlier day's files stay as they were) and no members are recorded.

    `problems` is what `verify_candidates` returned (columns customer_id, problem, detail).
    """
    moment = cutoff(as_of)
    day = snapshot_date(as_of)
    generated = naive_utc(generated_at or datetime.now(UTC)).replace(microsecond=0)
    summary = candidate_summary(connection, run_id, config.name)
    directory = exports_dir_for(Path(exports_root), config.name, day)
    by_problem = problem_counts(problems)
    with transaction(connection):
        record_blocked_run(
            connection, config, segment, run_id, moment, day, generated, directory, summary
        )
        audit.record(
            connection,
            "export_blocked",
            config.name,
            run_id=run_id,
            rows=int(problems["customer_id"].nunique()),
            details={
                "segment": segment.name,
                "consent_purpose": segment.consent_purpose,
                "export_date": day.isoformat(),
                "problems": by_problem,
                "candidates": {k: summary[k] for k in ("members", "export", "holdout")},
            },
        )


__all__ = ["problem_counts", "record_blocked"]
