"""The recommenders: popularity, item-kNN, ALS, content similarity and their hybrid.

Each scores every (user, item) of a batch of users; `Recommender` (recommender.py) turns the
scores into ranked lists.

- popularity: users who interacted with the item in the last `popularity_days`;
- item-kNN: sim(i -> j) = co(i, j) / (n_i^(1 - e) n_j^e + shrink) over the weighted
  user-item matrix W (co = W'W, n = the items' squared norms, so co-purchases and co-views both
  count, by their weights); e = 0.5 is the cosine, a larger e discounts popular items more;
  the `neighbours` largest per item are kept. A user's score for j is the sum over the items
  they touched of weight x sim(i -> j);
- ALS: implicit matrix factorisation (als.py), score = x_u . y_j;
- content: items described by their category path (each level a feature, deeper levels
  weighing more), brand and price band, rows scaled to unit length; a user's score for j is
  the sum over their items of weight x cosine(i, j);
- hybrid: the other four, each scaled to 0-1 per user, weighted and summed; a user with no
  history gets popularity alone and a product nobody has touched yet can still come through
  content similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ml.recommend.als import fit_als
from ml.recommend.data import Prepared
from ml.recommend.settings import RecommendSettings


def popularity_scores(prepared: Prepared) -> np.ndarray:
    """Popularity per item scaled to 0-1."""
    top = prepared.popularity.max() if len(prepared.popularity) else 0.0
    return prepared.popularity / top if top > 0 else np.zeros_like(prepared.popularity)


def item_similarity(weights: sparse.csr_matrix, settings: RecommendSettings) -> sparse.csr_matrix:
    """Item x item similarity (rows: the item a user touched; columns: the item scored), with
    the `neighbours` largest per row kept and the diagonal removed."""
    by_item = weights.T.tocsr()
    co = (by_item @ by_item.T).tocsr().astype(np.float64)
    co.setdiag(0)
    co.eliminate_zeros()
    norms = np.asarray(by_item.multiply(by_item).sum(axis=1)).ravel()
    exponent = settings.popularity_exponent
    rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
    denominator = norms[rows] ** (1 - exponent) * norms[co.indices] ** exponent + settings.shrink
    co.data = co.data / np.where(denominator > 0, denominator, 1.0)
    return keep_largest_per_row(co, settings.neighbours).astype(np.float32)


def keep_largest_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """The `keep` largest values of each row (ties: the lower column first)."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    rows, cols, values = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if start == end:
            continue
        data = matrix.data[start:end]
        index = matrix.indices[start:end]
        if end - start > keep:
            chosen = np.lexsort((index, -data))[:keep]
            data, index = data[chosen], index[chosen]
        rows.append(np.full(len(index), row))
        cols.append(index)
        values.append(data)
    if not rows:
        return sparse.csr_matrix(matrix.shape)
    kept = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )
    kept.eliminate_zeros()
    return kept


def content_features(prepared: Prepared, settings: RecommendSettings) -> sparse.csr_matrix:
    """Items x features: category path levels, brand and price band, rows of unit length."""
    n = len(prepared.item_ids)
    columns: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    vocabulary: dict[tuple[str, str], int] = {}

    def add(kind: str, values: list[str | None], weight: float) -> None:
        index = np.full(n, -1)
        for item, value in enumerate(values):
            if value:
                index[item] = vocabulary.setdefault((kind, value), len(vocabulary))
        columns.append(index)
        weights.append(np.full(n, weight))

    levels = [
        [part.strip() for part in path.split(">")] if path else [] for path in prepared.categories
    ]
    depth = max((len(parts) for parts in levels), default=0)
    for level in range(depth):
        add(
            f"category{level}",
            [" > ".join(parts[: level + 1]) if len(parts) > level else None for parts in levels],
            settings.category_weight * (level + 1) / depth,
        )
    add("brand", [brand or None for brand in prepared.brands], settings.brand_weight)
    prices = prepared.prices
    known = ~np.isnan(prices)
    if known.any():
        edges = np.unique(
            np.quantile(prices[known], np.linspace(0, 1, settings.price_bands + 1)[1:-1])
        )
        bands = np.searchsorted(edges, np.nan_to_num(prices), side="right")
        add(
            "price",
            [str(band) if ok else None for band, ok in zip(bands, known, strict=True)],
            settings.price_weight,
        )
    index = np.concatenate(columns)
    value = np.concatenate(weights)
    item = np.tile(np.arange(n), len(columns))
    present = index >= 0
    features = sparse.csr_matrix(
        (value[present], (item[present], index[present])), shape=(n, max(len(vocabulary), 1))
    )
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    scaled = sparse.diags(np.where(norms > 0, 1 / np.where(norms > 0, norms, 1), 0)) @ features
    return scaled.tocsr().astype(np.float32)


@dataclass
class Components:
    """What the methods need, fitted once per `Recommender`."""

    popularity: np.ndarray
    similarity: sparse.csr_matrix | None = None
    content: sparse.csr_matrix | None = None
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None


NEEDS = {
    "popularity": (),
    "item_knn": ("item_knn",),
    "als": ("als",),
    "content": ("content",),
    "hybrid": ("item_knn", "als", "content"),
}


def fit_components(
    prepared: Prepared, methods: tuple[str, ...], settings: RecommendSettings
) -> Components:
    """Fit what `methods` need from the prepared interactions."""
    needed = {part for method in methods for part in NEEDS[method]}
    components = Components(popularity=popularity_scores(prepared).astype(np.float32))
    if "item_knn" in needed:
        components.similarity = item_similarity(prepared.weights, settings)
    if "content" in needed:
        components.content = content_features(prepared, settings)
    if "als" in needed:
        users = np.flatnonzero(prepared.history_users)
        if len(users) > settings.als_sample_users:
            rng = np.random.default_rng(settings.seed)
            users = np.sort(rng.choice(users, settings.als_sample_users, replace=False))
        components.user_factors, components.item_factors = fit_als(
            prepared.weights,
            factors=settings.factors,
            iterations=settings.als_iterations,
            regularization=settings.als_regularization,
            confidence=settings.als_confidence,
            sample_rows=users,
            seed=settings.seed,
        )
        components.user_factors = components.user_factors.astype(np.float32)
        components.item_factors = components.item_factors.astype(np.float32)
    return components


def method_scores(
    method: str,
    rows: np.ndarray,
    prepared: Prepared,
    components: Components,
    settings: RecommendSettings,
) -> dict[str, np.ndarray]:
    """Scores of a batch of users (rows) for every item, per component of `method`, each
    scaled to 0-1 per user (users x items, float32: a million users pass through these)."""
    history = prepared.weights[rows].astype(np.float32)
    parts: dict[str, np.ndarray] = {}
    if method in ("item_knn", "hybrid"):
        parts["item_knn"] = _scaled((history @ components.similarity).toarray())
    if method in ("als", "hybrid"):
        raw = components.user_factors[rows] @ components.item_factors.T
        raw[~prepared.history_users[rows]] = 0.0
        parts["als"] = _scaled(np.maximum(raw, 0.0, out=raw))
    if method in ("content", "hybrid"):
        profile = history @ components.content
        parts["content"] = _scaled((profile @ components.content.T).toarray())
    if method in ("popularity", "hybrid"):
        parts["popularity"] = np.broadcast_to(
            components.popularity, (len(rows), len(components.popularity))
        )
    return parts


def blend(method: str, parts: dict[str, np.ndarray], settings: RecommendSettings) -> np.ndarray:
    """One score per (user, item): the method's own, or the hybrid's weighted sum (a new
    float32 array the caller may change)."""
    if method != "hybrid":
        return np.array(parts[method], dtype=np.float32)
    weights = hybrid_weights(settings)
    total = np.zeros(parts["popularity"].shape, dtype=np.float32)
    for name, weight in weights.items():
        if weight:
            total += np.float32(weight) * parts[name]
    return total


def hybrid_weights(settings: RecommendSettings) -> dict[str, float]:
    return {
        "item_knn": settings.hybrid_item_knn,
        "als": settings.hybrid_als,
        "content": settings.hybrid_content,
        "popularity": settings.hybrid_popularity,
    }


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest value, in place, as float32 (rows of zeros stay zero)."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.size:
        top = scores.max(axis=1, keepdims=True)
        np.divide(scores, top, out=scores, where=top > 0)
    return scores
