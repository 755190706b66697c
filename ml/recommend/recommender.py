"""Ranked lists per user, with exclusions and reasons.

`Recommender` prepares the interactions once (data.py), fits what the requested methods need
once (models.py) and then ranks any method's scores batch by batch: excluded items (bought by
the user within `exclude_days`, not recommendable: out of stock, not in the catalogue, in an
excluded category) never appear; ties are broken by popularity (a hair of it is added to every
method's score), then by item position. A user gets fewer than k items only when fewer are
recommendable.

Reasons (`reasons=True`) name why an item is on a list:
- item-kNN: "bought together with X" / "viewed together with X", X the user's item that
  contributes most to the score (bought or only viewed by the user);
- content: "similar to X", X the user's item most like it;
- ALS: "liked by customers with similar tastes";
- popularity: "popular in <first level of its category>" (or "popular now");
- hybrid: the reason of the component that adds most to this item's blended score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from tqdm import tqdm

from ml.recommend.data import Prepared, prepare
from ml.recommend.models import Components, blend, fit_components, hybrid_weights, method_scores
from ml.recommend.settings import METHODS, RecommendSettings

_TIE_BREAK = 1e-6


class Recommender:
    """Interactions prepared and models fitted once; ranked lists for any method."""

    def __init__(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        *,
        users=None,
        as_of=None,
        methods: tuple[str, ...] = METHODS,
        settings: RecommendSettings | None = None,
    ) -> None:
        for method in methods:
            _check_method(method)
        self.settings = settings or RecommendSettings()
        self.methods = tuple(methods)
        self.prepared: Prepared = prepare(interactions, items, users, as_of, self.settings)
        self.components: Components = fit_components(self.prepared, self.methods, self.settings)
        self._content_similarity: sparse.csr_matrix | None = None
        self._dense_cache: dict[int, np.ndarray] = {}

    def recommend(
        self,
        method: str,
        k: int = 10,
        *,
        users=None,
        reasons: bool = False,
        progress: bool = False,
    ) -> pd.DataFrame:
        """user_id, item_id, rank (1 = best), score [, reason] for `users` (default: every
        user the Recommender knows)."""
        _check_method(method)
        if method not in self.methods:
            raise ValueError(f"this Recommender was fitted for {self.methods}, not {method!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        prepared = self.prepared
        if users is None:
            rows = np.arange(len(prepared.user_ids))
        else:
            index = pd.Index(prepared.user_ids).get_indexer(pd.Series(users).astype(str))
            if (index < 0).any():
                raise ValueError(
                    f"{int((index < 0).sum())} of the users were not given when the "
                    "Recommender was built; pass them as users= there"
                )
            rows = index
        k = min(k, int(prepared.recommendable.sum())) or 0
        frames = []
        batches = range(0, len(rows), self.settings.batch_size)
        for start in tqdm(batches, desc=f"recommend {method}", unit="batch", disable=not progress):
            frames.append(
                self._rank(method, rows[start : start + self.settings.batch_size], k, reasons)
            )
        columns = ["user_id", "item_id", "rank", "score", *(["reason"] if reasons else [])]
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True).loc[:, columns]

    def _rank(self, method: str, rows: np.ndarray, k: int, reasons: bool) -> pd.DataFrame:
        prepared = self.prepared
        parts = method_scores(method, rows, prepared, self.components, self.settings)
        scores = blend(method, parts, self.settings)
        scores += np.float32(_TIE_BREAK) * self.components.popularity
        excluded = prepared.excluded[rows].tocoo()
        scores[excluded.row, excluded.col] = -np.inf
        scores[:, ~prepared.recommendable] = -np.inf
        if k == 0:
            return pd.DataFrame()
        top = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
        picked = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -picked), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        picked = np.take_along_axis(picked, order, axis=1)
        keep = np.isfinite(picked)
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(prepared.user_ids[rows], k),
                "item_id": prepared.item_ids[top.ravel()],
                "rank": np.tile(np.arange(1, k + 1), len(rows)),
                "score": picked.ravel().astype(np.float64),
            }
        )
        if reasons:
            frame["reason"] = self._reasons(method, rows, top, parts).ravel()
        return frame.loc[keep.ravel()].reset_index(drop=True)

    def _reasons(
        self, method: str, rows: np.ndarray, top: np.ndarray, parts: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The reason text of every picked (user, item), users x k."""
        prepared = self.prepared
        if method == "hybrid":
            weights = hybrid_weights(self.settings)
            names = list(weights)
            contributions = np.stack(
                [weights[name] * np.take_along_axis(parts[name], top, axis=1) for name in names]
            )
            source = np.array(names, dtype=object)[np.argmax(contributions, axis=0)]
        else:
            source = np.full(top.shape, method, dtype=object)
        texts = np.empty(top.shape, dtype=object)
        popular = self._popular_reasons(top)
        texts[:] = popular
        history = prepared.weights[rows].tocoo()
        for name, similarity in (
            ("item_knn", self._lookup(self.components.similarity)),
            ("content", self._lookup(self.content_similarity())),
        ):
            wanted = source == name
            if not wanted.any():
                continue
            best, strength = _strongest_history_item(history, top, similarity)
            users, slots = np.nonzero(wanted & (strength > 0))
            items = best[users, slots]
            titles = prepared.titles[items].astype(object)
            if name == "content":
                texts[users, slots] = "similar to " + titles
                continue
            bought = np.asarray(prepared.purchased[rows[users], items]).ravel() > 0
            texts[users, slots] = np.where(bought, "bought", "viewed") + (
                " together with " + titles
            )
        texts[source == "als"] = "liked by customers with similar tastes"
        return texts

    def _lookup(self, matrix: sparse.csr_matrix | None):
        """A similarity matrix in the form pair lookups are fastest on: dense while the
        catalogue is small enough (20,000 items at most), else sparse."""
        if matrix is None or matrix.shape[0] > 20_000:
            return matrix
        key = id(matrix)
        cached = self._dense_cache.get(key)
        if cached is None:
            cached = self._dense_cache[key] = matrix.toarray()
        return cached

    def content_similarity(self) -> sparse.csr_matrix | None:
        """Item x item cosine of the content features (computed once)."""
        if self._content_similarity is None and self.components.content is not None:
            features = self.components.content
            self._content_similarity = (features @ features.T).tocsr()
        return self._content_similarity

    def _popular_reasons(self, top: np.ndarray) -> np.ndarray:
        first_levels = np.array(
            [path.split(">")[0].strip() for path in self.prepared.categories], dtype=object
        )
        reason = np.where(
            first_levels != "", "popular in " + first_levels.astype(str), "popular now"
        )
        return reason[top]


def _strongest_history_item(
    history: sparse.coo_matrix, top: np.ndarray, similarity: sparse.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """For each picked (user, item j): the user's item i with the largest weight x sim(i, j),
    and that product (0 when none contributes)."""
    best = np.zeros(top.shape, dtype=np.int64)
    strength = np.zeros(top.shape)
    if history.nnz == 0:
        return best, strength
    users, items, weights = history.row, history.col, history.data
    for slot in range(top.shape[1]):
        targets = top[users, slot]
        values = weights * np.asarray(similarity[items, targets]).ravel()  # dense or sparse
        order = np.lexsort((-values, users))
        first = np.unique(users[order], return_index=True)[1]
        chosen = order[first]
        best[users[chosen], slot] = items[chosen]
        strength[users[chosen], slot] = values[chosen]
    return best, strength


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def recommend(
    interactions: pd.DataFrame,
    k: int = 10,
    method: str = "hybrid",
    items: pd.DataFrame | None = None,
    *,
    users=None,
    as_of=None,
    settings: RecommendSettings | None = None,
    reasons: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Top-k items per user from any interactions DataFrame.

    interactions: user_id, item_id, timestamp, optional weight and event (see data.py);
    method: popularity, item_knn, als, content or hybrid; items: optional catalogue;
    users: who to serve (default: every user in the interactions; users without history get
    the method's cold-start answer: popularity for hybrid and popularity, nothing personal for
    the others); as_of: ignore interactions at or after it (default: use them all).
    Returns user_id, item_id, rank (1 = best), score, and reason when `reasons`.
    """
    recommender = Recommender(
        interactions, items, users=users, as_of=as_of, methods=(method,), settings=settings
    )
    return recommender.recommend(method, k, users=users, reasons=reasons, progress=progress)
