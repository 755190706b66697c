"""Orders feed: order lines from the web shop (CSV) and the store tills (Parquet).

Files: monthly `orders/orders_YYYY-MM.csv` (web and store) for the two years up to the CRM full
export, then per day `web_YYYY-MM-DD.csv` and `store_YYYY-MM-DD.parquet` (every column a string).

What was bought follows each person's taste (ml/synthetic/tastes.py): favourite categories
and brands, products bought together, consumables bought again; anonymous till sales follow
the shop's popularity.

Who ordered (`customer_ref`): web orders carry the crm id of a logged-in customer (sometimes the
id of their duplicate record) or, for guest checkouts, an e-mail typed in any case with spaces;
store orders carry the loyalty card number or nothing (anonymous till sale). Web orders are
stamped in UTC (+00:00), tills in local time with the local offset. Deliberate mess: a few web
orders re-sent in the next day's file, and malformed extra rows about fresh order ids O9xxxxxxxx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import columns as col
from ml.synthetic import vocab
from ml.synthetic.columns import DAY
from ml.synthetic.context import GHOSTS, ORDERS, Context
from ml.synthetic.crm import Records, messy_emails
from ml.synthetic.people import People
from ml.synthetic.products import Catalogue
from ml.synthetic.tastes import Tastes, make_tastes, order_line_skus
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "orders"
COLUMNS = (
    "order_id",
    "line_number",
    "customer_ref",
    "ordered_at",
    "channel",
    "store_id",
    "sku",
    "quantity",
    "unit_price",
    "discount",
    "currency",
    "status",
)
STATUS = ("completed", "refunded", "cancelled")
CURRENCIES = ("GBP", "EUR", "USD")
ZONES = ("Europe/London", "Europe/Paris", "America/New_York")
REF_NONE, REF_CRM, REF_EMAIL, REF_LOYALTY = range(4)


@dataclass
class Orders:
    """Every order (web and till) in time order, and their lines."""

    person: np.ndarray  # -1 for anonymous till sales
    web: np.ndarray  # bool
    utc: np.ndarray  # epoch seconds
    local: np.ndarray  # wall clock written in ordered_at
    offset: np.ndarray  # seconds
    number: np.ndarray  # O#########
    store: np.ndarray  # -1 for web
    currency: np.ndarray
    status: np.ndarray
    ref_kind: np.ndarray
    ref_record: np.ndarray  # CRM record whose crm id / loyalty card is used
    ref_email: list[str | None]
    line_start: np.ndarray  # first line of each order in the line arrays
    line_count: np.ndarray
    # lines
    line_order: np.ndarray
    line_number: np.ndarray
    sku: np.ndarray  # index into the catalogue
    quantity: np.ndarray
    unit_price: np.ndarray  # cents
    discount: np.ndarray  # cents, -1 none
    tastes: Tastes  # who likes what (the clickstream's product views follow it too)


def make_stores(ctx: Context) -> np.ndarray:
    """Country index of stores S001, S002, ...: at least one per country, most in GB."""
    rng = ctx.rng(ORDERS, 1)
    count = max(len(vocab.COUNTRIES) + 1, round(12 * (ctx.customers / 5000) ** 0.3))
    extra = rng.choice(
        len(vocab.COUNTRIES), size=count - len(vocab.COUNTRIES), p=vocab.COUNTRY_WEIGHTS
    )
    return np.concatenate([np.arange(len(vocab.COUNTRIES)), extra])


def _orders_by_people(
    rng: np.random.Generator, people: People, start: int, end: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(person, instant, is web) of each order by a known person: skewed activity, nothing
    before the customer existed; account holders order on the web more often."""
    n = people.n
    first_possible = np.maximum(start, people.created + 2 * 3600)
    active = np.clip((end - first_possible) / (end - start), 0, 1)
    buyer = rng.random(n) < 0.85
    counts = rng.poisson(3.0 * people.activity * active * buyer)
    person = np.repeat(np.arange(n), counts)
    m = len(person)
    t = first_possible[person] + (rng.random(m) * (end - first_possible[person])).astype(np.int64)
    p_web = rng.beta(2, 2, size=n) * np.where(people.has_account, 1.0, 0.5)
    web = rng.random(m) < p_web[person]
    return person, t, web


def _order_stores(
    rng: np.random.Generator,
    people: People,
    person: np.ndarray,
    web: np.ndarray,
    stores: np.ndarray,
) -> np.ndarray:
    """The store of each order (-1 on the web): mostly the person's home store, else another
    in their country."""
    n, m = people.n, len(person)
    by_country = [np.flatnonzero(stores == c) for c in range(len(vocab.COUNTRIES))]
    home = np.zeros(n, np.int64)
    other = np.zeros(m, np.int64)
    for c, options in enumerate(by_country):
        mine = np.flatnonzero(people.country == c)
        home[mine] = options[(rng.random(len(mine)) * len(options)).astype(np.int64)]
        mine = np.flatnonzero(people.country[person] == c)
        other[mine] = options[(rng.random(len(mine)) * len(options)).astype(np.int64)]
    return np.where(web, -1, np.where(rng.random(m) < 0.8, home[person], other))


def _order_clocks(
    rng: np.random.Generator,
    t: np.ndarray,
    web: np.ndarray,
    store: np.ndarray,
    stores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTC instant, local wall clock, offset) of each order on its day: web any hour
    (evening peak) in UTC, tills 09:00-20:00 local time."""
    total = len(t)
    zone_of_country = np.array([ZONES.index(vocab.TIMEZONE[c]) for c in vocab.COUNTRIES])
    day = t // DAY
    web_tod = (rng.beta(5, 2.5, size=total) * DAY).astype(np.int64)
    till_tod = rng.integers(9 * 3600, 20 * 3600, size=total)
    zone = np.where(web, 0, zone_of_country[stores[np.maximum(store, 0)]])
    utc = np.where(web, day * DAY + web_tod, 0)
    local = np.where(web, utc, day * DAY + till_tod)
    offset = np.zeros(total, np.int64)
    for z, name in enumerate(ZONES):
        idx = np.flatnonzero(~web & (zone == z))
        utc[idx] = col.local_to_utc(local[idx], name)
        offset[idx] = local[idx] - utc[idx]
    return utc, local, offset


def _customer_refs(
    rng: np.random.Generator,
    people: People,
    rec: Records,
    person: np.ndarray,
    web: np.ndarray,
    utc: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(kind, CRM record, guest e-mail) of each order's customer_ref.

    Logged-in web orders carry a crm id (sometimes of the duplicate record), guest checkouts
    an e-mail; till sales the loyalty card of the original or duplicate record when shown.
    """
    total = len(person)
    known = person >= 0
    safe_person = np.maximum(person, 0)
    ref_kind = np.full(total, REF_NONE)
    ref_record = np.full(total, -1, dtype=np.int64)
    ref_email: list[str | None] = [None] * total
    dup = np.where(known, rec.dup_of[safe_person], -1)
    dup_created = np.where(dup >= 0, rec.created[np.maximum(dup, 0)], np.iinfo(np.int64).max)
    account = known & people.has_account[safe_person]
    logged_in = web & account
    ref_kind[logged_in] = REF_CRM
    use_dup = logged_in & (dup >= 0) & (utc >= dup_created + 2 * 3600) & (rng.random(total) < 0.3)
    ref_record[logged_in] = np.where(use_dup, dup, safe_person)[logged_in]
    guest = web & known & ~account
    ref_kind[guest] = REF_EMAIL
    choose_dup_email = rng.random(total) < 0.3
    for k in np.flatnonzero(guest).tolist():
        p = int(person[k])
        d = int(dup[k])
        ref_email[k] = rec.email[d] if d >= 0 and choose_dup_email[k] else rec.email[p]
    # till: the loyalty card of the original or of the duplicate record, when shown
    till = ~web & known
    orig_card = np.where(till, rec.loyalty_since[safe_person], -1)
    orig_ok = (orig_card >= 0) & (utc >= orig_card + 2 * 3600)
    dup_card = np.where(till & (dup >= 0), rec.loyalty_since[np.maximum(dup, 0)], -1)
    dup_ok = (dup_card >= 0) & (utc >= dup_card + 2 * 3600)
    prefer_dup = dup_ok & (~orig_ok | (rng.random(total) < 0.5))
    shown = rng.random(total) < 0.85
    card_record = np.where(prefer_dup, dup, np.where(orig_ok, safe_person, -1))
    use_card = till & shown & (card_record >= 0)
    ref_kind[use_card] = REF_LOYALTY
    ref_record[use_card] = card_record[use_card]
    return ref_kind, ref_record, ref_email


@dataclass
class OrderLines:
    """The lines of the orders: which order, its number, product, quantity and prices."""

    line_start: np.ndarray  # first line of each order
    line_count: np.ndarray  # lines of each order
    line_order: np.ndarray
    line_number: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray  # cents
    discount: np.ndarray  # cents, -1 none


def _order_lines(
    ctx: Context,
    rng: np.random.Generator,
    cat: Catalogue,
    currency: np.ndarray,
    person: np.ndarray,
    tastes: Tastes,
) -> OrderLines:
    """1-6 lines per order: products by the person's taste (popular ones for anonymous till
    sales), mostly one of each, priced in the order's currency, 12% with a discount."""
    total = len(currency)
    count = np.minimum(rng.geometric(0.5, size=total), 6)
    line_start = np.cumsum(count) - count
    n_lines = int(count.sum())
    line_order = np.repeat(np.arange(total), count)
    line_number = np.arange(n_lines) - line_start[line_order] + 1
    # the shop's popularity, drawn from this stream as ever (so every later draw of it is
    # unchanged), then the lines of known persons follow their taste (a stream of its own)
    popular = rng.choice(cat.base, size=n_lines, p=cat.popularity)
    sku = order_line_skus(ctx, tastes, person, line_order, line_number, popular)
    quantity = rng.choice(np.arange(1, 7), size=n_lines, p=[0.78, 0.15, 0.04, 0.015, 0.01, 0.005])
    price_tables = np.stack([cat.price_in(c) for c in CURRENCIES])
    unit_price = price_tables[currency[line_order], sku]
    discounted = rng.random(n_lines) < 0.12
    rate = rng.choice([0.10, 0.15, 0.20, 0.25], size=n_lines)
    discount = np.where(discounted, np.round(unit_price * quantity * rate).astype(np.int64), -1)
    return OrderLines(
        line_start, count, line_order, line_number, sku, quantity, unit_price, discount
    )


def make_orders(
    ctx: Context, people: People, rec: Records, cat: Catalogue, stores: np.ndarray
) -> Orders:
    """Two years of web and till orders up to the end date, in time order, with their lines."""
    rng = ctx.rng(ORDERS, 2)
    start, end = ctx.history_start_secs, ctx.end_secs
    currency_of_country = np.array([CURRENCIES.index(vocab.CURRENCY[c]) for c in vocab.COUNTRIES])
    person, t, web = _orders_by_people(rng, people, start, end)
    store = _order_stores(rng, people, person, web, stores)

    # anonymous till sales
    n_anon = int(0.4 * np.count_nonzero(~web))
    anon_store = rng.integers(0, len(stores), size=n_anon)
    anon_t = start + (rng.random(n_anon) * (end - start)).astype(np.int64)
    person = np.concatenate([person, np.full(n_anon, -1)])
    web = np.concatenate([web, np.zeros(n_anon, bool)])
    store = np.concatenate([store, anon_store]).astype(np.int64)
    t = np.concatenate([t, anon_t])

    utc, local, offset = _order_clocks(rng, t, web, store, stores)
    # nothing before the customer existed, nothing after the end, nothing before the history
    known = person >= 0
    created = np.where(known, people.created[np.maximum(person, 0)], 0)
    keep = (utc < end) & (local >= start) & (~known | (utc >= created + 2 * 3600))
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(utc[idx], kind="stable")]
    person, web, store, utc, local, offset = (
        a[idx] for a in (person, web, store, utc, local, offset)
    )
    total = len(idx)

    currency = np.where(
        web,
        currency_of_country[people.country[np.maximum(person, 0)]],
        currency_of_country[stores[np.maximum(store, 0)]],
    )
    status = np.where(
        web,
        rng.choice(3, size=total, p=[0.93, 0.045, 0.025]),
        rng.choice(3, size=total, p=[0.96, 0.04, 0.0]),
    )
    ref_kind, ref_record, ref_email = _customer_refs(rng, people, rec, person, web, utc)
    base = slice(0, cat.base)
    tastes = make_tastes(ctx, people.gender, cat.category[base], cat.brand[base], cat.popularity)
    lines = _order_lines(ctx, rng, cat, currency, person, tastes)
    number = 100_000_000 + np.cumsum(rng.integers(1, 4, size=total))
    return Orders(
        person=person,
        web=web,
        utc=utc,
        local=local,
        offset=offset,
        number=number,
        store=np.where(web, -1, store),
        currency=currency,
        status=status,
        ref_kind=ref_kind,
        ref_record=ref_record,
        ref_email=ref_email,
        **vars(lines),  # line_start, line_count, line_order, ... discount: the same names
        tastes=tastes,
    )


def _refs(ctx: Context, orders: Orders, rec: Records) -> pa.Array:
    """customer_ref per order (null when anonymous)."""
    rng = ctx.rng(ORDERS, 3)
    r = np.maximum(orders.ref_record, 0)
    crm = col.ids("C", rec.crm_num[r], 7)
    loyalty = col.ids("L", np.maximum(rec.loyalty_num[r], 0), 8)
    # guest e-mails as typed at checkout: often capitals or stray spaces
    email = messy_emails(col.strings([e or "" for e in orders.ref_email]), rng, 0.6)
    kind = pa.array(orders.ref_kind)
    return pc.choose(kind, pa.nulls(len(r), pa.string()), crm, email, loyalty)


def _columns(
    orders: Orders, refs: pa.Array, cat_skus: pa.Array, lines: np.ndarray
) -> list[pa.Array]:
    """The COLUMNS of the given lines, as text arrays (nulls where a value is absent)."""
    o = orders.line_order[lines]
    discount = orders.discount[lines]
    store = orders.store[o]
    return [
        col.ids("O", orders.number[o], 9),
        col.ints(orders.line_number[lines]),
        refs.take(pa.array(o)),
        col.timestamps(orders.local[o], b"T", col.offset_matrix(orders.offset[o])),
        pc.if_else(pa.array(orders.web[o]), "web", "store"),
        pc.if_else(
            pa.array(store >= 0),
            col.ids("S", np.maximum(store, 0) + 1, 3),
            pa.scalar(None, pa.string()),
        ),
        cat_skus.take(pa.array(orders.sku[lines])),
        col.ints(orders.quantity[lines]),
        col.money(orders.unit_price[lines]),
        pc.if_else(
            pa.array(discount >= 0),
            col.money(np.maximum(discount, 0)),
            pa.scalar(None, pa.string()),
        ),
        col.take(CURRENCIES, orders.currency[o]),
        col.take(STATUS, orders.status[o]),
    ]


CSV_GHOSTS = (
    ("quantity", "negative_quantity"),
    ("ordered_at", "bad_timestamp"),
    ("status", "unknown_enum"),
    ("currency", "unknown_enum"),
    ("", "wrong_column_count"),
    ("", "non_utf8"),
)
PARQUET_GHOSTS = (("quantity", "negative_quantity"), ("channel", "unknown_enum"))
BAD_TIMESTAMPS = (
    "2026-13-01T10:22:03+00:00",
    "31/10/2026 10:22",
    "2026-02-30T09:15:00+01:00",
    "yesterday 14:00",
)
LATIN1_EMAILS = ("zo\xeb.dupont@orange.fr", "j\xfcrgen.weber@web.de", "ram\xf3n.garcia@gmail.com")


def ghost_row(
    rng: np.random.Generator,
    number: int,
    day: int,
    web: bool,
    cat_skus: list[str],
    spec: tuple[str, str],
    n_stores: int,
) -> dict[str, str]:
    """An order line about a fresh order id with exactly one deliberate defect."""
    field, kind = spec
    local = day * DAY + int(rng.integers(9 * 3600, 20 * 3600))
    stamp = col.timestamps(np.array([local]), b"T", b"+00:00")[0].as_py()
    row = {
        "order_id": f"O{900_000_000 + number:09d}",
        "line_number": "1",
        "customer_ref": "",
        "ordered_at": stamp,
        "channel": "web" if web else "store",
        "store_id": "" if web else f"S{int(rng.integers(n_stores)) + 1:03d}",
        "sku": cat_skus[int(rng.integers(len(cat_skus)))],
        "quantity": "1",
        "unit_price": f"{int(rng.integers(5, 150))}.99",
        "discount": "",
        "currency": "GBP",
        "status": "completed",
    }
    if kind == "negative_quantity":
        row["quantity"] = str(-int(rng.integers(1, 4)))
    elif kind == "bad_timestamp":
        row["ordered_at"] = BAD_TIMESTAMPS[number % len(BAD_TIMESTAMPS)]
    elif field == "status":
        row["status"] = "shipped"
    elif field == "currency":
        row["currency"] = "JPY"
    elif field == "channel":
        row["channel"] = "kiosk"
    return row


def _encode(row: dict[str, str], spec: tuple[str, str], number: int) -> bytes:
    """A malformed row as a CSV line: a column short or extra, Latin-1 bytes, or plain."""
    field, kind = spec
    if kind == "wrong_column_count":
        values = list(row.values())
        return ",".join(values[:-1] if number % 2 else [*values, "gift"]).encode()
    if kind == "non_utf8":  # a guest e-mail arrived Latin-1 encoded
        row = dict(row, customer_ref="\x00")
        head, tail = col.csv_row(list(row.values())).split("\x00")
        return (
            head.encode()
            + LATIN1_EMAILS[number % len(LATIN1_EMAILS)].encode("latin-1")
            + tail.encode()
        )
    return col.csv_row(list(row.values())).encode()


def order_files(ctx: Context, orders: Orders) -> list[tuple[str, str, np.ndarray, list[date]]]:
    """(name, format, line indices, dates covered) of every orders file: one CSV per month of
    the history up to the full export, then per delta day a store Parquet and a web CSV."""
    file_day = orders.local // DAY  # the date written in ordered_at decides the file
    line_day = file_day[orders.line_order]
    line_web = orders.web[orders.line_order]
    full_day = col.epoch_day(ctx.full_export)
    files: list[tuple[str, str, np.ndarray, list[date]]] = []
    month = ctx.history_start.replace(day=1)
    while month <= ctx.full_export:
        following = (month + timedelta(days=32)).replace(day=1)
        lo = max(col.epoch_day(month), col.epoch_day(ctx.history_start))
        hi = min(col.epoch_day(following) - 1, full_day)
        lines = np.flatnonzero((line_day >= lo) & (line_day <= hi))
        days = [col.EPOCH + timedelta(days=d) for d in range(lo, hi + 1)]
        files.append((f"orders_{month:%Y-%m}.csv", "csv", lines, days))
        month = following
    for kind, is_web in (("store", False), ("web", True)):
        for d in ctx.delta_dates:
            lines = np.flatnonzero((line_day == col.epoch_day(d)) & (line_web == is_web))
            name = f"{kind}_{d.isoformat()}.{'csv' if is_web else 'parquet'}"
            files.append((name, "csv" if is_web else "parquet", lines, [d]))
    return files


def _ghost_plan(
    rng: np.random.Generator, files: list[tuple[str, str, np.ndarray, list[date]]]
) -> dict[int, list[tuple[str, str]]]:
    """The malformed rows of each file (by file index): every file of a format gets one of
    that format's kinds in turn, the rest go to files at random."""
    csv_total = sum(len(f[2]) for f in files if f[1] == "csv")
    parquet_total = sum(len(f[2]) for f in files if f[1] == "parquet")
    plan: dict[int, list[tuple[str, str]]] = {}
    for kinds, fmt, total in (
        (CSV_GHOSTS, "csv", csv_total),
        (PARQUET_GHOSTS, "parquet", parquet_total),
    ):
        targets = [i for i, f in enumerate(files) if f[1] == fmt]
        for j, spec in enumerate(allocate(kinds, total)):
            target = (
                targets[j % len(targets)]
                if j < len(targets)
                else targets[int(rng.integers(len(targets)))]
            )
            plan.setdefault(target, []).append(spec)
    return plan


def _with_resent_orders(
    rng: np.random.Generator, orders: Orders, lines: np.ndarray, previous_web: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """(the web file's lines with a few of yesterday's orders re-sent, all their lines
    identical, inserted at one place; how many lines were re-sent)."""
    if previous_web is None or not len(previous_web):
        return lines, 0
    prev_orders = np.unique(orders.line_order[previous_web])
    count = max(1, round(0.005 * len(prev_orders)))
    again = np.sort(rng.choice(prev_orders, size=min(count, len(prev_orders)), replace=False))
    resent = np.concatenate(
        [
            np.arange(orders.line_start[o], orders.line_start[o] + orders.line_count[o])
            for o in again.tolist()
        ]
    )
    at = int(rng.integers(0, len(lines) + 1))
    return np.concatenate([lines[:at], resent, lines[at:]]), len(resent)


def _ghost_rows(
    ghost_rng: np.random.Generator,
    specs: list[tuple[str, str]],
    file: tuple[str, str, np.ndarray, list[date]],
    rows: int,
    numbers_used: int,
    sku_list: list[str],
    n_stores: int,
) -> list[BadRow]:
    """The malformed rows of one file of `rows` valid rows, numbered after `numbers_used`:
    CSV lines, or Parquet rows whose absent values are nulls as in the valid rows."""
    name, fmt, _, days = file
    bad = []
    for at, spec in zip(spread(ghost_rng, rows, len(specs)), specs, strict=True):
        ghost_number = numbers_used + len(bad) + 1
        day = days[int(ghost_rng.integers(len(days)))]
        web = name.startswith("web_") or (name.startswith("orders_") and ghost_number % 2 == 0)
        row = ghost_row(ghost_rng, ghost_number, col.epoch_day(day), web, sku_list, spec, n_stores)
        data: bytes | dict[str, str | None]
        if fmt == "csv":
            data = _encode(row, spec, ghost_number)
        else:  # Parquet: absent values are nulls, as in the valid rows
            data = {k: (v if v != "" else None) for k, v in row.items()}
        bad.append(BadRow(at, data, spec[0], spec[1]))
    return bad


def write(
    ctx: Context, orders: Orders, rec: Records, cat: Catalogue, stores: np.ndarray, landing: Landing
) -> None:
    """Write the monthly and daily orders files, with re-sent web orders and malformed rows."""
    rng = ctx.rng(ORDERS, 4)
    ghost_rng = ctx.rng(GHOSTS, 2)
    refs = _refs(ctx, orders, rec)
    sku_list = cat.skus()[: cat.base]
    cat_skus = col.strings(cat.skus())
    files = order_files(ctx, orders)
    plan = _ghost_plan(rng, files)
    ghost_number = 0
    previous_web: np.ndarray | None = None
    for i, file in enumerate(files):
        name, fmt, lines, _ = file
        body, duplicates = lines, 0
        if name.startswith("web_"):
            # the web shop re-sent a few of yesterday's orders (all their lines, identical)
            body, duplicates = _with_resent_orders(rng, orders, lines, previous_web)
            previous_web = lines
        table_columns = _columns(orders, refs, cat_skus, body)
        specs = plan.get(i, [])
        bad = _ghost_rows(ghost_rng, specs, file, len(body), ghost_number, sku_list, len(stores))
        ghost_number += len(specs)
        if fmt == "csv":
            landing.text(
                FEED, name, col.csv_lines(table_columns), bad, duplicates, header=",".join(COLUMNS)
            )
        else:
            table = pa.table(dict(zip(COLUMNS, table_columns, strict=True)))
            landing.parquet(FEED, name, table, bad, duplicates)
