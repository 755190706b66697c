"""Probabilistic record matching: one entity id per person, for records without a shared key.

The general entry point for analysts and the pipeline alike::

    from ml.identity.matching import resolve_entities
    resolution = resolve_entities(frame)           # standard columns, any subset
    resolution.entities                            # record_id, entity_id
    resolution.links                               # accepted and near-miss pairs, with evidence
    print(resolution.model.summary())              # estimated m, u, weights
    print(explain(resolution, "C1", "C2").text)   # ml.identity.explain: why (not) one customer

How it works (each step in its own module):

1. `comparisons`: normalise the standard columns (``record_id, first_name, last_name, email,
   phone, date_of_birth, street, city, postcode, country, gender, source``; other columns are
   ignored; placeholders such as "Child F" or "Unknown" are missing), and compare two records
   field by field in ordered levels.
2. `blocking`: DuckDB SQL finds candidate pairs that share a blocking key (the full name alone
   among them); very common keys are compared only where a second field agrees or is missing.
3. `fellegi_sunter`: u from random pairs, m and the priors by EM over the candidates (one
   prior per group of pairs: `priors`), term-frequency adjusted exact matches; a match weight
   and probability per pair.
4. Here: accept a pair as a link when its match probability is at least
   `MatchSettings.threshold` (default **0.5**); cluster links into entities (connected
   components) with a guard against chaining.

**Evidence, not vetoes.** A first name or a date of birth that clearly differs is strong
evidence against a match, weighed by what EM learns from the data itself: where duplicates
almost never carry another first name (a CRM), a different first name outweighs a shared
address, birth date and surname, so twins, a parent and child of one name and the members of
a household stay apart; where a file's errors replace whole values (FEBRL), the same level
weighs less and the rest of the evidence can carry the pair. `MatchSettings.vetoes` can still
make levels absolute vetoes (``dedupe --vetoes``), at the price of recall.

**Missing is neutral**: a field empty on either side weighs nothing, and the prior depends on
which fields both records have and on their pair of sources (`ml.identity.priors`), so a
record without a birth date links on name, address and e-mail when those agree.

**Known names**: two first names are both "known" when both are in the nicknames seed, or both
are written by at least 3 records and the rarer by at least 2% as many as the commoner. Tom and
Tim are known names, so one letter apart they are different people; "Jmes" beside "James" is a
typo.

**Households** (`MatchSettings.household_comparisons`): at one address, different people
share a last name, a landline, a country, sometimes a birth date (twins) or a first name (a
father and son) far more often than strangers; for such pairs those comparisons use a u
counted among the pairs at one address that are certainly two people (first name and birth
date both different; for the birth date, two different known first names; for the first
name, different birth dates), see `fellegi_sunter.estimate_u_same_address`. Only where the
data shows households (at least 50 such pairs, and 5% of the pairs at one address) does
anything change: in FEBRL every pair at one address is one person.

**Chaining guard**: links are grouped into connected components. Where a component of three or
more records holds two records that are clearly two people (their own pair scores below
`near_miss` with at least one field of `guard_bits` or more against, such as two known
different first names, or a veto applies), the component is rebuilt by adding its links
strongest first and dropping every link that would put two such records in one entity.
Dropped links appear in `links` with the decision "dropped: ...".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from ml.identity.blocking import DEFAULT_RULES, BlockingRule, CandidatePairs, block
from ml.identity.comparisons import (
    PERSON_FIELDS,
    STANDARD_COLUMNS,
    Comparison,
    Nicknames,
    PreparedRecords,
    active_comparisons,
    compare_pairs,
    prepare_records,
)
from ml.identity.fellegi_sunter import (
    ComparisonParameters,
    MatchModel,
    cap_rare_levels,
    estimate_u_same_address,
    n_pairs,
    not_positive,
    pair_weights,
    pattern_u,
    posterior,
    probability,
    run_em,
    same_address_rows,
    sample_levels,
    u_from_levels,
    weight_for,
)
from ml.identity.placeholders import load_placeholders
from ml.identity.priors import PairGroups, group_priors, pair_groups

MIN_IDENTICAL_COMPARISONS = 3
"""Records equal on every comparison, with at least this many comparisons, are linked."""

GUARD_COMPARISONS = ("first_name", "date_of_birth", "gender")
"""Comparisons whose strong evidence against makes two records two people for the chaining
guard: the attributes of a person, not the address or contacts they may change."""

STRICT_VETOES: tuple[tuple[str, str], ...] = (("first_name", "else"), ("date_of_birth", "else"))
"""Vetoes for `MatchSettings(vetoes=STRICT_VETOES)` (``dedupe --vetoes``): never link clearly
different first names or dates of birth, whatever else agrees. Not the default."""


@dataclass(frozen=True)
class MatchSettings:
    """Everything that can be tuned; the defaults are what the pipeline uses.

    `threshold` is the one documented decision threshold: a pair is linked when its match
    probability is at least this. The default, 0.5, links a pair when the model finds it more
    likely one person than two: on the precision/recall curves of FEBRL 1-4 and our
    generator's CRM (docs/identity.md) it is within a few thousandths of the best F1 on each,
    with pairwise precision at least 0.998, while lower thresholds add links the model itself
    thinks are more likely wrong. Raise it where a wrong merge costs far more than a missed one.
    """

    threshold: float = 0.5
    near_miss: float = 0.05  # pairs kept in `links` below the threshold (probability >= this)
    blocking_rules: tuple[BlockingRule, ...] = DEFAULT_RULES
    max_block_size: int = 200  # keys shared by more records: only pairs a second field allows
    max_refined_block_size: int = 5000  # keys shared by more records are skipped (reported)
    max_broad_block_size: int = 10  # broad rules' keys shared by more: pairs no other rule finds
    comparisons: tuple[str, ...] | None = None  # subset of comparison names; None: all present
    vetoes: tuple[tuple[str, str], ...] = ()  # (comparison, level) never linked; none by default
    guard_bits: float = 6.0  # a field this many bits against makes a pair a chaining conflict
    pseudo_matches: float = 10.0  # how strongly a group's prior leans on its parent's
    placeholders_path: str | Path | None = None  # default: ml/identity/placeholders.yml
    phone_region: str | None = None  # reads national phone numbers of records without country
    household_min_pairs: int = 50  # households are shown by this many pairs at one address ...
    household_min_share: float = 0.05  # ... that are also this share of the pairs there
    household_pseudo_pairs: float = 20.0  # random pairs' worth of u behind the household u
    household_comparisons: tuple[str, ...] = (
        "first_name",
        "last_name",
        "date_of_birth",
        "email",
        "phone",
        "country",
    )
    u_sample_pairs: int = 1_000_000
    u_rounds: int = 2  # times u is counted again without the random pairs EM takes for matches
    m_prior_matches: float = 100.0  # EM's m: the start values count as this many matches
    seed: int = 42
    em_max_iterations: int = 100
    em_tolerance: float = 1e-5
    min_expected_matches: float = 5.0
    tf_minimum_u: float = 1e-5
    term_frequencies: bool = True  # False: plain u for exact levels (a handful of records)
    batch_size: int = 500_000
    workers: int = -1  # RapidFuzz and DuckDB threads (-1: all cores)
    nicknames_path: str | Path | None = None  # default: dbt_project/seeds/nicknames.csv
    guard_max_component: int = 5000  # larger components are reported, not checked pair by pair

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(
                f"threshold must be a probability between 0 and 1, not {self.threshold}"
            )
        if not 0 < self.near_miss <= self.threshold:
            raise ValueError("near_miss must be a probability above 0 and at most the threshold")


@dataclass
class MatchReport:
    """Counts from one run (`to_dict` for logs and metadata)."""

    records: int = 0
    comparisons: list[str] = field(default_factory=list)
    candidate_pairs: int = 0
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    blocked_keys_refined: dict[str, int] = field(default_factory=dict)
    blocked_keys_skipped: dict[str, int] = field(default_factory=dict)
    records_in_skipped_keys: dict[str, int] = field(default_factory=dict)
    pairs_skipped: dict[str, int] = field(default_factory=dict)
    pair_groups: int = 0
    u_pairs: int = 0
    em_iterations: int = 0
    em_converged: bool = False
    expected_matches: float = 0.0
    links_accepted: int = 0
    links_vetoed: int = 0
    links_dropped_by_guard: int = 0
    near_misses: int = 0
    components_split: int = 0
    components_not_checked: int = 0
    clusters: int = 0
    clusters_with_duplicates: int = 0
    records_in_duplicate_clusters: int = 0
    largest_cluster: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A plain dict."""
        return asdict(self)

    def summary(self) -> str:
        """A few lines for a terminal."""
        skipped = sum(self.blocked_keys_skipped.values())
        refined = sum(self.blocked_keys_refined.values())
        return "\n".join(
            [
                f"records: {self.records:,}; compared on: {', '.join(self.comparisons)}",
                f"candidate pairs: {self.candidate_pairs:,} (common blocking keys compared on a "
                f"second field: {refined:,}, skipped as too common: {skipped:,}; pairs left "
                f"out by both: {sum(self.pairs_skipped.values()):,}); "
                f"{self.pair_groups:,} groups of pairs for the prior",
                f"EM: {self.em_iterations} iterations, converged {self.em_converged}, "
                f"about {self.expected_matches:,.0f} matching pairs expected",
                f"links: {self.links_accepted:,} accepted, {self.links_vetoed:,} vetoed, "
                f"{self.links_dropped_by_guard:,} dropped by the chaining guard, "
                f"{self.near_misses:,} near misses",
                f"entities: {self.clusters:,} ({self.clusters_with_duplicates:,} with more than "
                f"one record, {self.records_in_duplicate_clusters:,} records in them; "
                f"largest {self.largest_cluster})",
                f"seconds: {sum(self.seconds.values()):.1f} ("
                + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())
                + ")",
            ]
        )


@dataclass
class MatchState:
    """What explanations need from a run (internal; not part of the stable API)."""

    prepared: PreparedRecords
    comparisons: list[Comparison]
    candidates: CandidatePairs
    settings: MatchSettings
    pair_keys: np.ndarray  # sorted left * n + right of the candidates
    groups: PairGroups | None = None  # group of any pair, for its prior
    labels: np.ndarray | None = None  # entity label per position
    link_left: np.ndarray | None = None  # accepted (final) links, positions
    link_right: np.ndarray | None = None
    decisions: dict[tuple[int, int], str] = field(default_factory=dict)

    def blocked_by(self, a: int, b: int) -> list[str]:
        """Blocking rules that produced the pair (empty: never compared)."""
        left, right = min(a, b), max(a, b)
        key = left * self.prepared.n + right
        index = int(np.searchsorted(self.pair_keys, key))
        if index < len(self.pair_keys) and self.pair_keys[index] == key:
            return self.candidates.rule_labels(self.candidates.rules[index : index + 1])[0].split(
                ","
            )
        return []

    def priors(self, model: MatchModel, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """λ of each pair (its group's prior under `model`)."""
        if self.groups is None:
            return np.full(len(left), model.prior)
        per_group = model.priors_for(self.groups.labels, self.groups.source_pairs)
        return per_group[self.groups.of(left, right)]


@dataclass
class Resolution:
    """Result of `resolve_entities`."""

    entities: pd.DataFrame  # record_id, entity_id
    links: pd.DataFrame  # accepted, vetoed, dropped and near-miss pairs with evidence
    model: MatchModel
    report: MatchReport
    settings: MatchSettings
    state: MatchState = field(repr=False)


# --------------------------------------------------------------------------- inputs


def apply_mapping(frame: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The frame's standard columns, after renaming `mapping` (source column → standard name).

    A source may join several columns with "+" (``"street_number+address_1": "street"``): their
    non-empty values are joined with a space. Standard columns not mapped are taken as they are;
    other columns are dropped. Raises ValueError naming the missing column.
    """
    mapping = dict(mapping or {})
    out = pd.DataFrame(index=frame.index)
    targets: dict[str, str] = {}
    for source, target in mapping.items():
        if target not in STANDARD_COLUMNS:
            raise ValueError(
                f"mapping {source}={target}: {target!r} is not a standard column; "
                f"use one of {', '.join(STANDARD_COLUMNS)}"
            )
        if target in targets:
            raise ValueError(f"both {targets[target]!r} and {source!r} are mapped to {target!r}")
        targets[target] = source
        parts = [source] if source in frame.columns else source.split("+")
        missing = [p for p in parts if p not in frame.columns]
        if missing:
            raise ValueError(
                f"column {missing[0]!r} (mapped to {target}) is not in the data; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )
        if len(parts) == 1:
            out[target] = frame[parts[0]]
        else:
            text = frame[parts].astype("string").apply(lambda s: s.str.strip())
            out[target] = text.apply(
                lambda row: " ".join(v for v in row if isinstance(v, str) and v) or None, axis=1
            )
    for column in STANDARD_COLUMNS:
        if column not in out.columns and column in frame.columns:
            out[column] = frame[column]
    return out


def _prepare(
    frame: pd.DataFrame, settings: MatchSettings, mapping: Mapping[str, str] | None
) -> PreparedRecords:
    nicknames = Nicknames.load(settings.nicknames_path)
    placeholders = load_placeholders(settings.placeholders_path)
    return prepare_records(
        apply_mapping(frame, mapping), nicknames, placeholders, settings.phone_region
    )


# --------------------------------------------------------------------------- estimation


def _veto_columns(comparisons: Sequence[Comparison], settings: MatchSettings) -> list[tuple]:
    """(column index, level index, reason) for each veto whose comparison is active."""
    out = []
    names = [c.name for c in comparisons]
    for comparison_name, level_name in settings.vetoes:
        if comparison_name in names:
            j = names.index(comparison_name)
            comparison = comparisons[j]
            level = comparison.level_index(level_name)
            out.append((j, level, comparison.levels[level].label))
    return out


def _veto_codes(gamma: np.ndarray, vetoes: list[tuple]) -> np.ndarray:
    """0 where no veto applies, else 1 + the index of the first veto that does."""
    codes = np.zeros(len(gamma), dtype=np.int8)
    for index in range(len(vetoes) - 1, -1, -1):
        j, level, _ = vetoes[index]
        codes[gamma[:, j] == level] = index + 1
    return codes


def _compare_all(
    prepared: PreparedRecords,
    comparisons: Sequence[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    settings: MatchSettings,
    progress: bool,
    what: str,
) -> np.ndarray:
    gamma = np.empty((len(left), len(comparisons)), dtype=np.int8)
    step = settings.batch_size
    with tqdm(total=len(left), unit="pair", desc=what, disable=not progress) as bar:
        for start in range(0, len(left), step):
            stop = start + step
            gamma[start:stop] = compare_pairs(
                prepared, comparisons, left[start:stop], right[start:stop], settings.workers
            )
            bar.update(len(left[start:stop]))
    return gamma


def distinct_patterns(
    gamma: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (level row, group) combinations of a level matrix, how often each occurs,
    and the group of each (rows sorted; groups all 0 without `groups`).

    Each row is packed into one integer (5 bits per comparison, the group above them) so that
    NumPy sorts plain integers: millions of pairs take a second.
    """
    width = gamma.shape[1]
    groups = np.zeros(len(gamma), dtype=np.int64) if groups is None else groups.astype(np.int64)
    if not len(gamma):
        return np.zeros((0, width), dtype=np.int8), np.zeros(0, dtype=np.int64), groups[:0]
    if width > 8 or (len(groups) and groups.max() >= 1 << 20):
        stacked = np.column_stack([groups, gamma.astype(np.int64)])
        rows, counts = np.unique(stacked, axis=0, return_counts=True)
        return rows[:, 1:].astype(np.int8), counts, rows[:, 0]
    keys = groups.copy()
    for j in range(width):
        keys = (keys << 5) | (gamma[:, j].astype(np.int64) + 1)
    distinct, counts = np.unique(keys, return_counts=True)
    patterns = np.empty((len(distinct), width), dtype=np.int8)
    for j in range(width - 1, -1, -1):
        patterns[:, j] = (distinct & 31) - 1
        distinct = distinct >> 5
    return patterns, counts, distinct


def _known_different_first_names(
    prepared: PreparedRecords,
    comparisons: Sequence[Comparison],
    gamma: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
) -> np.ndarray:
    """Pairs that are certainly two people: two different first names, both known names.

    "Known" (`PreparedRecords.known_names`) keeps out the duplicates whose first name was
    mangled by typos, which are the same person.
    """
    names = [c.name for c in comparisons]
    if "first_name" not in names:
        return np.zeros(len(gamma), dtype=bool)
    j = names.index("first_name")
    different = gamma[:, j] == comparisons[j].level_index("else")
    return different & prepared.known_names("first", left, right)


def _estimate(
    prepared: PreparedRecords,
    comparisons: list[Comparison],
    gamma: np.ndarray,
    settings: MatchSettings,
    left: np.ndarray,
    right: np.ndarray,
    groups: PairGroups,
    progress: bool = False,
    training: np.ndarray | None = None,
) -> MatchModel:
    """u from random pairs, then m and the priors by EM over the candidate pairs (those of
    `training` only, see `CandidatePairs.training`)."""
    if training is not None:
        gamma, left, right = gamma[training], left[training], right[training]
    sample_left, sample_right, sample = sample_levels(
        prepared,
        comparisons,
        settings.u_sample_pairs,
        settings.seed,
        settings.batch_size,
        settings.workers,
        progress,
    )
    sample_patterns, sample_counts, sample_groups = distinct_patterns(
        sample, groups.of(sample_left, sample_right)
    )
    u_pairs = len(sample_left)
    u = u_from_levels(comparisons, sample_patterns, sample_counts.astype(float))
    total = n_pairs(prepared.n)
    m_start = [[level.m_start for level in c.levels] for c in comparisons]
    prior_start = min(max(0.01 * prepared.n, 1.0) / max(total, 1), 0.5)
    vetoes = _veto_columns(comparisons, settings)
    capped = not_positive(comparisons)
    different = _known_different_first_names(prepared, comparisons, gamma, left, right)
    patterns, counts, pattern_groups = distinct_patterns(gamma, groups.of(left, right))
    vetoed = (_veto_codes(patterns, vetoes) > 0) if vetoes else None
    source_priors: dict[str, float] = {}

    def update_priors(expected: np.ndarray, overall: float) -> np.ndarray:
        priors, source_priors_now = group_priors(groups, expected, overall, settings.pseudo_matches)
        source_priors.clear()
        source_priors.update(source_priors_now)
        return priors

    for u_round in range(settings.u_rounds + 1):
        u_same, same_pairs = estimate_u_same_address(
            gamma,
            comparisons,
            u,
            different,
            settings.household_comparisons,
            settings.household_pseudo_pairs,
            settings.household_min_pairs,
            settings.household_min_share,
        )
        u_rows = pattern_u(patterns, u, u_same, same_address_rows(comparisons, patterns))
        em = run_em(
            patterns,
            counts,
            u_rows,
            m_start,
            prior_start,
            total,
            vetoed,
            settings.em_max_iterations,
            settings.em_tolerance,
            settings.min_expected_matches,
            pattern_groups,
            update_priors,
            len(groups.labels),
            settings.m_prior_matches,
            capped,
        )
        if u_round == settings.u_rounds or not em.level_matches:
            break
        # count the random pairs again, each by its chance of being two people
        sample_u = pattern_u(
            sample_patterns, u, u_same, same_address_rows(comparisons, sample_patterns)
        )
        chance = posterior(
            sample_patterns,
            [np.asarray(x) for x in em.m],
            sample_u,
            np.asarray(em.group_priors)[sample_groups],
            capped,
        )
        if vetoes:
            chance[_veto_codes(sample_patterns, vetoes) > 0] = 0.0
        u = u_from_levels(comparisons, sample_patterns, sample_counts * (1.0 - chance))
    parameters = [
        ComparisonParameters(
            name=c.name,
            levels=c.level_names,
            m=[
                float(x)
                for x in cap_rare_levels(
                    em.m[j], u[j], em.level_matches[j] if em.level_matches else None
                )
            ],
            u=[float(x) for x in u[j]],
            tf_levels=[level.name for level in c.levels if level.tf],
            u_same_address=u_same[j],
        )
        for j, c in enumerate(comparisons)
    ]
    if not source_priors:  # EM kept its start values: every group takes the overall prior
        source_priors.update({pair: em.prior for pair in groups.source_pairs})
    return MatchModel(
        comparisons=parameters,
        prior=em.prior,
        group_priors=dict(zip(groups.labels, map(float, em.group_priors), strict=True)),
        source_priors=dict(source_priors),
        pseudo_matches=settings.pseudo_matches,
        em_iterations=em.iterations,
        em_converged=em.converged,
        em_note=em.note,
        expected_matches=em.expected_matches,
        u_pairs=u_pairs,
        same_address_pairs=same_pairs,
        n_records=prepared.n,
        tf_minimum_u=settings.tf_minimum_u,
    )


@dataclass
class _Scored:
    state: MatchState
    model: MatchModel
    report: MatchReport
    gamma: np.ndarray
    weights: np.ndarray
    per_field: np.ndarray
    veto: np.ndarray
    kept: np.ndarray  # candidate indices with probability >= near_miss


def _run(
    frame: pd.DataFrame,
    settings: MatchSettings,
    mapping: Mapping[str, str] | None,
    model: MatchModel | None,
    progress: bool,
) -> _Scored:
    report = MatchReport()
    clock = time.perf_counter()
    prepared = _prepare(frame, settings, mapping)
    comparisons = active_comparisons(prepared, settings.comparisons)
    if model is not None:
        known = {c.name for c in model.comparisons}
        comparisons = [c for c in comparisons if c.name in known]
    if not prepared.fields:
        raise ValueError(
            "nothing to compare: the data needs at least one of the columns "
            f"{', '.join(PERSON_FIELDS)} (after --map/mapping)"
        )
    report.records = prepared.n
    report.comparisons = [c.name for c in comparisons]
    report.seconds["prepare"] = time.perf_counter() - clock

    clock = time.perf_counter()
    candidates = _block(prepared, settings)
    report.candidate_pairs = len(candidates)
    report.pairs_by_rule = dict(candidates.pairs_by_rule)
    report.blocked_keys_refined = dict(candidates.refined_keys)
    report.blocked_keys_skipped = dict(candidates.skipped_keys)
    report.records_in_skipped_keys = dict(candidates.skipped_records)
    report.pairs_skipped = dict(candidates.skipped_pairs)
    groups = pair_groups(prepared, comparisons)
    report.pair_groups = len(groups.labels)
    report.seconds["block"] = time.perf_counter() - clock

    clock = time.perf_counter()
    gamma = _compare_all(
        prepared, comparisons, candidates.left, candidates.right, settings, progress, "compare"
    )
    report.seconds["compare"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if model is None:
        model = _estimate(
            prepared,
            comparisons,
            gamma,
            settings,
            candidates.left,
            candidates.right,
            groups,
            progress,
            candidates.training(settings.blocking_rules, prepared),
        )
    if not settings.term_frequencies:
        model = MatchModel.from_dict(model.to_dict())
        for parameters in model.comparisons:
            parameters.tf_levels = []
    report.u_pairs = model.u_pairs
    report.em_iterations = model.em_iterations
    report.em_converged = model.em_converged
    report.expected_matches = model.expected_matches
    report.seconds["estimate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    n = prepared.n
    state = MatchState(
        prepared=prepared,
        comparisons=comparisons,
        candidates=candidates,
        settings=settings,
        pair_keys=candidates.left * n + candidates.right,
        groups=groups,
    )
    weights, per_field = _score(state, model, gamma)
    if settings.term_frequencies and len(candidates):
        # how often different people share a value: a first pass's entities count once
        linked = weights >= weight_for(settings.threshold)
        prepared.count_term_frequencies(
            _components(n, candidates.left[linked], candidates.right[linked])
        )
        weights, per_field = _score(state, model, gamma)
    veto = _veto_codes(gamma, _veto_columns(comparisons, settings))
    identical = _identical(prepared, comparisons, candidates.left, candidates.right, gamma)
    # identical records: one person, even where the data cannot say how rare that is (a file
    # whose records are all alike gives every field a u of 1)
    weights[identical] = np.maximum(weights[identical], weight_for(settings.threshold))
    kept = np.flatnonzero(weights >= weight_for(settings.near_miss))
    report.seconds["score"] = time.perf_counter() - clock
    return _Scored(state, model, report, gamma, weights, per_field, veto, kept)


def _score(
    state: MatchState, model: MatchModel, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Match weight of every candidate pair and the weight of each field, in batches."""
    candidates = state.candidates
    weights = np.empty(len(candidates), dtype=np.float64)
    per_field = np.empty(gamma.shape, dtype=np.float32)
    for start in range(0, len(candidates), state.settings.batch_size):
        stop = start + state.settings.batch_size
        left, right = candidates.left[start:stop], candidates.right[start:stop]
        total, fields = pair_weights(
            model,
            state.comparisons,
            gamma[start:stop],
            state.prepared,
            left,
            right,
            state.priors(model, left, right),
        )
        weights[start:stop] = total
        per_field[start:stop] = fields
    return weights, per_field


def _identical(
    prepared: PreparedRecords,
    comparisons: Sequence[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    gamma: np.ndarray,
) -> np.ndarray:
    """Pairs whose normalised values are equal in every compared column (or empty on both
    sides), with at least `MIN_IDENTICAL_COMPARISONS` comparisons present."""
    same = np.ones(len(left), dtype=bool)
    for column in sorted({column for c in comparisons for column in c.columns}):
        codes = prepared.codes[column]
        same &= codes[left] == codes[right]
    return same & ((gamma >= 0).sum(axis=1) >= MIN_IDENTICAL_COMPARISONS)


def _block(prepared: PreparedRecords, settings: MatchSettings) -> CandidatePairs:
    threads = None if settings.workers < 1 else settings.workers
    return block(
        prepared,
        settings.blocking_rules,
        settings.max_block_size,
        threads,
        settings.max_refined_block_size,
        settings.max_broad_block_size,
    )


def _links_frame(scored: _Scored, rows: np.ndarray, decisions: list[str]) -> pd.DataFrame:
    state = scored.state
    candidates = state.candidates
    ids = state.prepared.record_ids
    threshold_weight = weight_for(state.settings.threshold)
    weights = scored.weights[rows]
    left, right = candidates.left[rows], candidates.right[rows]
    prior = state.priors(scored.model, left, right)
    group_labels = np.array(state.groups.labels if state.groups else ["all"], dtype=object)
    data: dict[str, object] = {
        "record_id_l": ids[left],
        "record_id_r": ids[right],
        "match_weight": np.round(weights, 4),
        "match_probability": probability(weights),
        "is_match": np.array([d == "link" for d in decisions], dtype=bool),
        "decision": np.array(decisions, dtype=object),
        "blocking_rules": np.array(candidates.rule_labels(candidates.rules[rows]), dtype=object),
        "pair_group": group_labels[state.groups.of(left, right)] if state.groups else "all",
        "prior_weight": np.round(np.log2(prior) - np.log2(1.0 - prior), 4),
    }
    for j, comparison in enumerate(state.comparisons):
        names = np.array([*comparison.level_names, "null"], dtype=object)
        data[f"{comparison.name}_level"] = names[scored.gamma[rows, j]]
        data[f"{comparison.name}_weight"] = np.round(scored.per_field[rows, j].astype(float), 4)
    frame = pd.DataFrame(data)
    frame.attrs["threshold_weight"] = threshold_weight
    return frame


def _initial_decisions(scored: _Scored) -> list[str]:
    settings = scored.state.settings
    vetoes = _veto_columns(scored.state.comparisons, settings)
    threshold_weight = weight_for(settings.threshold)
    out = []
    for index in scored.kept.tolist():
        if scored.weights[index] < threshold_weight:
            out.append("near miss")
        elif scored.veto[index]:
            out.append(f"vetoed: {vetoes[scored.veto[index] - 1][2]}")
        else:
            out.append("link")
    return out


# --------------------------------------------------------------------------- public API


def estimate_model(
    frame: pd.DataFrame,
    settings: MatchSettings | None = None,
    *,
    mapping: Mapping[str, str] | None = None,
    progress: bool = False,
) -> MatchModel:
    """Estimate u (random pairs) and m, λ (EM over blocked pairs) from the data itself."""
    settings = settings or MatchSettings()
    prepared = _prepare(frame, settings, mapping)
    comparisons = active_comparisons(prepared, settings.comparisons)
    candidates = _block(prepared, settings)
    gamma = _compare_all(
        prepared, comparisons, candidates.left, candidates.right, settings, progress, "compare"
    )
    groups = pair_groups(prepared, comparisons)
    return _estimate(
        prepared,
        comparisons,
        gamma,
        settings,
        candidates.left,
        candidates.right,
        groups,
        progress,
        candidates.training(settings.blocking_rules, prepared),
    )


def score_pairs(
    frame: pd.DataFrame,
    model: MatchModel | None = None,
    settings: MatchSettings | None = None,
    *,
    mapping: Mapping[str, str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Scored candidate pairs at or above `settings.near_miss`, without clustering.

    Columns as `Resolution.links`; `is_match` is true where the probability reaches the
    threshold and no veto applies (the pipeline adds those to its identity graph). The model is
    estimated from `frame` when not given.
    """
    settings = settings or MatchSettings()
    scored = _run(frame, settings, mapping, model, progress)
    return _links_frame(scored, scored.kept, _initial_decisions(scored))


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _conflicts(
    scored: _Scored, left: np.ndarray, right: np.ndarray, gamma: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Which pairs inside a component are clearly two people, as conflicts for the chaining
    guard: 0 for none, else 1 + the index of the reason in the returned list.

    A pair is clearly two people when a veto applies, or when it scores below `near_miss` with
    at least one field `guard_bits` or more against it. A first name counts only between two
    known names (see `PreparedRecords.known_names`): two typos of one name are often further
    apart than each is from the original, and must not split that person's records.
    """
    state = scored.state
    prepared, comparisons, settings = state.prepared, state.comparisons, state.settings
    vetoes = _veto_columns(comparisons, settings)
    reasons = [reason for _, _, reason in vetoes]
    codes = _veto_codes(gamma, vetoes).astype(np.int16)
    total, per_field = pair_weights(
        scored.model,
        comparisons,
        gamma,
        prepared,
        left,
        right,
        state.priors(scored.model, left, right),
    )
    names = [c.name for c in comparisons]
    against = per_field.copy()
    # an address, e-mail or phone that differs says a person moved or changed provider, not
    # that two records are two people
    against[:, [j for j, name in enumerate(names) if name not in GUARD_COMPARISONS]] = 0.0
    if "first_name" in names:
        typo_like = ~prepared.known_names("first", left, right)
        against[typo_like, names.index("first_name")] = 0.0
        for index, (j, _, _) in enumerate(vetoes):
            if names[j] == "first_name":
                codes[(codes == index + 1) & typo_like] = 0
    if len(against) and against.shape[1]:
        worst = np.argmin(against, axis=1)
        strong = (total < weight_for(settings.near_miss)) & (
            against[np.arange(len(against)), worst] <= -settings.guard_bits
        )
        for j, comparison in enumerate(comparisons):
            rows = strong & (worst == j) & (codes == 0)
            for level in np.unique(gamma[rows, j]).tolist():
                reasons.append(f"{comparison.levels[level].label}, strong evidence against")
                codes[rows & (gamma[:, j] == level)] = len(reasons)
    return codes, reasons


def _guard(
    scored: _Scored, accepted: np.ndarray, decisions: dict[int, str], progress: bool
) -> tuple[np.ndarray, int, int]:
    """Split components holding vetoed pairs; returns (kept accepted indices, split, unchecked)."""
    state = scored.state
    prepared, settings = state.prepared, state.settings
    left, right = state.candidates.left[accepted], state.candidates.right[accepted]
    labels = _components(prepared.n, left, right)
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= 3)
    unchecked = big[sizes[big] > settings.guard_max_component]
    big = big[sizes[big] <= settings.guard_max_component]
    if not len(big):
        return accepted, 0, len(unchecked)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    pair_l, pair_r = [], []
    for component in big.tolist():
        members = order[starts[component] : starts[component + 1]]
        a, b = np.triu_indices(len(members), k=1)
        pair_l.append(members[a])
        pair_r.append(members[b])
    all_l, all_r = np.concatenate(pair_l), np.concatenate(pair_r)
    gamma = _compare_all(
        prepared, state.comparisons, all_l, all_r, settings, progress, "chaining guard"
    )
    codes, reasons = _conflicts(scored, all_l, all_r, gamma)
    conflicts: dict[int, dict[int, int]] = {}
    for x, y, code in zip(all_l[codes > 0], all_r[codes > 0], codes[codes > 0], strict=True):
        conflicts.setdefault(int(x), {})[int(y)] = int(code)
        conflicts.setdefault(int(y), {})[int(x)] = int(code)
    if not conflicts:
        return accepted, 0, len(unchecked)
    ids = prepared.record_ids
    drop: set[int] = set()
    split = 0
    link_component = labels[left]
    for component in big.tolist():
        members = order[starts[component] : starts[component + 1]]
        if not any(int(x) in conflicts for x in members):
            continue
        split += 1
        links = np.flatnonzero(link_component == component)
        links = links[np.lexsort((right[links], left[links], -scored.weights[accepted[links]]))]
        parent = {int(x): int(x) for x in members}
        groups = {int(x): {int(x)} for x in members}

        def find(x: int, parent: dict[int, int] = parent) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for link in links.tolist():
            ra, rb = find(int(left[link])), find(int(right[link]))
            if ra == rb:
                continue
            small, large = sorted((groups[ra], groups[rb]), key=len)
            clash = next(((x, y) for x in small for y in conflicts.get(x, {}) if y in large), None)
            if clash is not None:
                x, y = clash
                reason = reasons[conflicts[x][y] - 1]
                a, b = sorted((x, y))
                decisions[int(accepted[link])] = (
                    f"dropped: would join {ids[a]} and {ids[b]} ({reason})"
                )
                drop.add(link)
                continue
            parent[rb] = ra
            groups[ra] = groups[ra] | groups.pop(rb)
    keep = np.array([i not in drop for i in range(len(accepted))], dtype=bool)
    return accepted[keep], split, len(unchecked)


def resolve_entities(
    frame: pd.DataFrame,
    settings: MatchSettings | None = None,
    *,
    mapping: Mapping[str, str] | None = None,
    model: MatchModel | None = None,
    progress: bool = False,
) -> Resolution:
    """One entity id per record: the smallest record id of the records found to be one person.

    `frame` holds person records in the standard columns (any subset, others ignored), or other
    names renamed by `mapping` (source → standard, ``"a+b"`` joins columns). Without `model` the
    parameters are estimated from `frame` itself. See the module docstring for the rules.
    """
    settings = settings or MatchSettings()
    scored = _run(frame, settings, mapping, model, progress)
    state, report = scored.state, scored.report
    clock = time.perf_counter()
    decisions_list = _initial_decisions(scored)
    decisions = dict(zip(scored.kept.tolist(), decisions_list, strict=True))
    accepted = np.array([i for i, d in decisions.items() if d == "link"], dtype=np.int64)
    report.links_vetoed = sum(d.startswith("vetoed") for d in decisions_list)
    report.near_misses = sum(d == "near miss" for d in decisions_list)
    final, report.components_split, report.components_not_checked = _guard(
        scored, accepted, decisions, progress
    )
    report.links_accepted = len(final)
    report.links_dropped_by_guard = len(accepted) - len(final)
    n = state.prepared.n
    left, right = state.candidates.left[final], state.candidates.right[final]
    labels = _components(n, left, right)
    first_member = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first_member, labels, np.arange(n))
    ids = state.prepared.record_ids
    entity_ids = np.array([str(x) for x in ids[first_member]], dtype=object)[labels]
    entities = pd.DataFrame({"record_id": ids, "entity_id": entity_ids})
    sizes = np.bincount(labels) if n else np.zeros(0, dtype=np.int64)
    report.clusters = len(sizes)
    report.clusters_with_duplicates = int((sizes > 1).sum())
    report.records_in_duplicate_clusters = int(sizes[sizes > 1].sum())
    report.largest_cluster = int(sizes.max()) if n else 0
    rows = scored.kept
    links = _links_frame(scored, rows, [decisions[i] for i in rows.tolist()])
    state.labels = labels
    state.link_left, state.link_right = left, right
    state.decisions = {
        (int(state.candidates.left[i]), int(state.candidates.right[i])): d
        for i, d in decisions.items()
    }
    report.seconds["cluster"] = time.perf_counter() - clock
    return Resolution(entities, links, scored.model, report, settings, state)
