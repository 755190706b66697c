"""The Fellegi-Sunter model: m and u probabilities per comparison level, estimated from the data.

For a pair of records and each comparison, `m` is the probability of the observed level if the
two records are the same person and `u` if they are not. The match weight is the sum of
``log2(m / u)`` over the comparisons (null levels weigh 0) plus the prior
``log2(λ / (1 - λ))``, where λ is the probability that two records drawn at random are the same
person; the match probability is ``1 / (1 + 2 ** -weight)``.

Estimation, all deterministic for a given input and seed:

* **u** from record pairs drawn at random (almost all of them are different people); every pair
  when the data is small. Zero counts are smoothed by half a pair. A "swapped names" level takes
  the u of the exact level (a swap is no commoner among strangers than an exact match). In a
  small file with many duplicates the random pairs hold real matches too, and for a level as
  telling as "same street, postcode and town" they can be most of those that agree: so once
  EM has run, each random pair counts by its chance of being two people, u is counted again
  and EM runs again (`MatchSettings.u_rounds` times).
* **m and λ** by expectation-maximisation over the blocked candidate pairs, with u held fixed
  (which keeps EM from drifting into "same household" instead of "same person"). Every level
  gets its m from the data, "different first names" and "different dates of birth" included:
  strong evidence against, as strong as the data says, never an absolute veto (unless the
  caller asks for vetoes; vetoed patterns then count as non-matches in the E-step). The prior
  is over *all* pairs, and there is one per group of pairs (`ml.identity.priors`: the pair of
  sources and the comparisons both records have): the expected matching candidate pairs of
  the group divided by all the group's pairs, since pairs left out by blocking are taken as
  non-matches, shrunk towards the source pair's and the overall prior. EM runs on the distinct
  (level pattern, group) rows with their counts, so it costs nothing even for millions of
  pairs. A null level (a field missing on either side) weighs nothing: missing is neutral.
  The start values of m (documented per level in `comparisons.py`) count as
  `MatchSettings.m_prior_matches` matches, so a small file with a few dozen duplicates does
  not learn from a handful of pairs (twins, say) that a different first name is common among
  duplicates, while a file with thousands of duplicates estimates m from its own data.
  Probabilities are clipped to [1e-4, 1 - 1e-4]; EM stops when no m moves by more than the
  tolerance. With fewer than `min_expected_matches` expected matches, m stays at the start
  values (documented per level in `comparisons.py`).
* **Households**: for pairs at one address, last name, first name, date of birth, e-mail,
  phone and country take a u counted among the pairs there that are certainly two people
  (`estimate_u_same_address`), where the data shows households at all: a shared surname or
  landline is not counted as if strangers rarely had one, twins' shared birth date counts
  for what it is among siblings.
* **Term frequencies**: for exact-value levels the u of a pair agreeing on value v is the share
  of records holding v (at least `tf_minimum_u`), as in Splink: agreeing on "Smith" says less
  than agreeing on "Szczepański". EM itself uses the plain u.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from ml.identity.comparisons import Comparison, PreparedRecords, compare_pairs

PROBABILITY_CLIP = (1e-4, 1 - 1e-4)


@dataclass
class ComparisonParameters:
    """m and u per level of one comparison (levels best first, the last one "else")."""

    name: str
    levels: list[str]
    m: list[float]
    u: list[float]
    tf_levels: list[str] = field(default_factory=list)
    u_same_address: list[float] | None = None  # u among different people at one address

    def weights(self) -> list[float]:
        """log2(m/u) per level, in bits."""
        return [math.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]


@dataclass
class MatchModel:
    """Estimated parameters of the matcher; `to_dict`/`from_dict` round-trip through JSON."""

    comparisons: list[ComparisonParameters]
    prior: float  # λ: probability that two records drawn at random are the same person
    group_priors: dict[str, float] = field(default_factory=dict)  # λ per group of pairs
    source_priors: dict[str, float] = field(default_factory=dict)  # λ per pair of sources
    pseudo_matches: float = 10.0
    em_iterations: int = 0
    em_converged: bool = False
    em_note: str = ""
    expected_matches: float = 0.0
    u_pairs: int = 0
    same_address_pairs: int = 0  # pairs at one address with first name and birth date different
    n_records: int = 0
    tf_minimum_u: float = 1e-5

    def get(self, name: str) -> ComparisonParameters:
        """The parameters of one comparison."""
        for comparison in self.comparisons:
            if comparison.name == name:
                return comparison
        raise KeyError(f"the model has no comparison {name!r}")

    @property
    def prior_weight(self) -> float:
        """log2(λ / (1 - λ)) in bits (the overall prior)."""
        return math.log2(self.prior / (1 - self.prior))

    def priors_for(self, labels: Sequence[str], source_pairs: Sequence[str]) -> np.ndarray:
        """λ per group label; a group the model has not seen takes its source pair's, else the
        overall prior."""
        return np.array(
            [
                self.group_priors.get(label, self.source_priors.get(pair, self.prior))
                for label, pair in zip(labels, source_pairs, strict=True)
            ],
            dtype=np.float64,
        )

    def to_dict(self) -> dict:
        """A plain dict (JSON-serialisable)."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The model as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> MatchModel:
        """Inverse of `to_dict`."""
        data = dict(data)
        data["comparisons"] = [ComparisonParameters(**c) for c in data["comparisons"]]
        return cls(**data)

    def summary(self) -> str:
        """A readable table of levels with m, u and weight."""
        lines = [
            f"prior λ = {self.prior:.3g} ({self.prior_weight:+.2f} bits), "
            f"EM iterations {self.em_iterations}, converged {self.em_converged}"
            + (f" ({self.em_note})" if self.em_note else ""),
            f"{'comparison':<15}{'level':<22}{'m':>9}{'u':>11}{'weight':>9}",
        ]
        if len(self.group_priors) > 1:
            lines.append("prior per group of pairs (sources | comparisons both records have):")
            for label, value in sorted(self.group_priors.items()):
                lines.append(f"  {label:<70}{value:>11.3g}{math.log2(value / (1 - value)):>+9.2f}")
        for comparison in self.comparisons:
            for k, (level, m, u, w) in enumerate(
                zip(
                    comparison.levels, comparison.m, comparison.u, comparison.weights(), strict=True
                )
            ):
                tf = " (tf)" if level in comparison.tf_levels else ""
                line = f"{comparison.name:<15}{level + tf:<22}{m:>9.4f}{u:>11.2e}{w:>+9.2f}"
                if comparison.u_same_address is not None:
                    same = comparison.u_same_address[k]
                    line += f"   same address: u {same:.2e}, {math.log2(m / same):+.2f}"
                lines.append(line)
        households = any(c.u_same_address is not None for c in self.comparisons)
        lines.append(
            f"({self.same_address_pairs:,} pairs at one address differ in first name and birth "
            + ("date: the same-address u comes from them)" if households else "date: no households")
        )
        return "\n".join(lines)


def n_pairs(n: int) -> int:
    """Number of unordered pairs of n records."""
    return n * (n - 1) // 2


def sample_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs when there are at most `size`, else `size` random pairs (left < right)."""
    if n_pairs(n) <= size:
        left, right = np.triu_indices(n, k=1)
        return left.astype(np.int64), right.astype(np.int64)
    rng = np.random.default_rng(seed)
    left = rng.integers(0, n, size=size + size // 10 + 10)
    right = rng.integers(0, n, size=len(left))
    keep = left != right
    left, right = left[keep][:size], right[keep][:size]
    return np.minimum(left, right), np.maximum(left, right)


def sample_levels(
    prepared: PreparedRecords,
    comparisons: Sequence[Comparison],
    size: int,
    seed: int,
    batch_size: int = 500_000,
    workers: int = 1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random pairs (`sample_pairs`) and their comparison levels: (left, right, levels)."""
    left, right = sample_pairs(prepared.n, size, seed)
    levels = np.empty((len(left), len(comparisons)), dtype=np.int8)
    starts = range(0, len(left), batch_size)
    for start in tqdm(starts, desc="u from random pairs", unit="batch", disable=not progress):
        stop = start + batch_size
        levels[start:stop] = compare_pairs(
            prepared, comparisons, left[start:stop], right[start:stop], workers
        )
    return left, right, levels


def u_from_levels(
    comparisons: Sequence[Comparison], patterns: np.ndarray, weights: np.ndarray
) -> list[list[float]]:
    """u per level from level rows and how much each counts (its pairs, or its pairs times
    the chance that they are not one person). Zero counts are smoothed by half a pair."""
    u = []
    for j, comparison in enumerate(comparisons):
        column = patterns[:, j]
        known = column >= 0
        counts = np.bincount(
            column[known], weights=weights[known], minlength=len(comparison.levels)
        )
        smoothed = (counts + 0.5) / (counts.sum() + 0.5 * len(comparison.levels))
        for level, like in comparison.u_like:
            smoothed[comparison.level_index(level)] = smoothed[comparison.level_index(like)]
        u.append(np.clip(smoothed, 1e-9, 1 - 1e-9).tolist())
    return u


@dataclass
class EMResult:
    """Output of `run_em`."""

    m: list[list[float]]
    prior: float
    iterations: int
    converged: bool
    expected_matches: float
    note: str = ""
    level_matches: list[list[float]] = field(default_factory=list)  # expected matches per level
    group_priors: list[float] = field(default_factory=list)  # prior per group (with `groups`)


def pattern_u(
    patterns: np.ndarray,
    u: Sequence[Sequence[float]],
    u_same_address: Sequence[Sequence[float] | None] | None = None,
    same_address: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Per comparison, the u of each row's level (1.0 where null); rows at one address take
    `u_same_address` where a comparison has one."""
    out = []
    for j, uj in enumerate(u):
        levels = patterns[:, j]
        values = np.append(np.asarray(uj, dtype=float), 1.0)[levels]
        alternative = u_same_address[j] if u_same_address is not None else None
        if alternative is not None and same_address is not None and same_address.any():
            values = np.where(
                same_address, np.append(np.asarray(alternative, dtype=float), 1.0)[levels], values
            )
        out.append(values)
    return out


def not_positive(comparisons: Sequence[Comparison]) -> list[np.ndarray]:
    """Per comparison, which levels weigh at most 0, null last: those with `Level.positive`
    False, and the last ("else") level: a difference is never evidence for a match."""
    return [
        np.array([not level.positive for level in c.levels[:-1]] + [True, False])
        for c in comparisons
    ]


def posterior(
    patterns: np.ndarray,
    m: list[np.ndarray],
    u_rows: list[np.ndarray],
    prior: float | np.ndarray,
    capped: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """P(match | levels) for each row of `patterns` (int8 levels, -1 = null); `u_rows` as
    returned by `pattern_u`; `prior` one for all rows or one per row; `capped`
    (`not_positive`): levels whose weight is at most 0."""
    prior = np.broadcast_to(np.asarray(prior, dtype=np.float64), (len(patterns),))
    logit = np.log(prior / (1 - prior))
    for j, mj in enumerate(m):
        term = np.log(np.append(mj, 1.0)[patterns[:, j]]) - np.log(u_rows[j])
        if capped is not None and capped[j].any():
            term = np.where(capped[j][patterns[:, j]], np.minimum(term, 0.0), term)
        logit += term
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))


def run_em(
    patterns: np.ndarray,
    counts: np.ndarray,
    u_rows: list[np.ndarray],
    m_start: Sequence[Sequence[float]],
    prior_start: float,
    total_pairs: int,
    vetoed: np.ndarray | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    min_expected_matches: float = 5.0,
    groups: np.ndarray | None = None,
    group_priors: Callable[[np.ndarray, float], np.ndarray] | None = None,
    n_groups: int = 0,
    m_prior_matches: float = 0.0,
    capped: Sequence[np.ndarray] | None = None,
) -> EMResult:
    """Estimate m (per comparison and level) and the prior λ with u fixed.

    `patterns`: distinct level vectors of the candidate pairs, `counts`: how many pairs have each,
    `u_rows`: the u of each pattern's level per comparison (`pattern_u`), `total_pairs`:
    n(n-1)/2, `vetoed`: patterns never taken as matches. With `groups` (group id per row) and
    `group_priors` (expected matches per group, overall prior -> prior per group), each row
    takes its group's prior; `EMResult.group_priors` holds the last ones. With
    `m_prior_matches`, m is the maximum a posteriori estimate under a Dirichlet prior centred
    on `m_start` worth that many matches: a few dozen expected matches (a small file) lean on
    the documented start values, thousands speak for themselves.
    """
    low, high = PROBABILITY_CLIP
    m = [np.clip(np.asarray(x, dtype=float) / np.sum(x), low, high) for x in m_start]
    start = [x.copy() for x in m]
    prior = float(np.clip(prior_start, 1e-12, 0.5))
    counts = np.asarray(counts, dtype=float)
    iterations, converged, expected = 0, False, 0.0
    level_matches = [np.zeros(len(x)) for x in m]
    if groups is not None and len(groups):
        n_groups = max(n_groups, int(groups.max()) + 1)
    per_group = np.full(n_groups, prior)
    for iterations in range(1, max_iterations + 1):
        row_prior = per_group[groups] if groups is not None and group_priors else prior
        p = posterior(patterns, m, u_rows, row_prior, capped)
        if vetoed is not None:
            p[vetoed] = 0.0
        weighted = p * counts
        expected = float(weighted.sum())
        if expected < min_expected_matches:
            return EMResult(
                [x.tolist() for x in m],
                float(np.clip(prior_start, 1e-12, 0.5)),
                iterations,
                False,
                expected,
                f"fewer than {min_expected_matches:g} expected matches: kept the start values",
                group_priors=per_group.tolist(),
            )
        new_m = []
        for j, mj in enumerate(m):
            column = patterns[:, j]
            known = column >= 0
            sums = np.bincount(column[known], weights=weighted[known], minlength=len(mj))
            level_matches[j] = sums
            if sums.sum() <= 0:
                new_m.append(mj)
                continue
            # maximum a posteriori: the start values count as `m_prior_matches` matches
            smoothed = sums + m_prior_matches * start[j]
            new_m.append(np.clip(smoothed / smoothed.sum(), low, high))
        new_prior = float(np.clip(expected / max(total_pairs, 1), 1e-12, 0.5))
        change = max(float(np.max(np.abs(a - b))) for a, b in zip(new_m, m, strict=True))
        prior_change = abs(math.log(new_prior / prior))
        if groups is not None and group_priors is not None:
            new_group = group_priors(
                np.bincount(groups, weights=weighted, minlength=n_groups), new_prior
            )
            prior_change = max(prior_change, float(np.max(np.abs(np.log(new_group / per_group)))))
            per_group = new_group
        m, prior = new_m, new_prior
        if change < tolerance and prior_change < tolerance * 10:
            converged = True
            break
    return EMResult(
        [x.tolist() for x in m],
        prior,
        iterations,
        converged,
        expected,
        level_matches=[x.tolist() for x in level_matches],
        group_priors=per_group.tolist(),
    )


def cap_rare_levels(
    m: Sequence[float],
    u: Sequence[float],
    level_matches: Sequence[float] | None,
    min_matches: float = 10.0,
) -> list[float]:
    """m lowered so that a level with fewer than `min_matches` expected matching pairs weighs
    no more than the first (exact) level.

    A level seen almost never, neither among matches nor in the random pairs, gets its weight
    from two tiny, unreliable numbers (0.0001 / 0.0000005 is +7.6 bits); a typo of a name should
    not count more than the name itself on such thin evidence.
    """
    top = m[0] / u[0]
    counts = list(level_matches) if level_matches else [0.0] * len(m)
    out = [m[0]]
    for mk, uk, seen in zip(m[1:], u[1:], counts[1:], strict=True):
        out.append(mk if seen >= min_matches else min(mk, uk * top))
    return out


def estimate_u_same_address(
    gamma: np.ndarray,
    comparisons: Sequence[Comparison],
    u: Sequence[Sequence[float]],
    different_names: np.ndarray,
    conditioned: Sequence[str],
    pseudo_pairs: float = 20.0,
    min_pairs: int = 50,
    min_share: float = 0.05,
) -> tuple[list[list[float] | None], int]:
    """u among different people living at one address, for the `conditioned` comparisons.

    People at one address share a last name, a landline, a country, sometimes an e-mail, a
    birth date (twins) or a first name (a father and son) far more often than two strangers
    do; counting those agreements at their random-pair weight merges households, and makes
    twins look like one person who typed another first name.

    This u is counted on the candidate pairs at one address (`same_address_rows`) that are
    certainly two people: for a last name, e-mail, phone or country, pairs whose first names
    *and* dates of birth both differ (a duplicate rarely has both replaced); for the date of
    birth, pairs with two different known first names (`different_names`); for the first
    name, pairs whose dates of birth differ. Counts are smoothed towards the random-pair u
    by `pseudo_pairs` pairs.

    The data must show households: at least `min_pairs` pairs at one address that differ in
    both first name and birth date, and at least `min_share` of all pairs at one address. A
    file without households (FEBRL: every pair at one address is one person, and the few
    that differ in both are duplicates with both values replaced, under 1%) keeps the
    random-pair u; a CRM (most pairs at one address are relatives) gets the household u.
    Returns (per comparison u or None, pairs that differ in both).
    """
    out: list[list[float] | None] = [None] * len(comparisons)
    same = same_address_rows(comparisons, gamma)
    if same is None:
        return out, 0
    names = [c.name for c in comparisons]

    def differs(name: str) -> np.ndarray | None:
        if name not in names:
            return None
        j = names.index(name)
        return gamma[:, j] == len(comparisons[j].levels) - 1

    first_differs = differs("first_name")
    birth_differs = differs("date_of_birth")
    if first_differs is None:
        return out, 0
    certain_names = first_differs & different_names
    both = same & (certain_names if birth_differs is None else first_differs & birth_differs)
    households = int(both.sum())
    if households < min_pairs or households < min_share * int(same.sum()):
        return out, households
    for j, comparison in enumerate(comparisons):
        if comparison.name not in conditioned:
            continue
        rows = both
        if comparison.name == "date_of_birth":
            rows = same & certain_names
        elif comparison.name == "first_name":
            if birth_differs is None:
                continue
            rows = same & birth_differs
        levels = gamma[rows, j]
        counts = np.bincount(levels[levels >= 0], minlength=len(comparison.levels))
        smoothed = (counts + pseudo_pairs * np.asarray(u[j])) / (counts.sum() + pseudo_pairs)
        # relatives agree at least as often as strangers
        smoothed[:-1] = np.maximum(smoothed[:-1], u[j][:-1])
        smoothed[-1] = max(1.0 - smoothed[:-1].sum(), 1e-9)
        for level, like in comparison.u_like:  # swapped names: as common as the same name
            smoothed[comparison.level_index(level)] = smoothed[comparison.level_index(like)]
        out[j] = np.clip(smoothed, 1e-9, 1 - 1e-9).tolist()
    return out, households


def same_address_rows(comparisons: Sequence[Comparison], gamma: np.ndarray) -> np.ndarray | None:
    """Rows whose address comparison says one dwelling (the address levels marked
    `Level.one_address`: same street line, postcode and town, or nearly); None without an
    address comparison."""
    for j, comparison in enumerate(comparisons):
        if comparison.name == "address":
            dwelling = [k for k, level in enumerate(comparison.levels) if level.one_address]
            return np.isin(gamma[:, j], dwelling)
    return None


def _cap_fuzzy_at_exact(
    weights: np.ndarray,
    comparison: Comparison,
    params: ComparisonParameters,
    levels: np.ndarray,
    prepared: PreparedRecords,
    left: np.ndarray,
    right: np.ndarray,
    minimum_u: float,
) -> None:
    """A near-agreement weighs at most what exact agreement on the commoner value would.

    "john" against "jmhn" must not count more than "john" against "john"; fuzzy levels carry no
    term-frequency adjustment of their own, so they are capped at the exact level's
    frequency-adjusted weight for the more frequent of the two values (in place).
    """
    exact = comparison.levels[0]
    if exact.tf is None or exact.name not in params.tf_levels:
        return
    fuzzy = (levels > 0) & (levels < len(comparison.levels) - 1)
    rows = np.flatnonzero(fuzzy & (weights > 0))
    if not len(rows):
        return
    tf = prepared.tf[exact.tf]
    commoner = np.fmax(tf[left[rows]], tf[right[rows]])
    u_tf = np.maximum(np.nan_to_num(commoner, nan=1.0), minimum_u)
    cap = np.log2(params.m[0] / u_tf)
    weights[rows] = np.minimum(weights[rows], np.maximum(cap, 0.0))


def _full_name_frequency(
    per_field: np.ndarray,
    comparisons: Sequence[Comparison],
    params: Sequence[ComparisonParameters],
    gamma: np.ndarray,
    prepared: PreparedRecords,
    left: np.ndarray,
    minimum_u: float,
    min_records: int = 10,
) -> None:
    """Where both names agree (as written or swapped), they weigh no more than the full name
    is rare (in place).

    First and last names are not independent: names run in countries and families, so "Anna
    Schmidt" is far commoner than the share of Annas times the share of Schmidts. Where the
    full name is held by at least `min_records` records counted as different people
    (`PreparedRecords.tf_counts`), the two name weights lose what the product overstates,
    half each. A rarer full name keeps its weights: its count is too small to say anything
    (and in a file of many duplicates, such as FEBRL, a few unlinked records of one person
    would pass for namesakes).
    """
    names = [c.name for c in comparisons]
    if "first_name" not in names or "last_name" not in names or "full_name" not in prepared.tf:
        return
    jf, jl = names.index("first_name"), names.index("last_name")
    agree = np.ones(len(gamma), dtype=bool)
    for j in (jf, jl):
        tf_levels = [
            k for k, level in enumerate(comparisons[j].levels) if level.name in params[j].tf_levels
        ]
        agree &= np.isin(gamma[:, j], tf_levels)
    rows = np.flatnonzero(agree & (prepared.tf_counts["full_name"][left] >= min_records))
    if not len(rows):
        return
    m_first = np.asarray(params[jf].m)[gamma[rows, jf]]
    m_last = np.asarray(params[jl].m)[gamma[rows, jl]]
    joint = np.log2(m_first * m_last) - np.log2(
        np.maximum(prepared.tf["full_name"][left[rows]], minimum_u)
    )
    excess = per_field[rows, jf] + per_field[rows, jl] - joint
    cut = np.maximum(excess, 0.0) / 2
    per_field[rows, jf] -= cut
    per_field[rows, jl] -= cut


def pair_weights(
    model: MatchModel,
    comparisons: Sequence[Comparison],
    gamma: np.ndarray,
    prepared: PreparedRecords,
    left: np.ndarray,
    right: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match weight (bits, prior included) per pair and the weight of each comparison.

    `prior`: λ of each pair (its group's, `MatchModel.priors_for`); default the overall one.

    Term-frequency levels use the frequency of the left record's value as u (at least
    `model.tf_minimum_u`); fuzzy levels are capped by `_cap_fuzzy_at_exact`. At one address, a comparison with a same-address u mixes in the
    share h of different people there who agree whatever the value:
    ``u = h + (1 - h) * frequency``, with h from the same-address u of the level.
    """
    params = [model.get(c.name) for c in comparisons]
    right = left if right is None else right
    same = same_address_rows(comparisons, gamma)
    u_rows = pattern_u(gamma, [p.u for p in params], [p.u_same_address for p in params], same)
    per_field = np.zeros(gamma.shape, dtype=np.float64)
    for j, comparison in enumerate(comparisons):
        m = np.asarray(params[j].m)
        levels = gamma[:, j]
        per_field[:, j] = np.log2(np.append(m, 1.0)[levels]) - np.log2(u_rows[j])
        for index, level in enumerate(comparison.levels):
            if level.tf is None or level.name not in params[j].tf_levels:
                continue
            rows = np.flatnonzero(levels == index)
            if not len(rows):
                continue
            tf = prepared.tf[level.tf][left[rows]]
            u_tf = np.maximum(np.nan_to_num(tf, nan=1.0), model.tf_minimum_u)
            if params[j].u_same_address is not None and same is not None:
                # at one address: a share h of different people agree whatever the value
                # (a family name), the others as often as strangers with this value
                base = params[j].u[index]
                h = max(0.0, (params[j].u_same_address[index] - base) / (1.0 - base))
                u_tf = np.where(same[rows], h + (1.0 - h) * u_tf, u_tf)
            per_field[rows, j] = np.log2(m[index] / u_tf)
        _cap_fuzzy_at_exact(
            per_field[:, j],
            comparison,
            params[j],
            levels,
            prepared,
            left,
            right,
            model.tf_minimum_u,
        )
        capped = not_positive([comparison])[0][levels]
        per_field[capped, j] = np.minimum(per_field[capped, j], 0.0)
    _full_name_frequency(per_field, comparisons, params, gamma, prepared, left, model.tf_minimum_u)
    bits = model.prior_weight if prior is None else np.log2(prior) - np.log2(1.0 - prior)
    total = per_field.sum(axis=1) + bits
    return total, per_field


def probability(weight: np.ndarray | float) -> np.ndarray | float:
    """Match probability from a match weight in bits."""
    return 1.0 / (1.0 + np.exp2(-np.clip(weight, -1000, 1000)))


def weight_for(probability_value: float) -> float:
    """The match weight (bits) at which the match probability equals `probability_value`."""
    return math.log2(probability_value / (1 - probability_value))
