"""Command line: python -m ml.synthetic --customers 5000 --seed 42 --out data/landing --truth data/ground_truth"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from ml.synthetic.generator import DEFAULT_END, MIN_CUSTOMERS, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.synthetic",
        description="Generate Teal's sample landing files and their ground truth.",
    )
    parser.add_argument(
        "--customers", type=int, default=5000, help="number of persons (default 5000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=Path("data/landing"), help="landing folder")
    parser.add_argument(
        "--truth", type=Path, default=Path("data/ground_truth"), help="ground-truth folder"
    )
    parser.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=DEFAULT_END,
        help=f"last day of data, YYYY-MM-DD (default {DEFAULT_END.isoformat()})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.customers < MIN_CUSTOMERS:
        parser.error(f"--customers must be at least {MIN_CUSTOMERS}")
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    manifest = generate(
        args.out,
        args.truth,
        customers=args.customers,
        seed=args.seed,
        end_date=args.end_date,
        progress=not args.quiet,
    )
    totals = {
        feed: {k: v for k, v in t.items() if k in ("files", "rows_read")}
        for feed, t in manifest["feeds"].items()
    }
    print(json.dumps({"persons": manifest["persons"], "feeds": totals}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
