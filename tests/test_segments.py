"""Rule-based segments (ml/segments): validation messages, membership on a hand-made warehouse,
history and sizes across runs, static segments, and values that must stay data."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ml.segments import (
    SEGMENTS_DIR,
    Catalogue,
    CatalogueError,
    SegmentValidationError,
    compile_segment,
    evaluate_segments,
    load_catalogue,
    load_segments,
    run_segments,
    segment_members,
)
from ml.segments.__main__ import main as cli
from ml.segments.catalogue import DEFAULT_CATALOGUE

FIXTURE_CATALOGUE = Path(__file__).parent / "fixtures" / "segments_catalogue.yml"
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)
AS_OF = datetime(2026, 11, 20, 12, 0)  # the cutoff of the membership fixture
HEADER = """\
name: test_segment
description: Customers for a test.
owner: crm-team@teal.example
type: {type}
consent_purpose: email_marketing
rules:
"""


def segment_file(folder: Path, rules: str, name: str = "test.yml", type: str = "dynamic") -> Path:
    """A one-segment file `test_segment` with `rules` (YAML, indented under `rules:`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
    path.write_text(HEADER.format(type=type) + body + "\n", encoding="utf-8")
    return path


def one_segment(folder: Path, rules: str, type: str = "dynamic"):
    return load_segments([segment_file(folder, rules, type=type)], CATALOGUE)[0]


def problems(path: Path) -> list[str]:
    with pytest.raises(SegmentValidationError) as caught:
        load_segments(path, CATALOGUE)
    return caught.value.messages()


# --- the fixture warehouse ----------------------------------------------------------------------

PRODUCTS = [
    # product_id, level 1, level 2, level 3, category_name, is_in_latest_snapshot
    ("SKU-000001", "Women", "Shoes", "Trainers", "Trainers", True),
    ("SKU-000002", "Men", "Shoes", "Boots", "Boots", True),
    ("SKU-000003", "Home", "Kitchen", None, "Kitchen", True),
    # an older row of the same product: only the latest-snapshot row counts
    ("SKU-000003", "Women", "Shoes", None, "Shoes", False),
]


def at(**delta: float) -> datetime:
    """AS_OF minus a delta, e.g. at(hours=2) is two hours before the cutoff."""
    return AS_OF - timedelta(**delta)


def build_warehouse(path: Path, customers: dict[str, dict], events: list[tuple]) -> None:
    """Attribute table with every catalogue column, events and products, in a DuckDB file."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts; create schema staging")
        columns = ", ".join(f"{f.name} {f.data_type}" for f in CATALOGUE.fields.values())
        connection.execute(f"create table marts.dim_customer_attributes ({columns})")
        for customer_id, values in customers.items():
            names = ["customer_id", *values]
            connection.execute(
                f"insert into marts.dim_customer_attributes ({', '.join(names)}) "
                f"values ({', '.join('?' for _ in names)})",
                [customer_id, *values.values()],
            )
        connection.execute(
            "create table marts.fct_clickstream_events (customer_id varchar, event_type "
            "varchar, occurred_at timestamp, product_id varchar, page_url varchar)"
        )
        if events:
            connection.executemany(
                "insert into marts.fct_clickstream_events values (?, ?, ?, ?, ?)", events
            )
        connection.execute(
            "create table staging.stg_products__products (product_id varchar, category_level_1 "
            "varchar, category_level_2 varchar, category_level_3 varchar, category_name varchar, "
            "is_in_latest_snapshot boolean)"
        )
        connection.executemany(
            "insert into staging.stg_products__products values (?, ?, ?, ?, ?, ?)", PRODUCTS
        )


def views(customer: str, product: str | None, *moments: datetime) -> list[tuple]:
    url = f"https://shop.teal.example/p/{product}" if product else "https://shop.teal.example/"
    return [(customer, "product_view", moment, product, url) for moment in moments]


CUSTOMERS = {
    # high intent (aged 30-45, same product viewed 3 times in the last 48 hours)
    "cus_intent": {"age_years": 35},
    "cus_intent_edge": {"age_years": 30},  # one view exactly 48 hours before as_of
    "cus_intent_late": {"age_years": 45},  # one view 48 hours and a second before
    "cus_intent_old": {"age_years": 46},
    "cus_intent_spread": {"age_years": 40},  # three views, three products
    "cus_intent_future": {"age_years": 40},  # third view at as_of itself: not before it
    # the same product more than twice within 10 minutes
    "cus_burst": {"age_years": 20},
    "cus_slow": {"age_years": 20},
    "cus_mixed": {"age_years": 20},
    # cart abandoners of the last 24 hours
    "cus_cart": {},
    "cus_cart_bought": {},
    "cus_cart_old": {},
    "cus_cart_bought_before": {},
    # field conditions
    "cus_at_risk": {
        "rfm_segment": "At Risk",
        "m_score": 5,
        "region": "London",
        "orders_30d": 4,
        "last_order_at": datetime(2026, 11, 1),
    },
    "cus_cant_lose": {
        "rfm_segment": "Can't Lose Them",
        "m_score": 5,
        "region": "Wales",
        # predictions: top CLV decile and an even chance of churning (the boundary is in)
        "clv_decile": 1,
        "churn_risk": 0.5,
        "purchase_propensity_decile": 3,
    },
    "cus_at_risk_low": {
        "rfm_segment": "At Risk",
        "m_score": 4,
        "region": "London",
        "orders_30d": 3,
        "clv_decile": 3,  # high churn risk, but not in the top fifth of value
        "churn_risk": 0.9,
        "purchase_propensity_decile": 2,
    },
    "cus_champion": {
        "rfm_segment": "Champions",
        "m_score": 5,
        "region": "Scotland",
        "last_order_at": datetime(2026, 10, 31, 23, 59),
        "clv_decile": 2,  # valuable and unlikely to churn
        "churn_risk": 0.49,
        "purchase_propensity_decile": 1,
    },
}
EVENTS = [
    *views("cus_intent", "SKU-000001", at(hours=47), at(hours=20), at(minutes=5)),
    *views("cus_intent_edge", "SKU-000001", at(hours=48), at(hours=30), at(hours=1)),
    *views("cus_intent_late", "SKU-000001", at(hours=48, seconds=1), at(hours=30), at(hours=1)),
    *views("cus_intent_old", "SKU-000001", at(hours=10), at(hours=9), at(hours=8)),
    *views("cus_intent_spread", "SKU-000001", at(hours=10)),
    *views("cus_intent_spread", "SKU-000002", at(hours=9)),
    *views("cus_intent_spread", "SKU-000003", at(hours=8)),
    *views("cus_intent_future", "SKU-000001", at(hours=10), at(hours=9), AS_OF),
    # 0, 4 and 10 minutes: three views of one product inside 10 minutes
    *views("cus_burst", "SKU-000002", at(days=5), at(days=5, minutes=-4), at(days=5, minutes=-10)),
    # 0, 5 and 11 minutes: the first and third are 11 minutes apart
    *views("cus_slow", "SKU-000002", at(days=5), at(days=5, minutes=-5), at(days=5, minutes=-11)),
    # three views within 3 minutes, but of two products
    *views("cus_mixed", "SKU-000002", at(days=5), at(days=5, minutes=-1)),
    *views("cus_mixed", "SKU-000001", at(days=5, minutes=-3)),
    ("cus_cart", "add_to_cart", at(hours=2), "SKU-000003", "https://shop.teal.example/cart"),
    ("cus_cart_bought", "add_to_cart", at(hours=2), "SKU-000003", None),
    ("cus_cart_bought", "purchase", at(hours=1), None, "https://shop.teal.example/checkout/done"),
    ("cus_cart_old", "add_to_cart", at(hours=25), "SKU-000003", None),
    ("cus_cart_bought_before", "add_to_cart", at(hours=2), "SKU-000001", None),
    ("cus_cart_bought_before", "purchase", at(hours=30), None, None),
    # anonymous events never count (nor spoil `at_most`, which excludes those who reach k + 1)
    (None, "add_to_cart", at(hours=2), "SKU-000003", None),
    (None, "purchase", at(hours=2), None, None),
]


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path, CUSTOMERS, EVENTS)
    connection = duckdb.connect(str(path))
    yield connection
    connection.close()


# --- validation: each kind of mistake, with its exact message -------------------------------------

CASES = {
    "unknown field": (
        """
        field: agee_years
        operator: ">="
        value: 30
        """,
        "rules: unknown field 'agee_years' (did you mean 'age_years'?); use a column of "
        f"dim_customer_attributes listed in {FIXTURE_CATALOGUE}",
    ),
    "text for a number": (
        """
        field: age_years
        operator: ">="
        value: "30"
        """,
        "rules: field 'age_years' holds numbers (integer); '30' is text; write a number "
        "without quotes, e.g. 30",
    ),
    "number for text": (
        """
        field: rfm_code
        operator: "="
        value: 545
        """,
        "rules: field 'rfm_code' holds text (varchar); 545 is a number; write it in quotes",
    ),
    "text for a boolean": (
        """
        field: is_outlier
        operator: "="
        value: "yes"
        """,
        "rules: field 'is_outlier' holds true/false (boolean); 'yes' is text; write true or "
        "false without quotes",
    ),
    "bad timestamp": (
        """
        field: last_order_at
        operator: ">="
        value: 20/11/2026
        """,
        "rules: field 'last_order_at' holds timestamps (timestamp); '20/11/2026' is not a "
        "timestamp; write 'YYYY-MM-DD HH:MM:SS' (UTC) or a date",
    ),
    "unknown operator": (
        """
        field: age_years
        operator: "=>"
        value: 30
        """,
        "rules: field 'age_years': unknown operator '=>' (did you mean '>='?); use one of =, "
        "!=, <, <=, >, >=, in, not in, between, is null, is not null (quoted)",
    ),
    "operator not for text": (
        """
        field: region
        operator: "<"
        value: London
        """,
        "rules: field 'region' holds text; operator '<' does not apply to it (use =, !=, in, "
        "not in, is null, is not null)",
    ),
    "between the wrong way round": (
        """
        field: age_years
        operator: between
        value: [45, 30]
        """,
        "rules: field 'age_years': between [45, 30] has low above high; write [30, 45]",
    ),
    "between with one value": (
        """
        field: age_years
        operator: between
        value: 30
        """,
        "rules: field 'age_years': 'between' needs a list of two values [low, high], got 30",
    ),
    "in with an empty list": (
        """
        field: rfm_segment
        operator: in
        value: []
        """,
        "rules: field 'rfm_segment': 'in' needs a non-empty list of values, e.g. [a, b], got []",
    ),
    "is null with a value": (
        """
        field: region
        operator: is null
        value: London
        """,
        "rules: field 'region': operator 'is null' takes no value; remove `value`",
    ),
    "comparison without a value": (
        """
        field: age_years
        operator: ">"
        """,
        "rules: field 'age_years': operator '>' needs a value",
    ),
    "malformed window": (
        """
        all:
          - field: age_years
            operator: ">="
            value: 30
          - behaviour:
              event: product_view
              at_least: 3
              in_the_last: 48 hrs
        """,
        "rules.all[1].behaviour.in_the_last: '48 hrs' is not a window; write a whole number "
        "and minutes, hours or days, e.g. '48 hours'",
    ),
    "empty window": (
        """
        behaviour:
          event: product_view
          at_least: 3
          within: 0 minutes
        """,
        "rules.behaviour.within: '0 minutes' is an empty window; use at least 1 minute",
    ),
    "unknown event type": (
        """
        behaviour:
          event: product_views
          at_least: 3
        """,
        "rules.behaviour.event: unknown event type 'product_views' (did you mean "
        "'product_view'?); use one of page_view, product_view, search, add_to_cart, "
        "remove_from_cart, checkout_start, purchase, login, email_open, email_click",
    ),
    "both at_least and at_most": (
        """
        behaviour:
          event: purchase
          at_least: 1
          at_most: 3
        """,
        "rules.behaviour: give exactly one of at_least and at_most (how many events count)",
    ),
    "count in words": (
        """
        behaviour:
          event: purchase
          at_least: three
        """,
        "rules.behaviour.at_least: expected a whole number of at least 1, got 'three'",
    ),
    "bad category path": (
        """
        behaviour:
          event: product_view
          at_least: 1
          category: "Women >"
        """,
        "rules.behaviour.category: 'Women >' is not a category path; write up to 4 levels "
        "separated by '>', e.g. 'Women > Shoes'",
    ),
    "unknown key in a behaviour": (
        """
        behaviour:
          event: product_view
          at_least: 1
          in_the_lst: 2 days
        """,
        "rules.behaviour: unknown key 'in_the_lst' (did you mean 'in_the_last'?); a behaviour "
        "has event, at_least or at_most, and optionally in_the_last, within, same_product, "
        "product, category and url_contains",
    ),
    "unknown key in a condition": (
        """
        field: age_years
        operator: ">="
        valu: 30
        """,
        "rules: unknown key 'valu' (did you mean 'value'?); a field condition has field, "
        "operator and value",
    ),
    "unknown rule key": (
        """
        every:
          - field: age_years
            operator: ">="
            value: 30
        """,
        "rules: unknown key 'every'; a rule starts with all, any, not, field or behaviour",
    ),
    "empty all": (
        """
        all: []
        """,
        "rules.all: all needs a list of at least one condition (`- field: ...`)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_errors_name_file_segment_and_field(tmp_path: Path, case: str) -> None:
    rules, problem = CASES[case]
    path = segment_file(tmp_path, rules)
    assert problems(path) == [f"{path}: segment 'test_segment': {problem}"]


def test_segment_key_errors(tmp_path: Path) -> None:
    rules = 'field: age_years\noperator: ">="\nvalue: 30\n'
    cases = {
        "owner: crm-team@teal.example": (
            "onwer: crm-team@teal.example",
            "unknown key 'onwer' (did you mean 'owner'?); a segment has name, description, "
            "owner, type, consent_purpose, rules",
        ),
        "description: Customers for a test.": (
            "description: ''",
            "missing 'description'; every segment needs name, description, owner, type, "
            "consent_purpose, rules",
        ),
        "consent_purpose: email_marketing": (
            "consent_purpose: marketing",
            "consent_purpose 'marketing' (did you mean 'email_marketing'?) is not one of "
            "email_marketing, ads_personalization, analytics",
        ),
        "type: dynamic": (
            "type: weekly",
            "type 'weekly' is not static or dynamic (dynamic: recomputed every run; static: "
            "frozen when first built)",
        ),
        "owner: crm-team@teal.example\n": (
            "owner: the CRM team\n",
            "owner 'the CRM team' is not an email address; name the team that answers for "
            "the segment (e.g. 'crm-team@teal.example')",
        ),
    }
    for number, (good, (bad, problem)) in enumerate(cases.items()):
        path = segment_file(tmp_path, rules, name=f"case{number}.yml")
        path.write_text(path.read_text().replace(good, bad, 1))
        assert problems(path) == [f"{path}: segment 'test_segment': {problem}"], bad
    path = segment_file(tmp_path, rules, name="slug.yml")
    path.write_text(path.read_text().replace("name: test_segment", "name: Test Segment"))
    assert problems(path) == [
        f"{path}: segment 'Test Segment': name 'Test Segment' is not a slug; use lower-case "
        "letters, digits and underscores, starting with a letter (e.g. 'cart_abandoners_24h')"
    ]


def test_duplicate_names_and_every_broken_file_reported(tmp_path: Path) -> None:
    rules = 'field: age_years\noperator: ">="\nvalue: 30\n'
    first = segment_file(tmp_path, rules, name="a.yml")
    second = segment_file(tmp_path, rules, name="b.yml")
    broken = segment_file(tmp_path, rules.replace("age_years", "age"), name="c.yml")
    messages = problems(tmp_path)
    assert messages == [
        f"{second}: segment 'test_segment': name already used in {first}; segment names must "
        "be unique",
        f"{broken}: segment 'test_segment': rules: unknown field 'age' (did you mean "
        f"'age_years' or 'age_band'?); use a column of dim_customer_attributes listed in {FIXTURE_CATALOGUE}",
    ]


def test_yaml_mistakes_are_explained(tmp_path: Path) -> None:
    unquoted = segment_file(tmp_path, "field: age_years\noperator: >=\nvalue: 30\n", "a.yml")
    [message] = problems(unquoted)
    # the file, the place and the problem, and what to do
    assert message == (
        f"{unquoted}: line 8, column 14: is not valid YAML: expected chomping or indentation "
        "indicators, but found '='; quote operators such as '>=' and '!=', and text holding a "
        "colon"
    )
    twice = segment_file(tmp_path, "field: age_years\noperator: '>'\nvalue: 3\nvalue: 4\n", "b.yml")
    [message] = problems(twice)
    assert "key 'value' is given twice in one mapping" in message
    # a bare `=` is read as the operator, not as YAML's obscure `value` tag
    bare = segment_file(tmp_path, "field: region\noperator: =\nvalue: London\n", "c.yml")
    [segment] = load_segments([bare], CATALOGUE)
    assert segment.rules.operator == "="


def test_catalogue_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"column 'x; drop table y': .* lower-case names"):
        Catalogue.from_columns({"x; drop table y": "varchar"})
    path = tmp_path / "models.yml"
    path.write_text(
        "version: 2\nmodels:\n  - name: dim_customer_attributes\n    columns:\n"
        "      - name: age_years\n        data_type: integer\n"
        "      - name: tags\n        data_type: varchar[]\n"
    )
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert str(caught.value) == (
        f"{path}: model dim_customer_attributes, column 'tags': data_type 'varchar[]' is not one "
        "segments understand; use an integer, double, decimal, varchar, boolean, date or "
        "timestamp type"
    )
    assert {f.name: f.kind for f in CATALOGUE.fields.values()}["cluster_label"] == "text"
    kinds = {CATALOGUE.fields[n].kind for n in ("age_years", "refund_rate", "is_outlier")}
    assert kinds == {"number", "boolean"}


# --- shipped segment files -------------------------------------------------------------------------


def test_shipped_segments_validate_against_the_fixture_catalogue() -> None:
    segments = load_segments(SEGMENTS_DIR, CATALOGUE)
    names = {segment.name for segment in segments}
    assert len(segments) >= 8
    assert {
        "high_intent_shoppers_30_45",
        "cart_abandoners_24h",
        "repeat_product_viewers_10m",
        "high_value_at_risk",
        "new_customers_30d",
        "lapsed_180d",
        "london_frequent_buyers_30d",
    } <= names
    assert any(s.is_static for s in segments)


@pytest.mark.skipif(not DEFAULT_CATALOGUE.exists(), reason="the audiences yml is not written yet")
def test_shipped_segments_validate_against_the_real_catalogue() -> None:
    assert load_segments(SEGMENTS_DIR, load_catalogue())


def test_shipped_segments_run_on_the_fixture(warehouse: duckdb.DuckDBPyConnection) -> None:
    segments = {s.name: s for s in load_segments(SEGMENTS_DIR, CATALOGUE)}
    counts = evaluate_segments(warehouse, list(segments.values()), AS_OF)
    assert set(counts) == set(segments)
    members = {name: segment_members(warehouse, segments[name], AS_OF) for name in segments}
    assert members["high_intent_shoppers_30_45"] == ["cus_intent", "cus_intent_edge"]
    assert members["cart_abandoners_24h"] == ["cus_cart", "cus_cart_bought_before"]
    assert members["repeat_product_viewers_10m"] == ["cus_burst"]
    assert members["high_value_at_risk"] == ["cus_at_risk", "cus_cant_lose"]
    assert members["london_frequent_buyers_30d"] == ["cus_at_risk"]
    # predictions: customers never scored (null deciles) are in neither
    assert members["likely_buyers_this_month"] == ["cus_at_risk_low", "cus_champion"]
    assert members["high_value_at_risk_predicted"] == ["cus_cant_lose"]


# --- membership ------------------------------------------------------------------------------------


def test_field_conditions(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    at_risk = one_segment(
        tmp_path / "a",
        """
        all:
          - field: rfm_segment
            operator: in
            value: ["At Risk", "Can't Lose Them"]
          - field: m_score
            operator: "="
            value: 5
        """,
    )
    assert segment_members(warehouse, at_risk, AS_OF) == ["cus_at_risk", "cus_cant_lose"]
    # a condition on a missing value is false: != leaves out unknown regions, `not` takes them in
    other = one_segment(tmp_path / "b", 'field: region\noperator: "!="\nvalue: London\n')
    assert segment_members(warehouse, other, AS_OF) == ["cus_cant_lose", "cus_champion"]
    not_london = one_segment(
        tmp_path / "c", 'not:\n  field: region\n  operator: "="\n  value: London\n'
    )
    everyone_else = sorted(set(CUSTOMERS) - {"cus_at_risk", "cus_at_risk_low"})
    assert segment_members(warehouse, not_london, AS_OF) == everyone_else
    either = one_segment(
        tmp_path / "d",
        """
        any:
          - field: orders_30d
            operator: between
            value: [3, 3]
          - field: region
            operator: not in
            value: [London, Wales]
        """,
    )
    assert segment_members(warehouse, either, AS_OF) == ["cus_at_risk_low", "cus_champion"]
    # a bare date for a timestamp field is midnight UTC
    since = one_segment(tmp_path / "e", 'field: last_order_at\noperator: ">="\nvalue: 2026-11-01\n')
    assert since.rules.value == datetime(2026, 11, 1)
    assert segment_members(warehouse, since, AS_OF) == ["cus_at_risk"]


def test_lookback_and_same_product(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    rules = """
    all:
      - field: age_years
        operator: between
        value: [30, 45]
      - behaviour:
          event: product_view
          at_least: 3
          same_product: {same}
          in_the_last: 48 hours
    """
    same = one_segment(tmp_path / "a", rules.format(same="true"))
    # the 48-hour boundary is inclusive; an event at as_of itself is not before it
    assert segment_members(warehouse, same, AS_OF) == ["cus_intent", "cus_intent_edge"]
    any_product = one_segment(tmp_path / "b", rules.format(same="false"))
    assert segment_members(warehouse, any_product, AS_OF) == [
        "cus_intent",
        "cus_intent_edge",
        "cus_intent_spread",
    ]


def test_within_is_a_sliding_window(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    rules = """
    behaviour:
      event: product_view
      at_least: 3
      same_product: {same}
      within: {span}
    """
    ten = one_segment(tmp_path / "a", rules.format(same="true", span="10 minutes"))
    assert segment_members(warehouse, ten, AS_OF) == ["cus_burst"]
    eleven = one_segment(tmp_path / "b", rules.format(same="true", span="11 minutes"))
    assert segment_members(warehouse, eleven, AS_OF) == ["cus_burst", "cus_slow"]
    any_product = one_segment(tmp_path / "c", rules.format(same="false", span="10 minutes"))
    assert segment_members(warehouse, any_product, AS_OF) == ["cus_burst", "cus_mixed"]
    # an event at as_of itself is not before it: cus_intent_future has two views, not three
    hour = one_segment(tmp_path / "d", rules.format(same="true", span="2 hours"))
    assert segment_members(warehouse, hour, AS_OF) == [
        "cus_burst",
        "cus_intent_old",
        "cus_slow",
    ]


def test_at_most_and_filters(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    abandoners = one_segment(
        tmp_path / "a",
        """
        all:
          - behaviour:
              event: add_to_cart
              at_least: 1
              in_the_last: 24 hours
          - behaviour:
              event: purchase
              at_most: 0
              in_the_last: 24 hours
        """,
    )
    assert segment_members(warehouse, abandoners, AS_OF) == ["cus_cart", "cus_cart_bought_before"]
    # at_most includes customers with no events at all
    few_views = one_segment(
        tmp_path / "b",
        """
        all:
          - field: age_years
            operator: is not null
          - behaviour:
              event: product_view
              at_most: 2
        """,
    )
    assert segment_members(warehouse, few_views, AS_OF) == ["cus_intent_future"]
    womens_shoes = one_segment(
        tmp_path / "c",
        """
        behaviour:
          event: [product_view, add_to_cart]
          at_least: 1
          category: women > shoes
          in_the_last: 7 days
        """,
    )
    # SKU-000001 is Women > Shoes; SKU-000003 was once, but its latest snapshot says Kitchen
    assert segment_members(warehouse, womens_shoes, AS_OF) == [
        "cus_cart_bought_before",
        "cus_intent",
        "cus_intent_edge",
        "cus_intent_future",
        "cus_intent_late",
        "cus_intent_old",
        "cus_intent_spread",
        "cus_mixed",
    ]
    checkout = one_segment(
        tmp_path / "d",
        """
        behaviour:
          event: purchase
          at_least: 1
          url_contains: /CHECKOUT/
        """,
    )
    assert segment_members(warehouse, checkout, AS_OF) == ["cus_cart_bought"]
    one_product = one_segment(
        tmp_path / "e",
        """
        behaviour:
          event: product_view
          at_least: 2
          product: [SKU-000002]
        """,
    )
    assert segment_members(warehouse, one_product, AS_OF) == ["cus_burst", "cus_mixed", "cus_slow"]


def test_malicious_values_stay_data(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    evil = "x'; drop table marts.dim_customer_attributes; --"
    warehouse.execute(
        "insert into marts.dim_customer_attributes (customer_id, region) values ('cus_evil', ?)",
        [evil],
    )
    warehouse.execute(
        "insert into marts.fct_clickstream_events values ('cus_evil', 'page_view', ?, ?, ?)",
        [at(hours=1), evil, f"https://shop.teal.example/{evil}"],
    )
    segment = one_segment(
        tmp_path,
        f"""
        any:
          - field: region
            operator: "="
            value: "{evil}"
          - behaviour:
              event: page_view
              at_least: 1
              product: "{evil}"
              url_contains: '"); drop table marts.fct_clickstream_events; --'
              category: "Women' or '1'='1"
        """,
    )
    compiled = compile_segment(segment)
    assert "drop table" not in compiled.sql and "1'='1" not in compiled.sql
    assert evil in compiled.parameters.values()
    assert segment_members(warehouse, segment, AS_OF) == ["cus_evil"]
    runs = run_segments(warehouse, [segment], AS_OF)
    assert runs[0].members == 1
    tables = warehouse.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema in ('marts', 'staging') order by 1"
    ).fetchall()
    assert tables == [
        ("marts.dim_customer_attributes",),
        ("marts.fct_clickstream_events",),
        ("staging.stg_products__products",),
    ]
    assert warehouse.execute("select count(*) from marts.dim_customer_attributes").fetchone() == (
        len(CUSTOMERS) + 1,
    )


# --- history, sizes, static segments -----------------------------------------------------------------

DAY_1, DAY_2, DAY_3 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)
T_1, T_2, T_3 = datetime(2026, 11, 19), datetime(2026, 11, 20), datetime(2026, 11, 21)
BUYERS = """
field: orders_30d
operator: ">"
value: 3
"""


def history_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    customers = {
        "cus_a": {"orders_30d": 5},
        "cus_b": {"orders_30d": 4},
        "cus_c": {"orders_30d": 1},
        "cus_d": {"orders_30d": None},
    }
    build_warehouse(path, customers, [])
    return duckdb.connect(str(path))


def set_orders(connection: duckdb.DuckDBPyConnection, **orders: int) -> None:
    for customer, count in orders.items():
        connection.execute(
            "update marts.dim_customer_attributes set orders_30d = ? where customer_id = ?",
            [count, customer],
        )


def memberships(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    return connection.execute(
        "select segment_name, customer_id, valid_from, valid_to from segments.segment_memberships "
        "order by segment_name, customer_id, valid_from"
    ).fetchall()


def sizes(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    return connection.execute(
        "select segment_name, snapshot_date, members, entered, exited from segments.segment_sizes "
        "order by segment_name, snapshot_date"
    ).fetchall()


def test_history_after_runs_where_people_enter_and_leave(tmp_path: Path) -> None:
    connection = history_warehouse(tmp_path / "w.duckdb")
    segment = one_segment(tmp_path / "s", BUYERS)
    [first] = run_segments(connection, [segment], "2026-11-18")
    assert (first.snapshot_date, first.as_of_at, first.members, first.entered, first.exited) == (
        DAY_1,
        T_1,
        2,
        2,
        0,
    )
    set_orders(connection, cus_b=2, cus_c=7)  # b leaves, c enters
    run_segments(connection, [segment], "2026-11-19")
    assert memberships(connection) == [
        ("test_segment", "cus_a", T_1, None),
        ("test_segment", "cus_b", T_1, T_2),
        ("test_segment", "cus_c", T_2, None),
    ]
    set_orders(connection, cus_b=9, cus_a=0)  # b comes back (a second row), a leaves
    # as_of given as the cutoff itself, with the day it describes
    run_segments(connection, [segment], datetime(2026, 11, 21), snapshot_date=DAY_3)
    assert memberships(connection) == [
        ("test_segment", "cus_a", T_1, T_3),
        ("test_segment", "cus_b", T_1, T_2),
        ("test_segment", "cus_b", T_3, None),
        ("test_segment", "cus_c", T_2, None),
    ]
    assert sizes(connection) == [
        ("test_segment", DAY_1, 2, 2, 0),
        ("test_segment", DAY_2, 2, 1, 1),
        ("test_segment", DAY_3, 2, 1, 1),
    ]


def test_rerunning_a_day_replaces_it(tmp_path: Path) -> None:
    connection = history_warehouse(tmp_path / "w.duckdb")
    segment = one_segment(tmp_path / "s", BUYERS)
    run_segments(connection, [segment], "2026-11-18")
    set_orders(connection, cus_b=2, cus_c=7)
    run_segments(connection, [segment], "2026-11-19")
    # the same day again, later and with other data: b stays after all, c does not enter
    set_orders(connection, cus_b=4, cus_c=1)
    [rerun] = run_segments(connection, [segment], "2026-11-19 18:00")
    assert (rerun.members, rerun.entered, rerun.exited) == (2, 0, 0)
    assert memberships(connection) == [
        ("test_segment", "cus_a", T_1, None),
        ("test_segment", "cus_b", T_1, None),
    ]
    assert sizes(connection) == [
        ("test_segment", DAY_1, 2, 2, 0),
        ("test_segment", DAY_2, 2, 0, 0),
    ]
    # and an identical rerun of the same day changes nothing
    run_segments(connection, [segment], "2026-11-19 18:00")
    assert sizes(connection)[-1] == ("test_segment", DAY_2, 2, 0, 0)
    with pytest.raises(ValueError, match="was last run for 2026-11-19; a run for 2026-11-18"):
        run_segments(connection, [segment], "2026-11-18")
    assert len(memberships(connection)) == 2  # the refused run wrote nothing


def test_static_segment_is_frozen(tmp_path: Path) -> None:
    connection = history_warehouse(tmp_path / "w.duckdb")
    static = one_segment(tmp_path / "s", BUYERS, type="static")
    [built] = run_segments(connection, [static], "2026-11-18")
    assert (built.members, built.entered, built.recomputed, built.frozen_at) == (2, 2, True, T_1)
    set_orders(connection, cus_b=0, cus_c=8)  # the rules now say a and c
    [kept] = run_segments(connection, [static], "2026-11-19")
    assert (kept.members, kept.entered, kept.exited, kept.recomputed) == (2, 0, 0, False)
    assert not kept.definition_changed and kept.warning is None
    assert memberships(connection) == [
        ("test_segment", "cus_a", T_1, None),
        ("test_segment", "cus_b", T_1, None),
    ]
    # new rules in the file: reported, not applied
    changed = one_segment(tmp_path / "s2", BUYERS.replace("value: 3", "value: 0"), type="static")
    [reported] = run_segments(connection, [changed], "2026-11-20")
    assert reported.definition_changed and reported.members == 2
    assert reported.warning == (
        f"static segment 'test_segment' ({changed.file}): the rules changed since it was frozen "
        "on 2026-11-19 00:00; its members are kept as frozen and the frozen definition stays in "
        "segments.segment_definitions. To apply the new rules, rebuild it (rebuild_static) or "
        "give them a new segment name."
    )
    stored = connection.execute(
        "select definition_hash, frozen_at from segments.segment_definitions"
    ).fetchall()
    assert stored == [(static.definition_hash, T_1)]
    # a customer gone from the attribute table (erased) leaves even a static segment
    connection.execute("delete from marts.dim_customer_attributes where customer_id = 'cus_b'")
    [erased] = run_segments(connection, [changed], "2026-11-21")
    assert (erased.members, erased.exited) == (1, 1)
    # rebuilding applies the new rules (orders_30d > 0: a and c) and freezes again
    [rebuilt] = run_segments(connection, [changed], "2026-11-22", rebuild_static=["test_segment"])
    assert (rebuilt.members, rebuilt.entered, rebuilt.exited) == (2, 1, 0)
    assert rebuilt.frozen_at == datetime(2026, 11, 23) and not rebuilt.definition_changed
    assert connection.execute(
        "select definition_hash from segments.segment_definitions"
    ).fetchall() == [(changed.definition_hash,)]


def test_rerunning_the_day_a_static_segment_was_built_rebuilds_it(tmp_path: Path) -> None:
    connection = history_warehouse(tmp_path / "w.duckdb")
    static = one_segment(tmp_path / "s", BUYERS, type="static")
    run_segments(connection, [static], "2026-11-18")
    set_orders(connection, cus_b=0, cus_c=8)
    [rebuilt] = run_segments(connection, [static], "2026-11-18 20:00")
    assert (rebuilt.members, rebuilt.entered, rebuilt.recomputed) == (2, 2, True)
    assert rebuilt.frozen_at == datetime(2026, 11, 18, 20)
    assert memberships(connection) == [
        ("test_segment", "cus_a", datetime(2026, 11, 18, 20), None),
        ("test_segment", "cus_c", datetime(2026, 11, 18, 20), None),
    ]
    assert sizes(connection) == [("test_segment", DAY_1, 2, 2, 0)]


def test_definitions_table(tmp_path: Path) -> None:
    connection = history_warehouse(tmp_path / "w.duckdb")
    segment = one_segment(tmp_path / "s", BUYERS)
    run_segments(connection, [segment], "2026-11-18")
    row = connection.execute(
        "select segment_name, file, owner, type, consent_purpose, description, compiled_sql, "
        "parameters, last_snapshot_date from segments.segment_definitions"
    ).fetchone()
    assert row == (
        "test_segment",
        segment.file,
        "crm-team@teal.example",
        "dynamic",
        "email_marketing",
        "Customers for a test.",
        compile_segment(segment).sql,
        '{"p1": 3}',
        DAY_1,
    )


# --- the CLI -----------------------------------------------------------------------------------------


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "segments"
    segment_file(folder, BUYERS)
    path = tmp_path / "w.duckdb"
    connection = history_warehouse(path)
    run_segments(connection, load_segments(folder, CATALOGUE), "2026-11-18")
    connection.close()
    common = ["--warehouse", str(path), "--catalogue", str(FIXTURE_CATALOGUE)]
    assert cli([*common, "validate", "--segments-dir", str(folder)]) == 0
    assert "1 segments in 1 files are valid" in capsys.readouterr().out
    assert cli([*common, "sizes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "segment_name",
        "snapshot_date",
        "members",
        "entered",
        "exited",
        "type",
        "consent_purpose",
    ]
    assert lines[1].split() == [
        "test_segment",
        "2026-11-18",
        "2",
        "2",
        "0",
        "dynamic",
        "email_marketing",
    ]
    assert cli([*common, "--segments-dir", str(folder), "show", "test_segment"]) == 0
    out = capsys.readouterr().out
    assert 'coalesce(attributes."orders_30d" > $p1, false)' in out
    assert "-- $p1 = 3" in out
    assert "last run (2026-11-18): 2 members, 2 entered, 0 exited" in out
    segment_file(folder, BUYERS.replace("orders_30d", "orders"), name="broken.yml")
    assert cli([*common, "validate", "--segments-dir", str(folder)]) == 1
    assert "rules: unknown field 'orders'" in capsys.readouterr().err


def test_cli_validate_warns_about_a_changed_static_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "segments"
    path = segment_file(folder, BUYERS, type="static")
    connection = history_warehouse(tmp_path / "w.duckdb")
    run_segments(connection, load_segments(folder, CATALOGUE), "2026-11-18")
    connection.close()
    path.write_text(path.read_text().replace("value: 3", "value: 4"))
    args = ["--warehouse", str(tmp_path / "w.duckdb"), "--catalogue", str(FIXTURE_CATALOGUE)]
    assert cli([*args, "--segments-dir", str(folder), "validate"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"warning: static segment 'test_segment' ({path}) has new rules but stays frozen as "
        "built on 2026-11-19; the next run keeps its members and reports it"
    )
