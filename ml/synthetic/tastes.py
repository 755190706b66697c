"""Who likes what: each person's favourite categories and brands, products bought together, and
the products of order lines and product views that follow them.

Real shoppers are not a sample of the shop's bestseller list. Here:

* **Favourite categories.** Each person has three, drawn once (without replacement) with the
  categories' share of the shop's popularity, tilted mildly by the person's gender (women's
  ranges twice as likely for women and half as likely for men, men's ranges the other way,
  beauty 1.5 times / 0.5 times), and a share of their attention on each (Dirichlet(4, 2, 1):
  one main interest, two lesser ones). An order has a *mission*: one of those categories by
  that share, or 15% of the time any category by the shop's own mix (gifts, curiosity).
* **Favourite brands.** Two per person, by the brands' share of popularity, and a brand
  loyalty (Beta(2, 3), about 0.4 on average): the chance a pick is one of those brands when
  the category has them.
* **Within a category** products are picked by the catalogue's long-tailed popularity, so the
  bestsellers stay bestsellers: the shop-wide mix of products is still the popularity skew,
  only who buys what has changed.
* **Bought together.** Every product has two complements (drawn once, by popularity): another
  product of its own category (the second mug of a set, another candle scent) and one of a
  sibling category under the same first level (boots with a dress, a casserole dish with a
  frying pan). A further line of an order is, 45% of the time, a complement of the line before
  it; 35% another pick in the order's mission; else a pick in a fresh mission.
* **Consumables come back.** Candles, moisturisers and eau de parfum run out: a person who
  favours one of those categories has a staple product in it (drawn once) and picks it again
  60% of the time they shop there.
* **Browsing follows taste.** Three quarters of a known person's browsing product views and
  cart adds are picks by the same rules (no complements); the rest are the shop's popularity,
  as are every anonymous visitor's.

Anonymous till sales keep the shop's popularity too. Every draw here comes from streams of its
own (`default_rng([seed, stream, 70, ...])`), so the people, CRM records, identifiers and the
deliberate mess of every feed, and the number of orders, lines and events, are exactly what
they were before tastes existed; only which product a line or a view is about has changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.synthetic import vocab
from ml.synthetic.context import ORDERS, PEOPLE, PRODUCTS, Context

# sub-stream key of every draw made here (after the module's stream id)
TASTE_STREAM = 70
FAVOURITES = 3
FAVOURITE_SHARES = (4.0, 2.0, 1.0)  # Dirichlet parameters of the shares of attention
FAVOURITE_BRANDS = 2
EXPLORE = 0.15  # an order's mission outside the person's favourites
COMPLEMENT = 0.45  # a further line: complement of the line before it
SAME_MISSION = 0.35  # a further line: another pick in the order's mission (else a fresh one)
REBUY = 0.6  # a consumable category's pick is the person's staple product
BROWSE_TASTE = 0.75  # a known person's browsing view follows their taste
CONSUMABLES = (
    "Home > Living > Candles",
    "Beauty > Skincare > Moisturisers",
    "Beauty > Fragrance > Eau de Parfum",
)
# gender (people.GENDERS: F, M, X, U) x first level of the category path: taste multiplier
GENDER_TILT = {
    0: {"Women": 2.0, "Men": 0.5, "Beauty": 1.5},
    1: {"Women": 0.5, "Men": 2.0, "Beauty": 0.5},
}


@dataclass
class Picker:
    """Draws products by popularity within a category, or within a category and brand.

    Base products sorted by (category, brand); `cumulative` is their popularity summed in that
    order, so a draw inside any group of consecutive products is one searchsorted.
    """

    order: np.ndarray  # base product indices in (category, brand) order
    cumulative: np.ndarray  # len(order) + 1
    category_start: np.ndarray  # per category
    category_end: np.ndarray
    brand_start: np.ndarray  # per (category * brands + brand)
    brand_end: np.ndarray

    @classmethod
    def build(cls, category: np.ndarray, brand: np.ndarray, popularity: np.ndarray) -> Picker:
        n_categories, n_brands = len(vocab.CATEGORIES), len(vocab.BRANDS)
        order = np.lexsort((np.arange(len(category)), brand, category))
        key = category[order] * n_brands + brand[order]
        categories = np.arange(n_categories)
        keys = np.arange(n_categories * n_brands)
        return cls(
            order=order,
            cumulative=np.concatenate([[0.0], np.cumsum(popularity[order])]),
            category_start=np.searchsorted(category[order], categories, "left"),
            category_end=np.searchsorted(category[order], categories, "right"),
            brand_start=np.searchsorted(key, keys, "left"),
            brand_end=np.searchsorted(key, keys, "right"),
        )

    def pick(self, start: np.ndarray, end: np.ndarray, u: np.ndarray) -> np.ndarray:
        """For each (start, end, u): the product at share u of the group's popularity (groups
        are never empty here)."""
        lo, hi = self.cumulative[start], self.cumulative[end]
        at = np.searchsorted(self.cumulative, lo + u * (hi - lo), "right") - 1
        return self.order[np.clip(at, start, end - 1)]


@dataclass
class Tastes:
    """Every person's favourite categories and brands, and the catalogue's complements."""

    category: np.ndarray  # persons x FAVOURITES, category index
    share: np.ndarray  # persons x FAVOURITES, cumulative share of attention (last = 1)
    brand: np.ndarray  # persons x FAVOURITE_BRANDS, brand index
    loyalty: np.ndarray  # per person: chance a pick is a favourite brand
    staple: np.ndarray  # persons x FAVOURITES: share u of the staple pick in that category
    complements: np.ndarray  # base products x 2: same category, sibling category
    category_mass: np.ndarray  # per category: cumulative share of popularity (last = 1)
    consumable: np.ndarray  # per category: bool
    picker: Picker


def _top_k(rng: np.random.Generator, log_weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct columns per row, drawn without replacement with the rows' weights (the
    Gumbel top-k trick); columns of weight 0 (log -inf) never, while others remain."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    ranked = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, ranked, axis=1)


def _category_masses(catalogue_category: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    return np.bincount(catalogue_category, weights=popularity, minlength=len(vocab.CATEGORIES))


def _complements(
    rng: np.random.Generator, category: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Per base product: a complement in its own category and one in a sibling category
    (same first level; its own category again when it has no sibling with products, itself
    when it is alone there), each by popularity."""
    base = len(category)
    first = np.array([path.split(" > ")[0] for path, *_ in vocab.CATEGORIES])
    out = np.empty((base, 2), dtype=np.int64)
    for k in range(base):
        same = np.flatnonzero((category == category[k]) & (np.arange(base) != k))
        sibling = np.flatnonzero(
            (first[category] == first[category[k]]) & (category != category[k])
        )
        for slot, options in enumerate((same, sibling if len(sibling) else same)):
            if len(options) == 0:
                out[k, slot] = k
                continue
            weights = popularity[options]
            out[k, slot] = options[rng.choice(len(options), p=weights / weights.sum())]
    return out


def make_tastes(
    ctx: Context,
    gender: np.ndarray,
    category: np.ndarray,
    brand: np.ndarray,
    popularity: np.ndarray,
) -> Tastes:
    """Tastes of the persons (their `gender`) over the base products (`category`, `brand`,
    `popularity` of each)."""
    n = len(gender)
    mass = _category_masses(category, popularity)
    first = [path.split(" > ")[0] for path, *_ in vocab.CATEGORIES]
    with np.errstate(divide="ignore"):
        log_mass = np.log(mass)
    tilt = np.zeros((4, len(first)))
    for g, levels in GENDER_TILT.items():
        tilt[g] = np.log([levels.get(level, 1.0) for level in first])
    person_rng = ctx.rng(PEOPLE, TASTE_STREAM)
    available = int((mass > 0).sum())
    k = min(FAVOURITES, available)
    favourite = _top_k(person_rng, log_mass[None, :] + tilt[gender], k)
    if k < FAVOURITES:  # a tiny catalogue: repeat the last favourite
        favourite = np.concatenate([favourite, np.repeat(favourite[:, -1:], FAVOURITES - k, 1)], 1)
    shares = person_rng.dirichlet(FAVOURITE_SHARES, size=n)
    brand_mass = np.bincount(brand, weights=popularity, minlength=len(vocab.BRANDS))
    with np.errstate(divide="ignore"):
        log_brand = np.log(brand_mass)
    n_brands = min(FAVOURITE_BRANDS, int((brand_mass > 0).sum()))
    brands = _top_k(person_rng, np.broadcast_to(log_brand, (n, len(brand_mass))), n_brands)
    loyalty = person_rng.beta(2, 3, size=n)
    staple = person_rng.random((n, FAVOURITES))
    return Tastes(
        category=favourite,
        share=np.cumsum(shares, axis=1),
        brand=np.concatenate([brands, brands[:, :1]], axis=1)[:, :FAVOURITE_BRANDS],
        loyalty=loyalty,
        staple=staple,
        complements=_complements(ctx.rng(PRODUCTS, TASTE_STREAM), category, popularity),
        category_mass=np.cumsum(mass) / mass.sum(),
        consumable=np.array([path in CONSUMABLES for path, *_ in vocab.CATEGORIES]),
        picker=Picker.build(category, brand, popularity),
    )


def missions(rng: np.random.Generator, tastes: Tastes, person: np.ndarray) -> np.ndarray:
    """A category per entry of `person`: one of their favourites by their shares, or (EXPLORE)
    any category by the shop's mix."""
    u = rng.random(len(person))
    slot = (u[:, None] >= tastes.share[person]).sum(axis=1).clip(0, FAVOURITES - 1)
    favourite = tastes.category[person, slot]
    anywhere = np.searchsorted(tastes.category_mass, rng.random(len(person)), "right")
    anywhere = anywhere.clip(0, len(tastes.category_mass) - 1)
    return np.where(rng.random(len(person)) < EXPLORE, anywhere, favourite)


def picks(
    rng: np.random.Generator,
    tastes: Tastes,
    person: np.ndarray,
    category: np.ndarray,
    *,
    staples: bool,
) -> np.ndarray:
    """A product in `category` for each `person`: their staple when the category is a
    consumable favourite (REBUY, with `staples`), else by popularity among their favourite
    brands (by their loyalty, when the category has them) or among all its products."""
    m = len(person)
    p = tastes.picker
    n_brands = len(vocab.BRANDS)
    start, end = p.category_start[category], p.category_end[category]
    which = tastes.brand[person, rng.integers(0, FAVOURITE_BRANDS, size=m)]
    key = category * n_brands + which
    loyal = (rng.random(m) < tastes.loyalty[person]) & (p.brand_end[key] > p.brand_start[key])
    start = np.where(loyal, p.brand_start[key], start)
    end = np.where(loyal, p.brand_end[key], end)
    chosen = p.pick(start, end, rng.random(m))
    if staples:
        slot_match = tastes.category[person] == category[:, None]
        has = slot_match.any(axis=1) & tastes.consumable[category]
        slot = slot_match.argmax(axis=1)
        c0, c1 = p.category_start[category], p.category_end[category]
        staple = p.pick(c0, c1, tastes.staple[person, slot])
        chosen = np.where(has & (rng.random(m) < REBUY), staple, chosen)
    return chosen


def order_line_skus(
    ctx: Context,
    tastes: Tastes,
    order_person: np.ndarray,
    line_order: np.ndarray,
    line_number: np.ndarray,
    fallback: np.ndarray,
) -> np.ndarray:
    """The product of every order line: taste-driven for known persons (see the module
    docstring), `fallback` (the shop's popularity) for anonymous till sales."""
    rng = ctx.rng(ORDERS, TASTE_STREAM)
    known_order = order_person >= 0
    safe = np.maximum(order_person, 0)
    mission = missions(rng, tastes, safe)
    sku = fallback.copy()
    for position in range(1, int(line_number.max(initial=0)) + 1):
        lines = np.flatnonzero((line_number == position) & known_order[line_order])
        if not len(lines):
            continue
        orders = line_order[lines]
        person = safe[orders]
        if position == 1:
            sku[lines] = picks(rng, tastes, person, mission[orders], staples=True)
            continue
        u = rng.random(len(lines))
        previous = sku[lines - 1]
        complement = tastes.complements[previous, rng.integers(0, 2, size=len(lines))]
        fresh = missions(rng, tastes, person)
        category = np.where(u < COMPLEMENT + SAME_MISSION, mission[orders], fresh)
        picked = picks(rng, tastes, person, category, staples=True)
        sku[lines] = np.where(u < COMPLEMENT, complement, picked)
    return sku


def browse_skus(
    rng: np.random.Generator, tastes: Tastes, person: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Products of browsing events: for known persons (person >= 0) a pick by their taste
    (BROWSE_TASTE of the time), else `fallback` (the shop's popularity)."""
    known = person >= 0
    safe = np.maximum(person, 0)
    follow = known & (rng.random(len(person)) < BROWSE_TASTE)
    category = missions(rng, tastes, safe)
    picked = picks(rng, tastes, safe, category, staples=False)
    return np.where(follow, picked, fallback)
