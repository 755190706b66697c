"""The "bring your own data" walkthrough (docs/bring-your-own-data.md) on CDNOW, end to end.

The data is the order history that ships inside the `lifetimes` wheel on PyPI, fetched the way
the docs say (`make public-data` into the git-ignored data/public/), converted with the docs'
own awk line, and landed with the `feeds.local.yml` the docs show (read from the page itself,
so the page and the test cannot drift apart). A subset of the rows (the first customers) keeps
the real job under a minute and a half.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import duckdb
import pytest
from teal_testing import REPO_ROOT, run_refresh_all, settings_for

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("public_data")]

CDNOW = REPO_ROOT / "data" / "public" / "cdnow" / "CDNOW_master.txt"
DOCS = REPO_ROOT / "docs" / "bring-your-own-data.md"
ROWS = 1500  # the first purchases: customers 00001 to 00436


def docs_block(marker: str, language: str) -> str:
    """The fenced block of the page whose first line is `marker`."""
    for block in re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"{DOCS}: no ```{language} block starting with {marker!r}")


@pytest.fixture(scope="module")
def cdnow_file() -> str:
    if not CDNOW.exists():
        fetched = subprocess.run(
            ["make", "-s", "public-data"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        if fetched.returncode != 0 or not CDNOW.exists():
            pytest.fail(
                f"{CDNOW} is missing and `make public-data` could not fetch it from PyPI "
                f"(exit {fetched.returncode}): {fetched.stderr.strip()[-500:]}\n"
                "Run `make public-data` where PyPI can be reached."
            )
    return str(CDNOW)


def test_cdnow_lands_and_runs_to_identity_rfm_and_a_segment(cdnow_file, tmp_path, definitions):
    settings = settings_for(tmp_path, as_of="1998-06-30")
    orders = settings.landing / "orders"
    orders.mkdir(parents=True)
    awk = shutil.which("awk")
    assert awk, "the walkthrough's conversion needs awk"
    converted = subprocess.run(
        [awk, "-v", "OFS=,", "{$1=$1; print}", cdnow_file], capture_output=True, check=True
    ).stdout  # bytes: the lines keep the file's CRLF endings, as the docs' awk line writes them
    lines = converted.splitlines(keepends=True)
    assert lines[0] == b"customer_id,date,number_of_cds,dollar_value\r\n"
    (orders / "cdnow_master.csv").write_bytes(b"".join(lines[: ROWS + 1]))
    overrides = docs_block("# data/feeds.local.yml for CDNOW", "yaml")
    (tmp_path / "feeds.local.yml").write_text(overrides, encoding="utf-8")  # beside landing/

    run_refresh_all(definitions, settings)

    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:

        def one(sql: str):
            return connection.execute(sql).fetchone()

        assert one(
            "select rows_read, rows_loaded, rows_quarantined, rows_duplicate from landing.files"
        ) == (1500, 1500, 0, 0)
        assert one("select count(*) from landing.quarantine") == (0,)
        # the overrides' work, as landed
        assert connection.execute(
            "select order_id, line_number, customer_ref_normalised, customer_ref_type, "
            "ordered_at, channel, sku, quantity, unit_price, currency, status "
            "from orders.order_lines where _row_number <= 4 order by _row_number"
        ).fetchall() == [
            (
                "00001-19970101",
                "1",
                "00001",
                "crm_id",
                "1997-01-01T00:00:00",
                "web",
                "CD",
                "1",
                "11.77",
                "USD",
                "completed",
            ),
            (
                "00002-19970112",
                "1",
                "00002",
                "crm_id",
                "1997-01-12T00:00:00",
                "web",
                "CD",
                "1",
                "12.00",
                "USD",
                "completed",
            ),
            (
                "00002-19970112",
                "2",
                "00002",
                "crm_id",
                "1997-01-12T00:00:00",
                "web",
                "CD",
                "1",
                "77.00",
                "USD",
                "completed",
            ),
        ]
        customers, orders_count = one(
            "select count(distinct customer_ref_normalised), count(distinct order_id) "
            "from orders.order_lines"
        )
        # identity: one customer per CDNOW id, every order linked to its customer
        assert one("select count(*) from identity.customers") == (customers,)
        assert one("select count(*) from marts.fct_orders where customer_id is null") == (0,)
        assert one("select count(*) from marts.fct_orders") == (orders_count,)
        # RFM for every customer, and a segment with members
        assert one("select count(*) from marts.customer_rfm where rfm_segment is not null") == (
            customers,
        )
        lapsed = one(
            "select members from segments.segment_sizes where segment_name = 'lapsed_180d'"
        )
        assert lapsed is not None and lapsed[0] > 0
        expected_lapsed = one(
            "select count(*) from marts.dim_customer_attributes where days_since_last_order >= 180"
        )
        assert lapsed == expected_lapsed
