"""Clickstream feed: tracking events from the web shop and e-mails, one JSON object per line.

Files: `clickstream/events_YYYY-MM-DD.jsonl`, one per day for the 90 days up to end_date,
generated and written day by day so memory stays bounded at any size.

How the behaviour is modelled:

* A *slot* is a person on a device; each slot holds one cookie, or two when the person cleared
  cookies mid-window (several cookies per person over time). Family devices are shared by 2-4
  members of a household: one device id, a cookie and a user id per member.
* Sessions: browsing (skewed: many light users, a few heavy ones), purchase sessions ending in
  the `purchase` of a real web order ({"order_id": ...}), e-mail opens/clicks of the weekly
  campaigns for opted-in customers, and anonymous visitors who never log in.
* Log in: a cookie starts anonymous; in its first session with a login the `login` event and
  everything after it on that cookie carry the user_id, earlier events do not. Cookies that were
  logged in before the window carry the user_id throughout; guest buyers never log in.

Deliberate mess: ~1% of events repeated with the same event_id (identical line) later in the
same file, ~0.5% re-sent in the next day's file, ~1% late (in a file 1-3 days after their day),
and malformed extra lines (broken JSON, an array, unknown event_type, bad occurred_at, no
event_id, non-UTF-8 bytes) about fresh event ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote_plus

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic import columns as col
from ml.synthetic import vocab
from ml.synthetic.columns import DAY
from ml.synthetic.consent import Consents
from ml.synthetic.context import CLICKSTREAM, CLICKSTREAM_DAYS, Context
from ml.synthetic.orders import REF_EMAIL, Orders
from ml.synthetic.people import People
from ml.synthetic.products import Catalogue
from ml.synthetic.tastes import TASTE_STREAM, browse_skus
from ml.synthetic.writers import BadRow, Landing, allocate, spread

FEED = "clickstream"
EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
    "login",
    "email_open",
    "email_click",
)
(
    PAGE_VIEW,
    PRODUCT_VIEW,
    SEARCH,
    ADD_TO_CART,
    REMOVE_FROM_CART,
    CHECKOUT_START,
    PURCHASE,
    LOGIN,
    EMAIL_OPEN,
    EMAIL_CLICK,
) = range(10)
BROWSE, BUY, EMAIL, ANON = range(4)  # session kinds
NEVER = np.iinfo(np.int64).max
LOGIN_METHODS = ("password", "password", "password", "google", "apple", "magic_link")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# what a browsing visitor does after the landing page
NEXT_EVENT = np.array([0.28, 0.40, 0.14, 0.11, 0.04, 0.03])


def q(value: str) -> str:
    """`value` as a JSON string (quoted, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Vocab:
    """Pre-quoted JSON fragments, picked by index for every event."""

    url: pa.Array
    props: pa.Array
    url_page: int
    url_product: int
    url_search: int
    url_basket: int
    url_checkout: int
    url_confirmation: int
    url_login: int
    url_campaign: int
    url_null: int
    p_referrer: int
    p_query: int
    p_quantity: int
    p_items: int
    p_method: int
    p_campaign: int


def make_vocab(skus: list[str], campaigns: list[str]) -> Vocab:
    """Every url and properties fragment an event can carry, pre-quoted, with their offsets."""
    urls: list[str] = []
    props = ["{}"]
    offsets = {}
    offsets["page"] = len(urls)
    urls += [q(vocab.SITE + p) for p in vocab.PAGES]
    offsets["product"] = len(urls)
    urls += [q(f"{vocab.SITE}/p/{s}") for s in skus]
    offsets["search"] = len(urls)
    urls += [q(f"{vocab.SITE}/search?q={quote_plus(s)}") for s in vocab.SEARCH_QUERIES]
    offsets["basket"] = len(urls)
    urls += [
        q(vocab.SITE + p)
        for p in ("/basket", "/checkout", "/checkout/confirmation", "/account/login")
    ]
    offsets["campaign"] = len(urls)
    urls += [q(f"{vocab.SITE}/?utm_source=email&utm_campaign={c}") for c in campaigns]
    offsets["null"] = len(urls)
    urls.append("null")
    p_referrer = len(props)
    props += ['{"referrer":' + q(r) + "}" for r in vocab.REFERRERS]
    p_query = len(props)
    props += ['{"query":' + q(s) + "}" for s in vocab.SEARCH_QUERIES]
    p_quantity = len(props) - 1  # + quantity (1..3)
    props += [f'{{"quantity":{k}}}' for k in (1, 2, 3)]
    p_items = len(props) - 1  # + items (1..6)
    props += [f'{{"items":{k}}}' for k in range(1, 7)]
    p_method = len(props)
    props += ['{"method":' + q(m) + "}" for m in LOGIN_METHODS]
    p_campaign = len(props)
    props += ['{"campaign":' + q(c) + "}" for c in campaigns]
    return Vocab(
        url=col.strings(urls),
        props=col.strings(props),
        url_page=offsets["page"],
        url_product=offsets["product"],
        url_search=offsets["search"],
        url_basket=offsets["basket"],
        url_checkout=offsets["basket"] + 1,
        url_confirmation=offsets["basket"] + 2,
        url_login=offsets["basket"] + 3,
        url_campaign=offsets["campaign"],
        url_null=offsets["null"],
        p_referrer=p_referrer,
        p_query=p_query,
        p_quantity=p_quantity,
        p_items=p_items,
        p_method=p_method,
        p_campaign=p_campaign,
    )


@dataclass
class Web:
    """Who browses on what: slots (person x device), cookies and devices."""

    slot_person: np.ndarray  # -1 for anonymous visitors
    slot_device: np.ndarray
    slot_cookie: np.ndarray  # first cookie
    slot_cookie2: np.ndarray  # cookie after the split day, or the first again
    slot_split: np.ndarray  # window day on which the second cookie takes over
    own_first: np.ndarray  # per person: first own slot, -1 when not a web user
    own_count: np.ndarray
    family_slot: np.ndarray  # per person: slot on a shared family device, -1 if none
    cookie_person: np.ndarray
    cookie_prelogged: np.ndarray
    n_devices: int
    shared_devices: int
    cookie_text: pa.Array  # '"ck_…"' per cookie
    device_text: pa.Array  # '"dv_…"' per device, then 'null'


def _family_devices(
    rng: np.random.Generator, people: People, n_own: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Households with 2+ account holders sometimes share a tablet or laptop (at least one
    household does): (per person: slot on the family device or -1, the slots' persons, the
    slots' devices, how many family devices). Slots and devices are numbered after `n_own`."""
    family_slot = np.full(people.n, -1, dtype=np.int64)
    members = np.flatnonzero(people.has_account)
    hh = people.household[members]
    starts = np.flatnonzero(np.r_[True, hh[1:] != hh[:-1]])
    sizes = np.diff(np.r_[starts, len(members)])
    multi = np.flatnonzero(sizes >= 2)
    chosen = multi[rng.random(len(multi)) < 0.25]
    if len(chosen) == 0 and len(multi):
        chosen = multi[:1]
    family_persons, family_device = [], []
    next_slot = n_own
    for d, g in enumerate(chosen.tolist()):
        size = min(int(sizes[g]), 4)
        share = int(rng.integers(2, size + 1))
        who = members[starts[g] : starts[g] + sizes[g]][:share]
        family_persons.extend(who.tolist())
        family_device.extend([n_own + d] * len(who))
        family_slot[who] = np.arange(next_slot, next_slot + len(who))
        next_slot += len(who)
    persons = np.array(family_persons, dtype=np.int64)
    return family_slot, persons, np.array(family_device, dtype=np.int64), len(chosen)


def make_web(ctx: Context, people: People, guest_buyer: np.ndarray) -> Web:
    """Who browses on what: each account holder's 1-3 own devices (a guest buyer's one),
    shared family devices, anonymous visitors, and the cookies on them."""
    rng = ctx.rng(CLICKSTREAM, 1)
    n = people.n
    account = people.has_account
    own_count = np.where(account, 1 + rng.binomial(2, 0.35, size=n), np.where(guest_buyer, 1, 0))
    own_first = np.where(own_count > 0, np.cumsum(own_count) - own_count, -1)
    n_own = int(own_count.sum())
    family_slot, family_persons, family_device, shared = _family_devices(rng, people, n_own)
    n_devices = n_own + shared

    # anonymous visitors: one device, one cookie, never a user id
    n_anon = round(0.4 * n)
    persons = np.concatenate(
        [np.repeat(np.arange(n), own_count), family_persons, np.full(n_anon, -1)]
    )
    devices = np.concatenate([np.arange(n_own), family_device, n_devices + np.arange(n_anon)])
    n_devices += n_anon
    n_slots = len(persons)

    # cookies: a second one on some slots after the person cleared cookies
    two = (rng.random(n_slots) < 0.3) & (persons >= 0)
    split = np.where(two, rng.integers(10, CLICKSTREAM_DAYS - 10, size=n_slots), CLICKSTREAM_DAYS)
    first_cookie = np.arange(n_slots)
    second = np.full(n_slots, -1)
    second[two] = n_slots + np.arange(int(two.sum()))
    cookie2 = np.where(two, second, first_cookie)
    cookie_person = np.concatenate([persons, persons[two]])
    prelogged = np.concatenate(
        [
            (persons >= 0) & account[np.maximum(persons, 0)] & (rng.random(n_slots) < 0.5),
            np.zeros(int(two.sum()), bool),  # a fresh cookie is never logged in yet
        ]
    )
    cookie_text = col.fixed(
        len(cookie_person), b'"ck_', col.random_tokens(rng, len(cookie_person), 12, col.ALNUM), b'"'
    )
    device_text = col.fixed(
        n_devices, b'"dv_', col.random_tokens(rng, n_devices, 10, col.ALNUM), b'"'
    )
    return Web(
        slot_person=persons,
        slot_device=devices,
        slot_cookie=first_cookie,
        slot_cookie2=cookie2,
        slot_split=split,
        own_first=own_first,
        own_count=own_count,
        family_slot=family_slot,
        cookie_person=cookie_person,
        cookie_prelogged=prelogged,
        n_devices=n_devices,
        shared_devices=shared,
        cookie_text=cookie_text,
        device_text=pa.concat_arrays([device_text, col.strings(["null"])]),
    )


@dataclass
class Sessions:
    """Every session of the window, by start time."""

    kind: np.ndarray
    slot: np.ndarray
    cookie: np.ndarray
    start: np.ndarray
    length: np.ndarray
    gap: np.ndarray
    login_at: np.ndarray  # event position of the login, if this is the cookie's login session
    wants_login: np.ndarray
    order: np.ndarray  # purchase: order index
    campaign: np.ndarray  # e-mail: campaign index
    logs_in: np.ndarray  # bool: the session holding its cookie's (first) login event
    login_time: np.ndarray  # per cookie: instant of the login (-1: before the window, NEVER: none)


def _pick_slot(rng: np.random.Generator, web: Web, person: np.ndarray) -> np.ndarray:
    """A slot for each person: one of their own devices, or (35%) the family device."""
    own = web.own_first[person] + (rng.random(len(person)) * web.own_count[person]).astype(np.int64)
    family = web.family_slot[person]
    return np.where((family >= 0) & (rng.random(len(person)) < 0.35), family, own)


def _cookie_at(web: Web, slot: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The cookie on each slot on that window day (the second one after its split day)."""
    return np.where(day < web.slot_split[slot], web.slot_cookie[slot], web.slot_cookie2[slot])


def campaign_names(ctx: Context) -> tuple[list[str], np.ndarray]:
    """Weekly campaigns: (names, send day within the window)."""
    days = np.arange(3, CLICKSTREAM_DAYS, 7)
    names = []
    for d in days.tolist():
        when = ctx.clickstream_start + timedelta(days=d)
        year, week, _ = when.isocalendar()
        if week % 3 == 0:
            names.append(f"sale-{MONTHS[when.month - 1]}-{year}")
        else:
            names.append(f"newsletter-{year}-w{week:02d}")
    return names, days


class SessionParts:
    """Sessions collected kind by kind, one array per column and kind, joined at the end."""

    COLUMNS = ("kind", "slot", "start", "length", "gap", "wants", "order", "campaign")

    def __init__(self) -> None:
        """Start with no sessions."""
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in self.COLUMNS}

    def add(
        self,
        kind: int,
        slot: np.ndarray,
        start: np.ndarray,
        length: np.ndarray,
        gap: np.ndarray,
        wants: np.ndarray,
        order: np.ndarray | None = None,
        campaign: np.ndarray | None = None,
    ) -> None:
        """Add sessions of one kind (order and campaign -1 when not given)."""
        m = len(slot)
        self.parts["kind"].append(np.full(m, kind))
        self.parts["slot"].append(slot)
        self.parts["start"].append(start)
        self.parts["length"].append(length)
        self.parts["gap"].append(gap)
        self.parts["wants"].append(wants)
        self.parts["order"].append(order if order is not None else np.full(m, -1))
        self.parts["campaign"].append(campaign if campaign is not None else np.full(m, -1))

    def joined(self) -> dict[str, np.ndarray]:
        """Every column over all the sessions added, in the order they were added."""
        return {k: np.concatenate(v) for k, v in self.parts.items()}


def _browsing_sessions(
    rng: np.random.Generator,
    parts: SessionParts,
    people: People,
    web: Web,
    created: np.ndarray,
    w0: int,
    w1: int,
) -> None:
    """Browsing by web users: heavy-tailed activity, none before the customer signed up; a
    third of account holders' sessions want a login."""
    account = people.has_account
    users = np.flatnonzero(web.own_count > 0)
    rate = np.where(account[users], 2.2, 0.4) * people.activity[users]
    begin = np.maximum(w0, created[users])
    rate = rate * np.clip((w1 - begin) / (w1 - w0), 0, 1)
    person = np.repeat(users, rng.poisson(rate))
    lo = np.maximum(w0, created[person])
    start = lo + (rng.random(len(person)) * (w1 - lo)).astype(np.int64)
    length = np.minimum(rng.geometric(0.28, size=len(person)), 25)
    wants = account[person] & (rng.random(len(person)) < 0.35)
    length = np.where(wants, np.maximum(length, 2), length)
    parts.add(
        BROWSE,
        _pick_slot(rng, web, person),
        start,
        length,
        rng.integers(15, 120, size=len(person)),
        wants,
    )


def _family_device_sessions(
    rng: np.random.Generator,
    parts: SessionParts,
    web: Web,
    created: np.ndarray,
    w0: int,
    w1: int,
) -> None:
    """Every member sharing a family device uses it at least once in the window."""
    family = np.flatnonzero(web.family_slot >= 0)
    lo = np.maximum(w0, created[family])
    start = lo + (rng.random(len(family)) * np.maximum(w1 - lo, 0)).astype(np.int64)
    length = np.minimum(rng.geometric(0.28, size=len(family)), 25)
    parts.add(
        BROWSE,
        web.family_slot[family],
        start,
        length,
        rng.integers(15, 120, size=len(family)),
        np.zeros(len(family), bool),
    )


def _purchase_sessions(
    rng: np.random.Generator,
    parts: SessionParts,
    people: People,
    web: Web,
    orders: Orders,
    w0: int,
    w1: int,
) -> None:
    """The sessions of the web orders placed in the window, ending at the order's instant
    (3% not tracked: ad blockers)."""
    o = np.flatnonzero(orders.web & (orders.utc >= w0) & (orders.utc < w1) & (orders.person >= 0))
    o = o[rng.random(len(o)) < 0.97]
    person = orders.person[o]
    k = np.minimum(orders.line_count[o], 5)
    length = 2 * k + 4
    gap = rng.integers(15, 90, size=len(o))
    parts.add(
        BUY,
        _pick_slot(rng, web, person),
        orders.utc[o] - (length - 1) * gap,
        length,
        gap,
        people.has_account[person],
        order=o,
    )


def _email_sessions(
    rng: np.random.Generator,
    parts: SessionParts,
    ctx: Context,
    people: People,
    web: Web,
    cons: Consents,
    created: np.ndarray,
) -> None:
    """Opens (and some clicks) of each weekly campaign by opted-in account holders."""
    w0, w1 = ctx.clickstream_start_secs, ctx.end_secs
    _, days = campaign_names(ctx)
    mailable = np.flatnonzero(people.has_account & (web.own_count > 0))
    for c, d in enumerate(days.tolist()):
        send = w0 + d * DAY + 8 * 3600 + int(rng.integers(0, 2 * 3600))
        who = mailable[
            (created[mailable] < send) & cons.mail_opted_in(mailable, np.full(len(mailable), send))
        ]
        who = who[rng.random(len(who)) < 0.2]
        opened = send + rng.exponential(4 * 3600, size=len(who)).astype(np.int64)
        keep = opened < w1 - 3600
        who, opened = who[keep], opened[keep]
        clicks = rng.random(len(who)) < 0.35
        parts.add(
            EMAIL,
            web.own_first[who],
            opened,
            np.where(clicks, 2, 1),
            rng.integers(20, 600, size=len(who)),
            np.zeros(len(who), bool),
            campaign=np.full(len(who), c),
        )


def _anonymous_sessions(
    rng: np.random.Generator, parts: SessionParts, web: Web, w0: int, w1: int
) -> None:
    """Visits of the anonymous visitors, who never log in."""
    anon_slots = np.flatnonzero(web.slot_person < 0)
    slot = np.repeat(anon_slots, 1 + rng.poisson(0.5, size=len(anon_slots)))
    start = w0 + (rng.random(len(slot)) * (w1 - w0)).astype(np.int64)
    parts.add(
        ANON,
        slot,
        start,
        np.minimum(rng.geometric(0.45, size=len(slot)), 12),
        rng.integers(10, 90, size=len(slot)),
        np.zeros(len(slot), bool),
    )


def _cookie_logins(
    web: Web, s: dict[str, np.ndarray], cookie: np.ndarray, login_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(per session: holds its cookie's login event, per cookie: the login instant).

    The cookie's login is the earliest login among its sessions that want one. Events on the
    cookie before that instant carry no user id; the login event and all later ones do.
    A cookie logged in before the window has -1, one never logged in NEVER.
    """
    wants = s["wants"] & ~web.cookie_prelogged[cookie]
    candidate = np.where(wants, s["start"] + login_at * s["gap"], NEVER)
    order = np.lexsort((candidate, cookie))
    first = order[np.r_[True, cookie[order][1:] != cookie[order][:-1]]] if len(order) else order
    first = first[candidate[first] < NEVER]
    logs_in = np.zeros(len(cookie), bool)
    logs_in[first] = True
    login_time = np.where(web.cookie_prelogged, -1, NEVER)
    login_time[cookie[first]] = candidate[first]
    return logs_in, login_time


def make_sessions(
    ctx: Context, people: People, web: Web, orders: Orders, cons: Consents, guest_buyer: np.ndarray
) -> Sessions:
    """Every session of the window, by start: browsing, family devices, purchases, e-mail
    opens and anonymous visits, each on a cookie, with the cookies' logins."""
    rng = ctx.rng(CLICKSTREAM, 2)
    w0, w1 = ctx.clickstream_start_secs, ctx.end_secs
    created = col.local_to_utc(people.created, "Europe/London") + 3600
    parts = SessionParts()
    _browsing_sessions(rng, parts, people, web, created, w0, w1)
    _family_device_sessions(rng, parts, web, created, w0, w1)
    _purchase_sessions(rng, parts, people, web, orders, w0, w1)
    _email_sessions(rng, parts, ctx, people, web, cons, created)
    _anonymous_sessions(rng, parts, web, w0, w1)

    s = parts.joined()
    day = np.clip((s["start"] - w0) // DAY, 0, CLICKSTREAM_DAYS - 1)
    cookie = _cookie_at(web, s["slot"], day)
    login_at = np.where(
        s["kind"] == BUY,
        s["length"] - 3,
        1 + (rng.random(len(day)) * np.maximum(s["length"] - 1, 1)).astype(np.int64),
    )
    logs_in, login_time = _cookie_logins(web, s, cookie, login_at)

    by_start = np.argsort(s["start"], kind="stable")
    return Sessions(
        kind=s["kind"][by_start],
        slot=s["slot"][by_start],
        cookie=cookie[by_start],
        start=s["start"][by_start],
        length=s["length"][by_start],
        gap=s["gap"][by_start],
        login_at=login_at[by_start],
        wants_login=s["wants"][by_start],
        order=s["order"][by_start],
        campaign=s["campaign"][by_start],
        logs_in=logs_in[by_start],
        login_time=login_time,
    )


@dataclass
class Batch:
    """Events of some sessions, rendered, with what the file writer needs to know."""

    lines: pa.Array
    occurred: np.ndarray
    received: np.ndarray
    file_day: np.ndarray

    def select(self, mask: np.ndarray) -> Batch:
        """The events where `mask` is true."""
        idx = np.flatnonzero(mask)
        return Batch(
            self.lines.take(pa.array(idx)),
            self.occurred[idx],
            self.received[idx],
            self.file_day[idx],
        )


def concat(batches: list[Batch]) -> Batch:
    """The events of all `batches`, in order (an empty batch when there are none)."""
    batches = [b for b in batches if len(b.occurred)]
    if not batches:
        return Batch(pa.array([], pa.string()), *(np.zeros(0, np.int64),) * 3)
    return Batch(
        pa.concat_arrays([b.lines for b in batches]),
        *(
            np.concatenate([getattr(b, f) for b in batches])
            for f in ("occurred", "received", "file_day")
        ),
    )


class Generator:
    """Renders the events of sessions, remembering which cookies, slots and users appeared."""

    def __init__(
        self, ctx: Context, people: People, web: Web, sess: Sessions, orders: Orders, cat: Catalogue
    ) -> None:
        """Pre-render the vocabulary, skus, user ids and event types; nothing used yet."""
        self.ctx, self.people, self.web, self.sess, self.orders, self.cat = (
            ctx,
            people,
            web,
            sess,
            orders,
            cat,
        )
        self.names, _ = campaign_names(ctx)
        self.taste_rng = ctx.rng(CLICKSTREAM, TASTE_STREAM)
        self.vocab = make_vocab(cat.skus()[: cat.base], self.names)
        self.sku_text = pa.concat_arrays(
            [col.strings([q(s) for s in cat.skus()[: cat.base]]), col.strings(["null"])]
        )
        users = col.fixed(people.n, b'"U', col.digits(np.maximum(people.user_num, 0), 8), b'"')
        self.user_text = pa.concat_arrays([users, col.strings(["null"])])
        self.type_text = col.strings([q(t) for t in EVENT_TYPES])
        n_cookies = len(web.cookie_person)
        self.cookie_used = np.zeros(n_cookies, bool)
        self.slot_used = np.zeros(len(web.slot_person), bool)
        self.user_used = np.zeros(people.n, bool)
        self.events = 0

    def expand(self, rng: np.random.Generator, sessions: np.ndarray) -> Batch:
        """All events of the given sessions, rendered as JSON lines."""
        s, ctx = self.sess, self.ctx
        sid, pos, kind, logs_in, t = self._event_times(rng, sessions)
        n = len(sid)
        order = np.maximum(s.order[sid], 0)
        k = np.minimum(self.orders.line_count[order], 5)
        etype, in_pairs = _event_types(rng, pos, kind, logs_in, k)
        buy = kind == BUY

        slot = s.slot[sid]
        person = self.web.slot_person[slot]
        cookie = s.cookie[sid]
        has_user = t >= self.sess.login_time[cookie]
        sku = self._event_skus(rng, sid, pos, etype, in_pairs, order, k)
        has_sku = np.isin(etype, (PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART))
        campaign = np.maximum(s.campaign[sid], 0)
        query = rng.integers(0, len(vocab.SEARCH_QUERIES), size=n)
        page = np.where(rng.random(n) < 0.5, 0, rng.integers(0, len(vocab.PAGES), size=n))
        url = _event_urls(self.vocab, etype, pos, buy, has_sku, sku, query, page, campaign)
        props_text = self._event_properties(
            rng, etype, pos, buy, in_pairs, k, query, campaign, order
        )

        # the e-mail pixel cannot fingerprint the device
        device = np.where(etype == EMAIL_OPEN, self.web.n_devices, self.web.slot_device[slot])
        user = np.where(has_user, person, self.people.n)
        self.cookie_used[cookie] = True
        self.slot_used[slot[etype != EMAIL_OPEN]] = True
        self.user_used[person[has_user]] = True
        self.events += n

        lines = self._render_lines(
            rng,
            etype,
            cookie,
            user,
            device,
            t,
            url,
            np.where(has_sku, sku, self.cat.base),
            props_text,
        )
        day = (t - ctx.clickstream_start_secs) // DAY
        return Batch(lines, t, t + rng.integers(0, 6, size=n), day)

    def _event_times(
        self, rng: np.random.Generator, sessions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One row per event of `sessions` inside the window: (session, position in it,
        session kind, is the cookie's login, instant). Events follow each other by the
        session's gap, jittered, except the purchase (at the order's instant) and the login."""
        s = self.sess
        length = s.length[sessions]
        sid = np.repeat(sessions, length)
        n = len(sid)
        pos = np.arange(n) - np.repeat(np.cumsum(length) - length, length)
        kind, gap = s.kind[sid], s.gap[sid]
        logs_in = s.logs_in[sid] & (pos == s.login_at[sid])
        jitter = np.where(pos > 0, (rng.random(n) * gap / 2).astype(np.int64), 0)
        last = pos == s.length[sid] - 1
        jitter = np.where(
            ((kind == BUY) & last) | logs_in, 0, jitter
        )  # purchase at the order's instant
        t = s.start[sid] + pos * gap + jitter
        keep = (t >= self.ctx.clickstream_start_secs) & (t < self.ctx.end_secs)
        return sid[keep], pos[keep], kind[keep], logs_in[keep], t[keep]

    def _event_skus(
        self,
        rng: np.random.Generator,
        sid: np.ndarray,
        pos: np.ndarray,
        etype: np.ndarray,
        in_pairs: np.ndarray,
        order: np.ndarray,
        k: np.ndarray,
    ) -> np.ndarray:
        """The product of each event: the order's lines in a purchase session's view/add
        pairs, else a product by the person's taste or a popular one, often the one viewed
        just before."""
        n = len(sid)
        pair = (pos - 1) // 2
        popular = rng.choice(self.cat.base, size=n, p=self.cat.popularity)
        # known persons browse by their taste (ml/synthetic/tastes.py), from a stream of its own
        person = self.web.slot_person[self.sess.slot[sid]]
        popular = browse_skus(self.taste_rng, self.orders.tastes, person, popular)
        line_sku = self.orders.sku[
            self.orders.line_start[order] + np.clip(pair, 0, None) % np.maximum(k, 1)
        ]
        sku = np.where(in_pairs, line_sku, popular)
        # A shopper weighing a product up comes back to it: a browsing view often repeats the
        # product of the view just before it in the session (two passes make runs of three).
        for _ in range(2):
            again = np.zeros(n, dtype=bool)
            again[1:] = (
                (etype[1:] == PRODUCT_VIEW)
                & (etype[:-1] == PRODUCT_VIEW)
                & (sid[1:] == sid[:-1])
                & ~in_pairs[1:]
            )
            again &= rng.random(n) < 0.4
            sku = np.where(again, np.roll(sku, 1), sku)
        return sku

    def _event_properties(
        self,
        rng: np.random.Generator,
        etype: np.ndarray,
        pos: np.ndarray,
        buy: np.ndarray,
        in_pairs: np.ndarray,
        k: np.ndarray,
        query: np.ndarray,
        campaign: np.ndarray,
        order: np.ndarray,
    ) -> pa.Array:
        """The `properties` JSON of each event: referrer, query, quantity, items, login
        method, campaign, or the order id of a purchase."""
        v, n = self.vocab, len(etype)
        props = np.where(
            (etype == PAGE_VIEW) & (pos == 0) & (rng.random(n) < 0.3),
            v.p_referrer + rng.integers(0, len(vocab.REFERRERS), size=n),
            0,
        )
        props = np.where(etype == SEARCH, v.p_query + query, props)
        quantity = np.where(in_pairs, 1, 1 + rng.binomial(2, 0.15, size=n))
        props = np.where(
            np.isin(etype, (ADD_TO_CART, REMOVE_FROM_CART)), v.p_quantity + quantity, props
        )
        items = np.where(buy, k, 1 + rng.binomial(4, 0.2, size=n))
        props = np.where(etype == CHECKOUT_START, v.p_items + items, props)
        props = np.where(
            etype == LOGIN, v.p_method + rng.integers(0, len(LOGIN_METHODS), size=n), props
        )
        props = np.where(np.isin(etype, (EMAIL_OPEN, EMAIL_CLICK)), v.p_campaign + campaign, props)
        props_text = v.props.take(pa.array(props))
        purchase = etype == PURCHASE
        if purchase.any():
            order_json = col.fixed(
                n, b'{"order_id":"O', col.digits(self.orders.number[order], 9), b'"}'
            )
            props_text = pc.if_else(pa.array(purchase), order_json, props_text)
        return props_text

    def _render_lines(
        self,
        rng: np.random.Generator,
        etype: np.ndarray,
        cookie: np.ndarray,
        user: np.ndarray,
        device: np.ndarray,
        t: np.ndarray,
        url: np.ndarray,
        sku: np.ndarray,
        props_text: pa.Array,
    ) -> pa.Array:
        """The JSON line of each event, with a fresh event id (`user`, `device` and `sku`
        index their texts; the last entry of each is null)."""
        n = len(etype)
        return col.join(
            col.fixed(n, b'{"event_id":"', col.hex_ids(rng, n), b'","event_type":'),
            self.type_text.take(pa.array(etype)),
            ',"anonymous_id":',
            self.web.cookie_text.take(pa.array(cookie)),
            ',"user_id":',
            self.user_text.take(pa.array(user)),
            ',"device_id":',
            self.web.device_text.take(pa.array(device)),
            col.fixed(n, b',"occurred_at":"', col.datetime_matrix(t), b'Z","url":'),
            self.vocab.url.take(pa.array(url)),
            ',"product_sku":',
            self.sku_text.take(pa.array(sku)),
            ',"properties":',
            props_text,
            "}\n",
        )


def _event_types(
    rng: np.random.Generator,
    pos: np.ndarray,
    kind: np.ndarray,
    logs_in: np.ndarray,
    k: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(event type, is in a purchase's view/add pairs) of each event.

    Browsing lands on a page, then does what NEXT_EVENT says; a purchase session views and
    adds each of its `k` products, opens the basket, checks out and buys; an e-mail session
    opens and may click; the cookie's login event is a login.
    """
    n = len(pos)
    etype = np.where(pos == 0, PAGE_VIEW, rng.choice(len(NEXT_EVENT), size=n, p=NEXT_EVENT))
    buy = kind == BUY
    in_pairs = buy & (pos >= 1) & (pos <= 2 * k)
    etype = np.where(in_pairs, np.where((pos - 1) % 2 == 0, PRODUCT_VIEW, ADD_TO_CART), etype)
    etype = np.where(buy & (pos == 2 * k + 1), PAGE_VIEW, etype)  # the basket
    etype = np.where(buy & (pos == 2 * k + 2), CHECKOUT_START, etype)
    etype = np.where(buy & (pos == 2 * k + 3), PURCHASE, etype)
    etype = np.where(kind == EMAIL, np.where(pos == 0, EMAIL_OPEN, EMAIL_CLICK), etype)
    etype = np.where(logs_in, LOGIN, etype)
    return etype, in_pairs


def _event_urls(
    v: Vocab,
    etype: np.ndarray,
    pos: np.ndarray,
    buy: np.ndarray,
    has_sku: np.ndarray,
    sku: np.ndarray,
    query: np.ndarray,
    page: np.ndarray,
    campaign: np.ndarray,
) -> np.ndarray:
    """The url (an index into `v.url`) of each event, by its type."""
    url = np.full(len(etype), v.url_page) + page
    url = np.where(has_sku & (etype != REMOVE_FROM_CART), v.url_product + sku, url)
    url = np.where(etype == REMOVE_FROM_CART, v.url_basket, url)
    url = np.where(buy & (etype == PAGE_VIEW) & (pos > 0), v.url_basket, url)
    url = np.where(etype == SEARCH, v.url_search + query, url)
    url = np.where(etype == CHECKOUT_START, v.url_checkout, url)
    url = np.where(etype == PURCHASE, v.url_confirmation, url)
    url = np.where(etype == LOGIN, v.url_login, url)
    url = np.where(etype == EMAIL_CLICK, v.url_campaign + campaign, url)
    url = np.where(etype == EMAIL_OPEN, v.url_null, url)
    return url


GHOST_KINDS = (
    ("", "broken_json"),
    ("", "not_an_object"),
    ("event_type", "unknown_enum"),
    ("occurred_at", "bad_timestamp"),
    ("event_id", "missing_required"),
    ("", "non_utf8"),
)
BAD_TIMESTAMPS = (
    "2026-11-31T10:00:00Z",
    "2026-10-05T25:12:00Z",
    "05/10/2026 10:12:00",
    "1730000000",
)


def ghost_line(
    rng: np.random.Generator, day_secs: int, number: int, kind: str, skus: list[str]
) -> bytes:
    """A tracking line about a fresh event id and cookie with exactly one deliberate defect."""
    event_id = col.fixed(1, col.hex_ids(rng, 1))[0].as_py()
    cookie = "ck_" + col.fixed(1, col.random_tokens(rng, 1, 12, col.ALNUM))[0].as_py()
    stamp = col.timestamps(np.array([day_secs + int(rng.integers(DAY))]), b"T", b"Z")[0].as_py()
    sku = skus[int(rng.integers(len(skus)))]
    event = {
        "event_id": event_id,
        "event_type": "product_view",
        "anonymous_id": cookie,
        "user_id": None,
        "device_id": None,
        "occurred_at": stamp,
        "url": f"{vocab.SITE}/p/{sku}",
        "product_sku": sku,
        "properties": {},
    }
    if kind == "not_an_object":
        return json.dumps([event_id, "page_view", cookie, stamp], separators=(",", ":")).encode()
    if kind == "unknown_enum":
        event["event_type"] = ("hover", "scroll", "video_play")[number % 3]
    elif kind == "bad_timestamp":
        event["occurred_at"] = BAD_TIMESTAMPS[number % len(BAD_TIMESTAMPS)]
    elif kind == "missing_required":
        del event["event_id"]
    elif kind == "non_utf8":  # a search typed on a Latin-1 page
        event.update(
            event_type="search",
            url=f"{vocab.SITE}/search?q=caf%E9",
            product_sku=None,
            properties={"query": "\x00"},
        )
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if kind == "broken_json":  # the delivery was cut off
        return text[: int(rng.integers(20, len(text) - 2))].encode()
    if kind == "non_utf8":
        head, tail = text.split("\x00" if "\x00" in text else "\\u0000")
        return head.encode() + "caf\xe9 cr\xe8me".encode("latin-1") + tail.encode()
    return text.encode()


@dataclass
class ClickstreamTruth:
    """What the ground truth needs from the clickstream: what was used, and the mess counts."""

    cookie_used: np.ndarray
    slot_used: np.ndarray
    user_used: np.ndarray
    events: int
    retried: int
    resent: int
    late: int
    shared_devices: int


class Deliveries:
    """How the tracker delivers events to the daily files: late ones, retries, re-sends.

    Events wait in `pending` for the file of the day they are delivered on; `resend_in` holds
    yesterday's events delivered again today. The counts feed the ground truth.
    """

    def __init__(self, ctx: Context) -> None:
        """Nothing delivered yet."""
        self.ctx = ctx
        self.pending: dict[int, list[Batch]] = {}
        self.resend_in = concat([])
        self.retried = self.resent = self.late = 0

    def schedule(self, rng: np.random.Generator, batch: Batch) -> None:
        """Queue a day's events for their files: ~1% arrive 1-3 days after the day they
        happened, at a random time of that day."""
        delay = rng.integers(1, 4, size=len(batch.file_day))
        is_late = (rng.random(len(delay)) < 0.01) & (batch.file_day + delay < CLICKSTREAM_DAYS)
        self.late += int(is_late.sum())
        batch.file_day = np.where(is_late, batch.file_day + delay, batch.file_day)
        arrival = (
            self.ctx.clickstream_start_secs
            + batch.file_day * DAY
            + rng.integers(0, DAY, size=len(delay))
        )
        batch.received = np.where(is_late, arrival, batch.received)
        for f in np.unique(batch.file_day).tolist():
            self.pending.setdefault(f, []).append(batch.select(batch.file_day == f))

    def file_lines(self, rng: np.random.Generator, d: int) -> tuple[pa.Array, int]:
        """(the lines of day `d`'s file in order of receipt, how many are duplicates).

        The file holds the events delivered that day, ~1% of them retried (the same line
        again, a little later) and yesterday's re-sent ones; ~0.5% of today's are kept to be
        re-sent in tomorrow's file.
        """
        originals = concat(self.pending.pop(d, []))
        n = len(originals.occurred)
        n_retry = int(0.01 * n + rng.random())
        again = rng.choice(n, size=min(n, n_retry), replace=False) if n else np.zeros(0, np.int64)
        retries = originals.select(np.isin(np.arange(n), again))
        retries.received = retries.received + rng.integers(1, 600, size=len(retries.received))
        self.retried += len(retries.received)
        content = concat([originals, retries, self.resend_in])
        duplicates = len(retries.received) + len(self.resend_in.received)
        self.resent += len(self.resend_in.received)
        order = np.argsort(content.received, kind="stable")
        lines = content.lines.take(pa.array(order))
        self.resend_in = self._resent_tomorrow(rng, originals, d)
        return lines, duplicates

    def _resent_tomorrow(self, rng: np.random.Generator, originals: Batch, d: int) -> Batch:
        """~0.5% of day `d`'s events (at least one on the first day), delivered again at a
        random time of the next day; none after the last day."""
        n = len(originals.occurred)
        if not (d + 1 < CLICKSTREAM_DAYS and n):
            return concat([])
        count = int(0.005 * n + rng.random()) or int(d == 0)  # at least one on the first day
        pick = np.isin(np.arange(n), rng.choice(n, size=min(n, count), replace=False))
        resend = originals.select(pick)
        resend.received = (
            self.ctx.clickstream_start_secs
            + (d + 1) * DAY
            + rng.integers(0, DAY, size=len(resend.received))
        )
        return resend


def write(
    ctx: Context, people: People, orders: Orders, cons: Consents, cat: Catalogue, landing: Landing
) -> tuple[Web, ClickstreamTruth]:
    """Write one events file per day of the window (with the deliberate mess) and return the
    web (slots, cookies, devices) and what the ground truth needs."""
    in_window = orders.web & (orders.utc >= ctx.clickstream_start_secs) & (orders.person >= 0)
    guest_buyer = np.zeros(people.n, bool)
    guest_buyer[orders.person[in_window & (orders.ref_kind == REF_EMAIL)]] = True
    web = make_web(ctx, people, guest_buyer)
    sess = make_sessions(ctx, people, web, orders, cons, guest_buyer)
    gen = Generator(ctx, people, web, sess, orders, cat)
    skus = cat.skus()[: cat.base]

    session_day = np.clip((sess.start - ctx.clickstream_start_secs) // DAY, 0, CLICKSTREAM_DAYS - 1)
    bounds = np.searchsorted(session_day, np.arange(CLICKSTREAM_DAYS + 1))
    plan_rng = ctx.rng(CLICKSTREAM, 3)
    specs = allocate(GHOST_KINDS, int(sess.length.sum()))
    ghost_day = plan_rng.integers(0, CLICKSTREAM_DAYS, size=len(specs))
    deliveries = Deliveries(ctx)
    ghost_number = 0
    for d in range(CLICKSTREAM_DAYS):
        rng = ctx.rng(CLICKSTREAM, 100, d)
        deliveries.schedule(rng, gen.expand(rng, np.arange(bounds[d], bounds[d + 1])))
        lines, duplicates = deliveries.file_lines(rng, d)
        mine = [specs[i] for i in np.flatnonzero(ghost_day == d).tolist()]
        bad = []
        day_secs = ctx.clickstream_start_secs + d * DAY
        for at, (field_name, kind) in zip(spread(rng, len(lines), len(mine)), mine, strict=True):
            ghost_number += 1
            bad.append(
                BadRow(at, ghost_line(rng, day_secs, ghost_number, kind, skus), field_name, kind)
            )
        date = ctx.clickstream_start + timedelta(days=d)
        landing.text(FEED, f"events_{date.isoformat()}.jsonl", lines, bad, duplicates)

    return web, ClickstreamTruth(
        gen.cookie_used,
        gen.slot_used,
        gen.user_used,
        gen.events,
        deliveries.retried,
        deliveries.resent,
        deliveries.late,
        web.shared_devices,
    )
