"""Validate one landed batch of a feed with its GX suite, store the result and update Data Docs.

    from expectations.validate import validate_batch, as_dict
    outcome = validate_batch("orders", frame)      # or a contracts.Feed
    outcome.success, outcome.warnings, as_dict(outcome)

    landed = validate_landed_feed(settings, "orders", load_id)   # the run's step

GX telemetry is off in the project's own config (`analytics_enabled: false` in
gx/great_expectations.yml); nothing here touches the environment.

The landed frame holds every contract column as text. `typed_frame` makes the copy GX sees:
blank text becomes null, integers and decimals become float64/int64, dates and timestamps
datetime64[ns] (timestamps in UTC; one written without an offset is read as UTC here, which
only matters for range rules, and the contracts have none on timestamps), json stays text
when it is an object. A non-empty value that does not cast becomes null and is named in the
`_cast_errors` column, which the suite expects to be null. Order lines also get `line_amount`
(quantity * unit_price - discount) for the outlier check.

Each call rebuilds the suite from the contract, saves it, its ValidationDefinition and its
Checkpoint with add_or_update (so repeated calls, in one process or many, never clash), and
runs the Checkpoint: GX stores the validation result under
`expectations/gx/uncommitted/validations/` and updates the Data Docs site under
`expectations/gx/uncommitted/data_docs/local_site/`. Outlier fences are computed from the
batch and passed as expectation parameters (see `expectations.suites`).

GX applies one result format to a whole run and keeps up to five unexpected values per
expectation; for the expectations on personal-data columns (`pii` or `erase_by` in the
contract, and what is derived from them) those values are masked to their shape in the stored
result right after the run (`mask_stored_result`), so the stores and the Data Docs built from
them hold none. The `BatchValidation` returned here (meant for Dagster metadata) masks them too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import FileDataContext
from great_expectations.exceptions import DataContextError

from expectations import suites
from expectations.context import (
    EXPECTATIONS_DIR,
    batch_definition,
    docs_index,
    get_context,
)
from ml.landing import contracts
from ml.landing.contracts import Feed
from ml.landing.loader import landed_batch
from ml.settings import Settings

UNEXPECTED_EXAMPLES = 5
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": UNEXPECTED_EXAMPLES}
MAX_VALUE_CHARS = 80

# Shapes of stripped text; no \s or \d, so pandas runs them in pyarrow instead of Python's re.
INTEGER_TEXT = r"[+-]?[0-9]+"
DECIMAL_TEXT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


@dataclass(frozen=True)
class ExpectationOutcome:
    """How one expectation of the suite fared on the batch."""

    expectation_type: str
    columns: tuple[str, ...]
    severity: str
    kind: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_values: tuple[Any, ...] = ()
    observed_value: Any = None
    exception: str | None = None

    def describe(self) -> str:
        """One line a person can act on: which expectation, on which columns, and what it found."""
        where = ", ".join(self.columns) or "table"
        text = f"{self.expectation_type} on {where}"
        if self.exception:
            return f"{text}: raised {self.exception}"
        if self.unexpected_count:
            share = f" of {self.element_count}" if self.element_count else ""
            examples = ", ".join(repr(v) for v in self.unexpected_values)
            text += f": {self.unexpected_count}{share} rows unexpected"
            return text + (f", e.g. {examples}" if examples else "")
        if self.observed_value is not None:
            return f"{text}: observed {self.observed_value!r}"
        return text + (": passed" if self.success else ": failed")


@dataclass(frozen=True)
class BatchValidation:
    """The outcome of validating one landed batch: `success` means every error-severity expectation passed."""

    feed: str
    suite: str
    success: bool
    rows: int
    evaluated: int
    successful: int
    errors: int
    warnings: int
    results: tuple[ExpectationOutcome, ...] = ()
    outlier_fences: dict[str, float] = field(default_factory=dict)
    run_name: str | None = None
    run_time: str | None = None
    result_path: Path | None = None
    data_docs_index: Path | None = None
    skipped: bool = False

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """Error-severity expectations that failed."""
        return tuple(r for r in self.results if r.severity == suites.ERROR and not r.success)

    @property
    def flagged(self) -> tuple[ExpectationOutcome, ...]:
        """Warning-severity expectations that failed or flagged at least one row."""
        return tuple(r for r in self.results if r.severity == suites.WARNING and _flagged(r))


def _flagged(outcome: ExpectationOutcome) -> bool:
    """Whether a result failed or found unexpected rows."""
    return not outcome.success or bool(outcome.unexpected_count)


# --------------------------------------------------------------------------- typed copy


def _text(series: pd.Series) -> pd.Series:
    """The column as pandas text with blank values as null."""
    text = series.astype("str")
    return text.mask(text.str.strip() == "")


def _stripped(text: pd.Series) -> pd.Series:
    """Text without surrounding whitespace (casts accept it, as the loader does)."""
    return text.str.strip()


def _matches(text: pd.Series, pattern: str) -> pd.Series:
    """Boolean mask of the values that fully match `pattern` (False for nulls)."""
    return text.str.fullmatch(pattern).fillna(False).astype(bool)


def _numbers(text: pd.Series, pattern: str) -> pd.Series:
    """Text of the given numeric shape as float64, anything else null."""
    stripped = _stripped(text)
    return stripped.where(_matches(stripped, pattern)).astype("float64")


def _integer(text: pd.Series) -> pd.Series:
    """Integer text as int64 (float64 when some values are null)."""
    values = _numbers(text, INTEGER_TEXT)
    return values.astype("int64") if values.notna().all() else values


def _decimal(text: pd.Series) -> pd.Series:
    """Decimal text as float64."""
    return _numbers(text, DECIMAL_TEXT)


def _nanoseconds(values: pd.Series) -> pd.Series:
    """Naive datetimes as datetime64[ns], which GX compares vectorised; out-of-range ones null."""
    inside = (values >= pd.Timestamp.min) & (values <= pd.Timestamp.max)
    return values.where(inside).astype("datetime64[ns]")


def _date(text: pd.Series) -> pd.Series:
    """YYYY-MM-DD text as datetime64[ns]."""
    stripped = _stripped(text)
    shaped = stripped.where(_matches(stripped, DATE_TEXT))
    return _nanoseconds(pd.to_datetime(shaped, format="%Y-%m-%d", errors="coerce"))


def _timestamp(text: pd.Series) -> pd.Series:
    """ISO 8601 text as naive UTC datetime64[ns]."""
    parsed = pd.to_datetime(_stripped(text), format="ISO8601", utc=True, errors="coerce")
    return _nanoseconds(parsed.dt.tz_convert(None))


def _is_json_object(value: str) -> bool:
    """Whether the text is a JSON object."""
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _json(text: pd.Series) -> pd.Series:
    """JSON text kept when it is an object, else null."""
    verdicts = {value: _is_json_object(value) for value in text.dropna().unique()}
    return text.where(text.map(verdicts).fillna(False).astype(bool))


CASTS = {
    "string": lambda text: text,
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "timestamp": _timestamp,
    "json": _json,
}


def _cast_errors(failures: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """Per row, the names of the columns whose value did not cast (None when all did)."""
    errors = np.full(len(index), None, dtype=object)
    if failures:
        failed = pd.DataFrame(failures, index=index).to_numpy()
        rows = failed.any(axis=1)
        names = np.array(list(failures), dtype=object)
        errors[rows] = [", ".join(names[flags]) for flags in failed[rows]]
    return pd.Series(errors, index=index, dtype=object)


def typed_frame(feed: Feed, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a landed frame with contract columns cast to their types, for GX."""
    frame = frame.reset_index(drop=True)
    columns: dict[str, pd.Series] = {name: frame[name] for name in frame.columns}
    failures: dict[str, pd.Series] = {}
    for column in feed.columns:
        if column.name not in frame:
            continue
        text = _text(frame[column.name])
        typed = CASTS[column.type](text)
        columns[column.name] = typed
        if column.type != "string":
            failures[column.name] = text.notna() & typed.isna()
    for name in feed.derived_columns:
        if name in frame:
            columns[name] = _text(frame[name])
    if suites.has_line_amount(feed) and {"quantity", "unit_price"} <= set(frame.columns):
        amount = columns["quantity"] * columns["unit_price"]
        if "discount" in columns:
            amount = amount - columns["discount"].fillna(0.0)
        columns[suites.LINE_AMOUNT_COLUMN] = amount
    columns[suites.CAST_ERRORS_COLUMN] = _cast_errors(failures, frame.index)
    return pd.DataFrame(columns, index=frame.index)


# --------------------------------------------------------------------------- validation


def _feed(feed: Feed | str) -> Feed:
    """The contract of a feed given by name or object."""
    return contracts.load()[feed] if isinstance(feed, str) else feed


def _pii_columns(feed: Feed) -> set[str]:
    """Columns whose values are personal data: `pii` contract columns and what is derived from them."""
    pii = set()
    for column in feed.columns:
        if column.pii or column.erase_by:  # an id that names whose row it is is personal too
            pii.add(column.name)
            pii.update(d for d in column.derived if not d.endswith("_type"))
    return pii


def _mask(text: str) -> str:
    """Personal text reduced to its shape: letters become x or X, digits 9, the rest stays."""
    shape = []
    for ch in text:
        if ch.isdigit():
            shape.append("9")
        elif ch.isalpha():
            shape.append("X" if ch.isupper() else "x")
        else:
            shape.append(ch)
    return "".join(shape)


def _masked(value: Any) -> Any:
    """A plain value with its text masked."""
    return _mask(value) if isinstance(value, str) else value


def _plain(value: Any) -> Any:
    """A value as JSON-friendly Python: numbers, text, lists, dicts or None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)[:MAX_VALUE_CHARS]


def _examples(values: list[Any], columns: tuple[str, ...], pii: set[str]) -> tuple[Any, ...]:
    """A few unexpected values as plain values, masked where they come from personal-data columns."""
    examples = []
    for value in values[:UNEXPECTED_EXAMPLES]:
        plain = _plain(value)
        if isinstance(plain, dict):
            plain = {k: _masked(v) if k in pii else v for k, v in plain.items()}
        elif set(columns) & pii:
            plain = _masked(plain)
        examples.append(plain)
    return tuple(examples)


def _outcome(result: Any, pii: set[str]) -> ExpectationOutcome:
    """Our summary of one GX ExpectationValidationResult."""
    config = result.expectation_config
    kwargs = config.kwargs
    if "column_list" in kwargs:
        columns = tuple(kwargs["column_list"])
    elif "column" in kwargs:
        columns = (kwargs["column"],)
    else:
        columns = ()
    meta = config.meta or {}
    details = result.result or {}
    exception = None
    info = result.exception_info or {}
    raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception"):
        exception = info.get("exception_message")
    elif raised:
        exception = raised[0].get("exception_message")
    observed = details.get("observed_value")
    if columns and set(columns) & pii:
        observed = None
    return ExpectationOutcome(
        expectation_type=config.type,
        columns=columns,
        severity=meta.get("severity", suites.ERROR),
        kind=meta.get("kind", ""),
        success=bool(result.success),
        element_count=details.get("element_count"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_values=_examples(
            list(details.get("partial_unexpected_list") or []), columns, pii
        ),
        observed_value=_plain(observed),
        exception=exception,
    )


_VALUE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "unexpected_list",
    "observed_value",
    "details",
)


def mask_stored_result(path: Path, pii: set[str]) -> None:
    """Mask, in the validation result GX stored (and Data Docs render), the values of
    personal-data columns: GX keeps example values with one result format for the whole run,
    so they are reduced to their shape here, as they are for Dagster's metadata."""
    document = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for result in document.get("results", []):
        kwargs = (result.get("expectation_config") or {}).get("kwargs") or {}
        columns = set(kwargs.get("column_list") or []) | (
            {kwargs["column"]} if "column" in kwargs else set()
        )
        details = result.get("result") or {}
        if not columns & pii:
            continue
        for key in _VALUE_KEYS:
            if key in details:
                details[key] = _masked_deep(details[key], pii, whole=True)
                changed = True
    if changed:
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _masked_deep(value: Any, pii: set[str], whole: bool) -> Any:
    """Every text in `value` masked (a dict's values only under a personal column's key,
    unless `whole`)."""
    if isinstance(value, dict):
        return {
            k: _masked_deep(v, pii, whole or k in pii or k == "value") for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked_deep(v, pii, whole) for v in value]
    return _mask(value) if whole and isinstance(value, str) else value


def _current_checkpoint(
    context: FileDataContext, name: str, suite: gx.ExpectationSuite, batch_id: str | None
) -> gx.Checkpoint | None:
    """The stored checkpoint when it already runs exactly this suite on this batch definition."""
    try:
        checkpoint = context.checkpoints.get(name)
    except (DataContextError, KeyError, ValueError):
        return None
    definitions = checkpoint.validation_definitions
    current = (
        len(definitions) == 1
        and definitions[0].suite.meta.get("fingerprint") == suite.meta["fingerprint"]
        and definitions[0].data.id == batch_id
        and checkpoint.result_format == RESULT_FORMAT
        and not checkpoint.actions
    )
    return checkpoint if current else None


def save_checkpoint(context: FileDataContext, feed: Feed) -> gx.Checkpoint:
    """The feed's checkpoint, (re)saving suite, validation definition and checkpoint when stale."""
    name = suites.suite_name(feed)
    wanted = suites.build_suite(feed)
    batch = batch_definition(context, feed)
    current = _current_checkpoint(context, name, wanted, batch.id)
    if current is not None:
        return current
    suite = context.suites.add_or_update(wanted)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            # Data Docs are rebuilt once per run (expectations/docs.py), not per batch: the
            # site's index re-renders every stored result, seconds per validation
            actions=[],
            result_format=RESULT_FORMAT,
        )
    )


def _run_name(frame: pd.DataFrame) -> str | None:
    """The batch's load id when it has exactly one, to name the GX run."""
    if "_load_id" not in frame or frame.empty:
        return None
    ids = frame["_load_id"].dropna().unique()
    return str(ids[0]) if len(ids) == 1 else None


def validate_batch(
    feed: Feed | str,
    frame: pd.DataFrame,
    *,
    project_root: str | Path = EXPECTATIONS_DIR,
    run_name: str | None = None,
) -> BatchValidation:
    """Validate a landed batch with the feed's suite via a stored Checkpoint; return the outcome."""
    feed = _feed(feed)
    name = suites.suite_name(feed)
    context = get_context(project_root)
    index = docs_index(context)
    if frame.empty:
        return BatchValidation(
            feed=feed.name,
            suite=name,
            success=True,
            rows=0,
            evaluated=0,
            successful=0,
            errors=0,
            warnings=0,
            data_docs_index=index if index.exists() else None,
            skipped=True,
        )
    typed = typed_frame(feed, frame)
    fences = suites.outlier_parameters(feed, typed)
    run_id = RunIdentifier(run_name=run_name or _run_name(frame), run_time=dt.datetime.now(dt.UTC))
    checkpoint = save_checkpoint(context, feed)
    checkpoint_result = checkpoint.run(
        batch_parameters={"dataframe": typed}, expectation_parameters=fences, run_id=run_id
    )
    [(key, suite_result)] = checkpoint_result.run_results.items()
    suite = checkpoint.validation_definitions[0].suite
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    ordered = sorted(suite_result.results, key=lambda r: order.get(r.expectation_config.id, 10**6))
    pii = _pii_columns(feed)
    outcomes = tuple(_outcome(r, pii) for r in ordered)
    result_file = Path(context.root_directory, "uncommitted", "validations", *key.to_tuple())
    result_path = result_file.with_name(result_file.name + ".json")
    if result_path.exists():
        mask_stored_result(result_path, pii)
    return BatchValidation(
        feed=feed.name,
        suite=name,
        success=all(o.success for o in outcomes if o.severity == suites.ERROR),
        rows=len(frame),
        evaluated=suite_result.statistics["evaluated_expectations"],
        successful=suite_result.statistics["successful_expectations"],
        errors=sum(1 for o in outcomes if o.severity == suites.ERROR and not o.success),
        warnings=sum(1 for o in outcomes if o.severity == suites.WARNING and _flagged(o)),
        results=outcomes,
        outlier_fences=fences,
        run_name=run_id.run_name,
        run_time=run_id.run_time.isoformat(),
        result_path=result_path if result_path.exists() else None,
        data_docs_index=index if index.exists() else None,
    )


def as_dict(validation: BatchValidation) -> dict[str, Any]:
    """The validation as plain JSON-friendly dicts and lists (for Dagster metadata)."""
    plain = asdict(validation)
    for key in ("result_path", "data_docs_index"):
        plain[key] = str(plain[key]) if plain[key] is not None else None
    plain["results"] = [
        {**r, "columns": list(r["columns"]), "unexpected_values": list(r["unexpected_values"])}
        for r in plain["results"]
    ]
    return plain


RESULTS_DDL = """
create schema if not exists landing;
create table if not exists landing.validation_results (
    load_id varchar not null,
    feed varchar not null,
    suite varchar not null,
    expectation_type varchar not null,
    columns varchar not null,
    severity varchar not null,
    kind varchar not null,
    success boolean not null,
    rows_checked bigint,
    rows_unexpected bigint,
    validated_at timestamp not null
)
"""


@dataclass(frozen=True)
class LandedValidation:
    """The validation of the rows one load landed for a feed (a sample above the limit)."""

    validation: BatchValidation
    rows_in_batch: int


def validate_landed_feed(settings: Settings, feed_name: str, load_id: str) -> LandedValidation:
    """The workflow step: validate what `load_id` landed for the feed and record the outcome in
    `landing.validations`. A load that landed no rows of the feed is skipped (and not recorded).
    The suite is built from the contract the loader used: feeds.yml with the user's overrides."""
    overrides = contracts.overrides_file(settings.landing, settings.feeds_overrides)
    feed = contracts.load(overrides=overrides)[feed_name]
    with settings.connect() as connection:
        batch, total = landed_batch(connection, feed, load_id)
        validation = validate_batch(feed, batch, project_root=settings.gx_project)
        if not validation.skipped:
            record_outcomes(connection, load_id, validation)
            connection.execute(
                "insert into landing.validations values (?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
                [
                    load_id,
                    feed.name,
                    validation.suite,
                    validation.success,
                    len(batch),
                    validation.evaluated,
                    validation.successful,
                    validation.warnings,
                ],
            )
    return LandedValidation(validation, total)


def record_outcomes(connection, load_id: str, validation: BatchValidation) -> None:
    """Every expectation that failed or flagged rows, in landing.validation_results: which one,
    on which columns, error or warning, and how many rows (no values: they may be personal)."""
    connection.execute(RESULTS_DDL)
    rows = [
        [
            load_id,
            validation.feed,
            validation.suite,
            outcome.expectation_type,
            ", ".join(outcome.columns),
            outcome.severity,
            outcome.kind,
            outcome.success,
            outcome.element_count,
            outcome.unexpected_count,
        ]
        for outcome in validation.results
        if not outcome.success or outcome.unexpected_count
    ]
    if rows:
        connection.executemany(
            "insert into landing.validation_results "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
            rows,
        )
