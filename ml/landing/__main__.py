"""Landing from the command line.

    python -m ml.landing land [--feed orders ...] [--landing DIR] [--warehouse FILE]
    python -m ml.landing check FILE --feed orders        # a dry run: nothing is written
    python -m ml.landing quarantine [--feed orders] [--load-id ID] [--limit 50]

`land` lands every feed's new files (or the feeds named) into the warehouse of the settings
($TEAL_WAREHOUSE, $TEAL_LANDING, ml/settings.py), with the user's feeds.local.yml merged over
the contract. `check` and `quarantine` are ml/landing/check.py and ml/landing/quarantine.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.yamlfile import YamlFileError

from .contracts import ContractError

COMMANDS = ("land", "check", "quarantine")


def land(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.landing land", description="Land the new files of the feeds."
    )
    parser.add_argument("--landing", type=Path, default=None, help="default: $TEAL_LANDING")
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="DuckDB file (default: $TEAL_WAREHOUSE)"
    )
    parser.add_argument("--feed", action="append", help="land only this feed (repeatable)")
    args = parser.parse_args(argv)
    from ml.settings import Settings

    from . import contracts
    from .loader import Loader, new_load_id

    settings = Settings.from_env()
    if args.warehouse:
        settings = settings.replace(warehouse=args.warehouse)
    if args.landing:
        settings = settings.replace(landing=args.landing)
    try:
        overrides = contracts.overrides_file(settings.landing, settings.feeds_overrides)
        feeds = contracts.load(overrides=overrides)
    except (ContractError, YamlFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unknown = [name for name in args.feed or [] if name not in feeds.feeds]
    if unknown:
        print(
            f"error: no feed {unknown[0]!r}; the feeds are {', '.join(feeds.feeds)}",
            file=sys.stderr,
        )
        return 2
    with settings.connect() as connection:
        loader = Loader(connection, settings.landing, feeds, salt=settings.salt)
        load_id = new_load_id()
        for name in args.feed or list(feeds.feeds):
            totals = loader.land_feed(name, load_id).as_dict()
            print(
                f"{name:12} files {totals['files_landed']} landed, "
                f"{totals['files_quarantined']} quarantined, {totals['files_skipped']} skipped; "
                f"rows {totals['rows_loaded']} loaded, {totals['rows_quarantined']} quarantined, "
                f"{totals['rows_duplicate']} duplicate, {totals['rows_erased']} erased"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(
            "usage: python -m ml.landing {land,check,quarantine} ...\n"
            "  land        land the new files of the feeds\n"
            "  check       a dry run of one file against its feed's contract\n"
            "  quarantine  show what landing refused, and why",
            file=sys.stderr,
        )
        return 2
    command, rest = argv[0], argv[1:]
    if command == "check":
        from .check import main as check

        return check(rest)
    if command == "quarantine":
        from .quarantine import main as quarantine

        return quarantine(rest)
    return land(rest)


if __name__ == "__main__":
    sys.exit(main())
