"""Running segments: current members, membership history and daily sizes in schema `segments`.

Tables (created when absent):

- `segments.segment_memberships` (segment_name, customer_id, valid_from, valid_to): one row per
  stay in a segment. A customer who enters gets a row with `valid_from` = the run's as_of and
  `valid_to` null; when they leave, `valid_to` is set to that run's as_of. Leaving and coming
  back makes a second row.
- `segments.segment_sizes` (segment_name, snapshot_date, members, entered, exited): one row per
  segment and day. Running the same day again replaces that day (see below).
- `segments.segment_definitions`: what each segment is (file, owner, type, consent purpose,
  description), the hash and compiled SQL of the rules its members come from, and the
  bookkeeping of its runs (frozen_at, last_as_of_at, last_snapshot_date, previous_as_of_at).

Per run (`run_segments`), in one transaction, set-based:

- dynamic segments are recomputed: entered = members now who had no open row, exited = open
  rows of people no longer members.
- a static segment is computed once, at its first run (`frozen_at`), and kept afterwards even
  when its rules would now say otherwise. Only customers gone from the attribute table (erased,
  or merged into another id) leave it. If its rules change in the file, the run keeps the frozen
  members and the frozen definition, and reports it (`SegmentRun.definition_changed` and
  `warning`); pass its name in `rebuild_static` to recompute and freeze it again (or give the
  new rules a new name).
- a run for the same snapshot date as the segment's last run first undoes that run (removes the
  rows it opened, reopens the rows it closed, unfreezes a static segment it froze), then applies
  the new one: a day's history and size are replaced, never doubled. A run for an earlier day
  than the last one is refused: history only moves forward.

Segments no longer in the files are left as they are (history kept, rows still open).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from ml.as_of import cutoff
from ml.as_of import snapshot_date as snapshot_date_of
from ml.segments.compiler import CompiledSegment, Tables, compile_segment
from ml.segments.rules import Segment

SCHEMA = "segments"
DEFINITIONS = f"{SCHEMA}.segment_definitions"
MEMBERSHIPS = f"{SCHEMA}.segment_memberships"
SIZES = f"{SCHEMA}.segment_sizes"
_TEMP_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

_DDL = (
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {DEFINITIONS} (
        segment_name varchar not null,
        definition_hash varchar not null,
        file varchar,
        owner varchar,
        type varchar not null,
        consent_purpose varchar not null,
        description varchar,
        compiled_sql varchar not null,
        parameters json,
        frozen_at timestamp,
        last_as_of_at timestamp not null,
        last_snapshot_date date not null,
        previous_as_of_at timestamp,
        updated_at timestamp not null
    )""",
    f"""create table if not exists {MEMBERSHIPS} (
        segment_name varchar not null,
        customer_id varchar not null,
        valid_from timestamp not null,
        valid_to timestamp
    )""",
    f"""create table if not exists {SIZES} (
        segment_name varchar not null,
        snapshot_date date not null,
        members bigint not null,
        entered bigint not null,
        exited bigint not null
    )""",
)
# The columns of each table here that name a person: erasure (ml/privacy/personal_columns.py)
# deletes a row when one of them names an erased person. A table with none holds no personal data.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    MEMBERSHIPS: ("customer_id",),
    DEFINITIONS: (),
    SIZES: (),
}
_DEFINITION_COLUMNS = (
    "segment_name",
    "definition_hash",
    "file",
    "owner",
    "type",
    "consent_purpose",
    "description",
    "compiled_sql",
    "parameters",
    "frozen_at",
    "last_as_of_at",
    "last_snapshot_date",
    "previous_as_of_at",
    "updated_at",
)


@dataclass(frozen=True)
class SegmentRun:
    """What one run did to one segment."""

    segment_name: str
    type: str
    snapshot_date: date
    as_of_at: datetime
    members: int
    entered: int
    exited: int
    recomputed: bool  # False: a static segment kept as frozen
    frozen_at: datetime | None = None
    definition_changed: bool = False
    warning: str | None = None


def ensure_schema(connection: duckdb.DuckDBPyConnection) -> None:
    """Create schema `segments` and its three tables when absent."""
    for statement in _DDL:
        connection.execute(statement)


def evaluate_segments(
    connection: duckdb.DuckDBPyConnection,
    segments: Sequence[Segment],
    as_of: str | date | datetime,
    *,
    tables: Tables | None = None,
    into: str = "segment_members",
) -> dict[str, int]:
    """Compute the current members of `segments` as of `as_of` into temp table `into`.

    `into` (segment_name, customer_id) is replaced; returns the member count per segment.
    Nothing is written to schema `segments`; `run_segments` does that.
    """
    if not _TEMP_NAME.match(into):
        raise ValueError(f"temp table name {into!r} must be a plain lower-case name")
    moment = cutoff(as_of)
    connection.execute(
        f"create or replace temp table {into} (segment_name varchar, customer_id varchar)"
    )
    for segment in segments:
        compiled = compile_segment(segment, tables)
        connection.execute(
            f"insert into {into}\nselect $segment_name, members.customer_id\n"
            f"from (\n{compiled.sql}\n) as members",
            {**compiled.bind(moment), "segment_name": segment.name},
        )
    counts = dict(
        connection.execute(
            f"select segment_name, count(*) from {into} group by segment_name"
        ).fetchall()
    )
    return {segment.name: int(counts.get(segment.name, 0)) for segment in segments}


def segment_members(
    connection: duckdb.DuckDBPyConnection,
    segment: Segment,
    as_of: str | date | datetime,
    *,
    tables: Tables | None = None,
) -> list[str]:
    """The customer_ids in `segment` as of `as_of`, sorted (for inspection and tests)."""
    compiled = compile_segment(segment, tables)
    rows = connection.execute(
        f"select customer_id from (\n{compiled.sql}\n) as members order by customer_id",
        compiled.bind(cutoff(as_of)),
    ).fetchall()
    return [row[0] for row in rows]


def segment_size(
    connection: duckdb.DuckDBPyConnection,
    segment: Segment,
    as_of: str | date | datetime,
    *,
    tables: Tables | None = None,
) -> int:
    """How many customers are in `segment` as of `as_of` (nothing written)."""
    compiled = compile_segment(segment, tables)
    row = connection.execute(
        f"select count(*) from (\n{compiled.sql}\n) as members", compiled.bind(cutoff(as_of))
    ).fetchone()
    return int(row[0])


@dataclass(frozen=True)
class _Plan:
    """What a run will do to one segment: recompute it or keep it frozen, which earlier run of
    the day it undoes, and what to report."""

    segment: Segment
    compiled: CompiledSegment
    previous: dict[str, Any] | None
    recompute: bool
    undo_as_of: datetime | None
    frozen_at: datetime | None
    definition_changed: bool
    warning: str | None


def run_segments(
    connection: duckdb.DuckDBPyConnection,
    segments: Sequence[Segment],
    as_of: str | date | datetime,
    *,
    snapshot_date: date | None = None,
    rebuild_static: Iterable[str] = (),
    tables: Tables | None = None,
) -> list[SegmentRun]:
    """Evaluate `segments` as of `as_of` and record memberships, sizes and definitions.

    `as_of` is the cutoff (a datetime, naive UTC) or an as_of value (`ml.as_of` rules: a bare
    date means the end of that day). `snapshot_date` is the day the sizes row is for (default:
    `ml.as_of.snapshot_date(as_of)`). `rebuild_static` names static segments to recompute and
    freeze again. Everything happens in one transaction: on any error nothing is written.
    """
    moment = cutoff(as_of)
    day = snapshot_date or snapshot_date_of(as_of)
    if not segments:
        return []
    names = [segment.name for segment in segments]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"segments {duplicates} are given more than once; pass each once")
    rebuild = set(rebuild_static)
    unknown = sorted(rebuild - set(names))
    if unknown:
        raise ValueError(f"rebuild_static names {unknown}, which are not among the segments run")
    tables = tables or Tables()
    connection.begin()
    try:
        ensure_schema(connection)
        previous = _read_definitions(connection, names)
        plans = [
            _plan_segment_run(s, previous.get(s.name), moment, day, rebuild, tables)
            for s in segments
        ]
        runs = _write_segment_tables(connection, plans, moment, day, tables)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return runs


def _read_definitions(
    connection: duckdb.DuckDBPyConnection, names: list[str]
) -> dict[str, dict[str, Any]]:
    """The stored segment_definitions rows of `names`, as {segment_name: {column: value}}."""
    cursor = connection.execute(
        f"select * from {DEFINITIONS} where list_contains($names, segment_name)", {"names": names}
    )
    columns = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def _plan_segment_run(
    segment: Segment,
    previous: dict[str, Any] | None,
    moment: datetime,
    day: date,
    rebuild: set[str],
    tables: Tables,
) -> _Plan:
    """Decide what the run does to `segment`, given its stored definition (`previous`).

    Refuses (ValueError) a run for an earlier day than the last one, or one not later than the
    history already written. A rerun of the last day undoes that run (unfreezing a static
    segment it froze); a frozen static segment is kept unless named in `rebuild`.
    """
    compiled = compile_segment(segment, tables)
    name = segment.name
    undo_as_of = None
    frozen_at = None
    if previous is not None:
        last_day = previous["last_snapshot_date"]
        if day < last_day:
            raise ValueError(
                f"segment {name!r} was last run for {last_day}; a run for {day} would rewrite "
                f"history that later days build on. Run for {last_day} or a later day."
            )
        rerun = day == last_day
        floor = previous["previous_as_of_at"] if rerun else previous["last_as_of_at"]
        if floor is not None and moment <= floor:
            raise ValueError(
                f"segment {name!r} already has history up to {floor}; a run as of {moment} "
                "must be later than that"
            )
        frozen_at = previous["frozen_at"]
        if rerun:
            undo_as_of = previous["last_as_of_at"]
            if frozen_at == undo_as_of:  # the run being replaced is the one that froze it
                frozen_at = None
    if not segment.is_static:
        return _Plan(segment, compiled, previous, True, undo_as_of, None, False, None)
    if frozen_at is None or name in rebuild:
        return _Plan(segment, compiled, previous, True, undo_as_of, moment, False, None)
    changed = previous is not None and previous["definition_hash"] != segment.definition_hash
    warning = None
    if changed:
        warning = (
            f"static segment {name!r} ({segment.file}): the rules changed since it was frozen "
            f"on {frozen_at:%Y-%m-%d %H:%M}; its members are kept as frozen and the frozen "
            "definition stays in segments.segment_definitions. To apply the new rules, rebuild "
            "it (rebuild_static) or give them a new segment name."
        )
    return _Plan(segment, compiled, previous, False, undo_as_of, frozen_at, changed, warning)


def _write_segment_tables(
    connection: duckdb.DuckDBPyConnection,
    plans: list[_Plan],
    moment: datetime,
    day: date,
    tables: Tables,
) -> list[SegmentRun]:
    """Carry out the plans in schema `segments` (inside the caller's transaction): undo a
    rerun's day, bring the memberships up to date, replace the day's sizes and the
    definitions; return what each segment's run did."""
    _load_run_plan(connection, plans)
    _undo_same_day_runs(connection)
    _gather_run_members(connection, plans, moment, tables)
    _close_and_open_memberships(connection, moment)
    sizes = _replace_day_sizes(connection, moment, day)
    _replace_definitions(connection, plans, moment, day)
    connection.execute("drop table if exists segment_run_plan")
    connection.execute("drop table if exists segment_run_members")
    return [_segment_run(plan, sizes[plan.segment.name], moment, day) for plan in plans]


def _load_run_plan(connection: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> None:
    """Temp table segment_run_plan: each segment run, whether it is recomputed, and the as_of
    of the run it replaces (null when none)."""
    connection.execute(
        "create or replace temp table segment_run_plan "
        "(segment_name varchar, recompute boolean, undo_as_of timestamp)"
    )
    connection.executemany(
        "insert into segment_run_plan values (?, ?, ?)",
        [(p.segment.name, p.recompute, p.undo_as_of) for p in plans],
    )


def _undo_same_day_runs(connection: duckdb.DuckDBPyConnection) -> None:
    """A rerun of the same day first undoes that day's run: the rows it opened go, the rows it
    closed are open again."""
    connection.execute(
        f"""
        delete from {MEMBERSHIPS}
        using segment_run_plan as plan
        where {MEMBERSHIPS}.segment_name = plan.segment_name
            and {MEMBERSHIPS}.valid_from = plan.undo_as_of
        """
    )
    connection.execute(
        f"""
        update {MEMBERSHIPS}
        set valid_to = null
        from segment_run_plan as plan
        where {MEMBERSHIPS}.segment_name = plan.segment_name
            and {MEMBERSHIPS}.valid_to = plan.undo_as_of
        """
    )


def _gather_run_members(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan], moment: datetime, tables: Tables
) -> None:
    """Temp table segment_run_members: who is in each segment now, computed (dynamic, or
    static being built) or kept (frozen static: its open rows, less customers gone from the
    attribute table)."""
    evaluate_segments(
        connection,
        [p.segment for p in plans if p.recompute],
        moment,
        tables=tables,
        into="segment_run_members",
    )
    connection.execute(
        f"""
        insert into segment_run_members
        select memberships.segment_name, memberships.customer_id
        from {MEMBERSHIPS} as memberships
        inner join segment_run_plan as plan
            on memberships.segment_name = plan.segment_name
        where not plan.recompute
            and memberships.valid_to is null
            and memberships.customer_id in (select customer_id from {tables.attributes})
        """
    )


def _close_and_open_memberships(connection: duckdb.DuckDBPyConnection, moment: datetime) -> None:
    """Close the open rows of those who left (valid_to = as_of) and open rows for those who
    entered (valid_from = as_of)."""
    connection.execute(
        f"""
        update {MEMBERSHIPS}
        set valid_to = $as_of
        where valid_to is null
            and segment_name in (select segment_name from segment_run_plan)
            and not exists (
                select 1
                from segment_run_members as run_members
                where run_members.segment_name = {MEMBERSHIPS}.segment_name
                    and run_members.customer_id = {MEMBERSHIPS}.customer_id
            )
        """,
        {"as_of": moment},
    )
    connection.execute(
        f"""
        insert into {MEMBERSHIPS} (segment_name, customer_id, valid_from, valid_to)
        select run_members.segment_name, run_members.customer_id, $as_of, null
        from segment_run_members as run_members
        where not exists (
            select 1
            from {MEMBERSHIPS} as memberships
            where memberships.segment_name = run_members.segment_name
                and memberships.customer_id = run_members.customer_id
                and memberships.valid_to is null
        )
        """,
        {"as_of": moment},
    )


def _replace_day_sizes(
    connection: duckdb.DuckDBPyConnection, moment: datetime, day: date
) -> dict[str, tuple[Any, ...]]:
    """Write the day's sizes of the planned segments, replacing a previous run of the same
    day; return (members, entered, exited) by segment."""
    connection.execute(
        f"""
        delete from {SIZES}
        where snapshot_date = $day
            and segment_name in (select segment_name from segment_run_plan)
        """,
        {"day": day},
    )
    connection.execute(
        f"""
        insert into {SIZES} (segment_name, snapshot_date, members, entered, exited)
        select
            plan.segment_name,
            $day,
            count(memberships.customer_id) filter (where memberships.valid_to is null),
            count(memberships.customer_id) filter (where memberships.valid_from = $as_of),
            count(memberships.customer_id) filter (where memberships.valid_to = $as_of)
        from segment_run_plan as plan
        left join {MEMBERSHIPS} as memberships
            on plan.segment_name = memberships.segment_name
            and (memberships.valid_to is null or memberships.valid_to = $as_of)
        group by plan.segment_name
        """,
        {"day": day, "as_of": moment},
    )
    return {
        row[0]: row[1:]
        for row in connection.execute(
            f"select segment_name, members, entered, exited from {SIZES} "
            "where snapshot_date = $day and segment_name in "
            "(select segment_name from segment_run_plan)",
            {"day": day},
        ).fetchall()
    }


def _replace_definitions(
    connection: duckdb.DuckDBPyConnection, plans: list[_Plan], moment: datetime, day: date
) -> None:
    """Replace the planned segments' definitions: what the members come from, and where the
    history stands."""
    connection.execute(
        f"delete from {DEFINITIONS} where segment_name in "
        "(select segment_name from segment_run_plan)"
    )
    connection.executemany(
        f"insert into {DEFINITIONS} ({', '.join(_DEFINITION_COLUMNS)}) "
        f"values ({', '.join('?' for _ in _DEFINITION_COLUMNS)})",
        [_definition_row(plan, moment, day) for plan in plans],
    )


def _segment_run(plan: _Plan, size: tuple[Any, ...], moment: datetime, day: date) -> SegmentRun:
    """What the run did to the plan's segment, given its (members, entered, exited)."""
    members, entered, exited = size
    return SegmentRun(
        segment_name=plan.segment.name,
        type=plan.segment.type,
        snapshot_date=day,
        as_of_at=moment,
        members=int(members),
        entered=int(entered),
        exited=int(exited),
        recomputed=plan.recompute,
        frozen_at=plan.frozen_at,
        definition_changed=plan.definition_changed,
        warning=plan.warning,
    )


def _definition_row(plan: _Plan, moment: datetime, day: date) -> tuple[Any, ...]:
    """The segment_definitions row of a planned segment (a frozen static segment whose rules
    changed keeps the definition its members came from)."""
    segment, previous = plan.segment, plan.previous
    if plan.definition_changed and previous is not None:  # frozen: keep what members came from
        definition = (
            previous["definition_hash"],
            previous["compiled_sql"],
            previous["parameters"],
        )
    else:
        definition = (
            segment.definition_hash,
            plan.compiled.sql,
            json.dumps(dict(plan.compiled.parameters), default=str),
        )
    if previous is None:
        earlier = None
    elif plan.undo_as_of is not None:
        earlier = previous["previous_as_of_at"]
    else:
        earlier = previous["last_as_of_at"]
    return (
        segment.name,
        definition[0],
        segment.file,
        segment.owner,
        segment.type,
        segment.consent_purpose,
        segment.description,
        definition[1],
        definition[2],
        plan.frozen_at,
        moment,
        day,
        earlier,
        datetime.now(UTC).replace(tzinfo=None, microsecond=0),
    )
