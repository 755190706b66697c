"""Identity commands over the warehouse ($TEAL_WAREHOUSE, else data/warehouse.duckdb).

    python -m ml.identity explain A B              why A and B are (not) one customer
    python -m ml.identity preview --config FILE    merges and splits another identity.yml would cause
    python -m ml.identity evaluate [--truth DIR]   precision and recall against generated truth
    python -m ml.identity.dedupe in.csv ...        dedupe any CSV of people (see that module)

A and B are records (`crm:C1000003`, `order:O100000001`, `consent:<id>`) or identifiers
(`email:anna@example.org`, `phone:+442079460018`, `user_id:U10000002`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from ml.identity.evaluate import REPO_ROOT
from ml.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.identity", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--warehouse", type=Path, default=None, help="default: $TEAL_WAREHOUSE")
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "explain", help="why two records or identifiers are (not) one customer"
    )
    explain.add_argument("a")
    explain.add_argument("b")
    preview = commands.add_parser("preview", help="what another identity.yml would merge or split")
    preview.add_argument("--config", type=Path, required=True)
    evaluate = commands.add_parser("evaluate", help="figures against the generator's truth")
    evaluate.add_argument("--truth", type=Path, default=REPO_ROOT / "data" / "ground_truth")
    evaluate.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "evaluate":
        from ml.identity.evaluate import main as evaluate_main

        forwarded = ["--truth", str(args.truth)] + (["--json"] if args.json else [])
        if args.warehouse:
            forwarded += ["--warehouse", str(args.warehouse)]
        return evaluate_main(forwarded)  # which defaults the warehouse the same way

    from ml.identity.inspect import explain_pair, preview_config

    path = args.warehouse or Settings.from_env().warehouse
    if not path.exists():
        print(f"No warehouse at {path}: run `make run` first.", file=sys.stderr)
        return 2
    with duckdb.connect(str(path), read_only=True) as connection:
        try:
            if args.command == "explain":
                print(explain_pair(connection, args.a, args.b))
            else:
                changes = preview_config(connection, args.config, progress=True)
                if changes.empty:
                    print(f"{args.config}: no customer would be merged, split or retired.")
                else:
                    print(changes.to_string(index=False))
                    counts = changes["event_type"].value_counts().to_dict()
                    print(f"\n{args.config}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
