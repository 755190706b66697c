"""Products feed: a Google Merchant Center style RSS 2.0 catalogue, one full snapshot per day.

Files: `products/catalogue_<end-2>.xml`, `<end-1>`, `<end>`; between snapshots a few prices and
stock states change and a few new products appear. Deliberate mess: malformed extra items
(no g:id, price "abc GBP", availability "limited") with fresh skus, one item repeated inside one
snapshot (a duplicate within the file), and `catalogue_<end-1>_partial.xml`, a copy cut off in
the middle of an element that no XML parser can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from xml.sax.saxutils import escape

import numpy as np

from ml.synthetic import vocab
from ml.synthetic.context import GHOSTS, PRODUCTS, Context
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "products"
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")
RATES = {"GBP": 1.0, "EUR": 1.17, "USD": 1.27}


@dataclass
class Catalogue:
    """Every product of the shop over the three snapshots."""

    sku_num: np.ndarray  # every product; the first `base` are in all snapshots
    base: int
    category: np.ndarray
    brand: np.ndarray
    title: list[str]
    price: np.ndarray  # GBP cents
    popularity: np.ndarray  # probabilities over the base products (orders, product views)
    first_snapshot: np.ndarray  # 0, 1 or 2

    def skus(self) -> list[str]:
        """SKU-###### of every product, in catalogue order (a new list each call)."""
        return [f"SKU-{s:06d}" for s in self.sku_num.tolist()]

    def price_in(self, currency: str) -> np.ndarray:
        """List prices in a currency, charm-priced (…​.99) outside GBP."""
        if currency == "GBP":
            return self.price
        units = np.maximum(np.round(self.price * RATES[currency] / 100).astype(np.int64), 1)
        return units * 100 - 1


def size_for(customers: int) -> int:
    """A few hundred products at 5,000 customers, growing slowly with size."""
    return max(60, round(300 * (customers / 5000) ** 0.25))


def make_catalogue(ctx: Context) -> Catalogue:
    """The products: base ones in every snapshot, a few added in each later one; branded
    titles, charm prices and a long-tailed popularity."""
    rng = ctx.rng(PRODUCTS, 1)
    base = size_for(ctx.customers)
    added = max(1, round(0.01 * base))
    total = base + 2 * added
    sku_num = rng.choice(np.arange(100, 900_000), size=total, replace=False)
    category = rng.integers(0, len(vocab.CATEGORIES), size=total)
    brand = rng.integers(0, len(vocab.BRANDS), size=total)
    titles, prices = [], []
    for k in range(total):
        path, nouns, adjectives, (low, high) = vocab.CATEGORIES[category[k]]
        noun = nouns[int(rng.integers(len(nouns)))]
        adjective = adjectives[int(rng.integers(len(adjectives)))]
        colour = vocab.COLOURS[int(rng.integers(len(vocab.COLOURS)))]
        titles.append(f"{vocab.BRANDS[brand[k]]} {adjective} {noun} – {colour}")
        pounds = low + (high - low) * rng.random()
        prices.append(
            max(1, int(pounds)) * 100 + int(rng.choice([99, 95, 0, 50], p=[0.6, 0.2, 0.1, 0.1]))
        )
    weights = 1.0 / (np.arange(base) + 10.0) ** 0.9
    weights = weights[rng.permutation(base)]
    first = np.concatenate([np.zeros(base, np.int64), np.ones(added, np.int64), np.full(added, 2)])
    return Catalogue(
        sku_num=sku_num,
        base=base,
        category=category,
        brand=brand,
        title=titles,
        price=np.array(prices, dtype=np.int64),
        popularity=weights / weights.sum(),
        first_snapshot=first,
    )


def item_xml(
    sku: str | None, title: str, category: str, brand: str, price: str, availability: str
) -> str:
    """One RSS <item> of the feed (no g:id and no link when `sku` is None)."""
    id_line = f"<g:id>{sku}</g:id>" if sku is not None else ""
    link = f"<link>{vocab.SITE}/p/{sku}</link>" if sku is not None else ""
    return (
        f"<item>{id_line}<title>{escape(title)}</title>{link}"
        f"<g:product_type>{escape(category)}</g:product_type><g:brand>{escape(brand)}</g:brand>"
        f"<g:price>{price}</g:price><g:availability>{availability}</g:availability>"
        f"<g:condition>new</g:condition></item>\n"
    )


HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">\n<channel>\n'
    "<title>Teal shop product feed</title>\n<link>https://shop.teal.example</link>\n"
    "<description>Full catalogue snapshot {date}</description>\n"
)
TAIL = "</channel>\n</rss>\n"
GHOST_KINDS = (
    ("product_id", "missing_required"),
    ("price", "bad_decimal"),
    ("availability", "unknown_enum"),
)


def _price_text(cents: int) -> str:
    """A GBP price in cents as the feed writes it, e.g. "12.99 GBP"."""
    return f"{cents // 100}.{cents % 100:02d} GBP"


def _snapshot_items(
    cat: Catalogue,
    skus: list[str],
    present: np.ndarray,
    price: np.ndarray,
    availability: np.ndarray,
) -> list[str]:
    """The <item> of every product present in a snapshot, at that day's price and stock."""
    return [
        item_xml(
            skus[k],
            cat.title[k],
            vocab.CATEGORIES[cat.category[k]][0],
            vocab.BRANDS[cat.brand[k]],
            _price_text(price[k]),
            AVAILABILITY[availability[k]],
        )
        for k in present.tolist()
    ]


def _ghost_items(
    ghost_rng: np.random.Generator,
    cat: Catalogue,
    skus: list[str],
    n: int,
    price: np.ndarray,
    specs: list[tuple[str, str]],
    rows: int,
) -> list[BadRow]:
    """Malformed items placed among `rows` valid ones, each with a fresh sku (added to
    `skus`, so never reused) and the title of a random product: no g:id, a price "abc GBP"
    or availability "limited"."""
    bad = []
    for at, (field, kind) in zip(spread(ghost_rng, rows, len(specs)), specs, strict=True):
        sku = f"SKU-{900_000 + int(ghost_rng.integers(100_000)):06d}"
        while sku in skus:
            sku = f"SKU-{900_000 + int(ghost_rng.integers(100_000)):06d}"
        skus.append(sku)  # fresh and never reused
        k = int(ghost_rng.integers(n))
        values = {
            "sku": sku,
            "title": cat.title[k],
            "category": vocab.CATEGORIES[cat.category[k]][0],
            "brand": vocab.BRANDS[cat.brand[k]],
            "price": _price_text(price[k]),
            "availability": "in_stock",
        }
        if kind == "missing_required":
            values["sku"] = None
        elif kind == "bad_decimal":
            values["price"] = "abc GBP"
        else:
            values["availability"] = "limited"
        bad.append(BadRow(at, item_xml(**values), field, kind))
    return bad


def write(ctx: Context, cat: Catalogue, landing: Landing) -> None:
    """Write the last three daily snapshots of the catalogue (prices and stock move a little
    between them), with malformed items, a repeated item and a broken partial copy."""
    rng = ctx.rng(PRODUCTS, 2)
    ghost_rng = ctx.rng(GHOSTS, 3)
    skus = cat.skus()
    n = len(skus)
    availability = rng.choice(4, size=n, p=[0.85, 0.09, 0.02, 0.04])
    price = cat.price.copy()
    dates = [ctx.end - timedelta(days=d) for d in (2, 1, 0)]
    specs = allocate(GHOST_KINDS, 3 * n)
    ghost_file = [i % 3 for i in range(len(specs))]
    for s, day in enumerate(dates):
        if s:  # the catalogue moves a little between snapshots
            flip = rng.random(n) < 0.03
            availability = np.where(
                flip, rng.choice(4, size=n, p=[0.7, 0.2, 0.04, 0.06]), availability
            )
            sale = rng.random(n) < 0.02
            price = np.where(sale, (price * 0.8).astype(np.int64) // 100 * 100 + 99, price)
        present = np.flatnonzero(cat.first_snapshot <= s)
        items = _snapshot_items(cat, skus, present, price, availability)
        duplicates = 0
        if s == 1:  # the feed export repeated one item: a duplicate within this file
            at = int(rng.integers(len(items) // 2, len(items)))
            items.insert(at, items[int(rng.integers(0, len(items) // 2))])
            duplicates = 1
        mine = [spec for spec, f in zip(specs, ghost_file, strict=True) if f == s]
        bad = _ghost_items(ghost_rng, cat, skus, n, price, mine, len(items))
        name = f"catalogue_{day.isoformat()}"
        text = landing.xml(
            FEED, f"{name}.xml", HEAD.format(date=day.isoformat()), items, TAIL, bad, duplicates
        )
        if s == 1:  # a second transfer of the same snapshot broke off mid-element
            cut = text.index("<g:price>", int(len(text) * 0.6)) + 5
            landing.corrupt(FEED, f"{name}_partial.xml", text[:cut].encode("utf-8"))
