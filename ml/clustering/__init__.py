"""ML customer clusters that explain themselves: K-Means over customer_features.

Dagster-free. `cluster_customers(connection, model_dir=...)` does a whole run (see
`pipeline`): `features` prepares the columns (null fills, log1p, standardisation),
`model` picks k by silhouette on a sample and fits K-Means and an Isolation Forest,
`stable_ids` keeps cluster ids from run to run, `profiles` describes and names the clusters,
`charts` draws the PNGs. Around them, `inputs` checks and samples the feature table,
`assignment` assigns every customer batch by batch, `tables` writes the ml.* tables and
`result` holds the `ClusterRun`. Settings are a `ClusterSettings`.
"""

from ml.clustering.model import ClusterModel, load_model
from ml.clustering.pipeline import cluster_customers
from ml.clustering.result import ClusterRun
from ml.clustering.settings import DEFAULT_FEATURES, ClusterSettings

__all__ = [
    "DEFAULT_FEATURES",
    "ClusterModel",
    "ClusterRun",
    "ClusterSettings",
    "cluster_customers",
    "load_model",
]
