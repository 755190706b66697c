"""Score every customer: purchase propensity, churn risk, CLV and P(alive), with a model report.

    from ml.predictions import predict_customers
    run = predict_customers(connection, features_sql=sql, model_dir="data/models",
                            reports_dir="data/reports", as_of_at=cutoff)

Two classifiers, one scheme (horizon h: 30 days for propensity, 90 for churn; T the run's
cutoff; n = `training_cutoffs`):

- evaluation: fit on the features as of T-2h, ..., T-(n+1)h with the outcomes of the h days
  after each, test on the features as of T-h with the outcomes of [T-h, T): a later period
  than any training row (the held-out time split). Metrics, deciles, calibration, the recency
  baseline, permutation importances and the fairness table come from this fit.
- production: the same fit one horizon later (cutoffs T-h, ..., T-nh), scoring the features as
  of T, the ones in marts.customer_features.

Features of past cutoffs come from the SQL dbt compiled for customer_features (see
`features`). Churn concerns customers who bought before the cutoff; propensity everyone who
existed then. CLV (`clv`) is fitted on the purchase history before T, and checked by a fit
before T-90 against the purchase days of [T-90, T).

Then the lifecycle: one version for the run, a folder per model (`lifecycle`), the PSI of each
feature and score against the last training run (`drift`), ml.customer_predictions and
ml.prediction_runs (`tables`), charts and a markdown report in `reports_dir`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from tqdm import tqdm

from ml.errors import NotEnoughData
from ml.predictions import charts, clv, drift, lifecycle
from ml.predictions.features import completed_orders_between, features_as_of
from ml.predictions.metrics import binary_metrics, calibration_table, decile_table, deciles
from ml.predictions.model import (
    RecencyBaseline,
    ScoreModel,
    fit_score_model,
    importances,
    stratified_rows,
)
from ml.predictions.settings import PredictionSettings
from ml.predictions.tables import write_predictions

FAIRNESS_COLUMNS = ("age_band", "gender")
CLV_HOLDOUT_DAYS = 90
MODELS = ("propensity", "churn", "clv")
FAIRNESS_TABLE_COLUMNS = (
    "attribute",
    "group",
    "customers_today",
    "mean_propensity_today",
    "top_decile_share_today",
    "customers_held_out",
    "observed_rate_held_out",
    "mean_predicted_held_out",
    "roc_auc_held_out",
)
CLV_SCORES = ("expected_purchases", "p_alive", "expected_order_value", "clv")


@dataclass(frozen=True)
class Outcome:
    """One classifier: its name, horizon and which customers it speaks about."""

    name: str
    days: int
    title: str
    predicts: str

    def eligible(self, frame: pd.DataFrame) -> np.ndarray:
        if self.name == "churn":
            return frame["lifetime_orders"].to_numpy() > 0
        return np.ones(len(frame), dtype=bool)

    def labels(self, ordered: np.ndarray) -> np.ndarray:
        """1 for the outcome, from whether the customer ordered within the horizon."""
        return (~ordered if self.name == "churn" else ordered).astype(int)


def outcomes(settings: PredictionSettings) -> tuple[Outcome, Outcome]:
    return (
        Outcome(
            "propensity",
            settings.propensity_days,
            "Purchase propensity",
            f"The probability that a customer completes an order in the next "
            f"{settings.propensity_days} days.",
        ),
        Outcome(
            "churn",
            settings.churn_days,
            "Churn risk",
            f"The probability that a customer who has bought before completes no order in the "
            f"next {settings.churn_days} days.",
        ),
    )


@dataclass
class ClassifierResult:
    """What one classifier's evaluation and production fits produced."""

    outcome: Outcome
    model: ScoreModel
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    decile_table: pd.DataFrame
    baseline_deciles: pd.DataFrame
    calibration: pd.DataFrame
    importances: dict[str, float]
    fairness: pd.DataFrame
    window: dict[str, Any]
    reference: dict[str, Any]


@dataclass
class PredictionRun:
    """What a predictions run did; `as_dict` for logs and metadata (no personal data)."""

    model_version: str
    fitted_at: dt.datetime
    as_of_at: dt.datetime
    customers: int
    classifiers: dict[str, ClassifierResult]
    clv_parameters: dict[str, Any]
    clv_metrics: dict[str, Any]
    drift: dict[str, dict[str, float]]
    drift_against: dict[str, str]
    retrain: dict[str, Any]
    fairness: pd.DataFrame
    charts: dict[str, Path]
    report: Path
    model_folders: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    # model -> why it was not fitted (NotEnoughData); its columns are null for everyone
    skipped: dict[str, str] = field(default_factory=dict)

    def summary_metrics(self) -> dict[str, Any]:
        """Held-out metrics of each classifier and its baseline, and the CLV fit."""
        result: dict[str, Any] = {
            name: {"model": item.metrics, "recency_baseline": item.baseline}
            for name, item in self.classifiers.items()
        }
        if "clv" not in self.skipped:
            result["clv"] = {**self.clv_metrics, "parameters": self.clv_parameters}
        return result


def predict_customers(
    connection: duckdb.DuckDBPyConnection,
    *,
    features_sql: str,
    model_dir: str | Path,
    reports_dir: str | Path,
    as_of_at: dt.datetime,
    settings: PredictionSettings | None = None,
    progress: bool = False,
) -> PredictionRun:
    """Fit, evaluate and score the models, save them and write the ml.* tables."""
    settings = settings or PredictionSettings()
    model_dir, reports_dir = Path(model_dir), Path(reports_dir)
    seconds: dict[str, float] = {}
    fitted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    steps = tqdm(total=6, desc="predictions", unit="step", disable=not progress)

    clock = time.perf_counter()
    current = read_current_features(connection, as_of_at, settings)
    history = PastCutoffs(connection, features_sql, as_of_at, settings)
    seconds["read"] = time.perf_counter() - clock
    steps.update()

    results: dict[str, ClassifierResult] = {}
    skipped: dict[str, str] = {}
    for outcome in outcomes(settings):
        clock = time.perf_counter()
        try:
            results[outcome.name] = fit_classifier(outcome, history, settings)
        except NotEnoughData as reason:
            skipped[outcome.name] = str(reason)
        seconds[f"fit_{outcome.name}"] = time.perf_counter() - clock
        steps.update()
    seconds["features_past_cutoffs"] = history.seconds

    clock = time.perf_counter()
    clv_inputs = purchase_history(connection, as_of_at)
    try:
        clv_parameters, clv_metrics, clv_scores = fit_clv(
            connection, clv_inputs, as_of_at, settings
        )
    except NotEnoughData as reason:
        skipped["clv"] = str(reason)
        clv_parameters, clv_metrics = {}, {}
        clv_scores = pd.DataFrame(columns=["customer_id", *CLV_SCORES])
    seconds["fit_clv"] = time.perf_counter() - clock
    steps.update()

    version = lifecycle.model_version(
        fitted_at,
        {
            "settings": settings.to_dict(),
            "as_of_at": as_of_at,
            "customers": len(current),
            "rows": {name: item.window["training_rows"] for name, item in results.items()},
        },
    )

    clock = time.perf_counter()
    predictions = score_customers(
        current, results, clv_scores, settings, version, as_of_at, progress
    )
    seconds["score"] = time.perf_counter() - clock
    steps.update()

    clock = time.perf_counter()
    drift_by_model, drift_against = measure_drift(current, predictions, results, model_dir, version)
    retrain_needed, reasons = drift.retrain_decision(
        {
            f"{model}.{column}": value
            for model, columns in drift_by_model.items()
            for column, value in columns.items()
        },
        settings.psi_threshold,
    )
    retrain = {"retrain": retrain_needed, "reasons": reasons, "threshold": settings.psi_threshold}
    fairness = fairness_table(current, predictions, results)
    folders = save_models(
        model_dir, version, results, clv_parameters, clv_metrics, as_of_at, settings, skipped
    )
    chart_files = draw_charts(results, reports_dir / "charts")
    run = PredictionRun(
        model_version=version,
        fitted_at=fitted_at,
        as_of_at=as_of_at,
        customers=len(predictions),
        classifiers=results,
        clv_parameters=clv_parameters,
        clv_metrics=clv_metrics,
        drift=drift_by_model,
        drift_against=drift_against,
        retrain=retrain,
        fairness=fairness,
        charts=chart_files,
        report=reports_dir / "predictions.md",
        model_folders=folders,
        seconds=seconds,
        skipped=skipped,
    )
    write_report(run)
    write_predictions(
        connection,
        predictions,
        {
            "model_version": version,
            "fitted_at": fitted_at,
            "as_of_at": as_of_at,
            "metrics": {**run.summary_metrics(), **({"skipped": skipped} if skipped else {})},
            "drift": drift_by_model,
            "retrain": retrain,
            "parameters": settings.to_dict(),
        },
    )
    seconds["save"] = time.perf_counter() - clock
    steps.update()
    steps.close()
    return run


def read_current_features(
    connection: duckdb.DuckDBPyConnection, as_of_at: dt.datetime, settings: PredictionSettings
) -> pd.DataFrame:
    """marts.customer_features (the features as of T), checked to be as of `as_of_at`."""
    held = [
        row[0]
        for row in connection.execute(
            "select distinct as_of_at from marts.customer_features"
        ).fetchall()
    ]
    if held and held != [as_of_at]:
        raise ValueError(
            f"the predictions would score as of {as_of_at} but marts.customer_features holds "
            f"features as of {', '.join(str(value) for value in held)}: build the features "
            "and the predictions in the same run (or set $TEAL_AS_OF to the features' as_of)"
        )
    columns = _needed_columns(settings)
    select = ", ".join(f'"{name}"' for name in ("customer_id", *columns))
    frame = connection.execute(
        f"select {select} from marts.customer_features order by customer_id"
    ).df()
    return frame


def _needed_columns(settings: PredictionSettings) -> tuple[str, ...]:
    extra = ("lifetime_orders", "days_since_last_order", *FAIRNESS_COLUMNS)
    return tuple(dict.fromkeys((*settings.features, *extra)))


class PastCutoffs:
    """Features as of past cutoffs (computed once each) and the orders that followed them."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        features_sql: str,
        as_of_at: dt.datetime,
        settings: PredictionSettings,
    ) -> None:
        self.connection = connection
        self.sql = features_sql
        self.as_of_at = as_of_at
        self.settings = settings
        self.columns = _needed_columns(settings)
        self._features: dict[dt.datetime, pd.DataFrame] = {}
        self.seconds = 0.0
        (customers,) = connection.execute("select count(*) from marts.customer_features").fetchone()
        self.share = min(1.0, settings.training_sample / max(customers, 1))

    def features(self, cutoff: dt.datetime) -> pd.DataFrame:
        if cutoff not in self._features:
            clock = time.perf_counter()
            self._features[cutoff] = features_as_of(
                self.connection,
                self.sql,
                cutoff,
                self.columns,
                share=self.share,
                seed=self.settings.seed,
            )
            self.seconds += time.perf_counter() - clock
        return self._features[cutoff]

    def labelled(self, outcome: Outcome, cutoff: dt.datetime) -> tuple[pd.DataFrame, np.ndarray]:
        """The eligible customers at `cutoff` and their outcome in [cutoff, cutoff + horizon)."""
        frame = self.features(cutoff)
        frame = frame[outcome.eligible(frame)].reset_index(drop=True)
        orders = completed_orders_between(
            self.connection, cutoff, cutoff + dt.timedelta(days=outcome.days)
        )
        # a hash lookup: Series.isin on Arrow-backed text runs a Python loop
        ordered = pd.Index(orders["customer_id"]).get_indexer(frame["customer_id"]) >= 0
        return frame, outcome.labels(ordered)

    def stacked(
        self, outcome: Outcome, cutoffs: list[dt.datetime]
    ) -> tuple[pd.DataFrame, np.ndarray]:
        parts = [self.labelled(outcome, cutoff) for cutoff in cutoffs]
        frame = pd.concat([part[0] for part in parts], ignore_index=True)
        return frame, np.concatenate([part[1] for part in parts])


def fit_classifier(
    outcome: Outcome, history: PastCutoffs, settings: PredictionSettings
) -> ClassifierResult:
    """The evaluation fit (held-out metrics) and the production fit of one classifier."""
    horizon = dt.timedelta(days=outcome.days)
    T = history.as_of_at
    n = settings.training_cutoffs
    evaluation_cutoff = T - horizon
    evaluation_training = [T - horizon * (j + 1) for j in range(1, n + 1)]
    production_training = [T - horizon * j for j in range(1, n + 1)]

    train, train_labels = history.stacked(outcome, evaluation_training)
    test, test_labels = history.labelled(outcome, evaluation_cutoff)
    if len(test_labels) == 0 or test_labels.min() == test_labels.max():
        raise NotEnoughData(
            f"{outcome.name}: the held-out cutoff {evaluation_cutoff:%Y-%m-%d} has "
            f"{len(test_labels)} eligible customers, {int(test_labels.sum())} with the outcome: "
            "both outcomes are needed to measure the model"
        )
    evaluated = fit_score_model(outcome.name, train, train_labels, settings, explain=False)
    test_matrix = evaluated.matrix(test)
    test_scores = evaluated.probability(test_matrix)
    baseline_model = RecencyBaseline.fit(train, train_labels)
    baseline_scores = baseline_model.probability(test)
    tiebreak = test["customer_id"].to_numpy()
    fairness = fairness_on_test(test, test_labels, test_scores)
    held_out_importances = importances(evaluated, test_matrix, test_labels, settings)

    # the scoring fit: one horizon later, as many trees as the evaluation fit kept, its
    # reasons chosen by the held-out importances
    production, production_labels = history.stacked(outcome, production_training)
    model = fit_score_model(
        outcome.name,
        production,
        production_labels,
        settings,
        trees=int(evaluated.booster.n_iter_),
        importances_given=held_out_importances,
    )
    production_scores = model.probability(model.matrix(production))
    reference = {
        name: drift.reference(production[name].to_numpy(dtype=np.float64, na_value=np.nan))
        for name in settings.features
    }
    reference["score"] = drift.reference(production_scores)
    return ClassifierResult(
        outcome=outcome,
        model=model,
        metrics=binary_metrics(test_labels, test_scores),
        baseline=binary_metrics(test_labels, baseline_scores),
        decile_table=decile_table(test_labels, test_scores, tiebreak),
        baseline_deciles=decile_table(test_labels, baseline_scores, tiebreak),
        calibration=calibration_table(test_labels, test_scores),
        importances=held_out_importances,
        fairness=fairness,
        window={
            "horizon_days": outcome.days,
            "training_cutoffs": production_training,
            "evaluation_training_cutoffs": evaluation_training,
            "evaluation_cutoff": evaluation_cutoff,
            "evaluation_window": f"[{evaluation_cutoff}, {T})",
            "scored_as_of": T,
            "training_rows": int(min(len(production), settings.training_sample)),
            "training_positives": int(
                production_labels[
                    stratified_rows(
                        production["customer_id"],
                        production_labels,
                        settings.training_sample,
                        settings.seed,
                    )
                ].sum()
            ),
            "trees": int(model.booster.n_iter_),
            "evaluation_rows": int(len(test)),
        },
        reference=reference,
    )


def fairness_on_test(test: pd.DataFrame, labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Observed rate, mean prediction and AUC per age band and gender on the held-out cutoff."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for column in FAIRNESS_COLUMNS:
        groups = test[column].fillna("unknown").to_numpy()
        for group in sorted(set(groups)):
            mask = groups == group
            both = labels[mask].min() != labels[mask].max() if mask.any() else False
            rows.append(
                {
                    "attribute": column,
                    "group": group,
                    "customers": int(mask.sum()),
                    "observed_rate": float(labels[mask].mean()),
                    "mean_predicted": float(scores[mask].mean()),
                    "roc_auc": float(roc_auc_score(labels[mask], scores[mask]))
                    if both
                    else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def purchase_history(connection: duckdb.DuckDBPyConnection, cutoff: dt.datetime) -> pd.DataFrame:
    """Per customer with a completed order before `cutoff`: repeat purchase days x, days from
    the first purchase to the last (t_x) and to the cutoff (T), and the mean net GBP of the
    repeat purchase days (m, null without one)."""
    return connection.execute(
        """
        with purchase_days as (
            select
                customer_id,
                cast(ordered_at as date) as purchase_date,
                min(ordered_at) as purchased_at,
                sum(net_amount_gbp) as value_gbp
            from marts.fct_orders
            where is_completed and customer_id is not null and ordered_at < $cutoff
            group by all
        ),

        numbered as (
            select
                *,
                row_number() over (partition by customer_id order by purchase_date) as day_number
            from purchase_days
        )

        select
            customer_id,
            count(*) - 1 as x,
            (epoch(max(purchased_at)) - epoch(min(purchased_at))) / 86400.0 as t_x,
            (epoch($cutoff) - epoch(min(purchased_at))) / 86400.0 as T,
            cast(avg(value_gbp) filter (where day_number > 1) as double) as m
        from numbered
        group by customer_id
        order by customer_id
        """,
        {"cutoff": cutoff},
    ).df()


def fit_clv(
    connection: duckdb.DuckDBPyConnection,
    history: pd.DataFrame,
    as_of_at: dt.datetime,
    settings: PredictionSettings,
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Fit BG/NBD and Gamma-Gamma on a seeded sample of `history`, score every customer in it
    and check a fit of 90 days earlier against what followed."""
    bgnbd, gamma_gamma, fitted = _fit_clv_models(history, settings)
    days = settings.clv_months * clv.DAYS_PER_MONTH
    scores = clv.customer_lifetime_value(
        bgnbd,
        gamma_gamma,
        history["x"].to_numpy(float),
        history["t_x"].to_numpy(float),
        history["T"].to_numpy(float),
        history["m"].to_numpy(float, na_value=np.nan),
        days,
    )
    frame = pd.DataFrame({"customer_id": history["customer_id"], **scores})
    holdout = clv_holdout_check(connection, as_of_at, settings, warm_start=bgnbd)
    parameters = {"bgnbd": bgnbd.as_dict(), "gamma_gamma": gamma_gamma.as_dict(), "days": days}
    metrics = {
        "customers_fitted": fitted,
        "customers_scored": int(len(frame)),
        "mean_clv_gbp": float(frame["clv"].mean()) if len(frame) else float("nan"),
        "mean_p_alive": float(frame["p_alive"].mean()) if len(frame) else float("nan"),
        "holdout": holdout,
    }
    return parameters, metrics, frame


def _fit_clv_models(
    history: pd.DataFrame,
    settings: PredictionSettings,
    start: clv.BgNbdParameters | None = None,
) -> tuple[clv.BgNbdParameters, clv.GammaGammaParameters, int]:
    from ml.predictions.model import customer_hash_share

    if len(history) < 2:
        raise NotEnoughData("clv: needs the purchase histories of at least two customers")
    if not ((history["x"] > 0) & (history["m"] > 0)).any():
        raise NotEnoughData(
            "clv: no customer has bought on two different days yet, so repeat purchases and "
            "their value cannot be fitted"
        )
    sample = history
    if len(history) > settings.clv_sample:
        order = np.argsort(
            customer_hash_share(history["customer_id"], settings.seed), kind="stable"
        )
        sample = history.iloc[np.sort(order[: settings.clv_sample])]
    bgnbd, _ = clv.fit_bgnbd(sample["x"], sample["t_x"], sample["T"], start=start)
    spenders = sample[(sample["x"] > 0) & (sample["m"] > 0)]
    gamma_gamma, _ = clv.fit_gamma_gamma(spenders["x"], spenders["m"])
    return bgnbd, gamma_gamma, int(len(sample))


def clv_holdout_check(
    connection: duckdb.DuckDBPyConnection,
    as_of_at: dt.datetime,
    settings: PredictionSettings,
    warm_start: clv.BgNbdParameters | None = None,
) -> dict[str, Any]:
    """Fit on the purchases before T-90 days (from `warm_start`, the fit as of T), predict
    each customer's purchase days in [T-90, T) and compare with what happened."""
    start = as_of_at - dt.timedelta(days=CLV_HOLDOUT_DAYS)
    before = purchase_history(connection, start)
    if len(before) < 2 or not (before["x"] > 0).any():
        return {"cutoff": start, "days": CLV_HOLDOUT_DAYS, "skipped": "too little history"}
    bgnbd, _, _ = _fit_clv_models(before, settings, warm_start)
    predicted = clv.conditional_expected_purchases(
        bgnbd,
        CLV_HOLDOUT_DAYS,
        before["x"].to_numpy(float),
        before["t_x"].to_numpy(float),
        before["T"].to_numpy(float),
    )
    actual = connection.execute(
        """
        select customer_id, count(distinct cast(ordered_at as date)) as purchase_days
        from marts.fct_orders
        where is_completed and customer_id is not null and ordered_at >= ? and ordered_at < ?
        group by customer_id
        """,
        [start, as_of_at],
    ).df()
    observed = (
        before[["customer_id"]]
        .merge(actual, on="customer_id", how="left")["purchase_days"]
        .fillna(0)
        .to_numpy(float)
    )
    return {
        "cutoff": start,
        "days": CLV_HOLDOUT_DAYS,
        "customers": int(len(before)),
        "predicted_purchases": float(predicted.sum()),
        "actual_purchases": float(observed.sum()),
        "mae_per_customer": float(np.mean(np.abs(predicted - observed))),
        "correlation": float(np.corrcoef(predicted, observed)[0, 1])
        if observed.std() > 0
        else float("nan"),
    }


def score_customers(
    current: pd.DataFrame,
    results: dict[str, ClassifierResult],
    clv_scores: pd.DataFrame,
    settings: PredictionSettings,
    version: str,
    as_of_at: dt.datetime,
    progress: bool,
) -> pd.DataFrame:
    """One row per customer of `current` with every score, decile and reason."""
    n = len(current)
    columns: dict[str, Any] = {"customer_id": current["customer_id"].to_numpy()}
    for outcome in outcomes(settings):
        name = outcome.name
        scores = np.full(n, np.nan)
        reasons = np.full(n, None, dtype=object)
        result = results.get(name)
        # a skipped model (NotEnoughData) scores nobody: its columns stay null
        rows = np.flatnonzero(outcome.eligible(current)) if result else np.array([], dtype=int)
        batches = range(0, len(rows), settings.batch_size)
        for start in tqdm(batches, desc=f"scoring {name}", unit="batch", disable=not progress):
            chunk = rows[start : start + settings.batch_size]
            matrix = result.model.matrix(current.iloc[chunk])
            probabilities = result.model.probability(matrix)
            scores[chunk] = probabilities
            reasons[chunk] = result.model.reasons(matrix, settings.reasons)
        decile = np.full(n, np.nan)
        decile[rows] = deciles(scores[rows], current["customer_id"].to_numpy()[rows])
        prefix = "purchase_propensity" if name == "propensity" else "churn_risk"
        columns[prefix] = scores
        columns[f"{prefix}_decile"] = decile
        columns[f"{prefix}_reasons"] = reasons
    frame = pd.DataFrame(columns)
    values = clv_scores.astype({name: "float64" for name in CLV_SCORES}).rename(
        columns={
            "expected_purchases": "expected_orders_12m",
            "expected_order_value": "expected_order_value_gbp",
            "clv": "clv_12m_gbp",
        }
    )
    frame = frame.merge(values, on="customer_id", how="left")
    buyers = frame["clv_12m_gbp"].notna().to_numpy()
    clv_decile = np.full(n, np.nan)
    clv_decile[buyers] = deciles(
        frame["clv_12m_gbp"].to_numpy()[buyers], frame["customer_id"].to_numpy()[buyers]
    )
    frame["clv_decile"] = clv_decile
    frame["as_of_at"] = as_of_at
    frame["model_version"] = version
    return frame


def measure_drift(
    current: pd.DataFrame,
    predictions: pd.DataFrame,
    results: dict[str, ClassifierResult],
    model_dir: Path,
    version: str,
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """PSI of each feature and score of today's customers against the last training run's
    reference (this run's own when there is no earlier one)."""
    scores = {"propensity": "purchase_propensity", "churn": "churn_risk"}
    by_model: dict[str, dict[str, float]] = {}
    against: dict[str, str] = {}
    for name, result in results.items():
        previous = lifecycle.previous_reference(model_dir / name, version)
        reference, against[name] = (
            (previous[1], previous[0]) if previous else (result.reference, version)
        )
        eligible = result.outcome.eligible(current)
        values = {
            column: round(
                drift.psi_against(
                    reference[column],
                    current.loc[eligible, column].to_numpy(dtype=np.float64, na_value=np.nan),
                ),
                6,
            )
            for column in result.model.features
            if column in reference
        }
        values["score"] = round(
            drift.psi_against(
                reference["score"], predictions.loc[eligible, scores[name]].to_numpy(float)
            ),
            6,
        )
        by_model[name] = values
    return by_model, against


def fairness_table(
    current: pd.DataFrame, predictions: pd.DataFrame, results: dict[str, ClassifierResult]
) -> pd.DataFrame:
    """Propensity by age band and gender: today's mean score and share in the top decile, and
    the held-out cutoff's observed rate, mean prediction and AUC. Reported, never used."""
    if "propensity" not in results:
        return pd.DataFrame(columns=FAIRNESS_TABLE_COLUMNS)
    today = []
    for column in FAIRNESS_COLUMNS:
        groups = current[column].fillna("unknown")
        frame = pd.DataFrame(
            {
                "group": groups.to_numpy(),
                "score": predictions["purchase_propensity"].to_numpy(),
                "top": predictions["purchase_propensity_decile"].to_numpy() == 1,
            }
        )
        summary = frame.groupby("group").agg(
            customers_today=("score", "size"),
            mean_propensity_today=("score", "mean"),
            top_decile_share_today=("top", "mean"),
        )
        summary["attribute"] = column
        today.append(summary.reset_index())
    merged = pd.concat(today, ignore_index=True).merge(
        results["propensity"].fairness, on=["attribute", "group"], how="outer"
    )
    held_out = ("customers", "observed_rate", "mean_predicted", "roc_auc")
    return merged.rename(columns={name: f"{name}_held_out" for name in held_out})[
        list(FAIRNESS_TABLE_COLUMNS)
    ]


def save_models(
    model_dir: Path,
    version: str,
    results: dict[str, ClassifierResult],
    clv_parameters: dict[str, Any],
    clv_metrics: dict[str, Any],
    as_of_at: dt.datetime,
    settings: PredictionSettings,
    skipped: dict[str, str] | None = None,
) -> dict[str, Path]:
    """One folder per fitted model under <model_dir>/<model>/<version>/ (none for a skipped
    one: its reason is in the report and ml.prediction_runs)."""
    skipped = skipped or {}
    folders = {}
    for name, result in results.items():
        folders[name] = lifecycle.save_model_folder(
            model_dir / name / version,
            model=result.model,
            parameters={
                "settings": settings.to_dict(),
                "model": result.model.describe(),
                "window": result.window,
            },
            metrics={
                "model": result.metrics,
                "recency_baseline": result.baseline,
                "deciles": result.decile_table.to_dict(orient="records"),
                "calibration": result.calibration.to_dict(orient="records"),
                "permutation_importance_held_out": result.importances,
            },
            card=lifecycle.classifier_card(
                title=result.outcome.title,
                predicts=result.outcome.predicts,
                version=version,
                window=result.window,
                metrics=result.metrics,
                baseline=result.baseline,
                importances=result.importances,
            ),
            reference=result.reference,
        )
    if "clv" in skipped:
        return folders
    window = {"months": settings.clv_months, "scored_as_of": as_of_at}
    folders["clv"] = lifecycle.save_model_folder(
        model_dir / "clv" / version,
        model=None,
        parameters={**clv_parameters, "window": window, "settings": settings.to_dict()},
        metrics=clv_metrics,
        card=lifecycle.clv_card(
            version=version, window=window, parameters=clv_parameters, metrics=clv_metrics
        ),
    )
    return folders


def draw_charts(results: dict[str, ClassifierResult], folder: Path) -> dict[str, Path]:
    """The calibration curves and the decile lift of both classifiers and their baselines
    (no chart when neither was fitted)."""
    if not results:
        return {}
    lifts = {}
    for name, result in results.items():
        lifts[name] = result.decile_table
        lifts[f"{name} (recency baseline)"] = result.baseline_deciles
    return {
        "calibration": charts.calibration_chart(
            {name: result.calibration for name, result in results.items()},
            folder / "predictions_calibration.png",
        ),
        "decile_lift": charts.decile_lift_chart(lifts, folder / "predictions_decile_lift.png"),
    }


def write_report(run: PredictionRun) -> Path:
    """data/reports/predictions.md: every figure a reviewer of the models needs."""
    lines = [
        f"# Predictions report ({run.model_version})",
        "",
        f"Scored {run.customers:,} customers as of {run.as_of_at}.",
        "",
        "## Held-out time split",
        "",
        "| model | cutoff | customers | base rate | ROC AUC | PR AUC | Brier | top-decile lift |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for reason in run.skipped.values():
        lines.insert(4, f"Not fitted: {reason}. Its columns are empty for every customer.\n")
    for name, result in run.classifiers.items():
        for label, metrics in (("model", result.metrics), ("recency baseline", result.baseline)):
            lines.append(
                f"| {name} {label} | {result.window['evaluation_cutoff']} | {metrics['customers']:,} "
                f"| {metrics['base_rate']:.3f} | {metrics['roc_auc']:.3f} | {metrics['pr_auc']:.3f} "
                f"| {metrics['brier']:.4f} | {metrics['top_decile_lift']:.2f} |"
            )
    for name, result in run.classifiers.items():
        lines += [
            "",
            f"### {name}: deciles on the held-out cutoff",
            "",
            _markdown(result.decile_table),
        ]
        top = sorted(result.importances.items(), key=lambda item: -item[1])[:8]
        lines += [
            "",
            f"Permutation importance (drop in ROC AUC): {', '.join(f'{k} {v:.3f}' for k, v in top)}",
        ]
    holdout = run.clv_metrics.get("holdout", {})
    lines += ["", "## Customer lifetime value", ""]
    lines += (
        [f"Not fitted: {run.skipped['clv']}."]
        if "clv" in run.skipped
        else [
            f"BG/NBD {run.clv_parameters['bgnbd']}; Gamma-Gamma "
            f"{run.clv_parameters['gamma_gamma']}.",
            f"Holdout check: {holdout}.",
        ]
    )
    lines += [
        "",
        "## Drift (PSI against the last training run)",
        "",
        f"Retrain: {'yes' if run.retrain['retrain'] else 'no'}"
        + (f" ({'; '.join(run.retrain['reasons'][:5])})" if run.retrain["reasons"] else ""),
        "",
    ]
    for name, values in run.drift.items():
        worst = sorted(values.items(), key=lambda item: -item[1])[:5]
        lines.append(
            f"- {name} against {run.drift_against[name]}: "
            + ", ".join(f"{column} {value:.3f}" for column, value in worst)
        )
    lines += [
        "",
        "## Fairness: propensity by age band and gender (reported, not used by any model)",
        "",
        _markdown(run.fairness),
        "",
    ]
    run.report.parent.mkdir(parents=True, exist_ok=True)
    run.report.write_text("\n".join(lines), encoding="utf-8")
    return run.report


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    rows = [
        "| "
        + " | ".join(f"{value:.4g}" if isinstance(value, float) else str(value) for value in row)
        + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, *rows])
