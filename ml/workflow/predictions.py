"""Steps: score every customer (propensity, churn risk, CLV, P(alive)) and recommend products.

Both run after the `customers` dbt part and before the `audiences` part, which exposes their
tables (ml.customer_predictions, ml.customer_recommendations) in dim_customer_attributes.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from ml.as_of import cutoff
from ml.predictions import PredictionRun, PredictionSettings, predict_customers
from ml.predictions.features import read_compiled_features
from ml.recommend import RecommendSettings
from ml.recommend.pipeline import RecommendationRun, recommend_customers
from ml.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR, Settings
from ml.workflow.errors import StepError


def compiled_features_sql(settings: Settings, as_of: str) -> str:
    """The SQL dbt compiled for customer_features in this run's target folder; when absent
    (the customer models were built elsewhere), compiled now into a temporary folder."""
    try:
        return read_compiled_features(settings.dbt_target)
    except FileNotFoundError:
        pass
    with tempfile.TemporaryDirectory(prefix="teal-features-") as folder:
        done = subprocess.run(
            [
                DBT_EXECUTABLE,
                "compile",
                "--quiet",
                "--select",
                "customer_features",
                "--target-path",
                folder,
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--vars",
                json.dumps(settings.dbt_vars(as_of)),
            ],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise StepError(
                "dbt could not compile customer_features for the predictions:\n"
                + (done.stdout + done.stderr)[-2000:]
            )
        return read_compiled_features(Path(folder))


def predict(
    settings: Settings,
    *,
    as_of: str,
    prediction_settings: PredictionSettings,
    progress: bool = False,
) -> PredictionRun:
    """Fit, evaluate and score the propensity, churn and CLV models; versioned under
    `settings.models` (propensity/, churn/, clv/), report and charts in `settings.reports`."""
    sql = compiled_features_sql(settings, as_of)
    with settings.connect() as connection:
        try:
            return predict_customers(
                connection,
                features_sql=sql,
                model_dir=settings.models,
                reports_dir=settings.reports,
                as_of_at=cutoff(as_of),
                settings=prediction_settings,
                progress=progress,
            )
        except ValueError as error:
            raise StepError(str(error)) from error


def recommend_products(
    settings: Settings,
    *,
    as_of: str,
    recommend_settings: RecommendSettings,
    k: int = 10,
    holdout_days: int = 30,
    progress: bool = False,
) -> RecommendationRun:
    """Evaluate every recommender on the last `holdout_days`, then the hybrid's top k for
    every customer; versioned under `settings.models`/recommendations/."""
    with settings.connect() as connection:
        try:
            return recommend_customers(
                connection,
                as_of_at=cutoff(as_of),
                model_dir=settings.models,
                reports_dir=settings.reports,
                settings=recommend_settings,
                k=k,
                holdout_days=holdout_days,
                progress=progress,
            )
        except ValueError as error:
            raise StepError(str(error)) from error
