"""Fitting and keeping the clustering model: k by silhouette, K-Means, Isolation Forest.

`select_k` fits K-Means for every k of the range on the (standardised) sample and reports
the silhouette (on a seeded sub-sample of at most `silhouette_sample_size` rows) and the
inertia of each; the chosen k is the best silhouette (the smaller k on a tie).
`fit_outliers` fits the Isolation Forest on the same sample. `ClusterModel` bundles the
scaler, both estimators and the stable cluster ids, and `ClusterModel.assign` labels any
batch of raw rows.

Versions: `save_model` writes `<model_dir>/<model_version>/` with

- `model.joblib`: the `ClusterModel` (scikit-learn estimators included);
- `params.json`: settings, per-feature fill/log1p/mean/scale, the centroids of every
  cluster id (standardised and in log space), labels, the next fresh cluster id;
- `metrics.json`: silhouette and inertia per k, chosen k, sizes, outliers, the adjusted
  Rand index against the previous run.

`model_version` is `<fitted_at as YYYYMMDDTHHMMSSZ>-<8 hex>`: the time sorts versions, the
hex is a digest of the settings (but batch_size, which changes nothing), the table, the
previous model's version (it decides the ids), the cutoff, the row count and the fitting
sample: equal hex means the same model. Two runs in the same second that would give the
same model share a folder.
`previous_model` finds the model the last run used (the newest row of `ml.cluster_runs`
whose folder exists, else the newest folder by `fitted_at`) from its `params.json`, which is
plain JSON: no unpickling is needed to keep ids stable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import joblib
import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from tqdm import tqdm

from ml.clustering.features import FeatureScaler
from ml.clustering.settings import ClusterSettings
from ml.warehouse import table_exists

MODEL_FILE = "model.joblib"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
# scikit-learn's chunk size for pairwise distances (silhouette) and forest scoring, in MiB
# (its default, 1024, would make the silhouette of 10,000 rows take a gigabyte at once).
WORKING_MEMORY_MB = 64


@dataclass
class KSelection:
    """Silhouette and inertia per k, the best k and the fitted K-Means of each k."""

    silhouette_by_k: dict[int, float]
    inertia_by_k: dict[int, float]
    chosen_k: int
    k: int
    models: dict[int, KMeans] = field(repr=False)


def select_k(
    matrix: np.ndarray, settings: ClusterSettings, *, progress: bool = False
) -> KSelection:
    """Fit K-Means for every k of the range and pick the best silhouette (see module docstring).

    k values that the sample cannot support (not more distinct rows than k) are skipped;
    `settings.n_clusters`, when set, is used instead of the chosen k (and, when outside the
    range, fitted and scored too).
    """
    distinct = len(np.unique(matrix, axis=0)) if len(matrix) else 0
    usable = [k for k in settings.k_range if k < distinct]
    if not usable:
        raise ValueError(
            f"the fitting sample holds {len(matrix)} customers with {distinct} distinct feature "
            f"rows, too few for k = {settings.k_min}..{settings.k_max}; lower k_min, or "
            "cluster a table with more (and more varied) customers"
        )
    if settings.n_clusters is not None and settings.n_clusters >= distinct:
        raise ValueError(
            f"n_clusters = {settings.n_clusters} but the fitting sample has only {distinct} "
            "distinct feature rows; lower n_clusters"
        )
    rng = np.random.default_rng(settings.seed)
    scored = matrix
    if len(matrix) > settings.silhouette_sample_size:
        rows = np.sort(rng.choice(len(matrix), settings.silhouette_sample_size, replace=False))
        scored = matrix[rows]
    else:
        rows = None
    models: dict[int, KMeans] = {}
    silhouette: dict[int, float] = {}
    inertia: dict[int, float] = {}

    def fit(k: int) -> None:
        model = _kmeans(matrix, k, settings)
        models[k] = model
        inertia[k] = float(model.inertia_)
        labels = model.labels_ if rows is None else model.labels_[rows]
        found = len(np.unique(labels))
        if found < 2 or found >= len(scored):
            silhouette[k] = float("nan")  # undefined
        else:
            with sklearn.config_context(working_memory=WORKING_MEMORY_MB):
                silhouette[k] = float(silhouette_score(scored, labels))

    for k in tqdm(usable, desc="k by silhouette", unit="k", disable=not progress):
        fit(k)
    scores = np.array([silhouette[k] for k in usable])
    chosen = usable[0] if np.isnan(scores).all() else usable[int(np.nanargmax(scores))]
    k = chosen
    if settings.n_clusters is not None:
        k = settings.n_clusters
        if k not in models:
            fit(k)
            silhouette = dict(sorted(silhouette.items()))
            inertia = dict(sorted(inertia.items()))
    return KSelection(silhouette, inertia, chosen, k, models)


def _kmeans(matrix: np.ndarray, k: int, settings: ClusterSettings) -> KMeans:
    model = KMeans(
        n_clusters=k,
        n_init=settings.n_init,
        max_iter=settings.max_iter,
        random_state=settings.seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(matrix)
    return model


def fit_outliers(matrix: np.ndarray, settings: ClusterSettings) -> IsolationForest:
    """The Isolation Forest on the standardised sample (about `contamination` flagged)."""
    forest = IsolationForest(
        n_estimators=settings.outlier_trees,
        contamination=settings.contamination,
        random_state=settings.seed,
    )
    return forest.fit(matrix)


@dataclass
class ClusterModel:
    """A fitted clustering: scaler, K-Means, Isolation Forest and stable cluster ids.

    `cluster_ids[i]` is the stable id of K-Means centre i; `labels` maps id -> label;
    `next_cluster_id` is the id the next new cluster will get (ids are never reused).
    """

    model_version: str
    settings: ClusterSettings
    scaler: FeatureScaler
    kmeans: KMeans
    outliers: IsolationForest
    cluster_ids: tuple[int, ...]
    next_cluster_id: int
    fitted_at: dt.datetime
    as_of_at: dt.datetime | None
    labels: dict[int, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns, in model order."""
        return self.scaler.features

    def assign(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Assign raw rows (NaN = null): K-Means index, stable id, is_outlier, distance.

        The distance is Euclidean, in standardised units, to the assigned centre.
        """
        matrix = self.scaler.transform(raw)
        index, distance, outlier = self.assign_standardised(matrix)
        return index, np.asarray(self.cluster_ids, dtype="int32")[index], outlier, distance

    def assign_standardised(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """K-Means index, distance and is_outlier for already standardised rows."""
        if not len(matrix):
            return np.empty(0, "int64"), np.empty(0), np.empty(0, bool)
        distances = self.kmeans.transform(matrix)
        index = distances.argmin(axis=1)
        distance = distances[np.arange(len(matrix)), index]
        with sklearn.config_context(working_memory=WORKING_MEMORY_MB):
            outlier = self.outliers.predict(matrix) == -1
        return index, distance, outlier

    def centroids_by_id(self) -> dict[int, np.ndarray]:
        """Stable id -> centre in standardised units."""
        centres = self.kmeans.cluster_centers_
        return {cid: centres[i] for i, cid in enumerate(self.cluster_ids)}

    def params(self) -> dict[str, Any]:
        """What `params.json` holds."""
        log_centres = self.scaler.unscale(self.kmeans.cluster_centers_)
        clusters = []
        for i, cid in sorted(enumerate(self.cluster_ids), key=lambda pair: pair[1]):
            clusters.append(
                {
                    "cluster_id": int(cid),
                    "label": self.labels.get(int(cid)),
                    "centroid": dict(
                        zip(self.features, self.kmeans.cluster_centers_[i].tolist(), strict=True)
                    ),
                    "centroid_log_space": dict(
                        zip(self.features, log_centres[i].tolist(), strict=True)
                    ),
                }
            )
        return {
            "model_version": self.model_version,
            "fitted_at": self.fitted_at.isoformat(),
            "as_of_at": self.as_of_at.isoformat() if self.as_of_at else None,
            "settings": self.settings.to_dict(),
            "features": self.scaler.to_dict(),
            "k": len(self.cluster_ids),
            "clusters": clusters,
            "next_cluster_id": int(self.next_cluster_id),
            "outlier_offset": float(self.outliers.offset_),
            "sklearn_version": sklearn.__version__,
        }


@dataclass(frozen=True)
class PreviousModel:
    """What a later run needs of an earlier model: its centroids in log space and ids."""

    model_version: str
    features: tuple[str, ...]
    cluster_ids: tuple[int, ...]
    centroids_log_space: np.ndarray  # clusters x features, in `cluster_ids` order
    next_cluster_id: int
    fitted_at: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PreviousModel:
        """Read the `params.json` of a saved model."""
        features = tuple(params["features"])
        clusters = params["clusters"]
        centres = np.array(
            [[float(c["centroid_log_space"][name]) for name in features] for c in clusters]
        ).reshape(len(clusters), len(features))
        return cls(
            model_version=str(params["model_version"]),
            features=features,
            cluster_ids=tuple(int(c["cluster_id"]) for c in clusters),
            centroids_log_space=centres,
            next_cluster_id=int(params["next_cluster_id"]),
            fitted_at=str(params.get("fitted_at") or ""),
        )


def model_version(fitted_at: dt.datetime, fingerprint: Mapping[str, Any]) -> str:
    """`<YYYYMMDDTHHMMSSZ>-<8 hex>` from the fit time and a digest of `fingerprint`."""
    digest = hashlib.sha256(
        json.dumps(fingerprint, sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"{fitted_at:%Y%m%dT%H%M%S}Z-{digest[:8]}"


def sample_digest(customer_ids: Any, raw: np.ndarray) -> str:
    """A digest of the fitting sample (ids and values), for the model version."""
    digest = hashlib.sha256()
    for customer_id in customer_ids:
        digest.update(str(customer_id).encode())
        digest.update(b"\0")
    digest.update(np.ascontiguousarray(np.nan_to_num(raw, nan=-0.5)).tobytes())
    return digest.hexdigest()


def save_model(model: ClusterModel, model_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write model.joblib, params.json and metrics.json under <model_dir>/<model_version>/."""
    folder = Path(model_dir) / model.model_version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / MODEL_FILE)
    (folder / PARAMS_FILE).write_text(json.dumps(model.params(), indent=2) + "\n")
    (folder / METRICS_FILE).write_text(json.dumps(dict(metrics), indent=2, default=str) + "\n")
    return folder


def load_model(model_dir: str | Path, version: str | None = None) -> ClusterModel:
    """The saved `ClusterModel` of `version` (default: the newest in model_dir).

    Only load models this pipeline wrote: joblib files run code when loaded.
    """
    folder = Path(model_dir) / version if version else _newest_folder(Path(model_dir))
    if folder is None or not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"no {MODEL_FILE} under {folder or model_dir}; run cluster_customers first or pass "
            "the model_version of a folder that holds one"
        )
    return joblib.load(folder / MODEL_FILE)


def read_params(folder: Path) -> dict[str, Any]:
    """The params.json of a model folder, with an error naming the file when unreadable."""
    path = folder / PARAMS_FILE
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete that model folder") from None


def previous_model(
    connection: duckdb.DuckDBPyConnection, model_dir: str | Path
) -> PreviousModel | None:
    """The model the last run used, or None on a first run (see module docstring)."""
    model_dir = Path(model_dir)
    if table_exists(connection, "ml", "cluster_runs"):
        versions = connection.execute(
            "select model_version from ml.cluster_runs order by fitted_at desc, model_version desc"
        ).fetchall()
        for (version,) in versions:
            folder = model_dir / str(version)
            if (folder / PARAMS_FILE).is_file():
                return PreviousModel.from_params(read_params(folder))
    folder = _newest_folder(model_dir)
    return PreviousModel.from_params(read_params(folder)) if folder else None


def _newest_folder(model_dir: Path) -> Path | None:
    if not model_dir.is_dir():
        return None
    found = []
    for folder in model_dir.iterdir():
        if (folder / PARAMS_FILE).is_file():
            fitted_at = str(read_params(folder).get("fitted_at") or "")
            found.append((fitted_at, folder.name, folder))
    return max(found)[2] if found else None
