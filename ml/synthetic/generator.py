"""Generate Teal's sample landing data and the ground truth that describes it.

    python -m ml.synthetic --customers 5000 --seed 42 --out data/landing --truth data/ground_truth

Landing files (one sub-folder per feed, names sort chronologically) follow the contracts in
ml/landing/feeds.yml; every row not made malformed on purpose passes every rule.
The ground truth, written under --truth and never read by the pipeline:

* expected_files.csv  feed, file, rows_read, rows_loaded, rows_quarantined, rows_duplicate,
                      file_quarantined for every file written (what the loader must report)
* malformed.csv       feed, file, row_number, field, kind of every malformed row
* persons.csv         the real people: names, birth date, e-mail, household, twin, erased
* crm_records.csv     which person each crm id belongs to, and the duplicate variant
* accounts.csv        which person owns each web shop account (user_id) and the emails it had
* identifiers.csv     kind, value, person_id of every identifier seen in a valid row
* manifest.json       arguments and totals per feed

The output depends only on the arguments: the same arguments give byte-identical files.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tqdm import tqdm

from ml.synthetic import accounts, clickstream, consent, crm, erasure, orders, products
from ml.synthetic import truth as ground_truth
from ml.synthetic.context import CLICKSTREAM_DAYS, DELTA_DAYS, Context
from ml.synthetic.people import make_people
from ml.synthetic.writers import Landing

FEEDS = ("crm", "orders", "clickstream", "accounts", "products", "consent", "erasure")
MIN_CUSTOMERS = 100
DEFAULT_END = date(2026, 11, 20)


def _clear(out: Path) -> None:
    """Remove files of an earlier run, so the landing folder holds exactly this run's files."""
    for feed in FEEDS:
        folder = out / feed
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix in (".csv", ".jsonl", ".parquet", ".xml"):
                    path.unlink()


def generate(
    out: Path,
    truth: Path,
    customers: int = 5000,
    seed: int = 42,
    end_date: date = DEFAULT_END,
    *,
    progress: bool = True,
) -> dict:
    """Write the landing files under `out` and the ground truth under `truth`.

    Returns the manifest (arguments, totals per feed, counts of the deliberate mess).
    """
    if customers < MIN_CUSTOMERS:
        raise ValueError(f"customers must be at least {MIN_CUSTOMERS}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    out, truth = Path(out), Path(truth)
    ctx = Context(customers=customers, seed=seed, end=end_date)
    n_order_files = len(_months(ctx)) + 2 * DELTA_DAYS
    steps = 2 + 2 * (DELTA_DAYS + 1) + 4 + n_order_files + (DELTA_DAYS + 1) + 2 + CLICKSTREAM_DAYS
    _clear(out)
    with tqdm(total=steps, desc="synthetic data", unit="step", disable=not progress) as bar:
        landing = Landing(out, bar)
        bar.set_postfix_str("persons")
        people = make_people(ctx)
        records = crm.make_records(ctx, people)
        catalogue = products.make_catalogue(ctx)
        stores = orders.make_stores(ctx)
        order_data = orders.make_orders(ctx, people, records, catalogue, stores)
        consents = consent.make_consents(ctx, people, records)
        erased = erasure.choose_erased(ctx, people)
        shop_accounts = accounts.make_accounts(ctx, people, records)
        bar.update(1)

        versions = crm.write(ctx, people, records, landing)
        products.write(ctx, catalogue, landing)
        orders.write(ctx, order_data, records, catalogue, stores, landing)
        consent.write(ctx, consents, records, landing)
        erasure.write(ctx, erased, records, landing)
        accounts.write(ctx, shop_accounts, landing)
        web, click = clickstream.write(ctx, people, order_data, consents, catalogue, landing)

        bar.set_postfix_str("ground truth")
        arguments = {"customers": customers, "seed": seed, "end_date": end_date.isoformat()}
        manifest = ground_truth.write(
            truth, landing, people, records, versions, web, click, shop_accounts, erased, arguments
        )
        bar.update(1)
    return manifest


def _months(ctx: Context) -> list[date]:
    month, months = ctx.history_start.replace(day=1), []
    while month <= ctx.full_export:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months
