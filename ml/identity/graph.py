"""The deterministic identity graph: records that share an identifier are one person.

`resolve_graph(observations, extra_links, config)` links every record's identifiers into
clusters (profiles), protected by the rules of `identity.yml` (see `ml/identity/config.py`):

1. **never_link** values (junk such as `test@test.com`, `0000000000`, empty) are dropped from
   the graph and reported in `never_linked`; their records resolve through their other
   identifiers only.
2. **shared** identifiers, seen in the same record as more distinct values of a counted type
   than the limit (a family tablet with 2+ user ids, a shop's walk-in loyalty card), keep no
   links either and are reported in `shared`.
3. The remaining identifiers of one record are joined by edges from the record's hub (its
   highest-priority identifier, see below) to each of its other identifiers. The probabilistic
   matcher's accepted pairs come in as `extra_links`.
4. Edges are applied in a fixed order: same-record edges by source (the order of `sources` in
   the config: crm, orders, clickstream, consent, erasure), within a source oldest record
   first (its earliest `first_seen_at`, then `record_key`), then the identifier; then extra
   links by descending score, then the two identifiers (type rank, value). A union that would give a profile more
   distinct values of a type than `limits` allows is refused and logged in `refused`.
5. Each cluster's anchor is its node with the smallest (first_seen_at, type rank, id_value);
   `cluster_id` is `"<id_type>:<id_value>"` of the anchor. A cluster holding any of
   `person_types` is a customer (`is_customer`); cookies and devices alone are an anonymous
   visitor.

Priority of identifiers (the "type rank") is the order of `id_types` in the config, then the
value: by default crm_id, loyalty_id, email, phone, user_id, anonymous_id, device_id. A record
belongs to the cluster of its highest-priority identifier that links; its identifiers can end
in different clusters only after a refused union.

The result is deterministic: every tie is broken on values, never on input order, so the same
rows in any order give identical frames. Components that break no limit are resolved in bulk
(scipy's connected components, and Kruskal's spanning forest for the evidence, which is exactly
the set of unions a sequential union-find makes in that order); only components that would
break a limit go through the sequential constrained union-find.

Input schemas (validated; errors name the column, the row and the fix):

`observations`, one row per (record, identifier):
    record_key     str       the record, e.g. `crm:C1000003`, `order:O100016816`,
                             `visit:<anonymous_id>|<user_id>|<device_id>`, `consent:<event id>`
    source         str       the feed the row comes from, one of the config's `sources` (crm,
                             orders, clickstream, ...). A record may hold rows of several
                             sources (an order enriched by its purchase event): the record's
                             source is the highest-priority one, and an edge counts as
                             evidence of the lower-priority source of its two ends
    id_type        str       one of the config's `id_types`
    id_value       str       the normalised identifier (never null; junk is handled by never_link)
    first_seen_at  timestamp earliest time this identifier was seen in this record; tz-aware
                             (converted to UTC) or naive (taken as UTC); never null

`extra_links` (optional), one row per accepted pair:
    id_type_l, id_value_l, id_type_r, id_value_r   str   the two identifiers
    rule           str       e.g. `probabilistic`
    score          float     e.g. the match weight; higher is applied first

Output frames of `IdentityGraph` (all sorted deterministically, as noted):

`nodes` (by type rank, then id_value): id_type, id_value, cluster_id (null for never_link and
    shared identifiers), is_customer (bool), first_seen_at (UTC), status (`linked`,
    `never_link`, `shared`).
`records` (by record_key): record_key, source, cluster_id (null when the record has no
    identifier that links: it is unresolvable).
`evidence` (by step): step (the edge's position in the order above), id_type_l, id_value_l,
    id_type_r, id_value_r, rule (`same_record:<source>` or the extra link's rule), record_key
    (null for extra links), score (null for same-record edges). One row per union made.
`refused` (by step; extra links to unknown or excluded identifiers last, step null): the same
    columns plus reason, cluster_id_l and cluster_id_r (where each side ended).
`shared` (by type rank, id_value, counted type): id_type, id_value, counted_type,
    distinct_values, limit, records.
`never_linked` (by type rank, id_value): id_type, id_value, rule (which value or pattern
    matched), records.
`stats`: counts and the seconds spent in each phase.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from ml.identity.config import ALL_TYPES, IdentityConfig, load_config
from ml.timing import Stopwatch

logger = logging.getLogger(__name__)

OBSERVATION_COLUMNS = ("record_key", "source", "id_type", "id_value", "first_seen_at")
EXTRA_LINK_COLUMNS = ("id_type_l", "id_value_l", "id_type_r", "id_value_r", "rule", "score")
STATUSES = ("linked", "never_link", "shared")  # nodes.status, by the codes used inside
EVIDENCE_COLUMNS = (
    "step",
    "id_type_l",
    "id_value_l",
    "id_type_r",
    "id_value_r",
    "rule",
    "record_key",
    "score",
)
REFUSED_COLUMNS = (*EVIDENCE_COLUMNS, "reason", "cluster_id_l", "cluster_id_r")
_PHASES = (
    "checking input",
    "coding identifiers",
    "never-link values",
    "shared identifiers",
    "edges",
    "components",
    "limits",
    "clusters",
    "output",
)


class InputError(ValueError):
    """Observations or extra links that do not fit the documented schema."""


@dataclass
class IdentityGraph:
    """The resolved graph: see the module docstring for every frame's columns."""

    nodes: pd.DataFrame
    records: pd.DataFrame
    evidence: pd.DataFrame
    refused: pd.DataFrame
    shared: pd.DataFrame
    never_linked: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def resolve_graph(
    observations: pd.DataFrame,
    extra_links: pd.DataFrame | None = None,
    config: IdentityConfig | None = None,
    *,
    progress: bool = False,
) -> IdentityGraph:
    """Link observations into clusters under the config's merge protection.

    `observations` and `extra_links` follow the schemas in the module docstring;
    `config` defaults to `ml/identity/identity.yml`; `progress` shows tqdm bars for the
    phases and for the constrained union-find. Raises `InputError` on a malformed input.
    """
    cfg = config if config is not None else load_config()
    timer = _Timer(progress)
    with timer.phase("checking input"):
        obs = _read_observations(observations, cfg)
        links = _read_extra_links(extra_links, cfg)
        # from here on `obs` holds what is needed, column by column, each dropped once used: a
        # caller that passes the frame without keeping it lets its memory go as the graph grows
        del observations

    with timer.phase("coding identifiers"):
        # nodes are distinct (id_type, id_value), numbered in (type rank, value) order, so a
        # smaller node number is a higher-priority identifier and every tie-break below that
        # compares node numbers compares values, whatever the order of the input rows
        n_types = len(cfg.id_types)
        val_code, values, value_order = _factorize_sorted(obs.pop("id_value"), materialise=False)
        width = max(len(values), 1)
        node_of_row, node_keys = _dense(obs.pop("type").astype(np.int64) * width + val_code)
        del val_code
        node_type = (node_keys // width).astype(np.int8)
        node_value = values[value_order[node_keys % width]]
        n_nodes = len(node_keys)
        type_bounds = np.searchsorted(node_type, np.arange(n_types + 1))
        rec_of_row, rec_keys, _ = _factorize_sorted(obs.pop("record_key"))
        n_rec = len(rec_keys)
        # incidence: distinct (record, node) pairs sorted by record, then node, each with its
        # earliest first_seen_at and its highest-priority source
        pair = rec_of_row.astype(np.int64) * n_nodes + node_of_row
        del rec_of_row, node_of_row
        order = np.argsort(pair, kind="stable")
        pair = pair[order]
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else order
        ts, source = obs.pop("ts"), obs.pop("source")
        inc_ts = np.minimum.reduceat(ts[order], starts) if len(pair) else ts
        inc_src = np.minimum.reduceat(source[order], starts) if len(pair) else source
        del ts, source, order
        inc_rec = (pair[starts] // max(n_nodes, 1)).astype(np.int32)
        inc_node = (pair[starts] % max(n_nodes, 1)).astype(np.int32)
        del pair, starts
        node_ts = np.full(n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(node_ts, inc_node, inc_ts)
        rec_ts = np.full(n_rec, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(rec_ts, inc_rec, inc_ts)
        rec_src = np.full(n_rec, len(cfg.sources), dtype=np.int8)
        np.minimum.at(rec_src, inc_rec, inc_src)
        del inc_ts
        node_records = np.bincount(inc_node, minlength=n_nodes)

    with timer.phase("never-link values"):
        status = np.zeros(n_nodes, dtype=np.int8)
        never_rows = _never_link(cfg, node_value, type_bounds, status)

    with timer.phase("shared identifiers"):
        shared_rows = _shared(cfg, inc_rec, inc_node, node_type, status, n_nodes)

    with timer.phase("edges"):
        linkable = status[inc_node] == 0
        e_rec, e_l, e_r, e_src, rec_hub = _record_edges(
            inc_rec[linkable], inc_node[linkable], inc_src[linkable], n_rec
        )
        del linkable, inc_rec, inc_node, inc_src
        # edge order: source priority, then record (earliest first_seen_at, then record_key),
        # then the identifier
        rec_rank = np.empty(n_rec, dtype=np.int64)
        rec_rank[np.lexsort((np.arange(n_rec), rec_ts))] = np.arange(n_rec)
        key = (e_src.astype(np.int64) * max(n_rec, 1) + rec_rank[e_rec]) * n_nodes + e_r
        order = np.argsort(key, kind="stable")
        del rec_rank, key
        e_rec, e_l, e_r, e_src = e_rec[order], e_l[order], e_r[order], e_src[order]
        x_l, x_r, x_idx, x_bad = _extra_edges(links, cfg, values, value_order, node_keys, status)
        del values, value_order, node_keys
        e_l = np.concatenate([e_l, x_l])
        e_r = np.concatenate([e_r, x_r])
        e_rec = np.concatenate([e_rec, np.full(len(x_l), -1, dtype=np.int32)])
        e_src = np.concatenate([e_src, np.full(len(x_l), -1, dtype=np.int8)])
        e_extra = np.concatenate([np.full(len(order), -1, dtype=np.int64), x_idx])
        n_edges = len(e_l)
        pair = np.minimum(e_l, e_r).astype(np.int64) * n_nodes + np.maximum(e_l, e_r)
        _, first = np.unique(pair, return_index=True)
        del pair
        step = np.sort(first).astype(np.int64)  # first edge in step order for each node pair
        d_l, d_r, d_rec, d_extra = e_l[step], e_r[step], e_rec[step], e_extra[step]
        d_src = e_src[step]
        del first, e_l, e_r, e_rec, e_extra, e_src, order

    with timer.phase("components"):
        linked = status == 0
        graph = sparse.csr_matrix(
            (np.ones(len(d_l), dtype=np.int8), (d_l, d_r)), shape=(n_nodes, n_nodes)
        )
        n_comp, comp = connected_components(graph, directed=False)
        del graph
        over = np.zeros(n_comp, dtype=bool)
        for id_type, limit in cfg.limits.items():
            members = linked & (node_type == cfg.rank(id_type))
            over |= np.bincount(comp[members], minlength=n_comp) > limit
        edge_over = over[comp[d_l]]
        accepted = np.zeros(len(d_l), dtype=bool)
        bulk = np.flatnonzero(~edge_over)
        if len(bulk):
            # Kruskal in step order = the unions a sequential union-find makes in that order
            forest = minimum_spanning_tree(
                sparse.csr_matrix(
                    (step[bulk] + 1.0, (d_l[bulk], d_r[bulk])), shape=(n_nodes, n_nodes)
                )
            )
            position = np.full(n_edges, -1, dtype=np.int64)
            position[step] = np.arange(len(step))
            accepted[position[forest.data.astype(np.int64) - 1]] = True
            del forest, position
        del bulk

    with timer.phase("limits"):
        label = np.where(linked, comp, -1).astype(np.int64)
        refusals: list[tuple[int, str]] = []
        constrained = np.flatnonzero(edge_over)
        if len(constrained):
            members = np.flatnonzero(linked & over[comp])
            local = np.full(n_nodes, -1, dtype=np.int64)
            local[members] = np.arange(len(members))
            limit_of = np.full(n_nodes, -1, dtype=np.int64)
            for j, id_type in enumerate(cfg.limits):
                limit_of[node_type == cfg.rank(id_type)] = j
            ok, refused_at, reasons, roots = _constrained_unions(
                local[d_l[constrained]].tolist(),
                local[d_r[constrained]].tolist(),
                limit_of[members].tolist(),
                list(cfg.limits.values()),
                list(cfg.limits.keys()),
                progress,
            )
            accepted[constrained[np.asarray(ok, dtype=bool)]] = True
            label[members] = n_comp + np.asarray(roots, dtype=np.int64)
            refusals = [(int(constrained[i]), r) for i, r in zip(refused_at, reasons, strict=True)]
            del local, limit_of, members
        del comp

    with timer.phase("clusters"):
        members = np.flatnonzero(linked)
        cl_of_member, _ = _dense(label[members])
        del label
        n_clusters = int(cl_of_member.max()) + 1 if len(members) else 0
        cluster = np.full(n_nodes, -1, dtype=np.int64)
        cluster[members] = cl_of_member
        # anchor: smallest (first_seen_at, type rank, id_value) = smallest (ts, node number)
        earliest = np.full(n_clusters, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, cl_of_member, node_ts[members])
        first = members[node_ts[members] == earliest[cl_of_member]]
        anchor = np.full(n_clusters, n_nodes, dtype=np.int64)
        np.minimum.at(anchor, cluster[first], first)
        del first, earliest
        type_text = pd.Index(cfg.id_types, dtype="str")
        cluster_key = _join(type_text.array.take(node_type[anchor]), node_value.array.take(anchor))
        is_person = np.isin(np.arange(n_types), [cfg.rank(t) for t in cfg.person_types])
        customer = (
            np.bincount(cl_of_member, weights=is_person[node_type[members]], minlength=n_clusters)
            > 0
        )
        rec_cluster = np.where(rec_hub >= 0, cluster[np.maximum(rec_hub, 0)], -1)
        del members, cl_of_member, rec_hub

    with timer.phase("output"):
        nodes = pd.DataFrame(
            {
                "id_type": type_text.array.take(node_type),
                "id_value": node_value.array,
                "cluster_id": cluster_key.take(cluster, allow_fill=True),
                "is_customer": np.where(cluster >= 0, customer[np.maximum(cluster, 0)], False),
                "first_seen_at": _utc(node_ts),
                "status": pd.Index(STATUSES, dtype="str").array.take(status),
            }
        )
        source_text = pd.Index(cfg.sources, dtype="str")
        records = pd.DataFrame(
            {
                "record_key": rec_keys.array,
                "source": source_text.array.take(rec_src),
                "cluster_id": cluster_key.take(rec_cluster, allow_fill=True),
            }
        )
        edges = _EdgeText(
            step=step,
            left=d_l,
            right=d_r,
            rec=d_rec,
            extra=d_extra,
            src=d_src,
            rec_keys=rec_keys,
            links=links,
            node_type=node_type,
            node_value=node_value,
            type_text=type_text,
            sources=cfg.sources,
        )
        evidence = edges.frame(np.flatnonzero(accepted))
        at = np.asarray([i for i, _ in refusals], dtype=np.int64)
        refused = edges.frame(at)
        refused["reason"] = pd.array([reason for _, reason in refusals], dtype="str")
        refused["cluster_id_l"] = cluster_key.take(cluster[d_l[at]], allow_fill=True)
        refused["cluster_id_r"] = cluster_key.take(cluster[d_r[at]], allow_fill=True)
        refused = refused.astype({"step": "Int64"})
        if len(x_bad):
            bad = _bad_links(x_bad, type_text, cluster_key, cluster)
            refused = pd.concat([refused, bad], ignore_index=True)
        shared = _shared_frame(shared_rows, type_text, node_type, node_value, node_records, cfg)
        never_linked = _never_frame(never_rows, type_text, node_type, node_value, node_records)

    unresolvable = rec_cluster < 0
    stats: dict[str, Any] = {
        "observations": int(obs["rows"]),
        "records": n_rec,
        "records_unresolvable": int(unresolvable.sum()),
        "records_unresolvable_by_source": {
            name: int(n)
            for name, n in zip(
                cfg.sources,
                np.bincount(rec_src[unresolvable], minlength=len(cfg.sources)),
                strict=True,
            )
            if n
        },
        "nodes": n_nodes,
        "nodes_never_link": int((status == 1).sum()),
        "nodes_shared": int((status == 2).sum()),
        "edges": n_edges,
        "edges_distinct": len(d_l),
        "extra_links": 0 if links is None else len(links),
        "extra_links_unusable": int(len(x_bad)),
        "unions": int(accepted.sum()),
        "refused": len(refusals),
        "components_over_limits": int(over.sum()),
        "edges_in_constrained_components": int(len(constrained)),
        "clusters": n_clusters,
        "customer_clusters": int(customer.sum()),
        "anonymous_clusters": int(n_clusters - customer.sum()),
        "seconds": timer.seconds,
    }
    timer.close()
    logger.info(
        "identity graph: %s records, %s nodes, %s clusters (%s customers), %s refused",
        f"{n_rec:,}",
        f"{n_nodes:,}",
        f"{n_clusters:,}",
        f"{int(customer.sum()):,}",
        f"{len(refusals):,}",
    )
    return IdentityGraph(nodes, records, evidence, refused, shared, never_linked, stats)


# ---------------------------------------------------------------------------- input checks


def _read_observations(df: pd.DataFrame, cfg: IdentityConfig) -> dict[str, Any]:
    _check_frame(df, "observations", OBSERVATION_COLUMNS)
    for column in ("record_key", "source", "id_type", "id_value"):
        _check_text(df, "observations", column)
    return {
        "rows": len(df),
        "record_key": df["record_key"],
        "id_value": df["id_value"],
        "source": _codes(df, "observations", "source", cfg.sources, "sources"),
        "type": _codes(df, "observations", "id_type", cfg.id_types, "id_types"),
        "ts": _micros(df, "observations", "first_seen_at"),
    }


def _read_extra_links(df: pd.DataFrame | None, cfg: IdentityConfig) -> pd.DataFrame | None:
    if df is None:
        return None
    _check_frame(df, "extra_links", EXTRA_LINK_COLUMNS)
    for column in EXTRA_LINK_COLUMNS[:-1]:
        _check_text(df, "extra_links", column)
    score = pd.to_numeric(df["score"], errors="coerce")
    bad = score.isna().to_numpy() | ~np.isfinite(score.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"extra_links.score is missing or not a finite number in {int(bad.sum()):,} row(s) "
            f"(first at row {i}: {df['score'].iloc[i]!r}); every accepted link needs its score"
        )
    out = pd.DataFrame(
        {
            "type_l": _codes(df, "extra_links", "id_type_l", cfg.id_types, "id_types"),
            "value_l": df["id_value_l"].to_numpy(dtype=object),
            "type_r": _codes(df, "extra_links", "id_type_r", cfg.id_types, "id_types"),
            "value_r": df["id_value_r"].to_numpy(dtype=object),
            "rule": df["rule"].to_numpy(dtype=object),
            "score": score.to_numpy(dtype=float),
        }
    )
    return out


def _check_frame(
    df: Any, name: str, columns: tuple[str, ...], schema: str = "ml/identity/graph.py"
) -> None:
    """Raise InputError unless `df` is a DataFrame with `columns` (schema documented in `schema`)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{name} lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)} "
            f"(schema in {schema}); it has {', '.join(map(str, df.columns))}"
        )


def _check_text(df: pd.DataFrame, name: str, column: str) -> None:
    series = df[column]
    null = series.isna().to_numpy()
    if null.any():
        i = int(np.flatnonzero(null)[0])
        hint = (
            "leave rows without an identifier out of the model (where id_value is not null)"
            if column.startswith("id_value")
            else "every row needs one"
        )
        raise InputError(
            f"{name}.{column} is null in {int(null.sum()):,} row(s) (first at row {i}"
            f"{_where(df, i)}); {hint}"
        )
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=False) not in (
        "string",
        "empty",
    ):
        i = next(k for k, v in enumerate(series.to_numpy()) if not isinstance(v, str))
        raise InputError(
            f"{name}.{column} must hold text, but row {i}{_where(df, i)} holds "
            f"{series.iloc[i]!r} ({type(series.iloc[i]).__name__}); cast it to varchar"
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        if pd.api.types.infer_dtype(series.cat.categories) not in ("string", "empty"):
            raise InputError(f"{name}.{column} is categorical, but not of text; cast it to varchar")
    elif series.dtype != object and not pd.api.types.is_string_dtype(series.dtype):
        raise InputError(
            f"{name}.{column} must be text, got dtype {series.dtype}; cast it to varchar"
        )


def _where(df: pd.DataFrame, i: int) -> str:
    if "record_key" in df.columns and isinstance(df["record_key"].iloc[i], str):
        return f", record_key {df['record_key'].iloc[i]!r}"
    return ""


def _codes(
    df: pd.DataFrame, name: str, column: str, allowed: tuple[str, ...], key: str
) -> np.ndarray:
    """Position of each row's value in `allowed` (the config's list), or a clear error."""
    codes, uniques = pd.factorize(df[column], sort=False)
    index = {value: i for i, value in enumerate(allowed)}
    lookup = np.asarray([index.get(value, -1) for value in uniques], dtype=np.int64)
    if (lookup < 0).any():
        counts = np.bincount(codes, minlength=len(uniques))
        unknown = sorted(
            ((str(uniques[i]), int(counts[i])) for i in np.flatnonzero(lookup < 0)),
            key=lambda item: (-item[1], item[0]),
        )
        listed = ", ".join(f"{v!r} ({n:,} rows)" for v, n in unknown[:5])
        raise InputError(
            f"{name}.{column} holds value(s) the identity config does not know: {listed}; "
            f"allowed: {', '.join(allowed)}. Add them to `{key}` in ml/identity/identity.yml "
            f"or fix the model"
        )
    return lookup[codes].astype(np.int8) if len(codes) else np.zeros(0, dtype=np.int8)


def _micros(df: pd.DataFrame, name: str, column: str) -> np.ndarray:
    """Microseconds since the epoch, UTC (naive timestamps are taken as UTC)."""
    series = df[column]
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        raise InputError(
            f"{name}.{column} must be a timestamp column, got dtype {series.dtype}; "
            f"cast it to timestamp (UTC) in the model"
        )
    null = series.isna().to_numpy()
    if null.any():
        i = int(np.flatnonzero(null)[0])
        raise InputError(
            f"{name}.{column} is null in {int(null.sum()):,} row(s) (first at row {i}"
            f"{_where(df, i)}); give every identifier the time its record was first seen"
        )
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


# ---------------------------------------------------------------------------- phases


def _factorize_sorted(
    values: pd.Series, *, materialise: bool = True
) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Codes that follow the sorted order of the distinct values (input order plays no part).

    Returns (codes, distinct values, order): `distinct[order]` is sorted, and is what is
    returned as the distinct values when `materialise` (else they are left unsorted, which
    saves a costly gather when the caller only needs some of them).
    """
    codes, uniques = pd.factorize(values, sort=False)
    uniques = pd.Index(uniques, dtype="str")
    order = np.asarray(uniques.argsort())
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    if materialise:
        return rank[codes], uniques[order], np.arange(len(order))
    return rank[codes], uniques, order


def _dense(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number non-negative integer keys 0..k-1 in sorted order: (codes, sorted distinct keys)."""
    size = int(keys.max()) + 1 if len(keys) else 0
    if size > 8 * len(keys) + 1_000_000:
        uniques, codes = np.unique(keys, return_inverse=True)
        return codes.astype(np.int64), uniques
    present = np.zeros(size, dtype=bool)
    present[keys] = True
    number = np.cumsum(present, dtype=np.int64) - 1
    return number[keys], np.flatnonzero(present)


def _join(left: Any, right: Any) -> Any:
    """Element-wise `left + ":" + right` of two pandas string arrays, as a pandas str array."""
    text = pa.large_string()
    joined = pc.binary_join_element_wise(
        pa.array(left, type=text), pa.array(right, type=text), pa.scalar(":", type=text)
    )
    return pd.array(joined, dtype="str")


def _never_link(
    cfg: IdentityConfig, node_value: pd.Index, bounds: np.ndarray, status: np.ndarray
) -> dict[int, str]:
    """Mark never-link nodes in `status`; return {node: the rule that matched}."""
    matched: dict[int, str] = {}
    for t, id_type in enumerate(cfg.id_types):
        lo, hi = int(bounds[t]), int(bounds[t + 1])
        scopes = [s for s in (id_type, ALL_TYPES) if s in cfg.never_link]
        if hi == lo or not scopes:
            continue
        values = pd.Series(node_value[lo:hi])
        folded = None
        for scope in scopes:
            rule = cfg.never_link[scope]
            if rule.values:
                if folded is None:
                    folded = values.str.strip().str.lower()
                hit = np.flatnonzero(folded.isin(rule.values).to_numpy())
                for i in hit.tolist():
                    matched.setdefault(lo + i, f"{scope} value {folded.iloc[i]!r}")
            if rule.patterns:
                texts = values.tolist()
                for pattern, regex in zip(rule.patterns, rule.compiled, strict=True):
                    search = regex.search
                    for i, text in enumerate(texts):
                        if search(text):
                            matched.setdefault(lo + i, f"{scope} pattern {pattern!r}")
    status[list(matched)] = 1
    return matched


def _shared(
    cfg: IdentityConfig,
    inc_rec: np.ndarray,
    inc_node: np.ndarray,
    node_type: np.ndarray,
    status: np.ndarray,
    n_nodes: int,
) -> list[tuple[int, str, int, int]]:
    """Mark shared nodes in `status`; return (node, counted type, distinct values, limit)."""
    rows: list[tuple[int, str, int, int]] = []
    usable = status[inc_node] == 0
    inc_type = node_type[inc_node]
    for id_type, counted in cfg.shared.items():
        mine = usable & (inc_type == cfg.rank(id_type))
        if not mine.any():
            continue
        left = pd.DataFrame({"rec": inc_rec[mine], "node": inc_node[mine]})
        for other, limit in counted.items():
            theirs = usable & (inc_type == cfg.rank(other))
            right = pd.DataFrame({"rec": inc_rec[theirs], "other": inc_node[theirs]})
            both = left.merge(right, on="rec", how="inner", sort=False)
            both = both[both["node"] != both["other"]]
            pairs = pd.unique(both["node"].to_numpy(np.int64) * n_nodes + both["other"])
            distinct = np.bincount(pairs // n_nodes, minlength=n_nodes)
            for node in np.flatnonzero(distinct > limit).tolist():
                rows.append((node, other, int(distinct[node]), limit))
    for node, *_ in rows:
        status[node] = 2
    return rows


def _record_edges(
    rec: np.ndarray, node: np.ndarray, src: np.ndarray, n_rec: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Star edges hub -> other for each record (rows sorted by record, then node).

    The hub is the record's first node (its highest-priority identifier). An edge's source is
    the lower-priority source of its two ends' rows in the record (an order enriched by its
    purchase event links the order's customer to the web user as clickstream evidence).
    Returns (record, hub, other, source) per edge and the hub of every record (-1 if none).
    """
    rec_hub = np.full(n_rec, -1, dtype=np.int64)
    if not len(rec):
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, empty, np.zeros(0, dtype=np.int8), rec_hub
    first = np.r_[True, rec[1:] != rec[:-1]]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    hub = node[starts][group]
    hub_src = src[starts][group]
    rec_hub[rec[starts]] = node[starts]
    other = ~first
    return rec[other], hub[other], node[other], np.maximum(hub_src, src)[other], rec_hub


def _extra_edges(
    links: pd.DataFrame | None,
    cfg: IdentityConfig,
    values: pd.Index,
    value_order: np.ndarray,
    node_keys: np.ndarray,
    status: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Extra links as node pairs in their order; links that cannot apply, with the reason."""
    empty = np.zeros(0, dtype=np.int32)
    if links is None or not len(links):
        return empty, empty, np.zeros(0, dtype=np.int64), pd.DataFrame()
    width = max(len(values), 1)
    value_rank = np.empty(len(value_order), dtype=np.int64)
    value_rank[value_order] = np.arange(len(value_order))
    # look the links' few values up among all values (hashing the small side only)
    wanted = pd.Index(pd.unique(np.concatenate([links["value_l"], links["value_r"]])), dtype="str")
    hit = pc.index_in(pa.array(values.array), value_set=pa.array(wanted.array))
    hit = pc.fill_null(hit, -1).to_numpy(zero_copy_only=False)
    seen = np.flatnonzero(hit >= 0)
    where = np.full(len(wanted), -1, dtype=np.int64)
    where[hit[seen]] = seen
    nodes = []
    for side in ("l", "r"):
        found_at = where[wanted.get_indexer(pd.Index(links[f"value_{side}"], dtype="str"))]
        code = np.where(found_at >= 0, value_rank[np.maximum(found_at, 0)], -1)
        key = links[f"type_{side}"].to_numpy(np.int64) * width + code
        at = np.minimum(np.searchsorted(node_keys, key), max(len(node_keys) - 1, 0))
        found = (code >= 0) & (len(node_keys) > 0) & (node_keys[at] == key)
        nodes.append(np.where(found, at, -1))
    l_node, r_node = nodes
    reason = np.full(len(links), None, dtype=object)
    open_ = np.ones(len(links), dtype=bool)
    for side, node in (("l", l_node), ("r", r_node)):
        state = np.where(node < 0, 3, status[np.maximum(node, 0)])
        for i in np.flatnonzero(open_ & (state > 0)).tolist():
            what = {1: "is never_link", 2: "is shared", 3: "is not in the observations"}
            reason[i] = f"{_label(cfg, links, side, i)} {what[int(state[i])]}"
        open_ &= state == 0
    same = open_ & (l_node == r_node)
    reason[same] = "links an identifier to itself"
    open_ &= ~same
    ok = np.flatnonzero(open_)
    lo = np.minimum(l_node[ok], r_node[ok])
    hi = np.maximum(l_node[ok], r_node[ok])
    order = ok[np.lexsort((hi, lo, -links["score"].to_numpy()[ok]))]
    unusable = np.flatnonzero(~open_)
    bad = links.iloc[unusable].copy()
    bad["reason"] = reason[unusable]
    bad["node_l"] = l_node[unusable]
    bad["node_r"] = r_node[unusable]
    return (
        l_node[order].astype(np.int32),
        r_node[order].astype(np.int32),
        order.astype(np.int64),
        bad,
    )


def _label(cfg: IdentityConfig, links: pd.DataFrame, side: str, i: int) -> str:
    return f"{cfg.id_types[links[f'type_{side}'].iloc[i]]}:{links[f'value_{side}'].iloc[i]}"


def _constrained_unions(
    left: list[int],
    right: list[int],
    limit_of: list[int],
    limits: list[int],
    names: list[str],
    progress: bool,
) -> tuple[list[bool], list[int], list[str], list[int]]:
    """Sequential union-find that refuses unions breaking a limit, in the given edge order.

    Nodes are local indices; `limit_of[node]` is the index of its limited type or -1.
    Returns whether each edge was accepted, the refused edges with reasons, and each
    node's root.
    """
    m, k = len(limit_of), len(limits)
    parent = list(range(m))
    size = [1] * m
    counts = [[0] * m for _ in range(k)]
    for node, j in enumerate(limit_of):
        if j >= 0:
            counts[j][node] = 1
    ok = [False] * len(left)
    refused_at: list[int] = []
    reasons: list[str] = []
    kinds = list(zip(counts, limits, strict=True))
    bar = _bar(len(left), "constrained unions", progress)
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if bar is not None and i % 50_000 == 0:
            bar.update(i - bar.n)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a == b:
            continue
        for count, limit in kinds:
            if count[a] + count[b] > limit:
                refused_at.append(i)
                reasons.append(
                    "; ".join(
                        f"profile would hold {counts[j][a] + counts[j][b]} {names[j]} values "
                        f"(limit {limits[j]})"
                        for j in range(k)
                        if counts[j][a] + counts[j][b] > limits[j]
                    )
                )
                break
        else:
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
            for count, _ in kinds:
                count[a] += count[b]
            ok[i] = True
    if bar is not None:
        bar.update(len(left) - bar.n)
        bar.close()
    roots = []
    for a in range(m):
        while parent[a] != a:
            a = parent[a]
        roots.append(a)
    return ok, refused_at, reasons, roots


# ---------------------------------------------------------------------------- output


@dataclass
class _EdgeText:
    """Turns distinct edges (by position) into evidence or refused rows."""

    step: np.ndarray
    left: np.ndarray
    right: np.ndarray
    rec: np.ndarray
    extra: np.ndarray
    src: np.ndarray
    rec_keys: pd.Index
    links: pd.DataFrame | None
    node_type: np.ndarray
    node_value: pd.Index
    type_text: pd.Index
    sources: tuple[str, ...]

    def frame(self, at: np.ndarray) -> pd.DataFrame:
        rec, extra = self.rec[at], self.extra[at]
        from_rec = rec >= 0
        rules = [f"same_record:{source}" for source in self.sources]
        rule = np.zeros(len(at), dtype=np.int64)
        rule[from_rec] = self.src[at][from_rec]
        score = np.full(len(at), np.nan)
        if self.links is not None and (~from_rec).any():
            codes, names = pd.factorize(self.links["rule"])
            rule[~from_rec] = len(rules) + codes[extra[~from_rec]]
            rules.extend(names)
            score[~from_rec] = self.links["score"].to_numpy()[extra[~from_rec]]
        left, right = self.left[at], self.right[at]
        return pd.DataFrame(
            {
                "step": self.step[at],
                "id_type_l": self.type_text.array.take(self.node_type[left]),
                "id_value_l": self.node_value.array.take(left),
                "id_type_r": self.type_text.array.take(self.node_type[right]),
                "id_value_r": self.node_value.array.take(right),
                "rule": pd.Index(rules, dtype="str").array.take(rule),
                "record_key": self.rec_keys.array.take(rec, allow_fill=True),
                "score": score,
            }
        )


def _bad_links(
    bad: pd.DataFrame, type_text: pd.Index, cluster_key: Any, cluster: np.ndarray
) -> pd.DataFrame:
    """Extra links that could not apply (unknown, never-link or shared identifiers)."""
    bad = bad.sort_values(
        ["score", "type_l", "value_l", "type_r", "value_r", "rule"],
        ascending=[False, True, True, True, True, True],
        kind="stable",
    )
    sides = {}
    for side in ("l", "r"):
        node = bad[f"node_{side}"].to_numpy(np.int64)
        where = np.where(node >= 0, cluster[np.maximum(node, 0)], -1)
        sides[side] = cluster_key.take(where, allow_fill=True)
    return pd.DataFrame(
        {
            "step": pd.array([pd.NA] * len(bad), dtype="Int64"),
            "id_type_l": type_text.array.take(bad["type_l"].to_numpy()),
            "id_value_l": pd.array(bad["value_l"].to_numpy(), dtype="str"),
            "id_type_r": type_text.array.take(bad["type_r"].to_numpy()),
            "id_value_r": pd.array(bad["value_r"].to_numpy(), dtype="str"),
            "rule": pd.array(bad["rule"].to_numpy(), dtype="str"),
            "record_key": pd.array([None] * len(bad), dtype="str"),
            "score": bad["score"].to_numpy(dtype=float),
            "reason": pd.array(bad["reason"].to_numpy(), dtype="str"),
            "cluster_id_l": sides["l"],
            "cluster_id_r": sides["r"],
        }
    )


def _shared_frame(
    rows: list[tuple[int, str, int, int]],
    type_text: pd.Index,
    node_type: np.ndarray,
    node_value: pd.Index,
    node_records: np.ndarray,
    cfg: IdentityConfig,
) -> pd.DataFrame:
    rows = sorted(rows, key=lambda r: (r[0], cfg.rank(r[1])))
    node = np.asarray([r[0] for r in rows], dtype=np.int64)
    return pd.DataFrame(
        {
            "id_type": type_text.array.take(node_type[node]),
            "id_value": node_value.array.take(node),
            "counted_type": pd.array([r[1] for r in rows], dtype="str"),
            "distinct_values": np.asarray([r[2] for r in rows], dtype=np.int64),
            "limit": np.asarray([r[3] for r in rows], dtype=np.int64),
            "records": node_records[node].astype(np.int64),
        }
    )


def _never_frame(
    matched: dict[int, str],
    type_text: pd.Index,
    node_type: np.ndarray,
    node_value: pd.Index,
    node_records: np.ndarray,
) -> pd.DataFrame:
    node = np.asarray(sorted(matched), dtype=np.int64)
    return pd.DataFrame(
        {
            "id_type": type_text.array.take(node_type[node]),
            "id_value": node_value.array.take(node),
            "rule": pd.array([matched[i] for i in node.tolist()], dtype="str"),
            "records": node_records[node].astype(np.int64),
        }
    )


def _utc(micros: np.ndarray) -> pd.Series:
    return pd.Series(micros.astype("datetime64[us]")).dt.tz_localize("UTC")


# ---------------------------------------------------------------------------- progress


class _Timer(Stopwatch):
    """Times each phase; with `progress`, shows a tqdm bar over the phases."""

    def __init__(self, progress: bool) -> None:
        super().__init__()
        self.bar = _bar(len(_PHASES), "identity graph", progress)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        with super().phase(name):
            yield
        logger.debug("identity graph: %s took %.2f s", name, self.seconds[name])
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _bar(total: int, desc: str, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step" if desc == "identity graph" else "edge")
