"""`make bench-identity`: our matcher and Splink side by side, on identical inputs.

    .venv/bin/python -m benchmarks.identity [--datasets febrl1 febrl2 febrl3 febrl4 gen5000 gen200000]
                                            [--no-splink] [--splink-combined-address]
                                            [--out data/reports/identity]

For each dataset (`benchmarks.datasets`) it runs `ml.identity.matching.resolve_entities` with
default settings and Splink with the setup of `benchmarks.splink_runner`, each in a process of
its own (so each one's peak memory is its own), and prints pairwise precision, recall and F1
against the truth, seconds and peak resident memory. It also writes, per dataset, our
precision/recall curve over the decision threshold (``pr_<dataset>.png``, the default marked)
and every figure as ``bench.json`` under ``--out``. ``genN`` is our generator's CRM export at N
customers; ``--scale N`` times the matcher alone on it (no Splink, no curve).

This folder is not part of the library: `ml/` never imports Splink.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml.settings import REPO_ROOT

DEFAULT_DATASETS = ("febrl1", "febrl2", "febrl3", "febrl4", "gen5000", "gen200000")
CURVE_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


def load(name: str):
    """A dataset by name: febrl1..4 or gen<customers>."""
    from benchmarks.datasets import febrl, generator

    return generator(int(name[3:])) if name.startswith("gen") else febrl(name)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ours(name: str, curve: bool, queue: multiprocessing.Queue) -> None:
    from ml.identity.evaluate import threshold_curve
    from ml.identity.matching import MatchSettings, resolve_entities
    from ml.identity.metrics import pairwise_metrics

    dataset = load(name)
    started = time.perf_counter()
    resolution = resolve_entities(dataset.records, MatchSettings())
    seconds = time.perf_counter() - started
    predicted = resolution.entities.set_index("record_id")["entity_id"]
    figures = pairwise_metrics(predicted, dataset.truth)
    result = {
        "records": len(dataset.records),
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        **figures,
        "candidate_pairs": resolution.report.candidate_pairs,
        "pairs_skipped": sum(resolution.report.pairs_skipped.values()),
        "blocking_recall": blocking_recall(resolution, dataset.truth),
    }
    if curve:
        result["curve"] = threshold_curve(resolution, dataset.truth, CURVE_THRESHOLDS)
    queue.put(result)


def _splink(name: str, combined_address: bool, queue: multiprocessing.Queue) -> None:
    from benchmarks.splink_runner import run_splink
    from ml.identity.metrics import pairwise_metrics

    dataset = load(name)
    started = time.perf_counter()
    labels = run_splink(dataset.records, combined_address=combined_address)
    seconds = time.perf_counter() - started
    labels.index = dataset.truth.index
    queue.put(
        {"seconds": seconds, "peak_mb": _peak_mb(), **pairwise_metrics(labels, dataset.truth)}
    )


def in_process(target, *args) -> dict:
    """Run `target(*args, queue)` in a fresh process; its result (or its error)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    try:
        return queue.get(timeout=3600)
    except Exception as error:  # the child died: say so instead of hanging
        return {"error": f"{type(error).__name__}: no result (exit code {process.exitcode})"}
    finally:
        process.join()


def blocking_recall(resolution, truth: pd.Series) -> float:
    """Share of the true pairs that some blocking rule put side by side."""
    state = resolution.state
    ids = pd.Series(np.arange(state.prepared.n), index=state.prepared.record_ids)
    person = truth.reindex(state.prepared.record_ids).to_numpy()
    true_pairs = 0
    found = 0
    keys = set(state.pair_keys.tolist())
    for members in pd.Series(ids.to_numpy()).groupby(person).groups.values():
        positions = np.sort(ids.to_numpy()[np.asarray(list(members))])
        if len(positions) < 2:
            continue
        a, b = np.triu_indices(len(positions), k=1)
        pair_keys = positions[a] * state.prepared.n + positions[b]
        true_pairs += len(pair_keys)
        found += sum(key in keys for key in pair_keys.tolist())
    return found / true_pairs if true_pairs else 1.0


def plot_curve(name: str, curve: list[dict], default: float, path: Path) -> None:
    """Precision and recall against the threshold, the default marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(curve)
    figure, axis = plt.subplots(figsize=(4.2, 3.2), dpi=80)
    axis.plot(frame["recall"], frame["precision"], marker="o", markersize=3)
    for row in frame.itertuples():
        if row.threshold in (0.1, 0.5, 0.9, default, 0.999):
            axis.annotate(f"{row.threshold:g}", (row.recall, row.precision), fontsize=7)
    chosen = frame[frame["threshold"] == default]
    if len(chosen):
        axis.plot(chosen["recall"], chosen["precision"], "r*", markersize=10, label="default")
        axis.legend(loc="lower left", fontsize=7)
    axis.set_xlabel("recall (pairs)")
    axis.set_ylabel("precision (pairs)")
    axis.set_title(f"{name}: precision and recall by threshold", fontsize=9)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.identity", description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--no-splink", action="store_true", help="our matcher only")
    parser.add_argument(
        "--splink-combined-address",
        action="store_true",
        help="Splink with street and postcode as one comparison (benchmarks/splink_runner.py)",
    )
    parser.add_argument("--scale", type=int, help="time the matcher alone on genN (N customers)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "reports" / "identity")
    args = parser.parse_args(argv)
    from ml.identity.matching import MatchSettings

    default = MatchSettings().threshold
    args.out.mkdir(parents=True, exist_ok=True)
    datasets = [f"gen{args.scale}"] if args.scale else args.datasets
    results: dict[str, dict] = {}
    header = (
        f"{'dataset':<12}{'records':>9}  {'matcher':<8}{'precision':>10}{'recall':>8}{'F1':>8}"
        f"{'seconds':>9}{'peak MB':>9}  blocking recall"
    )
    print(header, flush=True)
    for name in datasets:
        ours = in_process(_ours, name, not args.scale)
        runs = {"teal": ours}
        if not (args.no_splink or args.scale):
            runs["splink"] = in_process(_splink, name, args.splink_combined_address)
        for matcher, figures in runs.items():
            if "error" in figures:
                print(f"{name:<12}{'':>9}  {matcher:<8}{figures['error']}", flush=True)
                continue
            extra = f"  {figures['blocking_recall']:.4f}" if "blocking_recall" in figures else ""
            print(
                f"{name:<12}{ours.get('records', 0):>9,}  {matcher:<8}"
                f"{figures['precision']:>10.4f}{figures['recall']:>8.4f}{figures['f1']:>8.4f}"
                f"{figures['seconds']:>9.1f}{figures['peak_mb']:>9.0f}{extra}",
                flush=True,
            )
        if "curve" in ours:
            plot_curve(name, ours["curve"], default, args.out / f"pr_{name}.png")
        results[name] = runs
    summary = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "results": results}
    name = "scale" if args.scale else "bench"
    if args.splink_combined_address:
        name += "_splink_combined_address"
    (args.out / f"{name}.json").write_text(
        json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
