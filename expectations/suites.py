"""Expectation suites for landed feed batches, derived entirely from the feed contracts.

`build_suite(feed)` turns one feed of `ml/landing/feeds.yml` into the suite
`<feed>_landing`. Every expectation carries `meta["severity"]`: `"error"` (the batch fails)
or `"warning"` (reported, never fails the batch); GX's own `severity` field mirrors it
(`critical` / `warning`). The suite runs against the typed copy made by
`expectations.validate.typed_frame`, so numbers and dates are compared as numbers and dates.

Outlier checks (money amounts: every `decimal` column, plus `line_amount` that the typed copy
computes for order lines) have data-dependent bounds. The suite holds `$PARAMETER`
references; `outlier_parameters(feed, typed)` computes the fences from the batch being
validated and `validate_batch` passes them to the Checkpoint run. The fences are Tukey's
far-out fences on the log scale of the positive amounts: Q1 / r**3 and Q3 * r**3 with
r = Q3 / Q1, i.e. Q1 - 3*IQR and Q3 + 3*IQR of log(amount). Money is right-skewed, so fences
on the raw scale would flag a few percent of ordinary prices; zero amounts (no discount, free
items) are not checked. `mostly=0.99` keeps GX's own verdict green while at most 1% of the
amounts lie outside the fences; either way the expectation is a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.row_conditions import Column as Col

from ml.landing import contracts
from ml.landing.contracts import LINEAGE_COLUMNS, Feed

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Raw email columns keep what the customer typed, so surrounding spaces are allowed there.
RAW_EMAIL_REGEX = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
E164_REGEX = r"^\+[1-9][0-9]{6,14}$"
REFERENCE_TYPES = ("email", "crm_id", "loyalty_id")

CAST_ERRORS_COLUMN = "_cast_errors"
LINE_AMOUNT_COLUMN = "line_amount"
OUTLIER_K = 3.0
OUTLIER_MOSTLY = 0.99

ERROR = "error"
WARNING = "warning"


def suite_name(feed: Feed) -> str:
    """The name of the feed's suite, `<feed>_landing`."""
    return f"{feed.name}_landing"


def has_line_amount(feed: Feed) -> bool:
    """Whether the typed copy of this feed gets a computed `line_amount` column."""
    names = {c.name: c.type for c in feed.columns}
    return (
        names.get("quantity") == "integer"
        and names.get("unit_price") == "decimal"
        and LINE_AMOUNT_COLUMN not in names
    )


def money_columns(feed: Feed) -> tuple[str, ...]:
    """Columns whose values are money amounts and get outlier checks."""
    columns = tuple(c.name for c in feed.columns if c.type == "decimal")
    return (*columns, LINE_AMOUNT_COLUMN) if has_line_amount(feed) else columns


def outlier_parameter_names(column: str) -> tuple[str, str]:
    """The `$PARAMETER` names of a column's lower and upper outlier fence."""
    return f"{column}__outlier_min", f"{column}__outlier_max"


def _meta(severity: str, kind: str, **extra: Any) -> dict[str, Any]:
    """The `meta` block every expectation carries."""
    return {"severity": severity, "kind": kind, **extra}


def _gx_severity(severity: str) -> str:
    """GX's native severity level for ours."""
    return "critical" if severity == ERROR else "warning"


def _error(expectation_class: type[gxe.Expectation], kind: str, **kwargs: Any) -> gxe.Expectation:
    """An error-severity expectation."""
    return expectation_class(**kwargs, meta=_meta(ERROR, kind), severity=_gx_severity(ERROR))


def _bound(value: str | float | None, column_type: str) -> str | float | None:
    """A contract min/max as the typed copy compares it: a number, or naive UTC ISO date-time text."""
    # GX (pydantic) turns "YYYY-MM-DD" into a `date`, which pandas will not compare with
    # datetime64 values; "YYYY-MM-DDT00:00:00" becomes a `datetime`, which it will.
    if value is None:
        return None
    if column_type in ("integer", "decimal"):
        return float(value)
    moment = pd.Timestamp(str(value))
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.isoformat()


def _column_expectations(
    feed: Feed, identifier_patterns: Mapping[str, str]
) -> Iterator[gxe.Expectation]:
    """Expectations on single columns: contract rules, then the loader's derived columns."""
    for column in feed.columns:
        name = column.name
        if column.required or name in feed.key:
            yield _error(gxe.ExpectColumnValuesToNotBeNull, "required", column=name)
        if column.allowed:
            yield _error(
                gxe.ExpectColumnValuesToBeInSet,
                "allowed",
                column=name,
                value_set=list(column.allowed),
            )
        if (column.min is not None or column.max is not None) and column.type in (
            "integer",
            "decimal",
            "date",
            "timestamp",
        ):
            yield _error(
                gxe.ExpectColumnValuesToBeBetween,
                "range",
                column=name,
                min_value=_bound(column.min, column.type),
                max_value=_bound(column.max, column.type),
            )
        if column.pattern:
            yield _error(
                gxe.ExpectColumnValuesToMatchRegex, "pattern", column=name, regex=column.pattern
            )
        if column.format == "email":
            yield _error(
                gxe.ExpectColumnValuesToMatchRegex, "email", column=name, regex=RAW_EMAIL_REGEX
            )
            normalised = f"{name}_normalised"
            if column.required:
                yield _error(gxe.ExpectColumnValuesToNotBeNull, "required", column=normalised)
            yield _error(
                gxe.ExpectColumnValuesToMatchRegex, "email", column=normalised, regex=EMAIL_REGEX
            )
        elif column.format == "phone":
            e164 = f"{name}_e164"
            if column.required:
                yield _error(gxe.ExpectColumnValuesToNotBeNull, "required", column=e164)
            yield _error(gxe.ExpectColumnValuesToMatchRegex, "e164", column=e164, regex=E164_REGEX)
        elif column.format == "reference":
            normalised, kind = f"{name}_normalised", f"{name}_type"
            if column.required:
                yield _error(gxe.ExpectColumnValuesToNotBeNull, "required", column=normalised)
                yield _error(gxe.ExpectColumnValuesToNotBeNull, "required", column=kind)
            yield _error(
                gxe.ExpectColumnValuesToBeInSet,
                "allowed",
                column=kind,
                value_set=list(REFERENCE_TYPES),
            )
            patterns = {"email": EMAIL_REGEX, **identifier_patterns}
            for reference_type in REFERENCE_TYPES:
                if reference_type in patterns:
                    yield _error(
                        gxe.ExpectColumnValuesToMatchRegex,
                        "email" if reference_type == "email" else "pattern",
                        column=normalised,
                        regex=patterns[reference_type],
                        row_condition=Col(kind) == reference_type,
                    )


def _outlier_expectation(column: str) -> gxe.Expectation:
    """A warning that flags amounts outside the batch's log-scale IQR fences."""
    lower, upper = outlier_parameter_names(column)
    return gxe.ExpectColumnValuesToBeBetween(
        column=column,
        min_value={"$PARAMETER": lower},
        max_value={"$PARAMETER": upper},
        mostly=OUTLIER_MOSTLY,
        row_condition=Col(column) > 0,
        severity=_gx_severity(WARNING),
        meta=_meta(WARNING, "outlier", method=f"log-scale IQR fences, k={OUTLIER_K:g}"),
        description=(
            f"Positive `{column}` amounts lie within Q1/r^{OUTLIER_K:g} and Q3*r^{OUTLIER_K:g}, "
            "r = Q3/Q1, computed from this batch (a warning, not a failure)."
        ),
    )


def expectations_for(
    feed: Feed, identifier_patterns: Mapping[str, str] | None = None
) -> list[gxe.Expectation]:
    """Every expectation of the feed's suite, in suite order."""
    if identifier_patterns is None:  # the feed's own (a user's overrides merged), else feeds.yml's
        identifier_patterns = feed.identifier_patterns or contracts.load().identifier_patterns
    found: list[gxe.Expectation] = [
        _error(
            gxe.ExpectTableColumnsToMatchSet,
            "schema",
            column_set=list(feed.landed_columns),
            exact_match=False,
        )
    ]
    found += _column_expectations(feed, identifier_patterns)
    found.append(
        _error(
            gxe.ExpectColumnValuesToBeNull,
            "cast",
            column=CAST_ERRORS_COLUMN,
            description=(
                f"Every non-empty value casts to its contract type ({CAST_ERRORS_COLUMN} names "
                "the columns that did not)."
            ),
        )
    )
    key = list(feed.key) + (["_source_file"] if feed.key_scope == "file" else [])
    if len(key) == 1:
        found.append(_error(gxe.ExpectColumnValuesToBeUnique, "unique", column=key[0]))
    else:
        found.append(_error(gxe.ExpectCompoundColumnsToBeUnique, "unique", column_list=key))
    found += [
        _error(gxe.ExpectColumnValuesToNotBeNull, "lineage", column=name)
        for name in LINEAGE_COLUMNS
    ]
    found += [_outlier_expectation(column) for column in money_columns(feed)]
    return found


def build_suite(
    feed: Feed, identifier_patterns: Mapping[str, str] | None = None
) -> gx.ExpectationSuite:
    """The suite `<feed>_landing` built from the feed's contract (not yet saved to a context)."""
    # Expectations go in through the constructor: `suite.add_expectation` on a suite whose name
    # is already stored writes the whole suite to the store once per expectation.
    expectations = expectations_for(feed, identifier_patterns)
    return gx.ExpectationSuite(
        name=suite_name(feed),
        expectations=expectations,
        meta={
            "feed": feed.name,
            "generated_from": "ml/landing/feeds.yml by expectations/suites.py",
            "outlier_parameters": "computed from each batch at validation time",
            "fingerprint": fingerprint(expectations),
        },
    )


def fingerprint(expectations: list[gxe.Expectation]) -> str:
    """A hash of the expectations' configurations, to tell whether a stored suite is current."""
    configs = [e.configuration.to_json_dict() for e in expectations]
    for config in configs:
        config.pop("id", None)
    text = json.dumps(configs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def outlier_parameters(feed: Feed, typed: pd.DataFrame) -> dict[str, float]:
    """Lower and upper outlier fences for every money column, from the batch itself."""
    parameters: dict[str, float] = {}
    for column in money_columns(feed):
        lower_name, upper_name = outlier_parameter_names(column)
        values = pd.to_numeric(typed[column], errors="coerce") if column in typed else pd.Series()
        positive = values[values > 0].astype(float)
        if positive.empty:
            lower, upper = 0.0, math.inf
        else:
            q1, q3 = positive.quantile([0.25, 0.75]).tolist()
            ratio = q3 / q1
            lower, upper = q1 / ratio**OUTLIER_K, q3 * ratio**OUTLIER_K
        # JSON (the results store) has no infinity: the largest float stands in for it.
        parameters[lower_name] = float(lower)
        parameters[upper_name] = float(min(upper, 1.0e308))
    return parameters
