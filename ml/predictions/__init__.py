"""Customer predictions: purchase propensity, churn risk, lifetime value and P(alive).

`predict_customers` (pipeline.py) fits and scores everything and writes ml.customer_predictions;
`clv` holds the BG/NBD and Gamma-Gamma models, `features` the point-in-time features, `model`
the calibrated classifiers, `drift` the population stability index, `lifecycle` the model
folders and cards. No Dagster here: orchestration/defs/predictions.py wraps it.
"""

from ml.predictions.pipeline import PredictionRun, predict_customers
from ml.predictions.settings import PredictionSettings

__all__ = ["PredictionRun", "PredictionSettings", "predict_customers"]
