"""Export candidates: every current member of a segment, with exactly one outcome and why.

`build_candidates` decides, in one set-based query, for each open membership of the export's
segment (`segments.segment_memberships`, `valid_to is null`):

1. suppressed -> `left_out`, reason `erasure_requested`, `global_unsubscribe` or `do_not_sell`
   (from `marts.dim_suppression_list`; when several apply, the first in that order);
2. otherwise no consent for the segment's consent purpose in `marts.dim_consent_ledger`
   -> `left_out`, reason `consent_withdrawn` (the latest decision is a withdrawal) or
   `no_consent` (no record, or no ledger row at all: no record means no consent);
3. otherwise in the export's sticky holdout (`ml.activation.holdouts`) -> `holdout`;
4. otherwise -> `export`.

Holdout and treatment are therefore drawn from the same eligible people, which is what makes
their comparison a fair measure of lift. The rows go to `activation.export_candidates`,
replacing the earlier rows of the same export (only the latest decision is kept).

`verify_candidates` is the independent check before files are written: it re-reads consent
and suppression from the live views (`intermediate.int_consent_states`,
`intermediate.int_suppressions`), which are computed from staging at query time, and recomputes
each bucket, returning every `export` row that should not be one. A step that verifies several
exports reads the two views once (`live_state`): each read costs seconds at a million customers,
and nothing can write to the warehouse between the checks of one step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from ml.activation.config import ExportConfig, check_segment_matches
from ml.activation.holdouts import holdout_bucket_sql, holdout_threshold
from ml.as_of import cutoff
from ml.segments.rules import Segment
from ml.warehouse import table_exists

SCHEMA = "activation"
CANDIDATES = f"{SCHEMA}.export_candidates"
MEMBERSHIPS = "segments.segment_memberships"
CONSENT_LEDGER = "marts.dim_consent_ledger"
SUPPRESSION_LIST = "marts.dim_suppression_list"
LIVE_CONSENT = "intermediate.int_consent_states"
LIVE_SUPPRESSIONS = "intermediate.int_suppressions"


@dataclass(frozen=True)
class LiveState:
    """Where `verify_candidates` reads consent and suppression: the live views themselves, or
    one reading of them (`live_state`)."""

    consent: str = LIVE_CONSENT
    suppressions: str = LIVE_SUPPRESSIONS


@contextmanager
def live_state(connection: duckdb.DuckDBPyConnection) -> Iterator[LiveState]:
    """The live consent and suppression views read once, into temporary tables that go when
    the block ends: for verifying several exports of one run against the same reading."""
    _require(
        connection, (LIVE_CONSENT, LIVE_SUPPRESSIONS), "build the consent views (`dbt build`) first"
    )
    state = LiveState("activation_live_consent", "activation_live_suppressions")
    try:
        for table, view in ((state.consent, LIVE_CONSENT), (state.suppressions, LIVE_SUPPRESSIONS)):
            connection.execute(f"create or replace temp table {table} as select * from {view}")
        yield state
    finally:
        for table in (state.consent, state.suppressions):
            connection.execute(f"drop table if exists temp.{table}")


OUTCOMES = ("export", "holdout", "left_out")
SUPPRESSION_REASONS = ("erasure_requested", "global_unsubscribe", "do_not_sell")
CONSENT_REASONS = ("consent_withdrawn", "no_consent")
LEFT_OUT_REASONS = SUPPRESSION_REASONS + CONSENT_REASONS

CANDIDATES_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {CANDIDATES} (
    run_id varchar not null,
    export_name varchar not null,
    segment_name varchar not null,
    customer_id varchar not null,
    outcome varchar not null,
    left_out_reason varchar,
    holdout_bucket integer not null,
    consent_purpose varchar not null
)
"""
# The columns of each table here that name a person: erasure (ml/privacy/personal_columns.py)
# deletes a row when one of them names an erased person.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {CANDIDATES: ("customer_id",)}

_REASON_PRIORITY = "\n".join(
    f"            when '{reason}' then {rank}" for rank, reason in enumerate(SUPPRESSION_REASONS)
)
_REASON_BY_PRIORITY = "\n".join(
    f"            when {rank} then '{reason}'" for rank, reason in enumerate(SUPPRESSION_REASONS)
)


def _require(connection: duckdb.DuckDBPyConnection, tables: tuple[str, ...], hint: str) -> None:
    """Raise RuntimeError, with `hint` on what to build, when any of `tables` is missing."""
    missing = [t for t in tables if not table_exists(connection, *t.split("."))]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist in this "
            f"warehouse; {hint}"
        )


def _check_suppression_reasons(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """Raise ValueError when `table` holds a suppression reason not in SUPPRESSION_REASONS."""
    unknown = connection.execute(
        f"select distinct suppression_reason from {table} "
        "where suppression_reason is null or not list_contains($reasons, suppression_reason)",
        {"reasons": list(SUPPRESSION_REASONS)},
    ).fetchall()
    if unknown:
        raise ValueError(
            f"{table}.suppression_reason holds {sorted(map(str, (r[0] for r in unknown)))}, not "
            f"one of {', '.join(SUPPRESSION_REASONS)}; add the new reason to "
            "ml/activation/candidates.py SUPPRESSION_REASONS (in priority order) before exporting"
        )


# The inputs of the decision: the segment's open members, each customer's highest-priority
# suppression, and each customer's consent state for the purpose (from the marts).
_DECISION_INPUTS_SQL = f"""
        members as (
            select distinct customer_id
            from {MEMBERSHIPS}
            where segment_name = $segment_name and valid_to is null
        ),

        suppressions as (
            select
                customer_id,
                min(case suppression_reason
{_REASON_PRIORITY}
                end) as priority
            from {SUPPRESSION_LIST}
            group by customer_id
        ),

        consent as (
            -- One row per customer is the contract; if there were more, withdrawal wins.
            select
                customer_id,
                case
                    when bool_or(consent_state = 'withdrawn') then 'withdrawn'
                    when bool_and(consent_state = 'granted' and has_consent) then 'granted'
                    else 'no_record'
                end as consent_state
            from {CONSENT_LEDGER}
            where purpose = $purpose
            group by customer_id
        ),
"""


def candidates_insert_sql(bucket: str, threshold: int) -> str:
    """The insert of one export's candidates: each open member with its outcome, reason and
    holdout bucket (`bucket` is the SQL of the bucket, `threshold` the holdout's upper bound).

    Parameters: $run_id, $export_name, $segment_name, $purpose.
    """
    return f"""
        insert into {CANDIDATES}
        with
{_DECISION_INPUTS_SQL}
        decided as (
            select
                members.customer_id,
                case suppressions.priority
{_REASON_BY_PRIORITY}
                end as suppression_reason,
                coalesce(consent.consent_state, 'no_record') as consent_state,
                {bucket} as holdout_bucket
            from members
            left join suppressions
                on members.customer_id = suppressions.customer_id
            left join consent
                on members.customer_id = consent.customer_id
        ),

        final as (
            select
                $run_id as run_id,
                $export_name as export_name,
                $segment_name as segment_name,
                customer_id,
                case
                    when suppression_reason is not null then 'left_out'
                    when consent_state != 'granted' then 'left_out'
                    when holdout_bucket < {threshold} then 'holdout'
                    else 'export'
                end as outcome,
                case
                    when suppression_reason is not null then suppression_reason
                    when consent_state = 'withdrawn' then 'consent_withdrawn'
                    when consent_state != 'granted' then 'no_consent'
                end as left_out_reason,
                holdout_bucket,
                $purpose as consent_purpose
            from decided
        )

        select * from final
    """


def _check_members_reconcile(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    summary: dict[str, Any],
) -> None:
    """Raise RuntimeError unless the candidates are as many as the segment's open members."""
    (members,) = connection.execute(
        f"select count(distinct customer_id) from {MEMBERSHIPS} "
        "where segment_name = $segment_name and valid_to is null",
        {"segment_name": segment.name},
    ).fetchone()
    if members != summary["members"]:
        raise RuntimeError(
            f"export {config.name!r}: {summary['members']} candidate rows for {members} "
            f"open members of segment {segment.name!r}; the counts must reconcile"
        )


def _replace_candidates(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    insert: str,
) -> dict[str, Any]:
    """In one transaction, replace the export's candidates by the rows of `insert` and check
    they reconcile with the segment's members; return the run's `candidate_summary`."""
    params = {
        "run_id": run_id,
        "export_name": config.name,
        "segment_name": segment.name,
        "purpose": segment.consent_purpose,
    }
    connection.begin()
    try:
        connection.execute(CANDIDATES_DDL)
        # a working table: only each export's latest decision is kept (what was exported and
        # held out stays in activation.export_members)
        connection.execute(
            f"delete from {CANDIDATES} where export_name = $export_name",
            {"export_name": config.name},
        )
        connection.execute(insert, params)
        summary = candidate_summary(connection, run_id, config.name)
        _check_members_reconcile(connection, config, segment, summary)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return summary


def build_candidates(
    connection: duckdb.DuckDBPyConnection,
    config: ExportConfig,
    segment: Segment,
    run_id: str,
    as_of: str | date | datetime,
    salt: str,
) -> dict[str, Any]:
    """Decide every member's outcome and write them to `activation.export_candidates`.

    Replaces the rows of `config.name` (any run) in one transaction. `salt` is
    `Settings.salt`. Returns the counts: `members`, `export`, `holdout`, `left_out` (reason ->
    count, every reason present, zeros included) and `left_out_total`; they reconcile
    (members = export + holdout + left_out_total) or a RuntimeError says they do not.
    """
    check_segment_matches(config, segment)
    moment = cutoff(as_of)
    _require(
        connection,
        (MEMBERSHIPS, CONSENT_LEDGER, SUPPRESSION_LIST),
        "run the segments (`python -m ml.segments run` or the segments asset) and build the "
        "consent marts (`dbt build`) before building export candidates",
    )
    _check_suppression_reasons(connection, SUPPRESSION_LIST)
    bucket = holdout_bucket_sql("members.customer_id", config.name, salt)
    threshold = holdout_threshold(config.holdout_percent)
    insert = candidates_insert_sql(bucket, threshold)
    summary = _replace_candidates(connection, config, segment, run_id, insert)
    summary.update(
        segment_name=segment.name,
        consent_purpose=segment.consent_purpose,
        as_of=moment,
        holdout_percent=config.holdout_percent,
    )
    return summary


def candidate_summary(
    connection: duckdb.DuckDBPyConnection, run_id: str, export_name: str
) -> dict[str, Any]:
    """Counts of one run's candidates by outcome and left-out reason (zeros included)."""
    rows = connection.execute(
        f"""
        select outcome, left_out_reason, count(*)
        from {CANDIDATES}
        where run_id = $run_id and export_name = $export_name
        group by all
        """,
        {"run_id": run_id, "export_name": export_name},
    ).fetchall()
    left_out = dict.fromkeys(LEFT_OUT_REASONS, 0)
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, reason, count in rows:
        if outcome not in counts or (outcome == "left_out") != (reason is not None):
            raise RuntimeError(
                f"{CANDIDATES}: run {run_id!r} export {export_name!r} has {count} rows with "
                f"outcome {outcome!r} and reason {reason!r}; rebuild them with build_candidates"
            )
        counts[outcome] += count
        if reason is not None:
            left_out[reason] = left_out.get(reason, 0) + count
    total = sum(counts.values())
    if counts["left_out"] != sum(left_out.values()):
        raise RuntimeError(f"{CANDIDATES}: left-out reasons do not add up for run {run_id!r}")
    return {
        "run_id": run_id,
        "export_name": export_name,
        "members": total,
        "export": counts["export"],
        "holdout": counts["holdout"],
        "left_out": left_out,
        "left_out_total": counts["left_out"],
    }


def _exported_rows_sql(bucket: str) -> str:
    """CTEs `candidates` (the run's rows), `exported` (its `export` rows with their bucket
    recomputed by `bucket`) and `largest_holdout` (the highest bucket held out, or -1)."""
    return f"""
        candidates as (
            select customer_id, outcome, holdout_bucket
            from {CANDIDATES}
            where run_id = $run_id and export_name = $export_name
        ),

        exported as (
            select customer_id, holdout_bucket, {bucket} as recomputed_bucket
            from candidates
            where outcome = 'export'
        ),

        largest_holdout as (
            select coalesce(max(holdout_bucket), -1) as bucket
            from candidates
            where outcome = 'holdout'
        ),
"""


def _consent_problems_sql(live: LiveState) -> str:
    """CTEs `suppressed` and `unconsented`: exported rows that the live state says are
    suppressed, or have no granted consent for $purpose."""
    return f"""
        granted as (
            -- One row per customer and purpose is the contract; if there were more, any
            -- withdrawal wins.
            select customer_id
            from {live.consent}
            where purpose = $purpose
            group by customer_id
            having bool_and(consent_state = 'granted' and coalesce(has_consent, false))
        ),

        suppressed as (
            select exported.customer_id, 'suppressed' as problem,
                string_agg(distinct suppressions.suppression_reason, ', '
                    order by suppressions.suppression_reason) as detail
            from exported
            inner join {live.suppressions} as suppressions
                on exported.customer_id = suppressions.customer_id
            group by exported.customer_id
        ),

        unconsented as (
            select exported.customer_id, 'no_consent' as problem,
                'no granted ' || $purpose || ' consent in {LIVE_CONSENT}' as detail
            from exported
            left join granted
                on exported.customer_id = granted.customer_id
            where granted.customer_id is null
        ),
"""


def _holdout_problems_sql(threshold: int) -> str:
    """CTEs `held_out` (exported rows whose recomputed bucket is in the holdout: below
    `threshold` or not above the run's largest holdout bucket) and `mismatched` (exported
    rows whose stored bucket is not the recomputed one)."""
    return f"""
        held_out as (
            select exported.customer_id, 'holdout' as problem,
                'bucket ' || exported.recomputed_bucket || ' is below the holdout threshold '
                || greatest({threshold}, largest_holdout.bucket + 1) as detail
            from exported
            cross join largest_holdout
            where exported.recomputed_bucket < {threshold}
                or exported.recomputed_bucket <= largest_holdout.bucket
        ),

        mismatched as (
            select customer_id, 'bucket_mismatch' as problem,
                'stored bucket ' || holdout_bucket || ' is not ' || recomputed_bucket
                || ', the bucket of this export name and salt' as detail
            from exported
            where holdout_bucket != recomputed_bucket
        ),
"""


def candidate_problems_query(bucket: str, threshold: int, live: LiveState = LiveState()) -> str:
    """Every problem of the run's exported rows (customer_id, problem, detail), by customer.

    Parameters: $run_id, $export_name, $purpose.
    """
    return f"""
        with
{_exported_rows_sql(bucket)}
{_consent_problems_sql(live)}
{_holdout_problems_sql(threshold)}
        final as (
            select * from suppressed
            union all
            select * from unconsented
            union all
            select * from held_out
            union all
            select * from mismatched
        )

        select * from final
        order by customer_id, problem
    """


def verify_candidates(
    connection: duckdb.DuckDBPyConnection,
    run_id: str,
    export_name: str,
    consent_purpose: str,
    *,
    holdout_percent: float | None = None,
    salt: str,
    live: LiveState = LiveState(),
) -> pd.DataFrame:
    """The `export` rows of a run that must not be exported, one row per problem found.

    Consent and suppression come from the live views `intermediate.int_consent_states` and
    `intermediate.int_suppressions` (not from the marts the candidates were built from), so a
    withdrawal that arrived after the marts were built, or a bug in the build, is caught.
    Holdout: the row's bucket is recomputed from the salt (default $TEAL_SALT) and the export
    name; a row is in the holdout when that bucket is below `holdout_percent` x 100 (when
    given) or not above the largest bucket of the run's own holdout rows (a holdout is always
    the lowest buckets), and is wrong when its stored bucket is not the recomputed one.

    Columns: customer_id, problem (`suppressed`, `no_consent`, `holdout`, `bucket_mismatch`),
    detail. Empty means every exported row may be exported. `live`: a reading of the views
    taken by `live_state` (default: the views themselves).
    """
    _require(
        connection,
        (CANDIDATES, LIVE_CONSENT, LIVE_SUPPRESSIONS),
        "build the candidates (build_candidates) and the consent views (`dbt build`) first",
    )
    bucket = holdout_bucket_sql("candidates.customer_id", export_name, salt)
    threshold = holdout_threshold(holdout_percent) if holdout_percent is not None else 0
    return connection.execute(
        candidate_problems_query(bucket, threshold, live),
        {"run_id": run_id, "export_name": export_name, "purpose": consent_purpose},
    ).df()


__all__ = [
    "CANDIDATES",
    "LEFT_OUT_REASONS",
    "OUTCOMES",
    "SUPPRESSION_REASONS",
    "LiveState",
    "build_candidates",
    "candidate_problems_query",
    "candidate_summary",
    "candidates_insert_sql",
    "live_state",
    "verify_candidates",
]
