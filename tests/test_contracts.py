"""The feed contracts: one file, read by the loader, the suites and the docs, kept in sync."""

import pytest
import yaml

from ml.landing import contracts
from ml.landing.contracts import CONTRACTS_FILE, ContractError, outdated, parse


def test_every_feed_lands_in_its_own_schema_with_lineage():
    loaded = contracts.load()
    assert [feed.qualified_table for feed in loaded] == [
        "crm.customers",
        "orders.order_lines",
        "clickstream.events",
        "accounts.accounts",
        "products.items",
        "consent.events",
        "erasure.requests",
    ]
    crm = loaded["crm"]
    assert crm.derived_columns == ("email_normalised", "phone_e164")
    assert crm.landed_columns[-4:] == ("_source_file", "_row_number", "_load_id", "_loaded_at")
    assert loaded["orders"].derived_columns == ("customer_ref_normalised", "customer_ref_type")
    accounts = loaded["accounts"]
    assert (accounts.key, accounts.key_scope) == (("user_id", "updated_at"), "feed")
    assert [c.name for c in accounts.erase_by] == ["user_id", "email"]


def test_generated_dbt_sources_macro_and_docs_are_in_sync():
    assert outdated() == [], "run `make contracts` and commit the result"


def test_the_contracts_page_documents_every_feed_and_column():
    page = contracts.render_markdown(contracts.load())
    assert contracts.CONTRACTS_PAGE in contracts.generated_files(contracts.load())
    assert page.startswith("<!-- Generated from ml/landing/feeds.yml by `make contracts`")
    for feed in contracts.load():
        assert f"## `{feed.name}` → `{feed.qualified_table}`" in page
        for column in feed.columns:
            assert f"| `{column.name}` | {column.type} |" in page
    # the mail providers whose addresses reach one mailbox, from the same file
    assert "| `googlemail.com` | `gmail.com` | yes | yes |" in page
    assert "| `outlook.com` | `outlook.com` | no | yes |" in page


def _document():
    return yaml.safe_load(CONTRACTS_FILE.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["feeds"]["orders"]["columns"][7].update(type="number"),
            "feeds.yml: feed 'orders', column 'quantity': type 'number' is not one of",
        ),
        (
            lambda d: d["feeds"]["orders"].update(key=["order_id", "line"]),
            "feeds.yml: feed 'orders': key column 'line' is not a column",
        ),
        (
            lambda d: d["feeds"]["crm"]["columns"][0].pop("description"),
            "feeds.yml: feed 'crm', column 'crm_id': every column needs a description",
        ),
        (
            lambda d: d["feeds"]["crm"]["columns"][0].update(patern="x"),
            "feeds.yml: feed 'crm', column 'crm_id': unknown field(s) ['patern']",
        ),
        (
            lambda d: d["feeds"]["clickstream"].update(formats={"xlsx": "*.xlsx"}),
            "feeds.yml: feed 'clickstream': format 'xlsx' is not one of",
        ),
    ],
)
def test_a_broken_contract_says_where(change, message):
    document = _document()
    change(document)
    with pytest.raises(ContractError) as error:
        parse(document)
    assert str(error.value).startswith(message)


# --------------------------------------------------------------------------- reading options


def test_a_feed_reads_with_defaults_unless_it_says_otherwise():
    orders = contracts.load()["orders"]
    assert orders.read == contracts.ReadOptions()
    assert (orders.read.delimiter, orders.read.quote, orders.read.codec) == (",", '"', "utf-8")
    assert orders.aliases == {}


def test_text_formats_also_take_their_files_gzip_compressed():
    from pathlib import Path

    orders, clicks = contracts.load()["orders"], contracts.load()["clickstream"]
    assert orders.file_format(Path("orders/orders_2026-11.csv.gz")) == "csv"
    assert clicks.file_format(Path("clickstream/events.jsonl.gz")) == "jsonl"
    assert orders.file_format(Path("orders/store.parquet.gz")) is None
    assert orders.file_format(Path("orders/notes.txt.gz")) is None


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            {"delimter": ";"},
            "feeds.yml: feed 'orders', read: unknown field(s) ['delimter']; known: delimiter,",
        ),
        ({"delimiter": ";;"}, "feeds.yml: feed 'orders', read.delimiter: ';;' is not a single"),
        ({"delimiter": '"'}, "feeds.yml: feed 'orders', read.delimiter: '\"' cannot separate"),
        ({"decimal": ";"}, "feeds.yml: feed 'orders', read.decimal: ';' is not '.' or ','"),
        ({"quote": "''"}, "feeds.yml: feed 'orders', read.quote: \"''\" is not a single character"),
        (
            {"encoding": "ebcdic"},
            "feeds.yml: feed 'orders', read.encoding: 'ebcdic' is not one of utf-8, utf-8-sig, "
            "windows-1252, latin-1",
        ),
        (
            {"date_format": "DD/MM/YYYY"},
            "feeds.yml: feed 'orders', read.date_format: 'DD/MM/YYYY' is not a format such as",
        ),
        ("semicolon", "feeds.yml: feed 'orders', read: write it as a mapping"),
    ],
)
def test_broken_reading_options_say_where(read, message):
    document = _document()
    document["feeds"]["orders"]["read"] = read
    with pytest.raises(ContractError) as error:
        parse(document)
    assert str(error.value).startswith(message)


def test_reading_options_accept_other_spellings_of_an_encoding_and_no_quote():
    document = _document()
    document["feeds"]["orders"]["read"] = {"encoding": "CP1252", "quote": "", "delimiter": "\t"}
    read = parse(document)["orders"].read
    assert (read.encoding, read.codec, read.quote, read.delimiter) == (
        "windows-1252",
        "cp1252",
        None,
        "\t",
    )


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        ({"customer": ["Customer ID"]}, "feeds.yml: feed 'orders', aliases: 'customer' is not a"),
        ({"customer_ref": [""]}, "feeds.yml: feed 'orders', aliases.customer_ref: write the"),
        (["Customer ID"], "feeds.yml: feed 'orders', aliases: write it as {<column>:"),
    ],
)
def test_broken_aliases_say_where(aliases, message):
    document = _document()
    document["feeds"]["orders"]["aliases"] = aliases
    with pytest.raises(ContractError) as error:
        parse(document)
    assert str(error.value).startswith(message)


def test_a_local_file_sets_how_files_are_read_over_the_contract(tmp_path):
    local = tmp_path / "feeds.local.yml"
    local.write_text(
        "feeds:\n"
        "  orders:\n"
        "    read: {delimiter: ';', decimal: ',', encoding: windows-1252}\n"
        "    aliases: {customer_ref: [Customer ID, cust_email], order_id: Order}\n"
        "    formats: {csv: '*.txt'}\n",
        encoding="utf-8",
    )
    merged = contracts.load(overrides=local)
    orders = merged["orders"]
    assert (orders.read.delimiter, orders.read.decimal, orders.read.encoding) == (
        ";",
        ",",
        "windows-1252",
    )
    assert orders.read.quote == '"'  # what the local file does not set stays
    assert orders.aliases == {"customer_ref": ("Customer ID", "cust_email"), "order_id": ("Order",)}
    assert orders.formats == {"csv": "*.txt", "parquet": "*.parquet"}
    assert orders.columns == contracts.load()["orders"].columns
    assert merged["crm"] == contracts.load()["crm"]


def test_the_local_file_is_found_beside_the_landing_folder_or_named(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    assert contracts.overrides_file(landing) is None
    (tmp_path / "feeds.local.yml").write_text("feeds: {}\n")
    assert contracts.overrides_file(landing) == tmp_path / "feeds.local.yml"
    with pytest.raises(ContractError) as error:
        contracts.overrides_file(landing, tmp_path / "mine.yml")
    assert str(error.value) == f"{tmp_path / 'mine.yml'}: no such file (set by $TEAL_FEEDS)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "feeds:\n  orders:\n    key: [order_id]\n",
            "feeds.local.yml: feed 'orders': cannot set ['key']; a local file sets only "
            "read, aliases, formats, columns (the key and the list of columns stay in "
            "ml/landing/feeds.yml)",
        ),
        (
            "feeds:\n  invoices:\n    read: {delimiter: ';'}\n",
            "feeds.local.yml: feed 'invoices' is not in ml/landing/feeds.yml (feeds: crm,",
        ),
        (
            "orders:\n  read: {delimiter: ';'}\n",
            "feeds.local.yml: expected `feeds:` with, per feed, any of read, aliases, formats, "
            "columns (and, optionally, `identifier_patterns:`)",
        ),
        (
            "feeds:\n  orders:\n    read: {encoding: utf-16}\n",
            "feeds.local.yml: feed 'orders', read.encoding: 'utf-16' is not one of",
        ),
    ],
)
def test_a_broken_local_file_says_where(tmp_path, text, message):
    local = tmp_path / "feeds.local.yml"
    local.write_text(text, encoding="utf-8")
    with pytest.raises(ContractError) as error:
        contracts.load(overrides=local)
    assert str(error.value).startswith(message.replace("feeds.local.yml", str(local), 1))
