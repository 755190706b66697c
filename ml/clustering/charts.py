"""PNG charts for people: k selection, cluster profiles, the RFM grid, segment sizes over time.

Every function takes plain values or DataFrames, writes one PNG (matplotlib, Agg backend, so
no display is needed) and returns its path. The Dagster assets attach them as metadata.

- `silhouette_elbow_chart(silhouette_by_k, inertia_by_k, chosen_k, path)`: silhouette per k
  (higher is better; the chosen k marked) beside inertia per k (the elbow).
- `profile_heatmap(profiles, features, path)`: clusters (rows, with label and share) by
  features (columns), coloured by z-score (blue below average, red above), values written
  in the cells.
- `rfm_grid_chart(frame, path)`: customers by r_score (columns, 1..5) x f_score (rows, 5 at
  the top), from columns r_score, f_score and a count column (default `customers`; without
  one, each row counts once), each cell annotated with the segment holding most of its
  customers when a segment column (default `rfm_segment`) is present.
- `segment_sizes_chart(frame, path)`: one line per segment over time, from columns
  snapshot_date, segment_name and members (the column names are parameters), e.g.
  segments.segment_sizes or RFM segment counts per fct_rfm_snapshots date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110


def _save(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)
    return path


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise KeyError(
            f"{what}: the frame lacks column(s) {missing}; it holds {list(frame.columns)}. "
            "Rename them or pass the column names as arguments"
        )


def silhouette_elbow_chart(
    silhouette_by_k: Mapping[int, float],
    inertia_by_k: Mapping[int, float],
    chosen_k: int,
    path: str | Path,
    *,
    used_k: int | None = None,
) -> Path:
    """Silhouette per k (chosen k marked) beside inertia per k; returns the PNG path.

    `used_k`, when it differs from `chosen_k` (k forced by settings), is marked too.
    """
    ks = sorted(silhouette_by_k)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(ks, [silhouette_by_k[k] for k in ks], marker="o", color="tab:blue")
    if chosen_k in silhouette_by_k:
        left.scatter(
            [chosen_k],
            [silhouette_by_k[chosen_k]],
            s=160,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=2,
            label=f"chosen k = {chosen_k}",
            zorder=3,
        )
    if used_k is not None and used_k != chosen_k and used_k in silhouette_by_k:
        left.scatter(
            [used_k],
            [silhouette_by_k[used_k]],
            s=160,
            marker="s",
            facecolors="none",
            edgecolors="tab:orange",
            linewidths=2,
            label=f"used k = {used_k} (forced)",
            zorder=3,
        )
    if chosen_k in silhouette_by_k or used_k in silhouette_by_k:
        left.legend(loc="best")
    left.set(title="Silhouette (higher is better)", xlabel="k (clusters)", ylabel="silhouette")
    ks_inertia = sorted(inertia_by_k)
    right.plot(ks_inertia, [inertia_by_k[k] for k in ks_inertia], marker="o", color="tab:gray")
    marked = used_k if used_k is not None else chosen_k
    if marked in inertia_by_k:
        right.axvline(marked, color="tab:red", linestyle="--", linewidth=1)
    right.set(title="Inertia (look for the elbow)", xlabel="k (clusters)", ylabel="inertia")
    for axis in (left, right):
        axis.set_xticks(sorted(set(ks) | set(ks_inertia)))
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def profile_heatmap(
    profiles: pd.DataFrame, features: Sequence[str], path: str | Path, *, limit: float = 2.0
) -> Path:
    """Clusters x features coloured by z-score (clipped to +-limit); returns the PNG path.

    `profiles` has cluster_id, cluster_label (optional), share (optional) and z_<feature>.
    """
    columns = [f"z_{name}" for name in features]
    _require(profiles, ["cluster_id", *columns], "profile_heatmap")
    z = profiles[columns].to_numpy(dtype="float64")
    names = []
    for _, row in profiles.iterrows():
        name = f"{int(row['cluster_id'])}"
        if "cluster_label" in profiles.columns and pd.notna(row["cluster_label"]):
            name += f": {row['cluster_label']}"
        if "share" in profiles.columns and pd.notna(row["share"]):
            share = float(row["share"])
            name += f" ({share:.0%})" if share >= 0.01 or share == 0 else f" ({share:.1%})"
        names.append(name)
    width = max(6.0, 0.75 * len(features) + 4.0)
    height = max(2.5, 0.6 * len(profiles) + 2.0)
    figure, axis = plt.subplots(figsize=(width, height))
    image = axis.imshow(
        np.clip(np.nan_to_num(z), -limit, limit),
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        aspect="auto",
    )
    axis.set_xticks(range(len(features)), list(features), rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if np.isfinite(z[i, j]):
                colour = "white" if abs(z[i, j]) > 0.6 * limit else "black"
                axis.text(
                    j, i, f"{z[i, j]:.1f}", ha="center", va="center", fontsize=8, color=colour
                )
    figure.colorbar(image, ax=axis, label="z-score (standard deviations from average)")
    axis.set_title("Cluster profiles")
    figure.tight_layout()
    return _save(figure, path)


def rfm_grid_chart(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    count_column: str = "customers",
    segment_column: str | None = "rfm_segment",
) -> Path:
    """Customer counts by r_score x f_score, annotated with segments; returns the PNG path."""
    _require(frame, ["r_score", "f_score"], "rfm_grid_chart")
    work = frame.dropna(subset=["r_score", "f_score"]).copy()
    work["_count"] = work[count_column] if count_column in work.columns else 1
    grid = np.zeros((5, 5))
    for (r, f), count in work.groupby(["r_score", "f_score"])["_count"].sum().items():
        if 1 <= int(r) <= 5 and 1 <= int(f) <= 5:
            grid[5 - int(f), int(r) - 1] = count
    segments: dict[tuple[int, int], str] = {}
    if segment_column and segment_column in work.columns:
        by_segment = (
            work.groupby(["r_score", "f_score", segment_column])["_count"].sum().reset_index()
        )
        by_segment = by_segment.sort_values(
            ["r_score", "f_score", "_count", segment_column], ascending=[True, True, False, True]
        )
        for _, row in by_segment.drop_duplicates(["r_score", "f_score"]).iterrows():
            segments[(int(row["r_score"]), int(row["f_score"]))] = str(row[segment_column])
    figure, axis = plt.subplots(figsize=(8, 6.5))
    image = axis.imshow(grid, cmap="Blues", aspect="auto")
    axis.set_xticks(range(5), [str(r) for r in range(1, 6)])
    axis.set_yticks(range(5), [str(f) for f in range(5, 0, -1)])
    axis.set(xlabel="R score (recency, 5 = most recent)", ylabel="F score (frequency)")
    top = grid.max() if grid.max() > 0 else 1.0
    for row in range(5):
        for column in range(5):
            r, f = column + 1, 5 - row
            text = f"{int(grid[row, column]):,}"
            if (r, f) in segments:
                text = f"{segments[(r, f)]}\n{text}"
            colour = "white" if grid[row, column] > 0.6 * top else "black"
            axis.text(column, row, text, ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axis, label="customers")
    axis.set_title("RFM grid: customers by recency and frequency score")
    figure.tight_layout()
    return _save(figure, path)


def segment_sizes_chart(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    date_column: str = "snapshot_date",
    segment_column: str = "segment_name",
    size_column: str = "members",
    title: str = "Segment sizes over time",
) -> Path:
    """One line per segment: size by date; returns the PNG path."""
    _require(frame, [date_column, segment_column, size_column], "segment_sizes_chart")
    work = frame[[date_column, segment_column, size_column]].copy()
    work[date_column] = pd.to_datetime(work[date_column])
    wide = work.pivot_table(
        index=date_column, columns=segment_column, values=size_column, aggfunc="sum"
    ).sort_index()
    figure, axis = plt.subplots(figsize=(10, 5))
    for name in sorted(wide.columns, key=str):
        axis.plot(wide.index, wide[name], marker="o" if len(wide) <= 31 else None, label=str(name))
    axis.set(title=title, xlabel="date", ylabel="customers")
    axis.grid(alpha=0.3)
    if len(wide.columns):
        axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    return _save(figure, path)
