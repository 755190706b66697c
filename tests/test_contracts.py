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
        "products.items",
        "consent.events",
        "erasure.requests",
    ]
    crm = loaded["crm"]
    assert crm.derived_columns == ("email_normalised", "phone_e164")
    assert crm.landed_columns[-4:] == ("_source_file", "_row_number", "_load_id", "_loaded_at")
    assert loaded["orders"].derived_columns == ("customer_ref_normalised", "customer_ref_type")


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
