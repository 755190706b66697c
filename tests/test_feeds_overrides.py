"""A user's column rules in feeds.local.yml: patterns, allowed values, value maps, defaults,
derived columns and identifier patterns, checked when read, and applied by the loader, the dry
run and the Great Expectations suites alike (one contracts object)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.landing import contracts
from ml.landing.check import dry_run, main
from ml.landing.contracts import ContractError
from ml.landing.loader import Loader
from ml.normalise import InvalidValue, classify_reference

# An export shaped like a real retailer's (the UCI Online Retail columns): six-digit invoices,
# a C before a cancelled one, five-digit customer ids, no channel, currency or line numbers.
RETAIL_OVERRIDES = """\
identifier_patterns:
  crm_id: '^[0-9]{5}$'
feeds:
  orders:
    aliases:
      order_id: [Invoice]
      customer_ref: [Customer ID]
      ordered_at: [InvoiceDate]
      sku: [StockCode]
      unit_price: [Price]
    read: {timestamp_format: '%d/%m/%Y %H:%M'}
    columns:
      order_id: {pattern: '^C?[0-9]{6}$'}
      line_number: {derive: sequence}
      sku: {pattern: '^[0-9]{5}[A-Z]{0,2}$'}
      channel: {default: web}
      store_id: {default: ''}
      discount: {default: ''}
      currency: {default: GBP}
      status: {values: {Completed: completed, C: cancelled}}
"""
RETAIL_FILE = """\
Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID,Country,Status
536365,85123A,6,01/12/2010 08:26,2.55,17850,United Kingdom,Completed
536365,71053,6,01/12/2010 08:26,3.39,17850,United Kingdom,Completed
536366,22633,6,01/12/2010 08:28,1.85,17850,United Kingdom,Completed
536365,84406B,8,01/12/2010 08:26,2.75,17850,United Kingdom,Completed
C536379,D,-1,01/12/2010 09:41,27.50,14527,United Kingdom,C
536380,22961,2,13/31/2010 09:41,1.45,abc,France,shipped
536381,22139,,01/12/2010 09:45,4.95,,United Kingdom,completed
"""


def _overrides(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.local.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_overrides_change_the_rules_of_the_one_contracts_object(tmp_path):
    merged = contracts.load(overrides=_overrides(tmp_path, RETAIL_OVERRIDES))
    base = contracts.load()
    orders = merged["orders"]
    assert orders.column("order_id").pattern == "^C?[0-9]{6}$"
    assert orders.column("line_number").derive == "sequence"
    assert orders.column("channel").default == "web"
    assert orders.column("store_id").default == ""
    assert orders.column("status").values == (("Completed", "completed"), ("C", "cancelled"))
    assert orders.column("status").allowed == ("completed", "refunded", "cancelled")
    assert [c.name for c in orders.supplied] == [
        "line_number",
        "channel",
        "store_id",
        "discount",
        "currency",
    ]
    # identifier patterns reach every feed, and the crm id column follows its pattern
    assert merged.identifier_patterns == {"crm_id": "^[0-9]{5}$", "loyalty_id": "^L[0-9]{8}$"}
    assert merged["consent"].identifier_patterns["crm_id"] == "^[0-9]{5}$"
    assert merged["crm"].column("crm_id").pattern == "^[0-9]{5}$"
    assert merged["crm"].column("loyalty_id").pattern == base["crm"].column("loyalty_id").pattern
    # the contract itself is untouched
    assert base["orders"].column("order_id").pattern == "^O[0-9]{9}$"
    assert base["orders"].supplied == ()


def test_allowed_values_are_narrowed_or_set_where_the_contract_has_none(tmp_path):
    path = _overrides(
        tmp_path,
        "feeds:\n"
        "  crm:\n"
        "    columns:\n"
        "      country: {allowed: [GB, IE], default: GB}\n"
        "  orders:\n"
        "    columns:\n"
        "      store_id: {allowed: [S001, S002]}\n",
    )
    merged = contracts.load(overrides=path)
    assert merged["crm"].column("country").allowed == ("GB", "IE")
    assert merged["crm"].column("country").default == "GB"
    assert merged["orders"].column("store_id").allowed == ("S001", "S002")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "feeds: {orders: {columns: {invoice: {default: x}}}}",
            "feed 'orders', columns: 'invoice' is not a column of the feed (order_id, ",
        ),
        (
            "feeds: {orders: {columns: {channel: {fallback: web}}}}",
            "feed 'orders', columns.channel: unknown key(s) ['fallback']; known: pattern, "
            "allowed, values, default, derive",
        ),
        (
            "feeds: {orders: {columns: {order_id: {pattern: '^[0-9'}}}}",
            "feed 'orders', columns.order_id.pattern: '^[0-9' does not compile: unterminated "
            "character set at position 1",
        ),
        (
            "feeds: {orders: {columns: {order_id: {pattern: '^([0-9]+)+$'}}}}",
            "feed 'orders', columns.order_id.pattern: '^([0-9]+)+$' repeats a part that is "
            "itself repeated (as in '(a+)+')",
        ),
        (
            "feeds: {orders: {columns: {order_id: {pattern: '^(?:[A-Z]*-?)*$'}}}}",
            "feed 'orders', columns.order_id.pattern: '^(?:[A-Z]*-?)*$' repeats a part",
        ),
        (
            "feeds: {orders: {columns: {order_id: {pattern: '^(?!X)[0-9]{6}$'}}}}",
            "feed 'orders', columns.order_id.pattern: '^(?!X)[0-9]{6}$' is not understood by "
            "DuckDB's regular expressions (RE2: no look-arounds or back-references)",
        ),
        (
            "feeds: {orders: {columns: {status: {values: {Shipped: shipped}}}}}",
            "feed 'orders', columns.status.values.Shipped: maps to 'shipped' is not one of "
            "completed, refunded, cancelled",
        ),
        (
            "feeds: {orders: {columns: {status: {values: {yes: completed}}}}}",
            "feed 'orders', columns.status.values: True is not a single value (quote text such "
            "as 'yes')",
        ),
        (
            "feeds: {orders: {columns: {currency: {default: AUD}}}}",
            "feed 'orders', columns.currency.default: default 'AUD' is not one of GBP, EUR, USD",
        ),
        (
            "feeds: {orders: {columns: {quantity: {default: one}}}}",
            "feed 'orders', columns.quantity.default: default 'one' is not a whole number",
        ),
        (
            "feeds: {orders: {columns: {channel: {default: ''}}}}",
            "feed 'orders', columns.channel.default: channel is required, so its default "
            "cannot be empty",
        ),
        (
            "feeds: {orders: {columns: {quantity: {derive: sequence}}}}",
            "feed 'orders', columns.quantity.derive: sequence numbers an integer key column "
            "within the rest of the key (key of orders: order_id, line_number)",
        ),
        (
            "feeds: {orders: {columns: {order_id: {derive: {concat: [customer_ref, when]}}}}}",
            "feed 'orders', columns.order_id.derive.concat: list other columns of the feed",
        ),
        (
            "feeds: {orders: {columns: {order_id: {derive: {concat: [line_number]}}, "
            "line_number: {derive: sequence}}}}",
            "feed 'orders', columns.order_id.derive: line_number is derived too",
        ),
        (
            "feeds: {orders: {columns: {currency: {allowed: [GBP, AUD]}}}}",
            "feed 'orders', columns.currency.allowed: AUD is not one of GBP, EUR, USD: Teal's "
            "models test and read these values, so map yours onto them instead, e.g. values: "
            "{AUD: GBP}",
        ),
        (
            "identifier_patterns: {crm_id: '^rec-[0-9]+$'}\nfeeds: {}",
            "identifier_patterns.crm_id: '^rec-[0-9]+$' has lower-case letters, but a "
            "reference is upper-cased before it is matched",
        ),
        (
            "identifier_patterns: {login_id: '^U[0-9]+$'}\nfeeds: {}",
            "identifier_patterns: 'login_id' is not an identifier kind (crm_id, loyalty_id",
        ),
    ],
)
def test_a_broken_rule_names_the_file_feed_column_and_key(tmp_path, text, message):
    path = _overrides(tmp_path, text + "\n")
    with pytest.raises(ContractError) as error:
        contracts.load(overrides=path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_feeds_yml_itself_cannot_set_what_only_a_user_sets():
    document = contracts.read_document(contracts.CONTRACTS_FILE)
    document["feeds"]["orders"]["columns"][4]["default"] = "web"
    with pytest.raises(ContractError) as error:
        contracts.parse(document)
    assert (
        str(error.value)
        == "feeds.yml: feed 'orders', column 'channel': unknown field(s) ['default']"
    )


def _land(tmp_path: Path, overrides: str, name: str, text: str, feed: str = "orders"):
    landing = tmp_path / "landing"
    (landing / feed).mkdir(parents=True)
    (landing / feed / name).write_text(text, encoding="utf-8")
    _overrides(tmp_path, overrides)  # beside the landing folder: the loader finds it
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    Loader(connection, landing).land_feed(feed, progress=False)
    return connection


def test_a_retailers_export_lands_as_the_overrides_say(tmp_path):
    connection = _land(tmp_path, RETAIL_OVERRIDES, "online_retail.csv", RETAIL_FILE)
    landed = connection.execute(
        "select order_id, line_number, customer_ref_normalised, customer_ref_type, ordered_at, "
        "channel, store_id, sku, quantity, unit_price, discount, currency, status, _row_number "
        "from orders.order_lines order by _row_number"
    ).fetchall()
    assert landed == [
        (
            "536365",
            "1",
            "17850",
            "crm_id",
            "2010-12-01T08:26:00",
            "web",
            None,
            "85123A",
            "6",
            "2.55",
            None,
            "GBP",
            "completed",
            2,
        ),
        (
            "536365",
            "2",
            "17850",
            "crm_id",
            "2010-12-01T08:26:00",
            "web",
            None,
            "71053",
            "6",
            "3.39",
            None,
            "GBP",
            "completed",
            3,
        ),
        (
            "536366",
            "1",
            "17850",
            "crm_id",
            "2010-12-01T08:28:00",
            "web",
            None,
            "22633",
            "6",
            "1.85",
            None,
            "GBP",
            "completed",
            4,
        ),
        (
            "536365",
            "3",
            "17850",
            "crm_id",
            "2010-12-01T08:26:00",
            "web",
            None,
            "84406B",
            "8",
            "2.75",
            None,
            "GBP",
            "completed",
            5,
        ),
    ]
    quarantined = connection.execute(
        "select row_number, reason from landing.quarantine order by row_number"
    ).fetchall()
    assert quarantined == [
        (6, "sku 'D' does not match ^[0-9]{5}[A-Z]{0,2}$; quantity -1 is below 1"),
        (
            7,
            "customer_ref 'abc' is not an email, a crm id (^[0-9]{5}$) or a loyalty id "
            "(L + 8 digits); ordered_at '13/31/2010 09:41' is not a valid timestamp (expected "
            "%d/%m/%Y %H:%M); status 'shipped' is not one of completed, refunded, cancelled",
        ),
        (8, "quantity is missing"),
    ]
    # the quarantine keeps the line as the file wrote it, not the values supplied
    (raw,) = connection.execute(
        "select raw_text from landing.quarantine where row_number = 6"
    ).fetchone()
    assert raw == "C536379,D,-1,01/12/2010 09:41,27.50,14527,United Kingdom,C"


def test_a_file_that_has_the_column_keeps_its_own_values(tmp_path):
    overrides = (
        "feeds:\n  consent:\n    columns:\n"
        "      source: {default: signup_form}\n"
        "      status: {values: {Y: granted, N: withdrawn}}\n"
        "identifier_patterns: {crm_id: '^[0-9]{5}$'}\n"
    )
    text = (
        "event_id,subject,purpose,status,recorded_at,source\n"
        "CE000000001,17850,email_marketing,Y,2026-11-01T10:00:00Z,checkout\n"
        "CE000000002,C0000001,email_marketing,N,2026-11-02T10:00:00Z,\n"
    )
    connection = _land(tmp_path, overrides, "consent.csv", text, feed="consent")
    assert connection.execute(
        "select event_id, subject_normalised, subject_type, status, source from consent.events "
        "order by event_id"
    ).fetchall() == [("CE000000001", "17850", "crm_id", "granted", "checkout")]
    assert connection.execute("select row_number, reason from landing.quarantine").fetchall() == [
        (3, "subject 'C0000001' is not an email or a crm id (^[0-9]{5}$); source is missing")
    ]


def test_the_dry_run_says_what_the_overrides_filled_in(tmp_path, capsys):
    path = tmp_path / "online_retail.csv"
    path.write_text(RETAIL_FILE, encoding="utf-8")
    overrides = _overrides(tmp_path, RETAIL_OVERRIDES)
    feed = contracts.load(overrides=overrides)["orders"]
    result = dry_run(path, feed)
    assert (result.rows_read, result.would_load, result.quarantined) == (7, 4, 3)
    assert result.supplied == [
        "status: values mapped: 'Completed' -> completed (4), 'C' -> cancelled (1)",
        "channel: not in the file; default 'web' on 7 rows",
        "store_id: not in the file; default empty on 7 rows",
        "discount: not in the file; default empty on 7 rows",
        "currency: not in the file; default 'GBP' on 7 rows",
        "line_number: not in the file; numbered within each order_id in file order on 7 rows",
    ]
    assert main([str(path), "--feed", "orders", "--overrides", str(overrides)]) == 0
    out = capsys.readouterr().out
    assert "  filled in by the overrides:\n    status: values mapped: 'Completed'" in out
    assert "  ignored columns: Quantity" not in out  # Quantity is quantity, ignoring case
    assert "  ignored columns: Country" in out


def test_a_missing_column_hint_names_default_as_well_as_aliases(tmp_path, capsys):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,line_number\nO000000001,1\n", encoding="utf-8")
    assert main([str(path), "--feed", "orders"]) == 1
    out = capsys.readouterr().out
    assert "feeds: {orders: {columns: {customer_ref: {default: <value>}}}}" in out


def test_the_great_expectations_suite_follows_the_overrides(tmp_path):
    from expectations import suites

    feed = contracts.load(overrides=_overrides(tmp_path, RETAIL_OVERRIDES))["orders"]
    regexes = {
        (e.column, e.regex)
        for e in suites.expectations_for(feed)
        if type(e).__name__ == "ExpectColumnValuesToMatchRegex"
    }
    assert ("order_id", "^C?[0-9]{6}$") in regexes
    assert ("customer_ref_normalised", "^[0-9]{5}$") in regexes
    assert ("order_id", "^O[0-9]{9}$") not in regexes


def test_references_are_classified_by_the_patterns_in_force():
    patterns = {"crm_id": "^[0-9]{5}$", "loyalty_id": "^L[0-9]{8}$"}
    assert classify_reference(" 17850 ", patterns=patterns) == ("17850", "crm_id")
    assert classify_reference("c0012345") == ("C0012345", "crm_id")
    with pytest.raises(InvalidValue) as error:
        classify_reference("C0012345", ("email", "crm_id"), patterns)
    assert str(error.value) == "is not an email or a crm id (^[0-9]{5}$)"
