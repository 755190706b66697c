"""(Re)build the GX Data Docs site and print the path of its index.html.

    python -m expectations.docs [--project-root DIR]

Every feed's suite is rebuilt from the contracts and saved first, so the site documents the
current suites even before any batch was validated; stored validation results (the newest
50, see `validation_results_limit` in great_expectations.yml) are rendered too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from expectations.context import DOCS_SITE, EXPECTATIONS_DIR, docs_index, get_context
from expectations.validate import save_checkpoint
from ml.landing import contracts


def build_docs(project_root: str | Path = EXPECTATIONS_DIR) -> Path:
    """Save every feed's suite and checkpoint, rebuild the local Data Docs site, return its index.html."""
    context = get_context(project_root)
    for feed in contracts.load():
        save_checkpoint(context, feed)
    context.build_data_docs(site_names=[DOCS_SITE])
    return docs_index(context)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m expectations.docs", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--project-root",
        default=str(EXPECTATIONS_DIR),
        help="directory that holds gx/ (default: the expectations package)",
    )
    args = parser.parse_args(argv)
    print(build_docs(args.project_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
