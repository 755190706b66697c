"""A dry run: what would landing make of this file? Nothing is written anywhere.

    python -m ml.landing.check FILE --feed orders      (or: make check FILE=... FEED=...)

The file goes through the loader's own code (ml/landing/batch.py) in an in-memory DuckDB
that never spills to disk, with the feed's contract and the user's overrides (feeds.local.yml
beside the landing folder, or $TEAL_FEEDS). It prints how many rows would load, how many would
be quarantined (grouped by reason, with up to three examples each, personal values masked),
how many repeat a key within the file, which columns were matched by another name, which
values and columns the overrides filled in or rewrote (defaults, derived columns, mapped
values), which contract columns are missing and which of the file's columns would be ignored.

Exit status: 0 when the file would land (even with some rows refused), 1 when it would be
quarantined whole, 2 when the command itself is wrong (no such file or feed, a broken
feeds.yml or overrides file). No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml.yamlfile import YamlFileError

from . import contracts
from .batch import STAGED, StagedBatch, drop_staged, stage_batch
from .checks import mask_reason
from .contracts import ContractError, Feed
from .ledger import ensure_tables
from .readers import SourceFile

EXAMPLES = 3
KEYS_SAMPLED = 1000  # JSON lines read for the keys outside the contract
EXIT_LANDS, EXIT_QUARANTINED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command cannot run as given; the message says what to change."""


@dataclass
class DryRun:
    """What landing would do with one file."""

    file: str
    feed: Feed
    unreadable: str | None = None
    missing: list[str] = field(default_factory=list)
    rows_read: int = 0
    would_load: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # kind -> rows
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> masked examples
    by_alias: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    supplied: list[str] = field(default_factory=list)  # what the overrides filled in, per column

    @property
    def exit_status(self) -> int:
        return EXIT_QUARANTINED if self.unreadable else EXIT_LANDS


def dry_run(path: Path, feed: Feed, memory_limit: str = "1GB") -> DryRun:
    """Read and check one file against the feed's contract in an in-memory DuckDB."""
    file_format = feed.file_format(path)
    result = DryRun(path.name, feed)
    if file_format is None:
        result.unreadable = (
            f"is not a file this feed takes (expected {', '.join(feed.formats.values())})"
        )
        return result
    source = SourceFile(0, path, path.name, file_format, path.read_bytes())
    config = {"memory_limit": memory_limit, "temp_directory": ""}
    with duckdb.connect(config=config) as connection:
        ensure_tables(connection, [feed])
        staged = stage_batch(connection, feed, [source], None, with_kinds=True)
        _summarise(connection, staged, result)
        drop_staged(connection)
    if file_format == "jsonl" and not result.unreadable:
        result.ignored = _json_keys_outside(path, feed)
    return result


def _summarise(connection: duckdb.DuckDBPyConnection, staged: StagedBatch, result: DryRun) -> None:
    if staged.unreadable:
        problem = staged.unreadable[0]
        result.unreadable, result.missing = str(problem), problem.missing
        return
    reading = staged.readings[0]
    result.by_alias, result.ignored = reading.by_alias, reading.ignored
    result.supplied = staged.supplied.describe(staged.feed)
    result.rows_read, result.would_load, result.duplicates = connection.execute(
        f"select count(*), count(*) filter (where _clean and not _is_duplicate), "
        f"count(*) filter (where _is_duplicate) from {STAGED}"
    ).fetchone()
    result.quarantined = len(staged.quarantined)
    reasons: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for row in staged.quarantined:
        for kind in row.kinds or [_parse_kind(row.reason)]:
            reasons[kind] += 1
            if len(examples[kind]) < EXAMPLES:
                examples[kind].append(
                    f"row {row.row_number}: {mask_reason(row.reason, staged.feed)}"
                )
    result.reasons, result.examples = dict(reasons.most_common()), dict(examples)


def _parse_kind(reason: str) -> str:
    """A reason the reader gave, without the details of the one row: `has N fields, ...`."""
    reason = re.sub(r"^has \d+ fields", "has the wrong number of fields", reason)
    return re.sub(r" \([^()]*\)$", "", reason)


def _json_keys_outside(path: Path, feed: Feed) -> list[str]:
    """Keys of the first JSON lines that no contract column or alias takes."""
    taken = set(feed.column_names) | {a for names in feed.aliases.values() for a in names}
    seen: dict[str, None] = {}
    with open(path, "rb") as handle:
        text = handle.read()
    if path.name.lower().endswith(".gz"):
        import gzip

        text = gzip.decompress(text)
    for line in text.splitlines()[:KEYS_SAMPLED]:
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            seen.update((k, None) for k in document if k not in taken)
    return list(seen)


# --------------------------------------------------------------------------- report


def render(result: DryRun) -> str:
    feed = result.feed
    lines = [f"{result.file} against the contract of feed `{feed.name}` ({feed.qualified_table}):"]
    if result.unreadable:
        lines.append(f"  the whole file would be quarantined: it {result.unreadable}")
        if result.missing:
            lines.append(f"  missing contract columns: {', '.join(result.missing)}")
        lines.append(_alias_hint(feed, result.missing))
        return "\n".join(line for line in lines if line)
    lines += [
        f"  {result.rows_read:,} rows read",
        f"  {result.would_load:,} would load",
        f"  {result.quarantined:,} would be quarantined" + (":" if result.quarantined else ""),
    ]
    for kind, count in result.reasons.items():
        lines.append(f"    {count:>6,}  {kind}")
        lines += [f"              {example}" for example in result.examples.get(kind, [])]
    key = ", ".join(feed.key)
    lines.append(f"  {result.duplicates:,} would be duplicates within the file (key {key})")
    matched = [f"{column} <- {name!r}" for column, name in result.by_alias.items()]
    lines.append("  matched by another name: " + (", ".join(matched) or "none"))
    lines.append("  filled in by the overrides" + (":" if result.supplied else ": none"))
    lines += [f"    {line}" for line in result.supplied]
    lines.append("  missing contract columns: none")
    lines.append("  ignored columns: " + (", ".join(result.ignored) or "none"))
    return "\n".join(lines)


def _alias_hint(feed: Feed, missing: list[str]) -> str:
    if not missing:
        return ""
    example = missing[0]
    return (
        f"  to read a column under another name, add it to feeds.local.yml: "
        f"feeds: {{{feed.name}: {{aliases: {{{example}: ['<name in your file>']}}}}}}\n"
        f"  for a column your export does not have, give it a value there: "
        f"feeds: {{{feed.name}: {{columns: {{{example}: {{default: <value>}}}}}}}}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.landing check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("file", type=Path, help="the file to check")
    parser.add_argument("--feed", required=True, help="the feed whose contract applies")
    parser.add_argument(
        "--overrides",
        type=Path,
        default=None,
        help="a feeds.local.yml to merge over the contract (default: $TEAL_FEEDS, or "
        "feeds.local.yml beside the landing folder)",
    )
    args = parser.parse_args(argv)
    try:
        feed = _feed(args.feed, args.overrides)
        if not args.file.is_file():
            raise UsageError(f"{args.file}: no such file")
        result = dry_run(args.file, feed)
    except (UsageError, ContractError, YamlFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, duckdb.Error) as exc:
        print(f"error: could not check {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(result))
    return result.exit_status


def _feed(name: str, overrides: Path | None) -> Feed:
    from ml.settings import Settings

    settings = Settings.from_env()
    path = contracts.overrides_file(settings.landing, overrides or settings.feeds_overrides)
    loaded = contracts.load(overrides=path)
    if name not in loaded.feeds:
        raise UsageError(f"no feed {name!r}; the feeds are {', '.join(loaded.feeds)}")
    return loaded[name]


if __name__ == "__main__":
    sys.exit(main())
