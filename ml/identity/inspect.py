"""Questions about the resolved identities in the warehouse: why (not) one customer, what would change.

    python -m ml.identity explain crm:C1000003 crm:C1004411       # two records
    python -m ml.identity explain email:anna@example.org user_id:U10000002   # or two identifiers
    python -m ml.identity preview --config my_identity.yml        # merges and splits, not applied

`explain_pair(connection, a, b)` names the customer of each side and, when they are one
customer, the chain of evidence that joined them: every step is one union of the identity graph
(`identity.evidence`): the record that carried both identifiers, or the probabilistic link
between two CRM records with its per-field comparison. When they are two customers it says
what kept them apart: a shared or never-link identifier, a refused merge, or the matcher's
verdict on the two CRM records (recomputed with the stored model, also for pairs blocking
never compared).

`preview_config(connection, path)` resolves the warehouse's identifiers again with another
identity.yml and returns the merges, splits and retirements it would cause, writing nothing.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml.identity import config as identity_config
from ml.identity import graph as identity_graph
from ml.identity import stable_ids
from ml.identity.explain import explain as explain_records
from ml.identity.fellegi_sunter import MatchModel
from ml.identity.pipeline import (
    match_links,
    previous_mapping,
    read_inputs,
)

RECORD_KINDS = ("crm", "order", "visit", "consent", "erasure")


@dataclass(frozen=True)
class Side:
    """One side of the question: what was asked, its identifiers and its customer."""

    asked: str
    identifiers: tuple[tuple[str, str], ...]
    customer_id: str | None
    crm_id: str | None


def _side(connection: duckdb.DuckDBPyConnection, asked: str) -> Side:
    kind, _, value = asked.partition(":")
    if not value:
        raise ValueError(
            f"{asked!r}: name a record (crm:C1000003, order:O100000001) or an identifier "
            "(email:anna@example.org, user_id:U10000002)"
        )
    if kind in RECORD_KINDS:
        identifiers = connection.execute(
            "select id_type, id_value from intermediate.int_identifiers_observed "
            "where record_key = ? order by all",
            [asked],
        ).fetchall()
        found = connection.execute(
            "select customer_id from identity.records where record_key = ?", [asked]
        ).fetchall()
        if not found:
            raise ValueError(f"{asked!r}: no such record in identity.records")
        customer = found[0][0]
    else:
        found = connection.execute(
            "select customer_id from identity.identifiers where id_type = ? and id_value = ?",
            [kind, value],
        ).fetchall()
        if not found:
            raise ValueError(f"{asked!r}: no such identifier in identity.identifiers")
        identifiers, customer = [(kind, value)], found[0][0]
    crm = next((v for t, v in identifiers if t == "crm_id"), None)
    return Side(asked, tuple(identifiers), customer, crm)


def _chain(
    connection: duckdb.DuckDBPyConnection, customer_id: str, start: tuple, goal: tuple
) -> list[dict]:
    """The evidence steps joining two identifiers of one customer (a path in the union forest)."""
    edges = connection.execute(
        """
        select evidence.*
        from identity.evidence as evidence
        inner join identity.identifiers as identifiers
            on evidence.id_type_l = identifiers.id_type and evidence.id_value_l = identifiers.id_value
        where identifiers.customer_id = ?
        """,
        [customer_id],
    ).df()
    neighbours: dict[tuple, list[tuple[tuple, dict]]] = {}
    for row in edges.to_dict("records"):
        left, right = (row["id_type_l"], row["id_value_l"]), (row["id_type_r"], row["id_value_r"])
        neighbours.setdefault(left, []).append((right, row))
        neighbours.setdefault(right, []).append((left, row))
    previous: dict[tuple, tuple[tuple, dict] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for other, row in neighbours.get(node, []):
            if other not in previous:
                previous[other] = (node, row)
                queue.append(other)
    if goal not in previous:
        return []
    steps, node = [], goal
    while previous[node] is not None:
        node, row = previous[node]
        steps.append(row)
    return steps[::-1]


def _matcher_text(connection: duckdb.DuckDBPyConnection, crm_a: str, crm_b: str) -> str:
    """The matcher's explanation of two CRM records with the stored model of the last run."""
    _, people = read_inputs(connection)
    stored = connection.execute("select model from identity.match_model").fetchone()
    model = MatchModel.from_dict(json.loads(stored[0])) if stored else None
    return explain_records(people, crm_a, crm_b, model=model).text


def _describe(row: dict) -> str:
    left = f"{row['id_type_l']}:{row['id_value_l']}"
    right = f"{row['id_type_r']}:{row['id_value_r']}"
    if row["rule"] == "probabilistic":
        return f"{left} = {right}: probabilistic match, weight {row['score']:.2f}"
    return f"{left} = {right}: both in record {row['record_key']} ({row['rule']})"


def explain_pair(connection: duckdb.DuckDBPyConnection, a: str, b: str) -> str:
    """Why `a` and `b` (records or identifiers) are, or are not, one customer; readable text."""
    side_a, side_b = _side(connection, a), _side(connection, b)
    lines = [
        f"{side_a.asked}: customer {side_a.customer_id or '(none)'}",
        f"{side_b.asked}: customer {side_b.customer_id or '(none)'}",
    ]
    same = side_a.customer_id is not None and side_a.customer_id == side_b.customer_id
    if same:
        lines.append("Same customer, because:")
        steps = _chain(connection, side_a.customer_id, side_a.identifiers[0], side_b.identifiers[0])
        for row in steps:
            lines.append(f"  {_describe(row)}")
        probabilistic = [row for row in steps if row["rule"] == "probabilistic"]
        for row in probabilistic:
            lines += ["", _matcher_text(connection, row["id_value_l"], row["id_value_r"])]
        return "\n".join(lines)

    lines.append("Not the same customer.")
    mine = set(side_a.identifiers) | set(side_b.identifiers)
    held = connection.execute(
        "select id_type, id_value, status from identity.identifiers where status != 'linked'"
    ).df()
    for row in held.itertuples():
        if (row.id_type, row.id_value) in mine:
            lines.append(
                f"  {row.id_type}:{row.id_value} links nobody ({row.status}, identity.yml)"
            )
    refused = connection.execute("select * from identity.refused_merges").df()
    for row in refused.to_dict("records"):
        ends = {(row["id_type_l"], row["id_value_l"]), (row["id_type_r"], row["id_value_r"])}
        if ends & set(side_a.identifiers) or ends & set(side_b.identifiers):
            lines.append(f"  refused merge: {_describe(row)}: {row['reason']}")
    if side_a.crm_id and side_b.crm_id:
        lines += ["", _matcher_text(connection, side_a.crm_id, side_b.crm_id)]
    elif len(lines) == 3:
        lines.append("  no record carries identifiers of both, and no rule or match links them")
    return "\n".join(lines)


def preview_config(
    connection: duckdb.DuckDBPyConnection, path: str | Path, *, progress: bool = False
) -> pd.DataFrame:
    """Merges, splits and retirements another identity.yml would cause; nothing is written."""
    config = identity_config.load_config(path)
    observations, people = read_inputs(connection)
    edges, _ = match_links(people, progress=progress)
    graph = identity_graph.resolve_graph(observations, edges, config, progress=progress)
    previous = previous_mapping(connection)
    if previous is None:
        raise ValueError("identity has not run on this warehouse yet: nothing to compare with")
    return stable_ids.preview(previous, graph, config=config)
