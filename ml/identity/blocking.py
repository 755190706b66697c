"""Blocking: which pairs of records are worth comparing, found with DuckDB SQL.

Comparing every pair is quadratic; blocking compares only records that agree exactly on at
least one *blocking key* (a rule: one or more normalised columns, all non-empty). The union of
several rules keeps recall high: each rule leaves out a different field, so a duplicate with a
typo in one field is still found through another. Keys shared by more records than
`max_block_size` are skipped (and reported): "Smith, born 1980" in a national file would
otherwise produce millions of useless pairs.

The rules run in an in-memory DuckDB over the prepared keys: a key table (rule, hash of the
key columns, record) is built with one ``union all``, oversized keys are dropped, and a
self-join emits each pair once (left position < right position) with a bit mask of the rules
that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from ml.identity.comparisons import BLOCKING_COLUMNS, PreparedRecords


@dataclass(frozen=True)
class BlockingRule:
    """Records agreeing on all `columns` (normalised, non-empty) are compared."""

    name: str
    columns: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        unknown = [c for c in self.columns if c not in BLOCKING_COLUMNS]
        if unknown or not self.columns:
            raise ValueError(
                f"blocking rule {self.name!r}: unknown key column(s) {unknown}; "
                f"use some of {', '.join(BLOCKING_COLUMNS)}"
            )


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule(
        "dob_initials",
        ("dob", "initials"),
        "same date of birth and the same two initials (either order)",
    ),
    BlockingRule("dob_postcode", ("dob", "postcode"), "same date of birth and postcode"),
    BlockingRule(
        "last_sound_dob",
        ("last_sound", "dob"),
        "last names that sound alike (Soundex) and the same date of birth",
    ),
    BlockingRule(
        "last_sound_year_initial",
        ("last_sound", "birth_year", "first_initial"),
        "last names that sound alike, the same birth year and first-name initial",
    ),
    BlockingRule(
        "postcode_first_initial",
        ("postcode", "first_initial"),
        "same postcode and first-name initial",
    ),
    BlockingRule(
        "postcode_last_sound",
        ("postcode", "last_sound"),
        "same postcode and last names that sound alike",
    ),
    BlockingRule("postcode_birth_year", ("postcode", "birth_year"), "same postcode and birth year"),
    BlockingRule(
        "full_name_birth_year",
        ("full_name", "birth_year"),
        "same first and last name (either order) and birth year",
    ),
    BlockingRule(
        "full_name_district",
        ("full_name", "postcode_prefix"),
        "same first and last name (either order) and postcode district",
    ),
    BlockingRule("street_postcode", ("street", "postcode"), "same street line and postcode"),
    BlockingRule("street_city", ("street", "city"), "same street line and city"),
    BlockingRule("dob_city", ("dob", "city"), "same date of birth and city"),
    BlockingRule("email_local", ("email_local",), "same mailbox name (before the @)"),
    BlockingRule("phone", ("phone",), "same phone number (last 9 digits)"),
    BlockingRule(
        "full_name_city", ("full_name", "city"), "same first and last name (either order) and city"
    ),
)
"""The default rules: every two of {first name, last name, date of birth, address} share a rule
(on a key that survives most typos: initials, Soundex, birth year, postcode), so a duplicate with
one or two damaged fields is still compared; e-mail and phone catch people who moved."""


@dataclass
class CandidatePairs:
    """Pairs to compare: positions (left < right), ordered, with the rules that found them."""

    left: np.ndarray
    right: np.ndarray
    rules: np.ndarray  # int64 bit mask over rule_names
    rule_names: tuple[str, ...]
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    skipped_keys: dict[str, int] = field(default_factory=dict)
    skipped_records: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.left)

    def rule_labels(self, masks: np.ndarray) -> list[str]:
        """Comma-separated rule names for each mask."""
        cache: dict[int, str] = {}
        out = []
        for mask in masks.tolist():
            if mask not in cache:
                cache[mask] = ",".join(
                    name for bit, name in enumerate(self.rule_names) if mask >> bit & 1
                )
            out.append(cache[mask])
        return out


def block(
    prepared: PreparedRecords,
    rules: tuple[BlockingRule, ...] = DEFAULT_RULES,
    max_block_size: int = 200,
    threads: int | None = None,
) -> CandidatePairs:
    """Candidate pairs from the union of `rules` (see the module docstring)."""
    if len(rules) > 62:
        raise ValueError("at most 62 blocking rules")
    names = tuple(rule.name for rule in rules)
    empty = np.zeros(0, dtype=np.int64)
    if prepared.n < 2 or not rules:
        return CandidatePairs(empty, empty, empty, names)
    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"set threads = {int(threads)}")
        con.register("records", prepared.blocking_frame())
        selects = []
        for index, rule in enumerate(rules):
            not_null = " and ".join(f"{c} is not null" for c in rule.columns)
            selects.append(
                f"select {index}::integer as rule, i, hash({', '.join(rule.columns)}) as k "
                f"from records where {not_null}"
            )
        con.execute("create temp table block_keys as " + " union all ".join(selects))
        con.execute(
            "create temp table block_sizes as "
            "select rule, k, count(*) as size from block_keys group by rule, k"
        )
        skipped = con.execute(
            "select rule, count(*), sum(size) from block_sizes where size > ? group by rule",
            [max_block_size],
        ).fetchall()
        con.execute(
            "create temp table kept as "
            "select block_keys.rule, block_keys.k, block_keys.i from block_keys "
            "inner join block_sizes on block_keys.rule = block_sizes.rule "
            "and block_keys.k = block_sizes.k "
            "where block_sizes.size between 2 and ?",
            [max_block_size],
        )
        result = con.execute(
            "select lhs.i as l, rhs.i as r, bit_or(1::bigint << lhs.rule) as rules "
            "from kept as lhs inner join kept as rhs "
            "on lhs.rule = rhs.rule and lhs.k = rhs.k and lhs.i < rhs.i "
            "group by lhs.i, rhs.i order by l, r"
        ).fetchnumpy()
    finally:
        con.close()
    left = np.asarray(result["l"], dtype=np.int64)
    right = np.asarray(result["r"], dtype=np.int64)
    masks = np.asarray(result["rules"], dtype=np.int64)
    pairs = CandidatePairs(left, right, masks, names)
    for bit, name in enumerate(names):
        pairs.pairs_by_rule[name] = int(((masks >> bit) & 1).sum())
        pairs.skipped_keys[name] = 0
        pairs.skipped_records[name] = 0
    for rule, keys, records in skipped:
        pairs.skipped_keys[names[rule]] = int(keys)
        pairs.skipped_records[names[rule]] = int(records)
    return pairs
