"""Stable customer ids: the same person keeps the same `cus_…` id from run to run.

`assign_customer_ids(graph.nodes, previous, run_id=..., now=..., evidence=graph.evidence)`
gives every customer cluster of the identity graph a customer id, reusing last run's ids:

1. **New ids are a function of the anchor.** A cluster that inherits no id gets
   `cus_` + the first 16 hex characters of sha256(`"<id_type>:<id_value>"` of its anchor), the
   node with the smallest (first_seen_at, type rank, id_value). There is no salt, so a full
   rebuild from the same files gives the same ids. Should two anchors hash alike, or a hash
   equal an id already issued, the later anchor (in sorted order) takes the hash of
   `"<anchor>#1"`, `"#2"`, … instead: deterministic too.
2. **One previous id: kept.** A cluster whose identifiers carried exactly one id last run
   keeps it.
3. **Several previous ids: merged.** The survivor is the id whose own earliest identifier
   (first_seen_at, then type rank, then value) is earliest, which is the id a rebuild would
   give; the others are recorded as `merged` into it, with the evidence (rule, record and
   the two identifiers) of the union that joined their profiles.
4. **One previous id over several clusters: split.** The id stays with the cluster holding its
   anchor node (its earliest identifier still in a customer profile); the other parts take
   new ids from their own anchors (rule 1). Each part that left is recorded as a `split`,
   naming what changed (e.g. `device_id:dv_… is now shared`).
5. **No identifiers left in any customer profile: retired** (erased, now never-link, shared
   or anonymous-only), recorded with the reason.

Ids only ever follow people: an id is never handed to a profile that did not carry it, and
a retired or merged id is never issued again to someone else. A rebuild (`previous=None`)
gives the ids an incremental run gives, except where a split or a backfill moved an anchor.

Schemas:

`graph_nodes` (`IdentityGraph.nodes`): id_type, id_value, cluster_id, is_customer,
    first_seen_at, and optionally status (to explain splits and retirements).
`previous` (last run's `Assignment.mapping`): id_type, id_value, customer_id.
`Assignment.mapping` (by type rank, then id_value, like the graph's nodes): id_type,
    id_value, customer_id; every identifier of a customer cluster, cookies and devices
    included (never-link, shared and anonymous-only identifiers have no customer id).
`Assignment.customers` (by anchor: first_seen_at, type rank, value): customer_id,
    cluster_id, anchor (`"<id_type>:<id_value>"`; equal to cluster_id for a graph from
    `resolve_graph`), first_seen_at (the anchor's, UTC), identifiers (how many).
`Assignment.events`: event_at (`now`, UTC), run_id, event_type (`created`, `merged`,
    `split`, `retired`), customer_id, other_customer_id, reason.
    `created`: a new id; other_customer_id names the id it split from, if any.
    `merged`: customer_id was merged into other_customer_id (the survivor).
    `split`: part of customer_id's profile left for other_customer_id (which it keeps).
    `retired`: customer_id has no profile left; other_customer_id is null.
    Ordered by event type in that order, then by the profiles' earliest identifiers
    (retired ones by customer_id): the same input gives the same rows in the same order.
`Assignment.stats`: customers, kept, and the count of each event type.

`preview(old_mapping, new_graph_nodes)` runs the same code and returns the merges, splits and
retirements a changed config (or new data) would cause, without anything being kept.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.identity.config import IdentityConfig, load_config
from ml.identity.graph import IdentityGraph, InputError, _check_frame, _factorize_sorted, _join

NODE_COLUMNS = ("id_type", "id_value", "cluster_id", "is_customer", "first_seen_at")
MAPPING_COLUMNS = ("id_type", "id_value", "customer_id")
EVENT_COLUMNS = (
    "event_at",
    "run_id",
    "event_type",
    "customer_id",
    "other_customer_id",
    "reason",
)
EVENT_TYPES = ("created", "merged", "split", "retired")
PREFIX = "cus_"


@dataclass
class Assignment:
    """Customer ids for one run: see the module docstring for the frames' columns."""

    mapping: pd.DataFrame
    customers: pd.DataFrame
    events: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def customer_id_for(anchor: str) -> str:
    """The customer id a new profile anchored at `anchor` ("<id_type>:<id_value>") gets."""
    return PREFIX + _digest(anchor)


def assign_customer_ids(
    graph_nodes: pd.DataFrame | IdentityGraph,
    previous: pd.DataFrame | None = None,
    *,
    run_id: str,
    now: datetime | pd.Timestamp,
    evidence: pd.DataFrame | None = None,
    config: IdentityConfig | None = None,
) -> Assignment:
    """Give every customer cluster an id, keeping last run's ids by the rules above.

    `graph_nodes` is `IdentityGraph.nodes` (or the graph itself, whose evidence is then used
    too); `previous` last run's `Assignment.mapping` (None for a first run or a full
    rebuild); `evidence` is `IdentityGraph.evidence`, used to name what joined merged
    profiles; `config` gives the type rank (default: identity.yml). `run_id` and `now`
    (naive = UTC) stamp the events. Nothing is written: the caller keeps the frames.
    """
    if isinstance(graph_nodes, IdentityGraph):
        evidence = graph_nodes.evidence if evidence is None else evidence
        graph_nodes = graph_nodes.nodes
    cfg = config if config is not None else load_config()
    _check(graph_nodes, "graph_nodes", NODE_COLUMNS)
    if previous is not None:
        _check(previous, "previous", MAPPING_COLUMNS)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    work = _Work(graph_nodes, previous, cfg)
    return work.assign(str(run_id), stamp, evidence)


def preview(
    old_mapping: pd.DataFrame,
    new_graph_nodes: pd.DataFrame | IdentityGraph,
    *,
    evidence: pd.DataFrame | None = None,
    config: IdentityConfig | None = None,
) -> pd.DataFrame:
    """The merges, splits and retirements going from `old_mapping` to `new_graph_nodes`.

    Same code path as `assign_customer_ids` (`new_graph_nodes` may be the graph itself);
    nothing is kept. Columns: event_type, customer_id, other_customer_id, reason.
    """
    result = assign_customer_ids(
        new_graph_nodes,
        old_mapping,
        run_id="preview",
        now=pd.Timestamp(0, tz="UTC"),
        evidence=evidence,
        config=config,
    )
    events = result.events
    changes = events[events["event_type"].isin(["merged", "split", "retired"])]
    return changes[["event_type", "customer_id", "other_customer_id", "reason"]].reset_index(
        drop=True
    )


# ---------------------------------------------------------------------------- internals


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check(df: Any, name: str, columns: tuple[str, ...]) -> None:
    _check_frame(df, name, columns, "ml/identity/stable_ids.py")


class _Work:
    """One assignment: customer nodes, their previous ids and their order, as arrays."""

    def __init__(self, nodes: pd.DataFrame, previous: pd.DataFrame | None, cfg: IdentityConfig):
        self.cfg = cfg
        self.all_nodes = nodes
        keep = nodes["is_customer"].fillna(False).to_numpy(dtype=bool) & nodes[
            "cluster_id"
        ].notna().to_numpy(dtype=bool)
        cust = nodes.loc[keep, list(NODE_COLUMNS)].reset_index(drop=True)
        rank = _type_rank(cust["id_type"], cfg)
        # canonical (type rank, value) order; a frame from resolve_graph is in it already
        by_value = _value_order(rank, cust["id_value"])
        if by_value is not None:
            cust = cust.iloc[by_value].reset_index(drop=True)
            rank = rank[by_value]
        self.cust = cust
        self.types = pd.Index(cust["id_type"], dtype="str")
        self.values = pd.Index(cust["id_value"], dtype="str")
        ts = _micros(cust["first_seen_at"])
        # position of each node in (first_seen_at, type rank, value) order
        order = np.lexsort((np.arange(len(cust)), ts))
        self.pos = np.empty(len(cust), dtype=np.int64)
        self.pos[order] = np.arange(len(cust))
        self.node_at = order
        self.ts = ts
        self.cluster, cluster_names = pd.factorize(cust["cluster_id"])
        self.cluster_names = pd.Index(cluster_names, dtype="str")
        self.n_cl = len(cluster_names)
        # previous ids per node
        self.previous = previous
        if previous is None or not len(previous):
            self.pid = np.full(len(cust), -1, dtype=np.int64)
            self.prev_ids = np.zeros(0, dtype=object)
            self.prev_total = np.zeros(0, dtype=np.int64)
        else:
            null = previous["customer_id"].isna().to_numpy()
            if null.any():
                i = int(np.flatnonzero(null)[0])
                raise InputError(
                    f"previous.customer_id is null in {int(null.sum()):,} row(s) (first at row "
                    f"{i}); pass last run's Assignment.mapping as it was written"
                )
            pid_codes, prev_ids = pd.factorize(previous["customer_id"])
            self.prev_ids = np.asarray(prev_ids, dtype=object)
            at = _match(previous, cust, cfg)
            self.pid = np.where(at >= 0, pid_codes[np.maximum(at, 0)], -1)
            self.prev_total = np.bincount(pid_codes, minlength=len(prev_ids))

    def assign(self, run_id: str, now: pd.Timestamp, evidence: pd.DataFrame | None) -> Assignment:
        n_cl, pid, pos, cluster = self.n_cl, self.pid, self.pos, self.cluster
        n_prev = len(self.prev_ids)
        big = np.iinfo(np.int64).max
        # anchor of each cluster: its earliest node
        anchor_pos = np.full(n_cl, big, dtype=np.int64)
        np.minimum.at(anchor_pos, cluster, pos)
        anchor = self.node_at[anchor_pos] if n_cl else np.zeros(0, dtype=np.int64)
        anchor_key = self.key(anchor)
        # home of each previous id: the cluster of its earliest node
        has = pid >= 0
        home_pos = np.full(n_prev, big, dtype=np.int64)
        np.minimum.at(home_pos, pid[has], pos[has])
        alive = home_pos < big
        home = np.full(n_prev, -1, dtype=np.int64)
        home[alive] = cluster[self.node_at[home_pos[alive]]]
        # survivor of each cluster: the homed id with the earliest home node
        best = np.full(n_cl, big, dtype=np.int64)
        np.minimum.at(best, home[alive], home_pos[alive])
        survivor = np.full(n_cl, -1, dtype=np.int64)
        homed = np.flatnonzero(alive)
        winners = homed[home_pos[homed] == best[home[homed]]]
        survivor[home[winners]] = winners
        # final ids: kept, or new from the anchor
        final = np.empty(n_cl, dtype=object)
        kept = survivor >= 0
        final[kept] = self.prev_ids[survivor[kept]]
        fresh = np.flatnonzero(~kept)
        final[fresh] = _new_ids(anchor_key[fresh], used=set(self.prev_ids.tolist()))
        final_text = pd.Index(final, dtype="str")

        frames = []
        # merged: homed ids that did not survive in their home cluster
        merged = homed[survivor[home[homed]] != homed]
        into = survivor[home[merged]]
        reasons = _merge_reasons(self, merged, into, home[merged], evidence)
        frames.append(
            _events("merged", self.prev_ids[merged], self.prev_ids[into], reasons, home_pos[merged])
        )
        # split: (previous id, cluster) pairs away from the id's home
        away = has.copy()
        away[has] = cluster[has] != home[pid[has]]
        parent = np.full(n_cl, None, dtype=object)
        if away.any():
            moved = pd.DataFrame({"pid": pid[away], "cl": cluster[away]}).value_counts()
            moved = moved.sort_index()
            p = moved.index.get_level_values("pid").to_numpy()
            c = moved.index.get_level_values("cl").to_numpy()
            why = self._what_changed(np.unique(p))
            reasons = [
                f"{n} of its {self.prev_total[i]} identifiers left for the profile anchored at "
                f"{anchor_key[j]}" + (f" ({why[i]})" if i in why else "")
                for i, j, n in zip(p.tolist(), c.tolist(), moved.tolist(), strict=True)
            ]
            frames.append(
                _events("split", self.prev_ids[p], final[c], reasons, home_pos[p], anchor_pos[c])
            )
            # a new id that came out of a split names its (first) parent
            first = pd.DataFrame({"cl": c, "id": self.prev_ids[p]}).groupby("cl")["id"].min()
            parent[first.index.to_numpy()] = first.to_numpy()
        born = parent[fresh]
        created_reasons = np.where(
            pd.isna(born), "new profile", "split from " + born.astype(str)
        ).astype(object)
        frames.append(_events("created", final[fresh], born, created_reasons, anchor_pos[fresh]))
        gone = np.flatnonzero(~alive)
        gone = gone[np.argsort(self.prev_ids[gone].astype(str), kind="stable")]
        retired = _events(
            "retired", self.prev_ids[gone], [None] * len(gone), self._retired_reasons(gone)
        )
        frames.append(retired.assign(first=np.arange(len(gone))))
        # order: event type, then the profiles' earliest identifiers (numbers, no string sort)
        events = pd.concat(frames, ignore_index=True)
        order = np.lexsort((events["second"], events["first"], events["kind"]))
        events = events.iloc[order].reset_index(drop=True)
        events.insert(0, "event_at", _utc(np.full(len(events), now.value // 1000)))
        events.insert(1, "run_id", pd.array([run_id] * len(events), dtype="str"))
        events = events[list(EVENT_COLUMNS)]

        mapping = pd.DataFrame(
            {
                "id_type": self.types.array,
                "id_value": self.values.array,
                "customer_id": final_text.array.take(cluster),
            }
        )
        customers = pd.DataFrame(
            {
                "customer_id": final_text.array,
                "cluster_id": self.cluster_names.array,
                "anchor": anchor_key.array,
                "first_seen_at": _utc(self.ts[anchor]),
                "identifiers": np.bincount(cluster, minlength=n_cl).astype(np.int64),
            }
        )
        # by anchor: (first_seen_at, type rank, value) of each profile's earliest identifier
        customers = customers.iloc[np.argsort(anchor_pos, kind="stable")].reset_index(drop=True)
        counts = events["event_type"].value_counts()
        stats = {
            "customers": n_cl,
            "kept": int(kept.sum()),
            **{t: int(counts.get(t, 0)) for t in EVENT_TYPES},
        }
        return Assignment(mapping, customers, events, stats)

    def key(self, at: np.ndarray) -> pd.Index:
        """`"<id_type>:<id_value>"` of the customer nodes at positions `at`."""
        at = np.asarray(at, dtype=np.int64)
        return pd.Index(_join(self.types.array.take(at), self.values.array.take(at)), dtype="str")

    def _previous_nodes(self, ids: np.ndarray) -> pd.DataFrame:
        """Last run's identifiers of some previous ids (by code), with their state now:
        `gone` (not in this run), `shared`, `never_link`, `unlinked` or `anonymous`."""
        prev = self.previous
        rows = prev[prev["customer_id"].isin(set(self.prev_ids[ids].tolist()))]
        nodes = self.all_nodes
        cols = [c for c in ("id_type", "id_value", "cluster_id", "status") if c in nodes.columns]
        small = nodes.loc[nodes["id_value"].isin(set(rows["id_value"].tolist())), cols]
        rows = rows.merge(small, on=["id_type", "id_value"], how="left", indicator=True)
        status = rows["status"] if "status" in rows.columns else pd.Series("", index=rows.index)
        rows["state"] = np.select(
            [
                (rows["_merge"] == "left_only").to_numpy(),
                status.isin(["shared", "never_link"]).to_numpy(),
                rows["cluster_id"].isna().to_numpy(),
            ],
            ["gone", status.astype(object).to_numpy(), "unlinked"],
            default="anonymous",
        )
        return rows.sort_values(["customer_id", "id_type", "id_value"], kind="stable")

    def _what_changed(self, ids: np.ndarray) -> dict[int, str]:
        """Per previous id (by code): its identifiers that stopped linking."""
        if not len(ids):
            return {}
        rows = self._previous_nodes(ids)
        rows = rows[rows["state"].isin(["shared", "never_link"])]
        code = {cid: i for i, cid in enumerate(self.prev_ids.tolist())}
        out: dict[int, list[str]] = {}
        for r in rows.itertuples():
            out.setdefault(code[r.customer_id], []).append(
                f"{r.id_type}:{r.id_value} is now {r.state.replace('_', '-')}"
            )
        return {k: "; ".join(v) for k, v in out.items()}

    def _retired_reasons(self, ids: np.ndarray) -> list[str]:
        """Why each previous id (by code) has no customer profile left."""
        if not len(ids):
            return []
        rows = self._previous_nodes(ids)
        reasons = []
        for cid in self.prev_ids[ids].tolist():
            state = rows.loc[rows["customer_id"] == cid, "state"]
            counts = state.value_counts().sort_index()
            listed = ", ".join(f"{n} {s.replace('_', '-')}" for s, n in counts.items())
            reasons.append(
                f"none of its {len(state)} identifiers is in a customer profile now ({listed})"
            )
        return reasons


def _type_rank(
    types: pd.Series, cfg: IdentityConfig, unknown: dict[str, int] | None = None
) -> np.ndarray:
    index = {t: i for i, t in enumerate(cfg.id_types)} | (unknown or {})
    codes, uniques = pd.factorize(types)
    lookup = np.asarray([index.get(t, len(cfg.id_types)) for t in uniques], dtype=np.int64)
    return lookup[codes] if len(codes) else np.zeros(0, dtype=np.int64)


def _value_order(rank: np.ndarray, values: pd.Series) -> np.ndarray | None:
    """Row positions in (type rank, value) order, or None when the rows are in it already."""
    n = len(values)
    if n < 2:
        return None
    text = pa.chunked_array([pa.array(values.astype("str"))]).cast(pa.large_string())
    text = text.combine_chunks()
    up = rank[1:] > rank[:-1]
    same = rank[1:] == rank[:-1]
    le = pc.less_equal(text[:-1], text[1:]).to_numpy(zero_copy_only=False)
    if (up | (same & le)).all():
        return None
    value_code, _, _ = _factorize_sorted(values)
    return np.lexsort((value_code, rank))


def _match(previous: pd.DataFrame, cust: pd.DataFrame, cfg: IdentityConfig) -> np.ndarray:
    """For each customer node, the row of `previous` with the same identifier, or -1."""
    codes, uniques = pd.factorize(
        pd.concat([cust["id_value"], previous["id_value"]], ignore_index=True).astype("str")
    )
    width = max(len(uniques), 1)
    n = len(cust)
    # types the config does not know get ranks of their own (they match only themselves)
    seen = set(previous["id_type"].unique().tolist()) | set(cust["id_type"].unique().tolist())
    others = sorted(seen - set(cfg.id_types))
    unknown = {t: len(cfg.id_types) + i for i, t in enumerate(others)}
    key_cust = _type_rank(cust["id_type"], cfg, unknown) * width + codes[:n]
    key_prev = pd.Index(_type_rank(previous["id_type"], cfg, unknown) * width + codes[n:])
    if not key_prev.is_unique:
        dup = key_prev.duplicated(keep=False)
        clash = previous[dup].sort_values(["id_type", "id_value", "customer_id"]).head(2)
        listed = "; ".join(
            f"{r.id_type}:{r.id_value} -> {r.customer_id}" for r in clash.itertuples()
        )
        raise InputError(
            f"previous maps {int(dup.sum()):,} rows of identifiers to more than one "
            f"customer id ({listed}); each identifier belongs to one customer"
        )
    return key_prev.get_indexer(key_cust)


def _new_ids(anchors: pd.Index, used: set[str]) -> list[str]:
    """`cus_` + hash of each anchor; clashes resolved in sorted anchor order by `#k` suffixes."""
    texts = anchors.tolist()
    ids = [PREFIX + digest for digest in map(_digest, texts)]
    seen = Counter(ids)
    clashing = [i for i, cid in enumerate(ids) if seen[cid] > 1 or cid in used]
    if not clashing:
        return ids
    taken = set(used) | {cid for cid in ids if seen[cid] == 1 and cid not in used}
    for i in sorted(clashing, key=lambda i: texts[i]):
        cid, k = ids[i], 0
        while cid in taken:
            k += 1
            cid = customer_id_for(f"{texts[i]}#{k}")
        ids[i] = cid
        taken.add(cid)
    return ids


def _events(
    kind: str,
    ids: Any,
    others: Any,
    reasons: Any,
    first: np.ndarray | None = None,
    second: np.ndarray | None = None,
) -> pd.DataFrame:
    """Events of one type, with the numeric keys (`first`, `second`) they are ordered by."""
    n = len(ids)
    return pd.DataFrame(
        {
            "kind": np.full(n, EVENT_TYPES.index(kind), dtype=np.int8),
            "first": np.zeros(n, dtype=np.int64) if first is None else first,
            "second": np.zeros(n, dtype=np.int64) if second is None else second,
            "event_type": pd.array([kind] * n, dtype="str"),
            "customer_id": pd.array(np.asarray(ids, dtype=object), dtype="str"),
            "other_customer_id": pd.array(np.asarray(others, dtype=object), dtype="str"),
            "reason": pd.array(np.asarray(reasons, dtype=object), dtype="str"),
        }
    )


def _merge_reasons(
    work: _Work,
    merged: np.ndarray,
    survivors: np.ndarray,
    clusters: np.ndarray,
    evidence: pd.DataFrame | None,
) -> list[str]:
    """For each merged id, the union (from the evidence) that joined it to its survivor."""
    if not len(merged):
        return []
    if evidence is None:
        return ["merged (no evidence given)"] * len(merged)
    in_cl = np.flatnonzero(np.isin(work.cluster, np.unique(clusters)))
    keys = work.key(in_cl).tolist()
    node_cluster = dict(zip(keys, work.cluster[in_cl].tolist(), strict=True))
    node_pid = dict(zip(keys, work.pid[in_cl].tolist(), strict=True))
    values = set(work.cust["id_value"].to_numpy()[in_cl].tolist())
    ev = evidence[evidence["id_value_l"].isin(values)]
    if "step" in ev.columns:
        ev = ev.sort_values("step", kind="stable")
    by_cluster: dict[int, list[tuple[str, str, str]]] = {}
    for row in ev.itertuples(index=False):
        left = f"{row.id_type_l}:{row.id_value_l}"
        c = node_cluster.get(left)
        if c is None:
            continue
        how = str(row.rule)
        if isinstance(row.record_key, str):
            how += f" (record {row.record_key})"
        elif pd.notna(row.score):
            how += f" (score {row.score:g})"
        by_cluster.setdefault(c, []).append((left, f"{row.id_type_r}:{row.id_value_r}", how))
    targets: dict[int, list[tuple[int, int]]] = {}
    for m, s, c in zip(merged.tolist(), survivors.tolist(), clusters.tolist(), strict=True):
        targets.setdefault(c, []).append((m, s))
    found: dict[tuple[int, int], str] = {}
    for c, pairs in targets.items():
        # replay the cluster's unions in order; note when each merged id meets its survivor
        parent: dict[str, str] = {}
        ids: dict[str, set[int]] = {}
        for left, right, how in by_cluster.get(c, []):
            a, b = _find(parent, left), _find(parent, right)
            if a == b:
                continue
            ia = ids.pop(a, None) or {node_pid.get(a, -1)}
            ib = ids.pop(b, None) or {node_pid.get(b, -1)}
            for m, s in pairs:
                if (m, s) not in found and ((m in ia and s in ib) or (m in ib and s in ia)):
                    found[(m, s)] = f"joined by {how}: {left} ~ {right}"
            parent[b] = a
            ids[a] = ia | ib
    return [
        found.get((m, s), "merged (no connecting evidence found)")
        for m, s in zip(merged.tolist(), survivors.tolist(), strict=True)
    ]


def _find(parent: dict[str, str], x: str) -> str:
    while parent.get(x, x) != x:
        grand = parent.get(parent[x], parent[x])
        parent[x] = grand
        x = grand
    return x


def _micros(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(series.dtype):
        raise InputError(
            f"graph_nodes.first_seen_at must be a timestamp column, got dtype {series.dtype}"
        )
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


def _utc(micros: np.ndarray) -> pd.Series:
    return pd.Series(micros.astype("datetime64[us]")).dt.tz_localize("UTC")
