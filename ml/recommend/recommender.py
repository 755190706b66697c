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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from tqdm import tqdm

from ml.recommend.data import Prepared, prepare
from ml.recommend.models import Components, blend, fit_components, hybrid_weights, method_scores
from ml.recommend.settings import METHODS, RecommendSettings

_TIE_BREAK = 1e-6


# kinds of reason; a reason's code is kind x items + the item it names (the recommended item
# itself for "popular in", nothing for ALS)
BOUGHT, VIEWED, SIMILAR, TASTES, POPULAR = range(5)
# most (users x items) cells scored at once per component (float32): bounds memory whatever the
# catalogue's size
_MAX_CELLS = 8_000_000


@dataclass
class RankedLists:
    """Top-k per user as positions: row i is user `rows[i]` of the prepared interactions."""

    rows: np.ndarray  # user positions
    items: np.ndarray  # users x k item positions, -1 where fewer items are recommendable
    scores: np.ndarray  # users x k, float32 (-inf where no item)
    reasons: np.ndarray | None  # users x k reason codes (see reason_texts), or None

    @property
    def kept(self) -> np.ndarray:
        return self.items >= 0


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
        self._reason_texts: np.ndarray | None = None

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
        ranked = self.ranked(method, k, users=users, reasons=reasons, progress=progress)
        prepared = self.prepared
        kept = ranked.kept
        width = ranked.items.shape[1]
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(prepared.user_ids[ranked.rows], width)[kept.ravel()],
                "item_id": prepared.item_ids[ranked.items[kept]],
                "rank": np.broadcast_to(np.arange(1, width + 1), ranked.items.shape)[kept],
                "score": ranked.scores[kept].astype(np.float64),
            }
        )
        if reasons:
            frame["reason"] = self.reason_texts()[ranked.reasons[kept]]
        return frame

    def user_rows(self, users=None) -> np.ndarray:
        """Positions of `users` (default: every user the Recommender knows)."""
        if users is None:
            return np.arange(len(self.prepared.user_ids))
        index = pd.Index(self.prepared.user_ids).get_indexer(pd.Series(users).astype(str))
        if (index < 0).any():
            raise ValueError(
                f"{int((index < 0).sum())} of the users were not given when the "
                "Recommender was built; pass them as users= there"
            )
        return index

    def ranked(
        self,
        method: str,
        k: int = 10,
        *,
        users=None,
        reasons: bool = False,
        progress: bool = False,
    ) -> RankedLists:
        """The top k of `users` as positions (see RankedLists): users without any history
        share one list (scored once), the others are scored in batches."""
        _check_method(method)
        if method not in self.methods:
            raise ValueError(f"this Recommender was fitted for {self.methods}, not {method!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        prepared = self.prepared
        rows = self.user_rows(users)
        k = min(k, int(prepared.recommendable.sum()))
        items = np.full((len(rows), k), -1, dtype=np.int32)
        scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        codes = np.zeros((len(rows), k), dtype=np.int32) if reasons else None
        lists = RankedLists(rows, items, scores, codes)
        if k == 0 or len(rows) == 0:
            return lists
        warm = prepared.history_users[rows]
        cold = np.flatnonzero(~warm)
        if len(cold):  # no history, no exclusions: the same list for each
            self._fill(lists, method, cold[:1], k, reasons)
            for array in (items, scores, codes):
                if array is not None:
                    array[cold] = array[cold[0]]
        positions = np.flatnonzero(warm)
        batch = max(1, min(self.settings.batch_size, _MAX_CELLS // max(len(prepared.item_ids), 1)))
        batches = range(0, len(positions), batch)
        for start in tqdm(batches, desc=f"recommend {method}", unit="batch", disable=not progress):
            self._fill(lists, method, positions[start : start + batch], k, reasons)
        return lists

    def _fill(
        self, lists: RankedLists, method: str, positions: np.ndarray, k: int, reasons: bool
    ) -> None:
        """Score and rank the users at `positions` of `lists` (their rows), in place."""
        prepared = self.prepared
        rows = lists.rows[positions]
        parts = method_scores(method, rows, prepared, self.components, self.settings)
        scores = blend(method, parts, self.settings)
        scores += np.float32(_TIE_BREAK) * self.components.popularity
        excluded = prepared.excluded[rows].tocoo()
        scores[excluded.row, excluded.col] = -np.inf
        scores[:, ~prepared.recommendable] = -np.inf
        top = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
        picked = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -picked), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        picked = np.take_along_axis(picked, order, axis=1)
        keep = np.isfinite(picked)
        lists.items[positions] = np.where(keep, top, -1)
        lists.scores[positions] = picked
        if reasons:
            lists.reasons[positions] = self._reason_codes(method, rows, top, parts)

    def _reason_codes(
        self, method: str, rows: np.ndarray, top: np.ndarray, parts: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The reason code of every picked (user, item), users x k (see reason_texts)."""
        prepared = self.prepared
        n_items = len(prepared.item_ids)
        if method == "hybrid":
            weights = hybrid_weights(self.settings)
            names = list(weights)
            contributions = np.stack(
                [weights[name] * np.take_along_axis(parts[name], top, axis=1) for name in names]
            )
            source = np.array(names, dtype=object)[np.argmax(contributions, axis=0)]
        else:
            source = np.full(top.shape, method, dtype=object)
        codes = (POPULAR * n_items + top).astype(np.int32)
        history = prepared.weights[rows]
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
            if name == "content":
                codes[users, slots] = SIMILAR * n_items + items
                continue
            bought = np.asarray(prepared.purchased[rows[users], items]).ravel() > 0
            codes[users, slots] = np.where(bought, BOUGHT, VIEWED) * n_items + items
        codes[source == "als"] = TASTES * n_items
        return codes

    def reason_texts(self) -> np.ndarray:
        """The text of every reason code: kind x items + item (see the module docstring)."""
        if self._reason_texts is None:
            prepared = self.prepared
            titles = prepared.titles.astype(object)
            first_levels = np.array(
                [path.split(">")[0].strip() for path in prepared.categories], dtype=object
            )
            popular = np.where(first_levels != "", "popular in " + first_levels, "popular now")
            self._reason_texts = np.concatenate(
                [
                    "bought together with " + titles,
                    "viewed together with " + titles,
                    "similar to " + titles,
                    np.full(len(titles), "liked by customers with similar tastes", dtype=object),
                    popular.astype(object),
                ]
            )
        return self._reason_texts

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


def _strongest_history_item(
    history: sparse.csr_matrix, top: np.ndarray, similarity
) -> tuple[np.ndarray, np.ndarray]:
    """For each picked (user, item j): the user's item i with the largest weight x sim(i, j)
    (ties: the first in item order), and that product (0 when none contributes)."""
    best = np.zeros(top.shape, dtype=np.int64)
    strength = np.zeros(top.shape)
    history = history.tocsr()
    history.sort_indices()
    counts = np.diff(history.indptr)
    users = np.flatnonzero(counts)
    if len(users) == 0:
        return best, strength
    owner = np.repeat(np.arange(history.shape[0]), counts)
    items = history.indices
    targets = top[owner]  # (history entries) x k
    if isinstance(similarity, np.ndarray):
        values = similarity[items[:, None], targets]
    else:
        values = np.column_stack(
            [
                np.asarray(similarity[items, targets[:, slot]]).ravel()
                for slot in range(top.shape[1])
            ]
        )
    values = values * history.data[:, None]
    starts = history.indptr[users]
    top_value = np.maximum.reduceat(values, starts, axis=0)  # users with history x k
    position = np.arange(len(items))[:, None]
    first = np.where(values == np.repeat(top_value, counts[users], axis=0), position, len(items))
    chosen = np.minimum.reduceat(first, starts, axis=0)
    best[users] = items[chosen]
    strength[users] = top_value
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
