"""Show what landing refused, and why.

python -m ml.landing.quarantine [--feed orders] [--load-id ID] [--limit 50]
"""

from __future__ import annotations

import argparse
import sys

from ml.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed")
    parser.add_argument("--load-id")
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    path = settings.warehouse
    if not path.exists():
        print(f"No warehouse at {path}: run `make run` first.", file=sys.stderr)
        return 1
    where, params = ["true"], []
    if args.feed:
        where.append("feed = ?")
        params.append(args.feed)
    if args.load_id:
        where.append("load_id = ?")
        params.append(args.load_id)
    with settings.connect(read_only=True) as connection:
        total = connection.execute(
            f"select count(*) from landing.quarantine where {' and '.join(where)}", params
        ).fetchone()[0]
        rows = connection.execute(
            f"select message, raw_text from landing.quarantine where {' and '.join(where)} "
            "order by feed, file, row_number nulls first limit ?",
            [*params, args.limit],
        ).fetchall()
    print(
        f"{total} quarantined row(s) or file(s); showing {len(rows)}. Raw text after each reason.\n"
    )
    for message, raw in rows:
        print(message)
        print(f"    {raw[:200]!s}" if raw else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
