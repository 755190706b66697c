"""What one clustering run did: `ClusterRun`, and its JSON form."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


def json_by_k(values: dict[int, float]) -> str:
    """{"3": 0.41, ...}; NaN (a k whose silhouette is undefined) becomes null."""
    return json.dumps(
        {str(k): (None if v is None or math.isnan(v) else v) for k, v in values.items()}
    )


@dataclass
class ClusterRun:
    """What one clustering run did; `as_dict()` gives it as plain JSON-able values.

    `profiles` holds the rows written to ml.cluster_profiles plus `outliers` (flagged
    customers per cluster); `charts` maps "silhouette_elbow" and "cluster_profiles" to the
    PNG files in `model_path`; `seconds` times each step.
    """

    model_version: str
    previous_model_version: str | None
    fitted_at: dt.datetime
    as_of_at: dt.datetime | None
    rows: int
    sample_size: int
    k: int
    chosen_k: int
    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    adjusted_rand_vs_previous: float | None
    outliers: int
    sizes: dict[int, int]
    labels: dict[int, str]
    new_cluster_ids: tuple[int, ...]
    retired_cluster_ids: tuple[int, ...]
    model_path: Path
    charts: dict[str, Path]
    profiles: pd.DataFrame = field(repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Dagster metadata, metrics.json and logs); profiles left out."""
        return {
            "model_version": self.model_version,
            "previous_model_version": self.previous_model_version,
            "fitted_at": self.fitted_at.isoformat(),
            "as_of_at": self.as_of_at.isoformat() if self.as_of_at else None,
            "rows": self.rows,
            "sample_size": self.sample_size,
            "k": self.k,
            "chosen_k": self.chosen_k,
            "silhouette_by_k": json.loads(json_by_k(self.silhouette_by_k)),
            "inertia_by_k": json.loads(json_by_k(self.inertia_by_k)),
            "adjusted_rand_vs_previous": self.adjusted_rand_vs_previous,
            "outliers": self.outliers,
            "sizes": {str(k): v for k, v in self.sizes.items()},
            "labels": {str(k): v for k, v in self.labels.items()},
            "new_cluster_ids": list(self.new_cluster_ids),
            "retired_cluster_ids": list(self.retired_cluster_ids),
            "model_path": str(self.model_path),
            "charts": {name: str(path) for name, path in self.charts.items()},
            "seconds": self.seconds,
        }


__all__ = ["ClusterRun", "json_by_k"]
