"""Deduplicate a CSV of person records: ``python -m ml.identity.dedupe``.

Reads any CSV, renames its columns to the matcher's standard names (``--map source=standard``,
``--map a+b=street`` joins columns), runs the same matcher as the pipeline
(`ml.identity.matching.resolve_entities`) and writes the input with an ``entity_id`` column
added: the same value for every row found to be the same person (the smallest record id among
them). Example, on FEBRL-style data::

    python -m ml.identity.dedupe people.csv --id-column rec_id \\
        --map given_name=first_name --map surname=last_name \\
        --map street_number+address_1=street --map suburb=city \\
        -o people_deduped.csv --links links.csv --explain rec-1 rec-2

Without ``--id-column`` the record id is the row number (1 = first data row).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ml.identity.comparisons import STANDARD_COLUMNS
from ml.identity.explain import explain
from ml.identity.matching import STRICT_VETOES, MatchSettings, resolve_entities


class InputError(Exception):
    """A problem with the input file or the arguments, said so that a person can fix it."""


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["given_name=first_name", ...]`` → ``{"given_name": "first_name", ...}``."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise InputError(f"--map {pair!r}: write it as SOURCE_COLUMN=STANDARD_COLUMN")
        if target not in STANDARD_COLUMNS or target == "record_id":
            choices = ", ".join(c for c in STANDARD_COLUMNS if c != "record_id")
            raise InputError(
                f"--map {pair}: {target!r} is not a standard column; use one of {choices} "
                "(and --id-column for the record id)"
            )
        mapping[source] = target
    return mapping


def read_records(path: Path, mapping: dict[str, str], id_column: str | None) -> pd.DataFrame:
    """The CSV as text, checked against the mapping; errors name the file and the column."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read it as CSV ({exc})") from None
    columns = list(frame.columns)
    listing = ", ".join(columns)
    for source, target in mapping.items():
        parts = [source] if source in columns else source.split("+")
        for part in parts:
            if part not in columns:
                raise InputError(
                    f"{path}: column {part!r} (from --map {source}={target}) is not in the "
                    f"file; its columns are: {listing}"
                )
    if id_column is not None:
        if id_column not in columns:
            raise InputError(
                f"{path}: id column {id_column!r} (--id-column) is not in the file; its columns "
                f"are: {listing}"
            )
        ids = frame[id_column]
        blank = ids.str.strip() == ""
        if blank.any():
            row = int(blank.to_numpy().nonzero()[0][0]) + 2
            raise InputError(f"{path}, line {row}: the id column {id_column!r} is empty")
        repeated = ids[ids.duplicated()]
        if len(repeated):
            raise InputError(
                f"{path}: id column {id_column!r} has repeated values (first: {repeated.iloc[0]!r}); "
                "record ids must be unique"
            )
    return frame


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m ml.identity.dedupe",
        description="Add an entity_id column to a CSV of person records: rows with the same "
        "entity_id are the same person (Fellegi-Sunter matching, parameters estimated from the "
        "file itself).",
    )
    parser.add_argument("input", type=Path, help="CSV file with a header row")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="where to write the CSV with entity_id"
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SOURCE=STANDARD",
        help="rename a column to a standard one (first_name, last_name, email, phone, "
        "date_of_birth, street, city, postcode, country, gender); A+B=street joins columns. "
        "Columns already named like a standard column need no --map.",
    )
    parser.add_argument(
        "--id-column", help="column holding a unique record id (default: row number)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=MatchSettings.threshold,
        help="match probability from which two rows are linked (default %(default)s)",
    )
    parser.add_argument("--links", type=Path, help="also write the scored pairs (links) here")
    parser.add_argument("--model-out", type=Path, help="also write the estimated model (JSON) here")
    parser.add_argument(
        "--explain",
        nargs=2,
        action="append",
        default=[],
        metavar=("ID_A", "ID_B"),
        help="print why two records are (not) the same person; may be repeated",
    )
    parser.add_argument(
        "--vetoes",
        action="store_true",
        help="never link two rows whose first names or birth dates clearly differ, whatever "
        "else agrees (by default such a difference is strong evidence against, weighed by what "
        "the file itself shows; a file whose errors replace whole values loses recall with this)",
    )
    parser.add_argument("--seed", type=int, default=MatchSettings.seed, help="random seed for u")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (0 fine, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        mapping = parse_mapping(args.map)
        if not 0 < args.threshold < 1:
            raise InputError(f"--threshold {args.threshold}: give a probability between 0 and 1")
        frame = read_records(args.input, mapping, args.id_column)
        records = frame.copy()
        if args.id_column is None:
            records["_row"] = range(1, len(frame) + 1)
            mapping["_row"] = "record_id"
        else:
            mapping[args.id_column] = "record_id"
        settings = MatchSettings(
            threshold=args.threshold,
            seed=args.seed,
            near_miss=min(0.05, args.threshold),
            vetoes=STRICT_VETOES if args.vetoes else (),
        )
        resolution = resolve_entities(records, settings, mapping=mapping, progress=not args.quiet)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = records[args.id_column] if args.id_column else records["_row"]
    entity = resolution.entities.set_index(resolution.entities["record_id"].astype(str))[
        "entity_id"
    ]
    out = frame.copy()
    if "entity_id" in out.columns:
        print("note: replacing the input's entity_id column", file=sys.stderr)
    out["entity_id"] = ids.astype(str).map(entity).to_numpy()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.output, index=False)
    if args.links:
        resolution.links.to_csv(args.links, index=False)
    if args.model_out:
        args.model_out.write_text(resolution.model.to_json() + "\n", encoding="utf-8")
    if not args.quiet:
        report = resolution.report
        print(
            f"{args.input}: {report.records:,} records -> {report.clusters:,} entities "
            f"({report.records - report.clusters:,} duplicates in "
            f"{report.clusters_with_duplicates:,} groups); wrote {args.output}"
        )
        print(report.summary())
    for a, b in args.explain:
        try:
            print()
            print(explain(resolution, a, b).text)
        except (KeyError, ValueError) as exc:
            print(f"error: --explain {a} {b}: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
