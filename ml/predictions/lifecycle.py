"""Model folders: every fit leaves its model, parameters, training window, metrics and card.

    <models>/<model>/<version>/model.joblib      the fitted object (classifiers only)
                               parameters.json   settings, fitted parameters, training window
                               metrics.json      held-out metrics (and the baseline's)
                               reference.json    feature and score distributions (drift)
                               model_card.md     what it predicts, data used, limits

A version is `<YYYYMMDDTHHMMSS>Z-<8 hex>` from the fit time and a digest of what was fitted
(settings, cutoffs, rows): the same data, settings and seed give the same scores. Only load
folders this pipeline wrote: joblib files run code when loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib

MODEL_FILE = "model.joblib"
PARAMETERS_FILE = "parameters.json"
METRICS_FILE = "metrics.json"
REFERENCE_FILE = "reference.json"
CARD_FILE = "model_card.md"


def model_version(fitted_at: dt.datetime, fingerprint: Mapping[str, Any]) -> str:
    """`<YYYYMMDDTHHMMSS>Z-<8 hex>` from the fit time and a digest of `fingerprint`."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
    return f"{fitted_at:%Y%m%dT%H%M%S}Z-{digest.hexdigest()[:8]}"


def save_model_folder(
    folder: Path,
    *,
    model: Any | None,
    parameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
    card: str,
    reference: Mapping[str, Any] | None = None,
) -> Path:
    """Write one model's folder (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        joblib.dump(model, folder / MODEL_FILE)
    (folder / PARAMETERS_FILE).write_text(_json(parameters), encoding="utf-8")
    (folder / METRICS_FILE).write_text(_json(metrics), encoding="utf-8")
    if reference is not None:
        (folder / REFERENCE_FILE).write_text(_json(reference), encoding="utf-8")
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    return folder


def previous_reference(model_root: Path, current_version: str) -> tuple[str, dict] | None:
    """The newest version before `current_version` under `model_root` that has a reference
    (the last training run), with its reference; None on a first run."""
    if not model_root.is_dir():
        return None
    versions = sorted(
        path.name
        for path in model_root.iterdir()
        if path.is_dir() and path.name < current_version and (path / REFERENCE_FILE).is_file()
    )
    if not versions:
        return None
    folder = model_root / versions[-1]
    return versions[-1], json.loads((folder / REFERENCE_FILE).read_text(encoding="utf-8"))


def load_model(model_root: Path, version: str | None = None) -> Any:
    """The fitted object of `version` (default: the newest folder holding one)."""
    if version is None:
        held = sorted(p.name for p in model_root.iterdir() if (p / MODEL_FILE).is_file())
        if not held:
            raise FileNotFoundError(
                f"no {MODEL_FILE} under {model_root}; run the predictions first"
            )
        version = held[-1]
    return joblib.load(model_root / version / MODEL_FILE)


def classifier_card(
    *,
    title: str,
    predicts: str,
    version: str,
    window: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    importances: Mapping[str, float],
) -> str:
    """A short model card of a propensity or churn model."""
    top = sorted(importances.items(), key=lambda item: -item[1])[:5]
    return f"""# {title} ({version})

**What it predicts.** {predicts}

**Data used.** Behavioural features of marts.customer_features (orders, revenue, recency,
browsing, carts, e-mail engagement) as of past cutoffs, computed point in time from the SQL dbt
compiled for the model; labels from marts.fct_orders (completed orders only). Age, gender,
country and region are not inputs (see the fairness table in the run report).
Training cutoffs: {", ".join(str(c) for c in window["training_cutoffs"])}; held-out cutoff
{window["evaluation_cutoff"]} (labels {window["evaluation_window"]}); scored as of {window["scored_as_of"]}.

**How good, on the held-out cutoff** (a later period than any training row):

| | ROC AUC | PR AUC | Brier | top-decile lift | base rate |
|---|---:|---:|---:|---:|---:|
| model | {metrics["roc_auc"]:.3f} | {metrics["pr_auc"]:.3f} | {metrics["brier"]:.4f} | {metrics["top_decile_lift"]:.2f} | {metrics["base_rate"]:.3f} |
| recency baseline | {baseline["roc_auc"]:.3f} | {baseline["pr_auc"]:.3f} | {baseline["brier"]:.4f} | {baseline["top_decile_lift"]:.2f} | {baseline["base_rate"]:.3f} |

**Most important features** (drop in ROC AUC when shuffled): {", ".join(f"{name} {value:.3f}" for name, value in top)}.

**Limits.** A probability describes customers like this one in the past, not a promise about
one person; it assumes the next period resembles the training periods (watch the drift check).
Customers first seen after a training cutoff are absent from it. Reasons are one-feature-at-a-
time changes to the training median, not an exact decomposition of the score. Do not use the
scores to exclude people by age or gender.
"""


def clv_card(
    *,
    version: str,
    window: Mapping[str, Any],
    parameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> str:
    """A short model card of the CLV model."""
    bg = parameters["bgnbd"]
    gg = parameters["gamma_gamma"]
    holdout = metrics.get("holdout", {})
    return f"""# Customer lifetime value, BG/NBD + Gamma-Gamma ({version})

**What it predicts.** For each customer who has bought: the expected number of purchase days in
the next {window["months"]} months, the probability they are still active (P(alive)), the expected
net value of a purchase day (GBP) and their product, the {window["months"]}-month CLV (undiscounted).

**Data used.** Completed orders of marts.fct_orders before {window["scored_as_of"]}, grouped into
purchase days per customer: repeat purchase days x, the day of the last one t_x and the days
since the first T; net amounts in GBP for the spend model (repeat purchase days only).
Fitted on {metrics["customers_fitted"]:,} customers.

**Parameters.** BG/NBD r {bg["r"]:.4f}, alpha {bg["alpha"]:.4f} (days), a {bg["a"]:.4f}, b {bg["b"]:.4f};
Gamma-Gamma p {gg["p"]:.4f}, q {gg["q"]:.4f}, gamma {gg["gamma"]:.4f}.

**Holdout check.** Fitted on the orders before {holdout.get("cutoff")}, the model expected
{holdout.get("predicted_purchases", float("nan")):,.0f} purchase days in the next {holdout.get("days")} days; there were
{holdout.get("actual_purchases", float("nan")):,.0f} (mean absolute error per customer {holdout.get("mae_per_customer", float("nan")):.3f}).

**Limits.** The models assume each customer buys at a steady rate while active and may drop
out after any purchase, with spend independent of frequency; seasonality, promotions and
returns are not modelled, and customers with no purchase have no CLV (null).
"""


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), indent=2, default=str) + "\n"
