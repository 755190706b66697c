"""Segment commands for analysts, over the warehouse ($TEAL_WAREHOUSE, else data/warehouse.duckdb).

    python -m ml.segments validate             check every segment file against the catalogue
    python -m ml.segments sizes [NAME]         sizes of the last run (NAME: that segment by day)
    python -m ml.segments show NAME            a segment's definition, compiled SQL and size

Options (before or after the command): --warehouse FILE, --segments-dir DIR (default
dbt_project/segments), --catalogue FILE (default the audiences models yml). `show --as-of`
takes a date or UTC timestamp (a date means the end of that day; default now).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ml.as_of import cutoff
from ml.segments.catalogue import (
    DEFAULT_CATALOGUE,
    SEGMENTS_DIR,
    CatalogueError,
    load_catalogue,
)
from ml.segments.compiler import Tables, compile_segment
from ml.segments.membership import DEFINITIONS, SIZES, segment_size
from ml.segments.rules import Segment, SegmentValidationError, load_segments
from ml.settings import Settings


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as error:
        raise ValueError(
            f"cannot open {warehouse} read-only ({error}); is a run writing to it?"
        ) from None


def _options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--warehouse", type=Path, default=default, help="default: $TEAL_WAREHOUSE")
    parser.add_argument(
        "--segments-dir", type=Path, default=default, help=f"default: {SEGMENTS_DIR}"
    )
    parser.add_argument(
        "--catalogue", type=Path, default=default, help=f"default: {DEFAULT_CATALOGUE}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.segments", description=__doc__.splitlines()[0]
    )
    _options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    _options(common, argparse.SUPPRESS)
    commands.add_parser("validate", parents=[common], help="check the segment files")
    sizes = commands.add_parser("sizes", parents=[common], help="sizes of the last run")
    sizes.add_argument("name", nargs="?", help="one segment: its size day by day")
    sizes.add_argument("--days", type=int, default=14, help="days shown for one segment")
    show = commands.add_parser("show", parents=[common], help="definition, SQL and size")
    show.add_argument("name")
    show.add_argument("--as-of", default=None, help="date or UTC timestamp; default now")
    args = parser.parse_args(argv)
    warehouse = args.warehouse or Settings.from_env().warehouse
    segments_dir = args.segments_dir or SEGMENTS_DIR
    catalogue_path = args.catalogue or DEFAULT_CATALOGUE
    try:
        if args.command == "sizes":
            return _sizes(warehouse, args.name, args.days)
        catalogue = load_catalogue(catalogue_path)
        if args.command == "validate":
            return _validate(segments_dir, catalogue, warehouse)
        return _show(segments_dir, catalogue, warehouse, args.name, args.as_of)
    except (CatalogueError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _validate(segments_dir: Path, catalogue: Any, warehouse: Path) -> int:
    try:
        segments = load_segments(segments_dir, catalogue)
    except SegmentValidationError as error:
        for message in error.messages():
            print(message, file=sys.stderr)
        count = len(error.errors)
        print(f"\n{count} problem{'s' if count != 1 else ''}; nothing was run.", file=sys.stderr)
        return 1
    files = {segment.file for segment in segments}
    print(
        f"{len(segments)} segments in {len(files)} files are valid "
        f"(fields from {catalogue.origin})."
    )
    for line in _frozen_changes(warehouse, segments):
        print(f"warning: {line}")
    return 0


def _frozen_changes(warehouse: Path, segments: list[Segment]) -> list[str]:
    """Static segments whose rules differ from the definition they were frozen with."""
    if not warehouse.exists():
        return []
    try:
        with _open(warehouse) as connection:
            rows = connection.execute(
                f"select segment_name, definition_hash, frozen_at from {DEFINITIONS} "
                "where frozen_at is not null"
            ).fetchall()
    except (duckdb.Error, ValueError):
        return []  # no run yet, or the warehouse is busy: nothing to compare with
    frozen = {name: (digest, at) for name, digest, at in rows}
    return [
        f"static segment {s.name!r} ({s.file}) has new rules but stays frozen as built on "
        f"{frozen[s.name][1]:%Y-%m-%d}; the next run keeps its members and reports it"
        for s in segments
        if s.is_static and s.name in frozen and frozen[s.name][0] != s.definition_hash
    ]


def _sizes(warehouse: Path, name: str | None, days: int) -> int:
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run `make run` first.", file=sys.stderr)
        return 2
    with _open(warehouse) as connection:
        try:
            if name is None:
                frame = connection.execute(
                    f"""
                    select
                        sizes.segment_name, sizes.snapshot_date, sizes.members, sizes.entered,
                        sizes.exited, definitions.type, definitions.consent_purpose
                    from {SIZES} as sizes
                    left join {DEFINITIONS} as definitions
                        on sizes.segment_name = definitions.segment_name
                    qualify sizes.snapshot_date
                        = max(sizes.snapshot_date) over (partition by sizes.segment_name)
                    order by sizes.segment_name
                    """
                ).df()
            else:
                frame = connection.execute(
                    f"select snapshot_date, members, entered, exited from {SIZES} "
                    "where segment_name = $name order by snapshot_date desc limit $days",
                    {"name": name, "days": days},
                ).df()
        except duckdb.CatalogException:
            print(f"No segment has run on {warehouse} yet (no {SIZES}).", file=sys.stderr)
            return 1
    if frame.empty:
        what = f"segment {name!r}" if name else "any segment"
        print(f"No sizes recorded for {what} on {warehouse}.", file=sys.stderr)
        return 1
    print(frame.to_string(index=False))
    return 0


def _show(segments_dir: Path, catalogue: Any, warehouse: Path, name: str, as_of: str | None) -> int:
    try:
        segments = load_segments(segments_dir, catalogue)
    except SegmentValidationError as error:
        segments = list(error.valid)
        if name not in {s.name for s in segments}:
            for message in error.messages():
                print(message, file=sys.stderr)
            return 1
        print(f"warning: other segment files have problems:\n{error}\n", file=sys.stderr)
    chosen = next((s for s in segments if s.name == name), None)
    if chosen is None:
        known = ", ".join(sorted(s.name for s in segments))
        print(f"No segment named {name!r} in {segments_dir} (there are: {known})", file=sys.stderr)
        return 1
    compiled = compile_segment(chosen)
    print(f"{chosen.name}  ({chosen.type}, consent: {chosen.consent_purpose})")
    print(f"file: {chosen.file}\nowner: {chosen.owner}\ndescription: {chosen.description}\n")
    print("-- members as of $as_of (the run's cutoff, UTC)")
    print(compiled.sql + ";\n")
    for key, value in compiled.parameters.items():
        print(f"-- ${key} = {_literal(value)}")
    moment = cutoff(as_of) if as_of else datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    print()
    if not warehouse.exists():
        print(f"size: no warehouse at {warehouse} (run `make run` first)")
        return 0
    with _open(warehouse) as connection:
        try:
            size = segment_size(connection, chosen, moment)
            print(f"size as of {moment:%Y-%m-%d %H:%M:%S}: {size} customers (computed now)")
        except duckdb.CatalogException as error:
            first = str(error).splitlines()[0]
            print(f"size: not computed ({first}); build {Tables().attributes} first")
        try:
            row = connection.execute(
                f"select snapshot_date, members, entered, exited from {SIZES} "
                "where segment_name = $name order by snapshot_date desc limit 1",
                {"name": name},
            ).fetchone()
        except duckdb.CatalogException:
            row = None
        if row is None:
            print("last run: none yet")
        else:
            print(f"last run ({row[0]}): {row[1]} members, {row[2]} entered, {row[3]} exited")
    return 0


def _literal(value: Any) -> str:
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
        for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
            if minutes % size == 0:
                count = minutes // size
                return f"interval '{count} {unit}{'s' if count != 1 else ''}'"
    return repr(value)


if __name__ == "__main__":
    sys.exit(main())
