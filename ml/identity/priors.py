"""Which group a pair of records belongs to, for the match prior: sources and fields present.

The prior λ is the probability that two records drawn at random are one person. It is not the
same for every pair: two records of one source are rarely one person (a CRM holds few
duplicates), while a record of the tax forms and one of the CRM often are (most people are in
both); and a pair whose records lack a field may be commoner among duplicates than among the
rest. So the matcher estimates one prior per *group*: the pair of sources (``crm/orders``;
``all`` without a ``source`` column) and the set of comparisons both records can be compared
on (``first_name+last_name+address``). EM counts the expected matches among the candidate
pairs of each group and divides by *every* pair of the group (pairs blocking left out count as
non-matches), which this module counts from the records alone: records are grouped by source
and by which columns they have, and every two such groups make known numbers of pairs.

Thin groups borrow from their parents (`shrink`): a group's prior is pulled towards its
source pair's prior, and that towards the overall prior, as if each had
`pseudo_matches` expected matches at the parent's rate. A group with many pairs and few
matches gets a small prior; one with few pairs keeps its parent's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.identity.comparisons import Comparison, PreparedRecords

PRESENCE_COMPARISONS = ("first_name", "last_name", "date_of_birth", "email", "phone", "address")
"""Comparisons whose presence on both records decides a pair's group."""
ALL_SOURCES = "all"


@dataclass
class PairGroups:
    """Group of any pair of one prepared set (see the module docstring)."""

    labels: list[str]  # per group: "<source>/<source>|<comparison>+<comparison>"
    source_pairs: list[str]  # per group: "<source>/<source>"
    totals: np.ndarray  # per group: how many record pairs of the whole set are in it
    record_source: np.ndarray  # per record: source code
    record_mask: np.ndarray  # per record: bit mask of present columns
    column_bits: list[int]  # per presence comparison: bits of its columns
    group_index: dict[int, int]  # packed key -> group id
    n_sources: int

    def _keys(self, source_l: np.ndarray, source_r: np.ndarray, masks: np.ndarray) -> np.ndarray:
        low, high = np.minimum(source_l, source_r), np.maximum(source_l, source_r)
        present = np.zeros(len(masks), dtype=np.int64)
        for j, bits in enumerate(self.column_bits):
            present |= ((masks & bits) != 0).astype(np.int64) << j
        return (low * self.n_sources + high) << len(self.column_bits) | present

    def of(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Group id of each pair (positions)."""
        keys = self._keys(
            self.record_source[left],
            self.record_source[right],
            self.record_mask[left] & self.record_mask[right],
        )
        lookup = np.array(sorted(self.group_index), dtype=np.int64)
        ids = np.array([self.group_index[k] for k in lookup.tolist()], dtype=np.int64)
        return ids[np.searchsorted(lookup, keys)]


def pair_groups(prepared: PreparedRecords, comparisons: Sequence[Comparison]) -> PairGroups:
    """Count every pair of `prepared` per group (sources x comparisons present on both)."""
    present = [c for c in comparisons if c.name in PRESENCE_COMPARISONS]
    columns = sorted({column for c in present for column in c.columns})
    bit = {column: 1 << k for k, column in enumerate(columns)}
    mask = np.zeros(prepared.n, dtype=np.int64)
    for column in columns:
        mask |= (prepared.codes[column] >= 0).astype(np.int64) * bit[column]
    source_codes = prepared.codes["source"]
    sources = [str(s) for s in prepared.uniques["source"].tolist()]
    if not sources or (source_codes < 0).any():
        sources.append(ALL_SOURCES if not sources else "unknown")
    source = np.where(source_codes < 0, len(sources) - 1, source_codes).astype(np.int64)
    column_bits = [sum(bit[column] for column in c.columns) for c in present]
    groups = PairGroups([], [], np.zeros(0), source, mask, column_bits, {}, len(sources))
    # records by (source, mask), then every two such cells make c1 * c2 pairs
    cells = pd.DataFrame({"source": source, "mask": mask}).value_counts().reset_index()
    cell_source = cells["source"].to_numpy(dtype=np.int64)
    cell_mask = cells["mask"].to_numpy(dtype=np.int64)
    count = cells["count"].to_numpy(dtype=np.int64)
    a, b = np.triu_indices(len(cells), k=0)
    pairs = np.where(a == b, count[a] * (count[a] - 1) // 2, count[a] * count[b])
    keys = groups._keys(cell_source[a], cell_source[b], cell_mask[a] & cell_mask[b])
    totals = pd.Series(pairs).groupby(keys).sum()
    totals = totals[totals > 0] if len(totals) > 1 else totals
    width = len(column_bits)
    for group, key in enumerate(totals.index.tolist()):
        pair = key >> width
        low, high = divmod(pair, len(sources))
        fields = [c.name for j, c in enumerate(present) if key >> j & 1]
        source_pair = f"{sources[low]}/{sources[high]}"
        groups.labels.append(f"{source_pair}|{'+'.join(fields) or 'nothing'}")
        groups.source_pairs.append(source_pair)
        groups.group_index[int(key)] = group
    groups.totals = totals.to_numpy(dtype=np.float64)
    return groups


def shrink(expected: float, pairs: float, parent: float, pseudo_matches: float) -> float:
    """A rate of `expected` matches among `pairs`, pulled towards `parent` by `pseudo_matches`
    matches' worth of the parent's rate: ``(expected + k) / (pairs + k / parent)``."""
    if parent <= 0:
        return expected / pairs if pairs else 0.0
    return (expected + pseudo_matches) / (pairs + pseudo_matches / parent)


def group_priors(
    groups: PairGroups,
    expected: np.ndarray,
    overall: float,
    pseudo_matches: float,
    clip: tuple[float, float] = (1e-12, 0.5),
) -> tuple[np.ndarray, dict[str, float]]:
    """Prior per group and per source pair from the expected matches of each group."""
    frame = pd.DataFrame(
        {"source_pair": groups.source_pairs, "expected": expected, "pairs": groups.totals}
    )
    by_pair = frame.groupby("source_pair", sort=True)[["expected", "pairs"]].sum()
    source_prior = {
        str(name): float(np.clip(shrink(row.expected, row.pairs, overall, pseudo_matches), *clip))
        for name, row in by_pair.iterrows()
    }
    priors = np.array(
        [
            shrink(e, n, source_prior[s], pseudo_matches)
            for e, n, s in zip(expected, groups.totals, groups.source_pairs, strict=True)
        ],
        dtype=np.float64,
    )
    return np.clip(priors, *clip), source_prior
