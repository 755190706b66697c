"""Great Expectations suites and batch validation, with real GX on a temporary GX project."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from expectations import suites
from expectations.context import GX_DIR
from expectations.docs import build_docs
from expectations.validate import BatchValidation, as_dict, typed_frame, validate_batch
from ml.landing import contracts

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
REGEX = "expect_column_values_to_match_regex"
ROWS = 20


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary GX project root (seeded from the committed config on first use)."""
    return tmp_path_factory.mktemp("gx_project")


def orders_frame(rows: int = ROWS) -> pd.DataFrame:
    """A clean landed batch of order lines: contract columns as text, derived and lineage columns."""
    records = []
    for i in range(rows):
        records.append(
            {
                "order_id": f"O{100000000 + i // 2:09d}",
                "line_number": str(i % 2 + 1),
                "customer_ref": f" Jane.Doe{i}@Example.com ",
                "ordered_at": "2024-05-01T10:00:00+01:00" if i % 2 else "2024-05-01 09:30:00",
                "channel": "web" if i % 3 else "store",
                "store_id": None if i % 3 else "S001",
                "sku": f"SKU-{i:06d}",
                "quantity": str(i % 3 + 1),
                "unit_price": f"{10 + (i % 5) * 2.5:.2f}",
                "discount": "1.50" if i % 4 == 0 else "0",
                "currency": "GBP",
                "status": "completed",
                "customer_ref_normalised": f"jane.doe{i}@example.com",
                "customer_ref_type": "email",
                "_source_file": "orders/orders_2024-05-01.csv",
                "_row_number": i + 2,
                "_load_id": "load-test",
                "_loaded_at": pd.Timestamp("2024-05-02T06:00:00"),
            }
        )
    return pd.DataFrame.from_records(records)


def failed(validation: BatchValidation) -> dict[tuple[str, tuple[str, ...]], int | None]:
    """Error-severity failures as {(expectation type, columns): unexpected_count}."""
    return {(r.expectation_type, r.columns): r.unexpected_count for r in validation.failures}


def flagged(validation: BatchValidation) -> dict[tuple[str, tuple[str, ...]], int | None]:
    """Flagged warnings as {(expectation type, columns): unexpected_count}."""
    return {(r.expectation_type, r.columns): r.unexpected_count for r in validation.flagged}


def test_every_feed_gets_a_suite_tagged_by_severity() -> None:
    """Every feed gets `<feed>_landing`; outliers are warnings, the rest errors; keys are unique."""
    for feed in contracts.load():
        suite = suites.build_suite(feed)
        assert suite.name == f"{feed.name}_landing"
        assert suite.expectations
        for expectation in suite.expectations:
            meta = expectation.meta or {}
            assert meta["severity"] in ("error", "warning")
            assert (meta["severity"] == "warning") == (meta["kind"] == "outlier")
            assert expectation.severity.value == (
                "critical" if meta["severity"] == "error" else "warning"
            )
        unique = [e for e in suite.expectations if e.meta["kind"] == "unique"]
        key = [*feed.key, "_source_file"] if feed.key_scope == "file" else list(feed.key)
        assert len(unique) == 1
        columns = getattr(unique[0], "column_list", None) or [unique[0].column]
        assert columns == key


def test_orders_suite_is_exactly_the_contract() -> None:
    """The orders suite holds exactly the expectations its contract implies, in order."""
    suite = suites.build_suite(contracts.load()["orders"])
    got = [
        (
            e.expectation_type,
            tuple(getattr(e, "column_list", None) or ([e.column] if hasattr(e, "column") else [])),
            e.meta["severity"],
        )
        for e in suite.expectations
    ]
    assert got == [
        ("expect_table_columns_to_match_set", (), "error"),
        (NOT_NULL, ("order_id",), "error"),
        (REGEX, ("order_id",), "error"),
        (NOT_NULL, ("line_number",), "error"),
        (BETWEEN, ("line_number",), "error"),
        (IN_SET, ("customer_ref_type",), "error"),
        (REGEX, ("customer_ref_normalised",), "error"),
        (REGEX, ("customer_ref_normalised",), "error"),
        (REGEX, ("customer_ref_normalised",), "error"),
        (NOT_NULL, ("ordered_at",), "error"),
        (NOT_NULL, ("channel",), "error"),
        (IN_SET, ("channel",), "error"),
        (REGEX, ("store_id",), "error"),
        (NOT_NULL, ("sku",), "error"),
        (REGEX, ("sku",), "error"),
        (NOT_NULL, ("quantity",), "error"),
        (BETWEEN, ("quantity",), "error"),
        (NOT_NULL, ("unit_price",), "error"),
        (BETWEEN, ("unit_price",), "error"),
        (BETWEEN, ("discount",), "error"),
        (NOT_NULL, ("currency",), "error"),
        (IN_SET, ("currency",), "error"),
        (NOT_NULL, ("status",), "error"),
        (IN_SET, ("status",), "error"),
        ("expect_column_values_to_be_null", ("_cast_errors",), "error"),
        ("expect_compound_columns_to_be_unique", ("order_id", "line_number"), "error"),
        (NOT_NULL, ("_source_file",), "error"),
        (NOT_NULL, ("_row_number",), "error"),
        (NOT_NULL, ("_load_id",), "error"),
        (NOT_NULL, ("_loaded_at",), "error"),
        (BETWEEN, ("unit_price",), "warning"),
        (BETWEEN, ("discount",), "warning"),
        (BETWEEN, ("line_amount",), "warning"),
    ]
    by_column = {e.column: e for e in suite.expectations if e.meta["kind"] == "range"}
    assert (by_column["quantity"].min_value, by_column["quantity"].max_value) == (1, 1000)
    assert (by_column["discount"].min_value, by_column["discount"].max_value) == (0, 100000)
    reference = [
        e for e in suite.expectations if getattr(e, "column", None) == "customer_ref_normalised"
    ]
    assert [e.regex for e in reference] == [suites.EMAIL_REGEX, "^C[0-9]{7}$", "^L[0-9]{8}$"]
    outliers = [e for e in suite.expectations if e.meta["kind"] == "outlier"]
    assert {e.mostly for e in outliers} == {suites.OUTLIER_MOSTLY}
    assert outliers[0].min_value == {"$PARAMETER": "unit_price__outlier_min"}


def test_other_feeds_derive_their_special_rules() -> None:
    """File-scoped keys, email/phone regexes and date ranges come from the contracts too."""
    products = suites.build_suite(contracts.load()["products"])
    assert [e.column_list for e in products.expectations if e.meta["kind"] == "unique"] == [
        ["product_id", "_source_file"]
    ]
    assert [e.column for e in products.expectations if e.meta["kind"] == "outlier"] == ["price"]
    crm = suites.build_suite(contracts.load()["crm"])
    regexes = {(e.column, e.regex) for e in crm.expectations if e.expectation_type == REGEX}
    assert ("email_normalised", suites.EMAIL_REGEX) in regexes
    assert ("email", suites.RAW_EMAIL_REGEX) in regexes
    assert ("phone_e164", suites.E164_REGEX) in regexes
    birth = next(e for e in crm.expectations if e.meta["kind"] == "range")
    assert (birth.column, str(birth.min_value), str(birth.max_value)) == (
        "birth_date",
        "1900-01-01 00:00:00",
        "2026-12-31 00:00:00",
    )
    assert [e.column for e in crm.expectations if e.meta["kind"] == "outlier"] == []


def test_typed_copy_casts_per_contract() -> None:
    """The typed copy casts numbers and timestamps, nulls blanks and names failed casts."""
    frame = orders_frame(3)
    frame.loc[1, "quantity"] = "two"
    frame.loc[2, "store_id"] = "  "
    typed = typed_frame(contracts.load()["orders"], frame)
    assert typed["quantity"].dtype == "float64"
    assert typed["quantity"].tolist()[::2] == [1.0, 3.0]
    assert pd.isna(typed.loc[1, "quantity"])
    assert typed["unit_price"].tolist() == [10.0, 12.5, 15.0]
    assert str(typed["ordered_at"].dtype) == "datetime64[ns]"
    assert typed["ordered_at"].tolist() == [
        pd.Timestamp("2024-05-01 09:30"),
        pd.Timestamp("2024-05-01 09:00"),
    ] + [pd.Timestamp("2024-05-01 09:30")]
    assert pd.isna(typed.loc[2, "store_id"])
    assert typed["_cast_errors"].tolist() == [None, "quantity", None]
    assert typed["line_amount"].tolist()[0] == 10.0 * 1 - 1.5


def test_clean_orders_pass_and_results_are_stored(project_root: Path) -> None:
    """A clean batch passes; its result is stored, and Data Docs show it, under uncommitted/."""
    validation = validate_batch("orders", orders_frame(), project_root=project_root)
    assert validation.success is True
    assert (validation.rows, validation.evaluated, validation.successful) == (ROWS, 33, 33)
    assert (validation.errors, validation.warnings) == (0, 0)
    assert validation.run_name == "load-test"
    assert validation.result_path is not None and validation.result_path.is_file()
    assert validation.result_path.is_relative_to(
        project_root / "gx" / "uncommitted" / "validations"
    )
    stored = json.loads(validation.result_path.read_text())
    assert stored["success"] is True and stored["statistics"]["evaluated_expectations"] == 33
    # Data Docs are rebuilt once per run (the reports/data_docs asset), not per batch
    index = build_docs(project_root)
    assert index == project_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert "orders_landing" in index.read_text()
    assert list((index.parent / "validations").rglob("*.html"))
    written = {
        p.relative_to(project_root / "gx").parts[0]
        for p in (project_root / "gx").rglob("*")
        if p.is_file()
    }
    assert written == {"great_expectations.yml", "uncommitted"}
    plain = as_dict(validation)
    assert json.loads(json.dumps(plain)) == plain
    assert plain["results"][1] == {
        "expectation_type": NOT_NULL,
        "columns": ["order_id"],
        "severity": "error",
        "kind": "required",
        "success": True,
        "element_count": ROWS,
        "unexpected_count": 0,
        "unexpected_values": [],
        "observed_value": None,
        "exception": None,
    }


def _null_key(frame: pd.DataFrame) -> None:
    """Blank out one order id."""
    frame.loc[3, "order_id"] = None


def _duplicate_key(frame: pd.DataFrame) -> None:
    """Give one line the key of another."""
    frame.loc[5, ["order_id", "line_number"]] = frame.loc[4, ["order_id", "line_number"]].tolist()


def _unknown_currency(frame: pd.DataFrame) -> None:
    """Use a currency the contract does not allow."""
    frame.loc[7, "currency"] = "JPY"


def _bad_email(frame: pd.DataFrame) -> None:
    """Break one normalised email reference."""
    frame.loc[9, "customer_ref_normalised"] = "jane.doe9.example.com"


def _uncastable_quantity(frame: pd.DataFrame) -> None:
    """Write one quantity in words."""
    frame.loc[11, "quantity"] = "two"


@pytest.mark.parametrize(
    ("spoil", "expected", "examples"),
    [
        (_null_key, {(NOT_NULL, ("order_id",)): 1}, [None]),
        (
            _duplicate_key,
            {("expect_compound_columns_to_be_unique", ("order_id", "line_number")): 2},
            [{"order_id": "O100000002", "line_number": 1}] * 2,
        ),
        (_unknown_currency, {(IN_SET, ("currency",)): 1}, ["JPY"]),
        (_bad_email, {(REGEX, ("customer_ref_normalised",)): 1}, ["xxxx.xxx9.xxxxxxx.xxx"]),
        (
            _uncastable_quantity,
            {
                (NOT_NULL, ("quantity",)): 1,
                ("expect_column_values_to_be_null", ("_cast_errors",)): 1,
            },
            [None],
        ),
    ],
    ids=["null_key", "duplicate_key", "not_allowed", "bad_email", "not_castable"],
)
def test_a_spoilt_batch_fails_the_expected_expectation(
    project_root: Path, spoil: object, expected: dict, examples: list
) -> None:
    """Each kind of bad row fails exactly the expectation that covers it, with its count."""
    frame = orders_frame()
    spoil(frame)  # type: ignore[operator]
    validation = validate_batch("orders", frame, project_root=project_root)
    assert validation.success is False
    assert failed(validation) == expected
    assert validation.errors == len(expected)
    assert validation.evaluated - validation.successful == len(expected)
    first = validation.failures[0]
    assert first.severity == "error" and first.success is False
    assert list(first.unexpected_values) == examples


def test_an_outlier_is_a_warning_not_a_failure(project_root: Path) -> None:
    """An extreme price is flagged as a warning while the batch still succeeds."""
    frame = orders_frame()
    frame.loc[6, "unit_price"] = "9999.00"
    validation = validate_batch("orders", frame, project_root=project_root)
    assert validation.success is True
    assert validation.errors == 0
    assert flagged(validation) == {(BETWEEN, ("unit_price",)): 1, (BETWEEN, ("line_amount",)): 1}
    assert validation.warnings == 2
    unit_price = validation.flagged[0]
    assert (unit_price.severity, unit_price.kind, unit_price.unexpected_values) == (
        "warning",
        "outlier",
        (9999.0,),
    )
    # 1 outlier in 20 rows is more than `mostly` tolerates, so GX itself marks it failed.
    assert unit_price.success is False
    lower, upper = (
        validation.outlier_fences["unit_price__outlier_min"],
        validation.outlier_fences["unit_price__outlier_max"],
    )
    assert 0 < lower < 10.0 and 20.0 < upper < 9999.0


def test_a_rare_outlier_is_flagged_while_gx_passes_it(project_root: Path) -> None:
    """Under `mostly`, GX passes a rare outlier, and it is still flagged as a warning."""
    frame = orders_frame(400)
    frame.loc[6, "unit_price"] = "9999.00"
    validation = validate_batch("orders", frame, project_root=project_root)
    assert validation.success is True
    outcome = validation.flagged[0]
    assert (outcome.columns, outcome.success, outcome.unexpected_count) == (
        ("unit_price",),
        True,
        1,
    )


def test_empty_batch_is_skipped_cleanly(project_root: Path) -> None:
    """An empty batch succeeds with nothing evaluated."""
    empty = orders_frame().iloc[0:0]
    validation = validate_batch("orders", empty, project_root=project_root)
    assert (validation.success, validation.skipped, validation.rows, validation.evaluated) == (
        True,
        True,
        0,
        0,
    )
    assert validation.results == ()


def test_repeated_runs_reuse_the_stored_suite(project_root: Path) -> None:
    """Repeated runs store one result each and leave an up-to-date suite alone."""
    suite_file = project_root / "gx" / "uncommitted" / "expectations" / "orders_landing.json"
    first = validate_batch("orders", orders_frame(), project_root=project_root, run_name="again")
    saved = suite_file.stat().st_mtime_ns
    second = validate_batch("orders", orders_frame(), project_root=project_root, run_name="again")
    assert first.success and second.success
    assert suite_file.stat().st_mtime_ns == saved
    assert first.result_path != second.result_path
    assert first.result_path.is_file() and second.result_path.is_file()


def test_a_changed_contract_replaces_the_stored_suite(project_root: Path) -> None:
    """When the contract changes, the next run saves the new suite over the old one."""
    feed = contracts.load()["orders"]
    wider = replace(
        feed,
        columns=tuple(
            replace(c, allowed=(*c.allowed, "JPY")) if c.name == "currency" else c
            for c in feed.columns
        ),
    )
    frame = orders_frame()
    _unknown_currency(frame)
    assert validate_batch(wider, frame, project_root=project_root).success is True
    assert validate_batch(feed, frame, project_root=project_root).success is False
    assert validate_batch(wider, frame, project_root=project_root).success is True


def test_docs_command_builds_the_site(project_root: Path) -> None:
    """`build_docs` renders every feed's suite and returns index.html."""
    index = build_docs(project_root)
    assert index == project_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.is_file()
    pages = {p.stem for p in (index.parent / "expectations").glob("*.html")}
    assert pages == {f"{feed.name}_landing" for feed in contracts.load()}


def test_committed_config_needs_no_rewrite() -> None:
    """The committed config disables analytics, keeps stores in uncommitted/ and covers every feed."""
    config = yaml.safe_load((GX_DIR / "great_expectations.yml").read_text())
    assert config["analytics_enabled"] is False
    assets = config["fluent_datasources"]["teal_landing"]["assets"]
    assert {name: list(asset["batch_definitions"]) for name, asset in assets.items()} == {
        feed.name: [feed.name] for feed in contracts.load()
    }
    stores = [store["store_backend"]["base_directory"] for store in config["stores"].values()]
    assert all(directory.startswith("uncommitted/") for directory in stores)
