"""Product recommendations: popularity, item-kNN, ALS, content similarity and a hybrid.

    from ml.recommend import recommend
    lists = recommend(interactions, k=10, method="hybrid", items=catalogue)

`recommend` works on any interactions DataFrame (user_id, item_id, timestamp, optional weight
and event) and returns user_id, item_id, rank, score; the pipeline (pipeline.py) calls it for
every customer. `evaluate` scores every method on a time split. No Dagster here.
"""

from ml.recommend.evaluate import evaluate
from ml.recommend.recommender import Recommender, recommend
from ml.recommend.settings import METHODS, RecommendSettings

__all__ = ["METHODS", "RecommendSettings", "Recommender", "evaluate", "recommend"]
