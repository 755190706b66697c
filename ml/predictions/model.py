"""A calibrated gradient boosting classifier over customer features, with reasons per customer.

`fit_score_model` fits scikit-learn's HistGradientBoostingClassifier (missing values handled
natively: a never-buyer's days_since_last_order is null, not a number) on the customers that
a seeded hash of customer_id keeps for fitting, then Platt-scales its log-odds on the others
(`calibration_share`), so a score of 0.2 means about one customer in five. Platt scaling is
monotone: it never reorders customers, so deciles and AUC are the booster's own.

Permutation importance (the drop in ROC AUC when one feature's column is shuffled) is computed
on the calibration customers. The reasons behind one customer's score come from the partial
dependence of the probability on each of the `reason_features` most important features: the
mean probability of the calibration customers with that feature set to a value, on a grid of
the feature's quantiles (and null). A customer's effect of a feature is the partial dependence
at their value minus at the training median; the reasons are the `reasons` largest effects:
"orders_365d=6 (+0.210)" reads "customers with 6 such orders are 0.21 more likely than with
the typical number, other things as they are". Computed once per model, the effects cost a
table lookup per customer, so a million customers get reasons in seconds.

Training is capped at `training_sample` rows, a sample stratified by label (the same share of
buyers and non-buyers, so the booster sees the true base rate). Boosting stops early: the
evaluation fit watches its loss on the calibration customers and stops after
`early_stopping_rounds` trees without improvement; the scoring fit (`trees`) grows as many as
the evaluation fit kept. The booster runs on `threads` OpenMP threads (the pipeline passes
$TEAL_DUCKDB_THREADS).

`recency_baseline` is the yardstick every model report compares with: a logistic regression
on days since the last order alone (and whether there is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from ml.errors import NotEnoughData
from ml.predictions.settings import PredictionSettings

_EPSILON = 1e-6


def customer_hash_share(customer_ids: pd.Series, seed: int, salt: str = "") -> np.ndarray:
    """A number in [0, 1) per customer id, fixed by the id, the seed and a salt (another salt:
    another draw), not by the row order."""
    hashed = pd.util.hash_array(
        (customer_ids.astype(str) + f":{seed}{salt}").to_numpy(dtype=object), categorize=False
    )
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p))


@dataclass
class ScoreModel:
    """A fitted booster, its Platt scaling and what explaining a score needs."""

    name: str
    features: tuple[str, ...]
    booster: HistGradientBoostingClassifier
    platt_slope: float
    platt_intercept: float
    reference_values: dict[str, float]
    importances: dict[str, float] = field(default_factory=dict)
    reason_features: tuple[str, ...] = ()
    dependence: dict[str, PartialDependence] = field(default_factory=dict)
    threads: int = 1  # OpenMP threads when predicting

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's feature columns of `frame` as a float matrix (nulls as NaN)."""
        return frame.loc[:, list(self.features)].to_numpy(dtype=np.float64, na_value=np.nan)

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the rows of a feature matrix."""
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            raw = self.booster.predict_proba(matrix)[:, 1]
        return 1.0 / (1.0 + np.exp(-(self.platt_slope * _logit(raw) + self.platt_intercept)))

    def reasons(self, matrix: np.ndarray, top: int) -> list[str]:
        """Per row, the `top` features with the largest effects (see the module docstring),
        as "feature=value (+effect)"."""
        if not self.reason_features or len(matrix) == 0:
            return [""] * len(matrix)
        columns = [self.features.index(name) for name in self.reason_features]
        effects = np.column_stack(
            [
                self.dependence[name].effect(matrix[:, column])
                for name, column in zip(self.reason_features, columns, strict=True)
            ]
        )
        strongest = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :top]
        rows = np.arange(len(matrix))[:, None]
        chosen = np.asarray(columns)[strongest]
        values = matrix[rows, chosen]
        moved = effects[rows, strongest]
        # a reason's text depends on the feature and its value only (its effect is a lookup of
        # the value): format each distinct pair, then each distinct list of pairs, once
        slot_codes, slot_texts = [], []
        for slot in range(chosen.shape[1]):
            keys = np.column_stack(
                [chosen[:, slot], np.nan_to_num(values[:, slot], nan=-np.inf), moved[:, slot]]
            )
            frame = pd.DataFrame(keys)
            codes = frame.groupby([0, 1, 2], sort=False).ngroup().to_numpy()
            distinct = frame.drop_duplicates().to_numpy()  # in order of first appearance
            slot_codes.append(codes)
            slot_texts.append(
                [
                    ""
                    if abs(effect) < 0.0005
                    else f"{self.features[int(column)]}={_value_text(value)} ({effect:+.3f})"
                    for column, value, effect in distinct
                ]
            )
        combos = pd.DataFrame(np.column_stack(slot_codes))
        combined = combos.groupby(list(combos.columns), sort=False).ngroup().to_numpy()
        lists = combos.drop_duplicates().to_numpy()
        texts = np.array(
            [
                "; ".join(
                    text for slot, code in enumerate(codes) if (text := slot_texts[slot][code])
                )
                for codes in lists
            ],
            dtype=object,
        )
        return texts[combined].tolist()

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters of the fitted model."""
        return {
            "name": self.name,
            "features": list(self.features),
            "booster": {
                key: value
                for key, value in self.booster.get_params().items()
                if isinstance(value, int | float | str | bool | type(None))
            },
            "trees": int(self.booster.n_iter_),
            "platt_slope": self.platt_slope,
            "platt_intercept": self.platt_intercept,
            "reference_values": self.reference_values,
            "reason_features": list(self.reason_features),
        }


@dataclass
class PartialDependence:
    """Mean probability over a background sample with one feature set to each grid value."""

    grid: np.ndarray  # sorted finite values
    values: np.ndarray  # mean probability at each grid value
    missing: float  # mean probability with the feature null
    reference: float  # mean probability at the training median

    @classmethod
    def compute(cls, model: ScoreModel, background: np.ndarray, column: int) -> PartialDependence:
        present = background[:, column][~np.isnan(background[:, column])]
        grid = (
            np.unique(np.quantile(present, np.linspace(0, 1, 21))) if len(present) else np.zeros(1)
        )
        reference_value = model.reference_values[model.features[column]]
        points = np.append(grid, [np.nan, reference_value])
        stacked = np.repeat(background[None, :, :], len(points), axis=0)
        stacked[:, :, column] = points[:, None]
        means = (
            model.probability(stacked.reshape(-1, background.shape[1]))
            .reshape(len(points), len(background))
            .mean(axis=1)
        )
        return cls(grid, means[:-2], float(means[-2]), float(means[-1]))

    def effect(self, values: np.ndarray) -> np.ndarray:
        """Partial dependence at each value (step to the grid value at or below it) minus at
        the reference."""
        slot = np.clip(np.searchsorted(self.grid, values, side="right") - 1, 0, len(self.grid) - 1)
        dependence = np.where(np.isnan(values), self.missing, self.values[slot])
        return dependence - self.reference


def _value_text(value: float) -> str:
    """A feature value as text: whole numbers without decimals, others with two, null as none."""
    if value != value or value == -np.inf:  # null (kept as -inf while grouping)
        return "none"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}"


def stratified_rows(
    customer_ids: pd.Series, labels: np.ndarray, size: int, seed: int
) -> np.ndarray:
    """Positions of at most `size` rows with the same share of each label (the rows whose
    customer has the smallest seeded hash, per label; every row when there are no more)."""
    if len(labels) <= size:
        return np.arange(len(labels))
    share = size / len(labels)
    order = customer_hash_share(customer_ids, seed, salt="sample")
    chosen = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        keep = max(1, round(share * len(rows)))
        chosen.append(rows[np.argsort(order[rows], kind="stable")[:keep]])
    return np.sort(np.concatenate(chosen))


def fit_score_model(
    name: str,
    frame: pd.DataFrame,
    labels: np.ndarray,
    settings: PredictionSettings,
    *,
    explain: bool = True,
    trees: int | None = None,
    importances_given: dict[str, float] | None = None,
) -> ScoreModel:
    """Fit, calibrate and (with `explain`: importances and what reasons need) explain a
    classifier on `frame` (customer_id + settings.features).

    At most `settings.training_sample` rows, stratified by label. Without `trees`, boosting
    stops early on the calibration customers' loss (at most `max_iter` trees); with it, grows
    exactly that many. `importances_given` (e.g. held out by an evaluation fit) choose the
    reason features instead of permutation importances on the calibration customers."""
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise NotEnoughData(
            f"{name}: no customer to learn from before the cutoff (no orders or customers in "
            "the history the model needs)"
        )
    if labels.min() == labels.max():
        raise NotEnoughData(
            f"{name}: every training customer has the same label ({labels[0]}); the model needs "
            "both outcomes, so the history before the cutoff is too short or too quiet"
        )
    rows = stratified_rows(frame["customer_id"], labels, settings.training_sample, settings.seed)
    frame, labels = frame.iloc[rows], labels[rows]
    features = tuple(settings.features)
    matrix = frame.loc[:, list(features)].to_numpy(dtype=np.float64, na_value=np.nan)
    # a feature no training customer has (no clickstream yet at an early cutoff) is constant
    # to the booster, which cannot bin a column of nulls alone
    matrix[:, np.isnan(matrix).all(axis=0)] = 0.0
    held = customer_hash_share(frame["customer_id"], settings.seed) < settings.calibration_share
    if labels[held].min() == labels[held].max() or labels[~held].min() == labels[~held].max():
        held = np.arange(len(labels)) % 5 == 0  # tiny samples: every fifth row calibrates
    if labels[held].min() == labels[held].max() or labels[~held].min() == labels[~held].max():
        raise NotEnoughData(
            f"{name}: {len(labels)} training customers, {int(labels.sum())} with the outcome: "
            "too few of one outcome to both fit and calibrate the model"
        )
    stop_early = trees is None
    booster = HistGradientBoostingClassifier(
        max_iter=settings.max_iter if stop_early else max(int(trees), 1),
        learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        early_stopping=stop_early,
        scoring="loss",
        n_iter_no_change=settings.early_stopping_rounds,
        random_state=settings.seed,
    )
    with threadpool_limits(limits=settings.threads, user_api="openmp"):
        if stop_early:  # the calibration customers are the validation set
            booster.fit(matrix[~held], labels[~held], X_val=matrix[held], y_val=labels[held])
        else:
            booster.fit(matrix[~held], labels[~held])
        raw = booster.predict_proba(matrix[held])[:, 1]
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(_logit(raw).reshape(-1, 1), labels[held])
    with np.errstate(all="ignore"):
        medians = np.nanmedian(matrix[~held], axis=0)
    model = ScoreModel(
        name=name,
        features=features,
        booster=booster,
        platt_slope=float(platt.coef_[0, 0]),
        platt_intercept=float(platt.intercept_[0]),
        reference_values={
            feature: (float(value) if np.isfinite(value) else 0.0)
            for feature, value in zip(features, medians, strict=True)
        },
        threads=settings.threads,
    )
    if not explain:
        return model
    model.importances = (
        dict(importances_given)
        if importances_given is not None
        else importances(model, matrix[held], labels[held], settings)
    )
    ranked = sorted(model.importances, key=lambda feature: -model.importances[feature])
    model.reason_features = tuple(ranked[: settings.reason_features])
    background = matrix[held][: settings.dependence_sample]
    model.dependence = {
        name: PartialDependence.compute(model, background, features.index(name))
        for name in model.reason_features
    }
    return model


def importances(
    model: ScoreModel, matrix: np.ndarray, labels: np.ndarray, settings: PredictionSettings
) -> dict[str, float]:
    """Mean drop in ROC AUC when each feature is shuffled, on at most importance_sample rows."""
    if labels.min() == labels.max():
        return dict.fromkeys(model.features, 0.0)
    rng = np.random.default_rng(settings.seed)
    if len(labels) > settings.importance_sample:
        keep = np.sort(rng.choice(len(labels), settings.importance_sample, replace=False))
        matrix, labels = matrix[keep], labels[keep]
    with threadpool_limits(limits=model.threads, user_api="openmp"):
        result = permutation_importance(
            model.booster,
            matrix,
            labels,
            scoring="roc_auc",
            n_repeats=settings.importance_repeats,
            random_state=settings.seed,
        )
    return {
        feature: round(float(value), 6)
        for feature, value in zip(model.features, result.importances_mean, strict=True)
    }


@dataclass
class RecencyBaseline:
    """Logistic regression on log(1 + days since the last order) and 'never ordered'."""

    model: LogisticRegression

    @staticmethod
    def inputs(frame: pd.DataFrame) -> np.ndarray:
        days = frame["days_since_last_order"].to_numpy(dtype=np.float64, na_value=np.nan)
        never = np.isnan(days)
        return np.column_stack([np.log1p(np.where(never, 0.0, days)), never.astype(float)])

    @classmethod
    def fit(cls, frame: pd.DataFrame, labels: np.ndarray) -> RecencyBaseline:
        model = LogisticRegression(max_iter=1000)
        model.fit(cls.inputs(frame), np.asarray(labels, dtype=int))
        return cls(model)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.inputs(frame))[:, 1]
