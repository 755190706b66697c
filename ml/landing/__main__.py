"""Landing from the command line.

    python -m ml.landing land [--feed orders ...] [--landing DIR] [--warehouse FILE]
    python -m ml.landing check FILE --feed orders        # a dry run: nothing is written
    python -m ml.landing quarantine [--feed orders] [--load-id ID] [--limit 50]

`land` lands every feed's new files (or the feeds named) into the warehouse of the settings
($TEAL_WAREHOUSE, $TEAL_LANDING, ml/settings.py), with the user's feeds.local.yml merged over
the contract. `check` and `quarantine` are ml/landing/check.py and ml/landing/quarantine.py.
"""

from __future__ import annotations

import sys

COMMANDS = ("land", "check", "quarantine")


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
    from .loader import main as land

    return land(rest)


if __name__ == "__main__":
    sys.exit(main())
