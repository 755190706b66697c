"""Why are these two records the same customer, or why not?

`explain(resolution_or_frame, record_id_a, record_id_b)` recomputes the comparison of the two
records with the run's model (also when blocking never put them side by side) and reads the
run's decisions: a direct link, a path of links through other records, a veto, a link dropped by
the chaining guard, a score under the threshold, or no blocking key in common.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.identity.comparisons import compare_pairs
from ml.identity.fellegi_sunter import MatchModel, pair_weights, probability, weight_for
from ml.identity.matching import (
    MatchSettings,
    Resolution,
    _veto_codes,
    _veto_columns,
    resolve_entities,
)


@dataclass
class Explanation:
    """The evidence for one pair and the verdict; `text` is the readable form."""

    record_id_a: object
    record_id_b: object
    fields: pd.DataFrame  # comparison, value_a, value_b, level, meaning, weight
    prior_weight: float
    match_weight: float
    match_probability: float
    threshold: float
    blocked_by: list[str]
    veto: str | None
    same_entity: bool
    entity_a: str
    entity_b: str
    decision: str | None  # the run's decision on the direct pair, if it was kept in links
    path: list[object]  # record ids from a to b through accepted links (same entity only)
    reason: str
    text: str


def _format_value(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    text = str(value)
    return text if len(text) <= 28 else text[:27] + "…"


def _raw(raw: pd.DataFrame, fields: tuple[str, ...], position: int) -> str | None:
    """The record's values of the comparison's input columns as given, joined by ", "."""
    values = [raw[f].iloc[position] for f in fields if f in raw.columns]
    text = ", ".join(v for v in values if isinstance(v, str) and v)
    return text or None


def _path(resolution: Resolution, a: int, b: int) -> list[int]:
    state = resolution.state
    neighbours: dict[int, list[int]] = {}
    for x, y in zip(state.link_left.tolist(), state.link_right.tolist(), strict=True):
        if state.labels[x] == state.labels[a]:
            neighbours.setdefault(x, []).append(y)
            neighbours.setdefault(y, []).append(x)
    previous = {a: a}
    queue = deque([a])
    while queue:
        x = queue.popleft()
        if x == b:
            break
        for y in sorted(neighbours.get(x, [])):
            if y not in previous:
                previous[y] = x
                queue.append(y)
    if b not in previous:
        return []
    path = [b]
    while path[-1] != a:
        path.append(previous[path[-1]])
    return path[::-1]


def explain(
    source: Resolution | pd.DataFrame,
    record_id_a: object,
    record_id_b: object,
    *,
    settings: MatchSettings | None = None,
    mapping: Mapping[str, str] | None = None,
    model: MatchModel | None = None,
) -> Explanation:
    """Explain the verdict on two records.

    `source` is a `Resolution` (cheap) or a DataFrame of records, which is resolved first with
    `settings`, `mapping` and `model` (as `resolve_entities`).
    """
    if isinstance(source, Resolution):
        resolution = source
    else:
        resolution = resolve_entities(source, settings, mapping=mapping, model=model)
    state = resolution.state
    prepared, comparisons, model = state.prepared, state.comparisons, resolution.model
    settings = resolution.settings
    a, b = prepared.position(record_id_a), prepared.position(record_id_b)
    if a == b:
        raise ValueError(f"record {record_id_a!r} was given twice; name two different records")
    left, right = np.array([min(a, b)]), np.array([max(a, b)])
    gamma = compare_pairs(prepared, comparisons, left, right)
    prior = state.priors(model, left, right)
    total, per_field = pair_weights(model, comparisons, gamma, prepared, left, right, prior)
    prior_weight = float(np.log2(prior[0]) - np.log2(1.0 - prior[0]))
    group = state.groups.labels[int(state.groups.of(left, right)[0])] if state.groups else "all"
    weight, chance = float(total[0]), float(probability(total[0]))
    vetoes = _veto_columns(comparisons, settings)
    veto_code = int(_veto_codes(gamma, vetoes)[0])
    veto = vetoes[veto_code - 1][2] if veto_code else None
    rows = []
    for j, comparison in enumerate(comparisons):
        level = int(gamma[0, j])
        rows.append(
            {
                "comparison": comparison.name,
                "value_a": _raw(prepared.raw, comparison.fields, a),
                "value_b": _raw(prepared.raw, comparison.fields, b),
                "level": "null" if level < 0 else comparison.levels[level].name,
                "meaning": "one side is empty" if level < 0 else comparison.levels[level].label,
                "weight": float(per_field[0, j]),
            }
        )
    fields = pd.DataFrame(rows)
    blocked_by = state.blocked_by(a, b)
    entity_ids = resolution.entities["entity_id"].to_numpy()
    entity_a, entity_b = str(entity_ids[a]), str(entity_ids[b])
    same = entity_a == entity_b
    decision = state.decisions.get((min(a, b), max(a, b)))
    ids = prepared.record_ids
    path = [ids[x] for x in _path(resolution, a, b)] if same else []
    threshold = settings.threshold
    above = weight >= weight_for(threshold)
    numbers = f"match probability {chance:.6f} (weight {weight:+.2f} bits)"
    support = fields[fields["weight"] > 0.05].sort_values("weight", ascending=False)
    against = fields[fields["weight"] < -0.05].sort_values("weight")

    def listing(frame: pd.DataFrame) -> str:
        return ", ".join(
            f"{r.comparison} {r.level} ({r.weight:+.1f})" for r in frame.head(3).itertuples()
        )

    if same and decision == "link":
        reason = (
            f"yes, because their {numbers} reaches the threshold {threshold}; "
            f"strongest evidence: {listing(support) or 'none'}"
        )
    elif same:
        through = " - ".join(str(x) for x in path)
        reason = (
            f"yes, through other records of the same customer ({through}), each link at or "
            f"above the threshold {threshold}; directly, their {numbers}"
        )
    elif decision and decision.startswith("dropped"):
        reason = (
            f"no: their {numbers} reaches the threshold, but the link was {decision} "
            "(chaining guard)"
        )
    elif veto and above:
        reason = f"no: {veto}, which vetoes a link, although their {numbers} reaches the threshold"
    elif decision and decision.startswith("vetoed"):
        reason = f"no: {decision}"
    elif not blocked_by:
        verdict = "still not linked" if veto or not above else "been linked"
        reason = (
            "no: blocking never compared them (they share no blocking key); had they been "
            f"compared, their {numbers} would have {verdict} at the threshold {threshold}"
        )
    else:
        reason = (
            f"no: their {numbers} is below the threshold {threshold}; "
            f"evidence against: {listing(against) or 'none'}"
        )
        empty = fields.loc[fields["level"] == "null", "comparison"].tolist()
        if empty:
            reason += f"; no evidence from: {', '.join(empty)}"
        if veto:
            reason += f"; and {veto} (a veto)"
    label_a, label_b = _format_value(ids[a]), _format_value(ids[b])
    lines = [
        f"Records {label_a} and {label_b}",
        f"{'field':<15}{label_a:<30}{label_b:<30}{'level':<22}{'weight':>8}",
    ]
    for row in fields.itertuples():
        lines.append(
            f"{row.comparison:<15}{_format_value(row.value_a):<30}{_format_value(row.value_b):<30}"
            f"{row.level:<22}{row.weight:>+8.2f}"
        )
    lines.append(
        f"{'prior (two random records of this group are one person)':<97}{prior_weight:>+8.2f}"
    )
    lines.append(f"group of the pair (sources | fields both have): {group}")
    lines.append(
        f"total: weight {weight:+.2f} bits, match probability {chance:.6f}, threshold {threshold}"
    )
    lines.append(
        "blocking: "
        + (f"compared (rules: {', '.join(blocked_by)})" if blocked_by else "never compared")
    )
    lines.append(f"same customer: {reason}")
    return Explanation(
        record_id_a=ids[a],
        record_id_b=ids[b],
        fields=fields,
        prior_weight=prior_weight,
        match_weight=weight,
        match_probability=chance,
        threshold=threshold,
        blocked_by=blocked_by,
        veto=veto,
        same_entity=same,
        entity_a=entity_a,
        entity_b=entity_b,
        decision=decision,
        path=path,
        reason=reason,
        text="\n".join(lines),
    )
