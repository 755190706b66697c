"""Blocking: which pairs of records are worth comparing, found with DuckDB SQL.

Comparing every pair is quadratic; blocking compares only records that agree exactly on at
least one *blocking key* (a rule: one or more normalised columns, all non-empty). The union of
several rules keeps recall high: each rule leaves out a different field, so a duplicate with a
typo in one field, or a field its source does not have, is still found through another. The
full name alone is a rule (and its sound and initial variants are rules): two records of one
person from a source without addresses and a source without birth dates share nothing else.

**Common keys.** A key shared by many records ("John Smith" in a national file) would produce
a flood of useless pairs. Rules are of two kinds (`BlockingRule.trains`):

* *specific* rules (a birth date with an initial, postcode or town; e-mail; phone; street
  and postcode) compare every pair of a key shared by up to `max_block_size` records; above
  that, only pairs where a second field agrees (birth year, postcode district, mailbox name
  or phone: `REFINE_COLUMNS`) or where no second field can tell them apart (each of those
  fields is missing on one side or the other);
* *broad* rules (the full name alone and its sound, initial and last name, a postcode with
  an initial, a street line with a town, a mailbox name) compare every pair of a key shared
  by up to `max_broad_block_size` records (10); above that, only the pairs that no specific
  rule could have found because one record or the other lacks every specific key they
  share (`usable_rules`): a tax form without a birth date beside a sign-up without an
  address. On our generator's 1,040,000 CRM records this keeps 6.7 million pairs out of 640
  million and 39,986 of the 40,000 true pairs.

Keys shared by more than `max_refined_block_size` records are skipped whole. All is
reported: keys refined or skipped, and the pairs they left out.

The rules run in an in-memory DuckDB over the prepared keys: a key table (rule, hash of the
key columns, record) is built with one ``union all``, and a self-join emits each pair once
(left position < right position) with a bit mask of the rules that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from ml.identity.comparisons import BLOCKING_COLUMNS, PreparedRecords

REFINE_COLUMNS = ("birth_year", "postcode_prefix", "email_local", "phone")
"""Second fields that decide which pairs of a very common key are compared."""


@dataclass(frozen=True)
class BlockingRule:
    """Records agreeing on all `columns` (normalised, non-empty) are compared.

    `trains`: the pairs the rule finds teach EM what a duplicate looks like. A broad rule
    (the full name alone, a postcode and an initial) finds the duplicates that other rules
    miss, but in a large file mostly namesakes and neighbours; EM run on millions of those
    learns that "a match" is "two people of one name" (on our generator's 208,000 CRM records
    it expected 2.5 million matching pairs among 8,000 real ones). So its pairs are scored
    like any other, and train EM only where the records lack a birth date or an address,
    which is what the rule is there for (`training_pairs`).
    """

    name: str
    columns: tuple[str, ...]
    description: str = ""
    trains: bool = True

    def __post_init__(self) -> None:
        unknown = [c for c in self.columns if c not in BLOCKING_COLUMNS]
        if unknown or not self.columns:
            raise ValueError(
                f"blocking rule {self.name!r}: unknown key column(s) {unknown}; "
                f"use some of {', '.join(BLOCKING_COLUMNS)}"
            )


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule(
        "full_name", ("full_name",), "same first and last name (either order)", trains=False
    ),
    BlockingRule(
        "full_name_sound",
        ("full_name_sound",),
        "first and last names that sound alike (Soundex, either order)",
        trains=False,
    ),
    BlockingRule(
        "initial_last_name",
        ("first_initial_last",),
        "same last name and first-name initial",
        trains=False,
    ),
    BlockingRule("email", ("email",), "same e-mail address"),
    BlockingRule("email_local", ("email_local",), "same mailbox name (before the @)", trains=False),
    BlockingRule("phone", ("phone",), "same phone number"),
    BlockingRule(
        "dob_initials",
        ("dob", "initials"),
        "same date of birth and the same two initials (either order)",
    ),
    BlockingRule(
        "first_sound_dob",
        ("first_sound", "dob"),
        "first names that sound alike and the same date of birth",
    ),
    BlockingRule(
        "last_sound_dob",
        ("last_sound", "dob"),
        "last names that sound alike (Soundex) and the same date of birth",
    ),
    BlockingRule(
        "last_sound_year_initial",
        ("last_sound", "birth_year", "first_initial"),
        "last names that sound alike, the same birth year and first-name initial",
        trains=False,
    ),
    BlockingRule("dob_postcode", ("dob", "postcode"), "same date of birth and postcode"),
    BlockingRule(
        "dob_district",
        ("dob", "postcode_prefix"),
        "same date of birth and postcode district",
    ),
    BlockingRule("dob_street", ("dob", "street"), "same date of birth and street line"),
    BlockingRule("dob_city", ("dob", "city"), "same date of birth and city"),
    BlockingRule(
        "postcode_first_initial",
        ("postcode", "first_initial"),
        "same postcode and first-name initial",
        trains=False,
    ),
    BlockingRule(
        "postcode_last_sound",
        ("postcode", "last_sound"),
        "same postcode and last names that sound alike",
        trains=False,
    ),
    BlockingRule(
        "postcode_initials",
        ("postcode", "initials"),
        "same postcode and the same two initials (either order: swapped names)",
        trains=False,
    ),
    BlockingRule("postcode_birth_year", ("postcode", "birth_year"), "same postcode and birth year"),
    BlockingRule("street_postcode", ("street", "postcode"), "same street line and postcode"),
    BlockingRule("street_city", ("street", "city"), "same street line and city", trains=False),
    BlockingRule(
        "street_last_sound",
        ("street", "last_sound"),
        "same street line and last names that sound alike",
        trains=False,
    ),
)
"""The default rules: the full name alone (as written, as it sounds, as initial and last
name), e-mail and phone alone, and every two of {first name, last name, date of birth,
address} on keys that survive most typos (initials, Soundex, birth year, postcode), so a
duplicate with one or two damaged or missing fields is still compared."""


@dataclass
class CandidatePairs:
    """Pairs to compare: positions (left < right), ordered, with the rules that found them."""

    left: np.ndarray
    right: np.ndarray
    rules: np.ndarray  # int64 bit mask over rule_names
    rule_names: tuple[str, ...]
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    refined_keys: dict[str, int] = field(default_factory=dict)  # common keys, second field
    skipped_keys: dict[str, int] = field(default_factory=dict)  # too common even for that
    skipped_records: dict[str, int] = field(default_factory=dict)  # records in skipped keys
    skipped_pairs: dict[str, int] = field(default_factory=dict)  # pairs left out by both

    def __len__(self) -> int:
        return len(self.left)

    def training(self, rules: tuple[BlockingRule, ...], prepared: PreparedRecords) -> np.ndarray:
        """Which pairs train EM: those a rule that `trains` found, and those that no such rule
        could have found, because for each of them one record misses a key column (a tax form
        without a birth date beside a sign-up without an address)."""
        found = np.zeros(len(self), dtype=bool)
        for bit, rule in enumerate(rules):
            if rule.trains:
                found |= (self.rules >> bit) & 1 == 1
        usable = usable_rules(prepared, rules)
        return found | ((usable[self.left] & usable[self.right]) == 0)

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


def usable_rules(prepared: PreparedRecords, rules: tuple[BlockingRule, ...]) -> np.ndarray:
    """Per record, a bit mask of the rules that `train` whose key it has (all its columns)."""
    usable = np.zeros(prepared.n, dtype=np.int64)
    for bit, rule in enumerate(rules):
        if rule.trains:
            has_key = np.ones(prepared.n, dtype=bool)
            for column in rule.columns:
                has_key &= prepared.codes[column] >= 0
            usable |= has_key.astype(np.int64) << bit
    return usable


def block(
    prepared: PreparedRecords,
    rules: tuple[BlockingRule, ...] = DEFAULT_RULES,
    max_block_size: int = 200,
    threads: int | None = None,
    max_refined_block_size: int = 5000,
    max_broad_block_size: int = 10,
) -> CandidatePairs:
    """Candidate pairs from the union of `rules` (see the module docstring)."""
    if len(rules) > 62:
        raise ValueError("at most 62 blocking rules")
    if max_broad_block_size < 2:
        raise ValueError("need max_broad_block_size >= 2")
    if not 2 <= max_block_size <= max_refined_block_size:
        raise ValueError("need 2 <= max_block_size <= max_refined_block_size")
    names = tuple(rule.name for rule in rules)
    empty = np.zeros(0, dtype=np.int64)
    pairs = CandidatePairs(empty, empty, empty, names)
    for name in names:
        for report in (
            pairs.pairs_by_rule,
            pairs.refined_keys,
            pairs.skipped_keys,
            pairs.skipped_records,
            pairs.skipped_pairs,
        ):
            report[name] = 0
    if prepared.n < 2 or not rules:
        return pairs
    keys = prepared.blocking_frame()
    refine = [c for c in REFINE_COLUMNS if c in keys.columns]
    keys["usable"] = usable_rules(prepared, rules)
    limits = pd.DataFrame(
        {
            "rule": np.arange(len(rules), dtype=np.int8),
            "size_limit": [max_block_size if r.trains else max_broad_block_size for r in rules],
            "trains": [r.trains for r in rules],
        }
    )
    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"set threads = {int(threads)}")
        con.execute("set preserve_insertion_order = false")
        con.execute("set enable_progress_bar = false")
        con.register("records", keys)
        con.register("limits", limits)
        selects = []
        for index, rule in enumerate(rules):
            not_null = " and ".join(f"{c} is not null" for c in rule.columns)
            selects.append(
                f"select {index}::tinyint as rule, i::integer as i, "
                f"hash({', '.join(rule.columns)}) as k from records where {not_null}"
            )
        con.execute("create temp table block_keys as " + " union all ".join(selects))
        con.execute(
            "create temp table block_sizes as select rule, k, count(*) as size, size_limit, "
            "trains from block_keys inner join limits using (rule) group by all "
            "having count(*) > 1"
        )
        # small keys: every pair
        con.execute(
            "create temp table small as select block_keys.rule, block_keys.k, block_keys.i "
            "from block_keys inner join block_sizes using (rule, k) where size <= size_limit"
        )
        pair_sql = [
            "select lhs.i as l, rhs.i as r, lhs.rule, false as refined from small as lhs "
            "inner join small as rhs on lhs.rule = rhs.rule and lhs.k = rhs.k and lhs.i < rhs.i"
        ]
        common = "size > size_limit and size <= ?"
        # common keys of a rule that trains: a second field in common, or none to compare
        if refine:
            presence = " + ".join(
                f"(case when {c} is null then 0 else {1 << j} end)" for j, c in enumerate(refine)
            )
            con.execute(
                "create temp table common as select block_keys.rule, block_keys.k, block_keys.i, "
                f"{', '.join('records.' + c for c in refine)}, ({presence})::integer as present "
                "from block_keys inner join block_sizes using (rule, k) "
                f"inner join records on records.i = block_keys.i where trains and {common}",
                [max_refined_block_size],
            )
            agree = " or ".join(f"lhs.{c} = rhs.{c}" for c in refine)
            pair_sql.append(
                "select lhs.i as l, rhs.i as r, lhs.rule, true as refined from common as lhs "
                "inner join common as rhs on lhs.rule = rhs.rule and lhs.k = rhs.k "
                f"and lhs.i < rhs.i where {agree} or (lhs.present & rhs.present) = 0"
            )
        # common keys of a broad rule: only pairs that no rule that trains could find
        con.execute(
            "create temp table broad as select block_keys.rule, block_keys.k, block_keys.i, "
            "records.usable from block_keys inner join block_sizes using (rule, k) "
            f"inner join records on records.i = block_keys.i where not trains and {common}",
            [max_refined_block_size],
        )
        con.execute(
            "create temp table compatible as select a.usable as a, b.usable as b "
            "from (select distinct usable from broad) as a "
            "cross join (select distinct usable from broad) as b "
            "where a.usable <= b.usable and (a.usable & b.usable) = 0"
        )
        pair_sql.append(
            "select least(lhs.i, rhs.i) as l, greatest(lhs.i, rhs.i) as r, lhs.rule, "
            "true as refined from broad as lhs "
            "inner join compatible on lhs.usable = compatible.a "
            "inner join broad as rhs on rhs.rule = lhs.rule and rhs.k = lhs.k "
            "and rhs.usable = compatible.b "
            "where lhs.i != rhs.i and (compatible.a != compatible.b or lhs.i < rhs.i)"
        )
        con.execute("create temp table found as " + " union all ".join(pair_sql))
        refined = con.execute(
            "select rule, count(*), sum(size * (size - 1) // 2) from block_sizes "
            "where size > size_limit and size <= ? group by rule",
            [max_refined_block_size],
        ).fetchall()
        kept = dict(
            con.execute("select rule, count(*) from found where refined group by rule").fetchall()
        )
        skipped = con.execute(
            "select rule, count(*), sum(size), sum(size * (size - 1) // 2) from block_sizes "
            "where size > ? or (size > size_limit and trains and ?) group by rule",
            [max_refined_block_size, not refine],
        ).fetchall()
        result = con.execute(
            "select l, r, bit_or(1::bigint << rule) as rules from found group by l, r order by l, r"
        ).fetchnumpy()
    finally:
        con.close()
    pairs.left = np.asarray(result["l"], dtype=np.int64)
    pairs.right = np.asarray(result["r"], dtype=np.int64)
    pairs.rules = np.asarray(result["rules"], dtype=np.int64)
    for bit, name in enumerate(names):
        pairs.pairs_by_rule[name] = int(((pairs.rules >> bit) & 1).sum())
    for rule, keys_count, possible in refined:
        if refine or not rules[rule].trains:
            pairs.refined_keys[names[rule]] = int(keys_count)
            pairs.skipped_pairs[names[rule]] += int(possible) - int(kept.get(rule, 0))
    for rule, keys_count, records, possible in skipped:
        pairs.skipped_keys[names[rule]] = int(keys_count)
        pairs.skipped_records[names[rule]] = int(records)
        pairs.skipped_pairs[names[rule]] += int(possible)
    return pairs
