"""PNG charts of the model report: calibration curves and decile lift (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def calibration_chart(curves: dict[str, pd.DataFrame], path: Path) -> Path:
    """Mean predicted probability against the observed rate per decile, one line per model,
    on the held-out cutoff; the diagonal is perfect calibration."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for name, table in curves.items():
        axis.plot(table["predicted"], table["observed"], marker="o", label=name)
        top = max(top, float(table["predicted"].max()), float(table["observed"].max()))
    top = min(1.0, top * 1.05 or 1.0)
    axis.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1, label="perfect")
    axis.set_xlabel("mean predicted probability (decile)")
    axis.set_ylabel("observed rate")
    axis.set_title("Calibration on the held-out cutoff")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def decile_lift_chart(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """Lift per decile (1 = the highest scores) of each model and of its recency baseline."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(tables), 1)
    for slot, (name, table) in enumerate(tables.items()):
        axis.bar(
            table["decile"] + (slot - (len(tables) - 1) / 2) * width,
            table["lift"],
            width,
            label=name,
        )
    axis.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_xticks(range(1, 11))
    axis.set_xlabel("decile (1 = most likely)")
    axis.set_ylabel("lift over the average customer")
    axis.set_title("Decile lift on the held-out cutoff")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
