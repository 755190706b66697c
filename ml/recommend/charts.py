"""The recommendation metrics by method as a PNG (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SHOWN = ("precision", "recall", "ndcg", "map", "coverage")


def metrics_chart(evaluation: pd.DataFrame, path: Path, k: int) -> Path:
    """Grouped bars: each metric at k for every method (novelty, on another scale, in the
    legend)."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(evaluation), 1)
    positions = np.arange(len(SHOWN))
    for slot, (_, row) in enumerate(evaluation.iterrows()):
        axis.bar(
            positions + (slot - (len(evaluation) - 1) / 2) * width,
            [row[name] for name in SHOWN],
            width,
            label=f"{row['method']} (novelty {row['novelty']:.2f})",
        )
    axis.set_xticks(positions)
    axis.set_xticklabels([f"{name}@{k}" if name != "coverage" else name for name in SHOWN])
    axis.set_title("Recommendations on the held-out period, by method")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
