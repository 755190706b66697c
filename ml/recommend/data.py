"""From an interactions DataFrame (and an optional catalogue) to the matrices recommenders use.

Interactions: `user_id`, `item_id`, `timestamp` (anything pandas reads as a time), optional
`weight` (default 1) and optional `event`. A row is a purchase when its `event` is
"purchase", or always when there is no `event` column (ratings, plays: every row counts). Rows
at or after the cutoff (`as_of`, default just after the last row) are left out.

Catalogue (`items`, optional): `item_id` and any of `title` (named in reasons),
`category_path` ("Women > Shoes > Trainers") or `category`, `brand`, `price` and `in_stock`.
With a catalogue only its items are recommended (in stock, outside the excluded categories);
without one, every item seen in the interactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ml.recommend.settings import RecommendSettings

REQUIRED = ("user_id", "item_id", "timestamp")
PURCHASE = "purchase"


class InteractionsError(ValueError):
    """The interactions or catalogue cannot be used; the message says what to change."""


@dataclass
class Prepared:
    """Users, items and their matrices, all indexed by position."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    weights: sparse.csr_matrix  # users x items: summed weights before the cutoff
    purchased: sparse.csr_matrix  # users x items: 1 where the user ever bought the item
    excluded: sparse.csr_matrix  # users x items: bought within the exclusion window
    recommendable: np.ndarray  # per item
    popularity: np.ndarray  # per item: users in the popularity window
    item_users: np.ndarray  # per item: users with any interaction before the cutoff
    titles: np.ndarray  # per item: title, else the item id
    categories: np.ndarray  # per item: category path ("" when unknown)
    brands: np.ndarray
    prices: np.ndarray  # NaN when unknown
    as_of: pd.Timestamp

    @property
    def history_users(self) -> np.ndarray:
        """Whether each user has any interaction before the cutoff."""
        return np.diff(self.weights.indptr) > 0


def prepare(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.Series | np.ndarray | list | None,
    as_of: pd.Timestamp | str | None,
    settings: RecommendSettings,
) -> Prepared:
    """Index users and items and build the matrices (see the module docstring)."""
    missing = [column for column in REQUIRED if column not in interactions.columns]
    if missing:
        raise InteractionsError(
            f"interactions lack the column(s) {', '.join(missing)}; recommend() needs "
            "user_id, item_id and timestamp (and optionally weight and event)"
        )
    frame = interactions.loc[:, [c for c in (*REQUIRED, "weight", "event") if c in interactions]]
    frame = frame.dropna(subset=["user_id", "item_id", "timestamp"])
    timestamps = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    if as_of is None:
        cutoff = (timestamps.max() if len(timestamps) else pd.Timestamp(0)) + pd.Timedelta(
            seconds=1
        )
    else:
        cutoff = pd.Timestamp(as_of)
        cutoff = cutoff.tz_convert("UTC").tz_localize(None) if cutoff.tzinfo else cutoff
    before = (timestamps < cutoff).to_numpy()
    frame = frame.loc[before]
    timestamps = timestamps.loc[before]
    weight = (
        pd.to_numeric(frame["weight"], errors="coerce").fillna(0).to_numpy(np.float64)
        if "weight" in frame
        else np.ones(len(frame))
    )
    if np.any(weight < 0):
        raise InteractionsError("interaction weights must be >= 0")
    is_purchase = (
        (frame["event"].astype(str) == PURCHASE).to_numpy()
        if "event" in frame
        else np.ones(len(frame), dtype=bool)
    )

    catalogue = _catalogue(items)
    item_ids = (
        pd.Index(catalogue["item_id"])
        .append(pd.Index(frame["item_id"].astype(str).unique()))
        .unique()
    )
    extra_users = pd.Index([] if users is None else pd.Series(users).dropna().astype(str).unique())
    user_ids = pd.Index(frame["user_id"].astype(str).unique()).append(extra_users).unique()
    user_index = user_ids.get_indexer(frame["user_id"].astype(str))
    item_index = item_ids.get_indexer(frame["item_id"].astype(str))
    shape = (len(user_ids), len(item_ids))

    def matrix(mask: np.ndarray, values: np.ndarray) -> sparse.csr_matrix:
        built = sparse.csr_matrix(
            (values[mask], (user_index[mask], item_index[mask])), shape=shape, dtype=np.float64
        )
        built.sum_duplicates()
        return built

    everything = np.ones(len(frame), dtype=bool)
    weights = matrix(everything, weight)
    purchased = _binary(matrix(is_purchase, np.ones(len(frame))))
    if settings.exclude_days is None:
        recent = is_purchase
    else:
        recent = (
            is_purchase
            & (timestamps >= cutoff - pd.Timedelta(days=settings.exclude_days)).to_numpy()
        )
    excluded = _binary(matrix(recent, np.ones(len(frame))))
    window = (timestamps >= cutoff - pd.Timedelta(days=settings.popularity_days)).to_numpy()
    item_users = _users_per_item(user_index, item_index, everything, shape)
    popularity = _users_per_item(user_index, item_index, window, shape)
    if popularity.sum() == 0:
        popularity = item_users.astype(np.float64)

    aligned = catalogue.set_index("item_id").reindex(item_ids)
    recommendable = np.ones(len(item_ids), dtype=bool)
    if items is not None:
        recommendable &= item_ids.isin(catalogue["item_id"])
        if "in_stock" in aligned:
            recommendable &= aligned["in_stock"].fillna(True).astype(bool).to_numpy()
    categories = aligned["category_path"].fillna("").astype(str).to_numpy()
    for excluded_category in settings.excluded_categories:
        prefix = excluded_category.strip()
        recommendable &= ~np.array(
            [path == prefix or path.startswith(prefix + " >") for path in categories]
        )
    titles = aligned["title"].fillna(pd.Series(item_ids, index=item_ids)).astype(str).to_numpy()
    return Prepared(
        user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray(item_ids, dtype=object),
        weights=weights,
        purchased=purchased,
        excluded=excluded,
        recommendable=recommendable,
        popularity=popularity.astype(np.float64),
        item_users=item_users,
        titles=titles,
        categories=categories,
        brands=aligned["brand"].fillna("").astype(str).to_numpy(),
        prices=pd.to_numeric(aligned["price"], errors="coerce").to_numpy(np.float64),
        as_of=cutoff,
    )


def _catalogue(items: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["item_id", "title", "category_path", "brand", "price", "in_stock"]
    if items is None:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    if "item_id" not in items.columns:
        raise InteractionsError("the items catalogue needs an item_id column")
    catalogue = items.copy()
    if "category_path" not in catalogue and "category" in catalogue:
        catalogue["category_path"] = catalogue["category"]
    for name in columns:
        if name not in catalogue:
            catalogue[name] = None
    catalogue["item_id"] = catalogue["item_id"].astype(str)
    return catalogue.drop_duplicates("item_id", keep="last").loc[:, columns]


def _binary(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    matrix = matrix.copy()
    matrix.data = np.ones_like(matrix.data)
    matrix.eliminate_zeros()
    return matrix


def _users_per_item(users: np.ndarray, items: np.ndarray, mask: np.ndarray, shape) -> np.ndarray:
    pairs = sparse.csr_matrix((np.ones(int(mask.sum())), (users[mask], items[mask])), shape=shape)
    pairs.sum_duplicates()
    pairs.data[:] = 1.0
    return np.asarray(pairs.sum(axis=0)).ravel()
