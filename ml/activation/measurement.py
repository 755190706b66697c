"""Campaign measurement: did the exported (treatment) members buy more than the held-out ones?

marts.fct_campaign_outcomes (dbt) holds one row per export run and member with whether the
member converted (a completed order in the window after the export) and the revenue. Here:

- `two_proportion_test(x_t, n_t, x_h, n_h)`: conversion rates of treatment and holdout, the
  absolute lift (t - h) with a 95% Wald interval (unpooled standard error), the relative lift
  (t / h - 1) with a 95% interval from the delta method on the log of the ratio (the interval
  of log(p_t / p_h) with standard error sqrt(1/x_t - 1/n_t + 1/x_h - 1/n_h), exponentiated,
  so it is never below -100%), and the two-sided p-value of the pooled z statistic.
- `welch_t_test(mean_t, var_t, n_t, mean_h, var_h, n_h)`: revenue per customer from summary
  statistics (so SQL aggregates a million members and Python sees two rows): the absolute lift
  with a 95% interval from the t quantile at the Welch-Satterthwaite degrees of freedom, the
  relative lift with a 95% delta-method interval on the log of the ratio of means (standard
  error sqrt(var_t / (n_t mean_t^2) + var_h / (n_h mean_h^2)), normal quantile), and the
  two-sided Welch p-value.
- `measure_campaigns(connection, as_of=None)`: both tests per export run, written to
  activation.campaign_lift (replaced) and returned.
- `write_report(frame, path)`: a short Markdown report; `write_chart(frame, path)`: a PNG of
  the lifts with their intervals.

Where a figure cannot honestly be computed (a group with fewer than 2 members, no variation
at all, no conversions in the holdout) it is NaN and `note` says why: never a crash, never a
made-up number.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from scipy import stats

from ml.as_of import cutoff, naive_utc
from ml.warehouse import table_exists

OUTCOMES_TABLE = "marts.fct_campaign_outcomes"
LIFT_TABLE = "activation.campaign_lift"
# The columns of each table here that name a person: erasure (ml/privacy/personal_columns.py)
# deletes a row when one of them names an erased person. The lift holds none (aggregates only).
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {LIFT_TABLE: ()}
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
# Below this many members in a group, the report warns that the normal approximations behind
# both tests are rough and the intervals wide (a rule of thumb, not a power calculation).
MIN_GROUP_SIZE = 30

CONVERSION = "conversion_rate"
REVENUE = "revenue_per_customer_gbp"
TWO_PROPORTION = "two_proportion_z"
WELCH = "welch_t"

# Result keys shared by both tests; they are also columns of activation.campaign_lift.
RESULT_KEYS = (
    "treatment_n",
    "holdout_n",
    "treatment_value",
    "holdout_value",
    "absolute_lift",
    "absolute_ci_low",
    "absolute_ci_high",
    "relative_lift",
    "relative_ci_low",
    "relative_ci_high",
    "p_value",
    "significant",
    "note",
)

LIFT_COLUMNS = {
    "export_name": "varchar",
    "run_id": "varchar",
    "export_date": "date",
    "window_days": "integer",
    "window_complete": "boolean",
    "metric": "varchar",
    "test": "varchar",
    "treatment_n": "bigint",
    "holdout_n": "bigint",
    "treatment_value": "double",
    "holdout_value": "double",
    "absolute_lift": "double",
    "absolute_ci_low": "double",
    "absolute_ci_high": "double",
    "relative_lift": "double",
    "relative_ci_low": "double",
    "relative_ci_high": "double",
    "p_value": "double",
    "significant": "boolean",
    "note": "varchar",
    "computed_at": "timestamp",
}

NAN = float("nan")


def _z() -> float:
    """The two-sided normal quantile of the confidence level (1.959963984540054 for 95%)."""
    return float(stats.norm.ppf(1 - ALPHA / 2))


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or value is None or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} is {value!r}: it must be a whole number of members, 0 or more")
    return int(value)


def _check_number(name: str, value: Any) -> float:
    if value is None:
        return NAN
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"{name} is {value!r}: it must be a finite number (or NaN when unknown)")
    return number


def _result(
    n_t: int, n_h: int, value_t: float, value_h: float, notes: list[str], **figures: float
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "treatment_n": n_t,
        "holdout_n": n_h,
        "treatment_value": value_t,
        "holdout_value": value_h,
    }
    for key in RESULT_KEYS[4:11]:
        result[key] = float(figures.get(key, NAN))
    p_value = result["p_value"]
    result["significant"] = None if math.isnan(p_value) else bool(p_value < ALPHA)
    result["note"] = "; ".join(notes) if notes else None
    return result


def _relative(
    ratio: float, log_se: float, notes: list[str], reason: str | None
) -> dict[str, float]:
    """Relative lift ratio - 1 with the interval exp(log ratio -/+ z * log_se) - 1."""
    if reason is not None:
        notes.append(reason)
        return {}
    if math.isnan(ratio):
        return {}
    figures = {"relative_lift": ratio - 1}
    if not math.isnan(log_se) and log_se > 0 and ratio > 0:
        half = _z() * log_se
        figures["relative_ci_low"] = math.exp(math.log(ratio) - half) - 1
        figures["relative_ci_high"] = math.exp(math.log(ratio) + half) - 1
    return figures


def two_proportion_test(x_t: int, n_t: int, x_h: int, n_h: int) -> dict[str, Any]:
    """Conversion of treatment (x_t of n_t) against holdout (x_h of n_h).

    Returns treatment_n, holdout_n, treatment_value and holdout_value (the rates),
    absolute_lift (p_t - p_h) with absolute_ci_low/high (Wald, unpooled standard error),
    relative_lift (p_t / p_h - 1) with relative_ci_low/high (delta method on log(p_t / p_h)),
    p_value (two-sided, pooled z), significant (p < 0.05; None when p is unknown) and note
    (why a figure is NaN, else None). ValueError when a count is negative, fractional, or a
    group converted more members than it has.
    """
    n_t = _check_count("n_t (treatment members)", n_t)
    n_h = _check_count("n_h (holdout members)", n_h)
    x_t = _check_count("x_t (treatment conversions)", x_t)
    x_h = _check_count("x_h (holdout conversions)", x_h)
    for group, x, n in (("treatment", x_t, n_t), ("holdout", x_h, n_h)):
        if x > n:
            raise ValueError(
                f"the {group} has {x} conversions but only {n} members: conversions are "
                "members with at least one order, so they cannot exceed the members"
            )
    p_t = x_t / n_t if n_t else NAN
    p_h = x_h / n_h if n_h else NAN
    notes: list[str] = []
    small = _small_groups(n_t, n_h)
    if small:
        notes.append(small)
        return _result(n_t, n_h, p_t, p_h, notes, absolute_lift=p_t - p_h)

    figures: dict[str, float] = {"absolute_lift": p_t - p_h}
    unpooled_se = math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    if unpooled_se > 0:
        half = _z() * unpooled_se
        figures["absolute_ci_low"] = p_t - p_h - half
        figures["absolute_ci_high"] = p_t - p_h + half
    else:
        notes.append(
            "no interval for the absolute lift: each group converted all or none of its members"
        )
    pooled = (x_t + x_h) / (n_t + n_h)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_h))
    if pooled_se > 0:
        z_stat = (p_t - p_h) / pooled_se
        figures["p_value"] = float(2 * stats.norm.sf(abs(z_stat)))
    else:
        notes.append(
            "no p-value: no variation, "
            + ("every member converted" if pooled == 1 else "no member converted")
            + " in both groups"
        )
    if x_h == 0:
        reason = "no relative lift: no holdout member converted (division by zero)"
    elif x_t == 0:
        reason = None
        notes.append("no interval for the relative lift: no treatment member converted")
    else:
        reason = None
    log_se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_h - 1 / n_h) if x_t and x_h else NAN
    figures.update(_relative(p_t / p_h if x_h else NAN, log_se, notes, reason))
    return _result(n_t, n_h, p_t, p_h, notes, **figures)


def welch_t_test(
    mean_t: float, var_t: float, n_t: int, mean_h: float, var_h: float, n_h: int
) -> dict[str, Any]:
    """Mean of treatment against holdout from summary statistics (sample variances, n - 1).

    Returns the same keys as `two_proportion_test`: treatment_value and holdout_value are the
    means; the absolute interval uses the t quantile at the Welch-Satterthwaite degrees of
    freedom; the relative interval the delta method on log(mean_t / mean_h) (defined for
    positive means); p_value is Welch's two-sided. ValueError for a negative variance or count.
    """
    n_t = _check_count("n_t (treatment members)", n_t)
    n_h = _check_count("n_h (holdout members)", n_h)
    mean_t = _check_number("mean_t", mean_t) if n_t else NAN
    mean_h = _check_number("mean_h", mean_h) if n_h else NAN
    var_t = _check_number("var_t", var_t)
    var_h = _check_number("var_h", var_h)
    for name, variance in (("var_t", var_t), ("var_h", var_h)):
        if variance < 0:
            raise ValueError(f"{name} is {variance!r}: a variance cannot be negative")
    notes: list[str] = []
    small = _small_groups(n_t, n_h)
    if small:
        notes.append(small)
        return _result(n_t, n_h, mean_t, mean_h, notes, absolute_lift=mean_t - mean_h)
    if math.isnan(var_t) or math.isnan(var_h):
        notes.append("no test: a group's variance is unknown")
        return _result(n_t, n_h, mean_t, mean_h, notes, absolute_lift=mean_t - mean_h)

    difference = mean_t - mean_h
    figures: dict[str, float] = {"absolute_lift": difference}
    share_t = var_t / n_t
    share_h = var_h / n_h
    se = math.sqrt(share_t + share_h)
    if se > 0:
        df = (share_t + share_h) ** 2 / (share_t**2 / (n_t - 1) + share_h**2 / (n_h - 1))
        half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
        figures["absolute_ci_low"] = difference - half
        figures["absolute_ci_high"] = difference + half
        figures["p_value"] = float(2 * stats.t.sf(abs(difference / se), df))
    else:
        notes.append("no interval or p-value: zero variance in both groups (every value equal)")
    if mean_h <= 0:
        reason = "no relative lift: the holdout mean is " + (
            "zero (division by zero)" if mean_h == 0 else "negative"
        )
    elif mean_t <= 0:
        reason = None
        notes.append("no interval for the relative lift: the treatment mean is not positive")
    else:
        reason = None
    if mean_t > 0 and mean_h > 0:
        log_se = math.sqrt(var_t / (n_t * mean_t**2) + var_h / (n_h * mean_h**2))
    else:
        log_se = NAN
    figures.update(_relative(mean_t / mean_h if mean_h > 0 else NAN, log_se, notes, reason))
    return _result(n_t, n_h, mean_t, mean_h, notes, **figures)


def _small_groups(n_t: int, n_h: int) -> str | None:
    """Why no statistics can be computed from groups this size, or None when they can."""
    if n_h == 0:
        return "no holdout members (holdout_percent 0?): nothing to compare with"
    if n_t == 0:
        return "no treatment members: nothing was exported"
    too_small = [
        f"the {group} has {n} member"
        for group, n in (("treatment", n_t), ("holdout", n_h))
        if n < 2
    ]
    if too_small:
        return " and ".join(too_small) + ": at least 2 per group are needed for a test"
    return None


_AGGREGATE_SQL = """
    select
        export_name,
        run_id,
        min(export_date) as export_date,
        min(window_days) as window_days,
        bool_and(window_complete{extra_complete}) as window_complete,
        count(*) filter (where group_name = 'treatment') as treatment_n,
        count(*) filter (where group_name = 'treatment' and converted) as treatment_converted,
        avg(cast(revenue_gbp as double)) filter (where group_name = 'treatment')
            as treatment_revenue_mean,
        var_samp(cast(revenue_gbp as double)) filter (where group_name = 'treatment')
            as treatment_revenue_var,
        count(*) filter (where group_name = 'holdout') as holdout_n,
        count(*) filter (where group_name = 'holdout' and converted) as holdout_converted,
        avg(cast(revenue_gbp as double)) filter (where group_name = 'holdout')
            as holdout_revenue_mean,
        var_samp(cast(revenue_gbp as double)) filter (where group_name = 'holdout')
            as holdout_revenue_var
    from {table}
    {where}
    group by export_name, run_id
    order by export_name, export_date, run_id
"""


def _aggregate(connection: duckdb.DuckDBPyConnection, as_of_at: datetime | None) -> pd.DataFrame:
    if as_of_at is None:
        sql = _AGGREGATE_SQL.format(table=OUTCOMES_TABLE, extra_complete="", where="")
        return connection.execute(sql).df()
    sql = _AGGREGATE_SQL.format(
        table=OUTCOMES_TABLE,
        extra_complete=" and window_end <= $as_of",
        where="where as_of <= $as_of",
    )
    return connection.execute(sql, {"as_of": as_of_at}).df()


def _nan_if_null(value: Any) -> float:
    return NAN if value is None or pd.isna(value) else float(value)


def measure_campaigns(
    connection: duckdb.DuckDBPyConnection,
    as_of: str | date | datetime | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Lift of every export run in marts.fct_campaign_outcomes, written to activation.campaign_lift.

    Per (export_name, run_id), DuckDB counts members and conversions and takes the mean and
    sample variance of revenue per group; Python runs `two_proportion_test` (metric
    conversion_rate) and `welch_t_test` (metric revenue_per_customer_gbp). Two rows per run,
    ordered by export_name, export_date, run_id, metric. `as_of` (a date means its end, as
    in ml/as_of.py), when given, measures only runs exported by its cutoff (one exported at
    the cutoff itself is listed, its window just opened) and calls a window complete only
    when it ended by then; None takes the mart as dbt built it.
    `computed_at` is `now` (naive UTC; default the current time). The table is replaced as a
    whole, in one transaction.
    """
    if not table_exists(connection, *OUTCOMES_TABLE.split(".")):
        raise LookupError(
            f"{OUTCOMES_TABLE} is not in the warehouse: build it first with the dbt selection "
            "'activation' (dbt build --select path:models/staging/activation "
            "path:models/marts/activation), after the export assets wrote activation.export_runs "
            "and activation.export_members"
        )
    as_of_at = cutoff(as_of) if as_of is not None else None
    computed_at = naive_utc(now or datetime.now(UTC))
    aggregates = _aggregate(connection, as_of_at)

    rows: list[dict[str, Any]] = []
    for run in aggregates.itertuples(index=False):
        common = {
            "export_name": run.export_name,
            "run_id": run.run_id,
            "export_date": pd.Timestamp(run.export_date).date(),
            "window_days": None if pd.isna(run.window_days) else int(run.window_days),
            "window_complete": bool(run.window_complete),
        }
        conversion = two_proportion_test(
            int(run.treatment_converted),
            int(run.treatment_n),
            int(run.holdout_converted),
            int(run.holdout_n),
        )
        revenue = welch_t_test(
            _nan_if_null(run.treatment_revenue_mean),
            _nan_if_null(run.treatment_revenue_var),
            int(run.treatment_n),
            _nan_if_null(run.holdout_revenue_mean),
            _nan_if_null(run.holdout_revenue_var),
            int(run.holdout_n),
        )
        for metric, test, result in (
            (CONVERSION, TWO_PROPORTION, conversion),
            (REVENUE, WELCH, revenue),
        ):
            rows.append(
                {**common, "metric": metric, "test": test, **result, "computed_at": computed_at}
            )

    frame = pd.DataFrame(rows, columns=list(LIFT_COLUMNS))
    _write(connection, frame)
    return frame


def _write(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    schema, _ = LIFT_TABLE.split(".")
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in LIFT_COLUMNS.items())
    names = ", ".join(LIFT_COLUMNS)
    connection.execute("begin transaction")
    try:
        connection.execute(f"create schema if not exists {schema}")
        connection.execute(f"create or replace table {LIFT_TABLE} (\n    {columns}\n)")
        if len(frame):
            connection.register("campaign_lift_frame", frame)
            try:
                connection.execute(
                    f"insert into {LIFT_TABLE} ({names}) select {names} from campaign_lift_frame"
                )
            finally:
                connection.unregister("campaign_lift_frame")
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise


# --- the report -------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}"
    return "+0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def _points(value: Any) -> str:
    """A difference of rates in percentage points, signed: +0.9."""
    return "n/a" if _missing(value) else _signed(100 * value, 1)


def _percent(value: Any, signed: bool = False) -> str:
    if _missing(value):
        return "n/a"
    return f"{_signed(100 * value, 1)}%" if signed else f"{100 * value:.1f}%"


def _pounds(value: Any, signed: bool = False) -> str:
    if _missing(value):
        return "n/a"
    if not signed:
        return f"£{value:,.2f}"
    text = _signed(value, 2)
    return f"{text[0]}£{float(text[1:]):,.2f}"


def _p(value: Any) -> str:
    if _missing(value):
        return "p not available"
    if value < 0.001:
        return "p < 0.001"
    return f"p = {value:.3f}" if value < 0.01 else f"p = {value:.2f}"


def _verdict(row: Any) -> str:
    if _missing(row["significant"]):
        return "significance unknown"
    return "significant" if row["significant"] else "not significant"


def _interval(low: Any, high: Any, fmt: Any) -> str:
    if _missing(low) or _missing(high):
        return "95% CI n/a"
    return f"95% CI {fmt(low)} to {fmt(high)}"


def _sentence(row: Any) -> str:
    """One plain-language line for one metric of one run."""
    if row["metric"] == CONVERSION:
        head = (
            f"Conversion {_percent(row['treatment_value'])} vs "
            f"{_percent(row['holdout_value'])} in the holdout: "
            f"{_points(row['absolute_lift'])} points"
        )
        interval = _interval(row["absolute_ci_low"], row["absolute_ci_high"], _points)
    else:
        head = (
            f"Revenue per customer {_pounds(row['treatment_value'])} vs "
            f"{_pounds(row['holdout_value'])} in the holdout: "
            f"{_pounds(row['absolute_lift'], signed=True)}"
        )

        def signed_pounds(value: Any) -> str:
            return _pounds(value, signed=True)

        interval = _interval(row["absolute_ci_low"], row["absolute_ci_high"], signed_pounds)
    line = f"{head} ({interval}), {_p(row['p_value'])}, {_verdict(row)}."
    if not _missing(row["note"]):
        line += f" Note: {row['note']}."
    return line


def _table_row(row: Any) -> str:
    if row["metric"] == CONVERSION:
        label, value, lift = "Conversion rate", _percent, _points
        lift_text = f"{lift(row['absolute_lift'])} pts"
    else:
        label = "Revenue per customer (GBP)"

        def value(number: Any) -> str:
            return _pounds(number)

        def lift(number: Any) -> str:
            return _pounds(number, signed=True)

        lift_text = lift(row["absolute_lift"])
    absolute = f"{lift_text} ({_interval(row['absolute_ci_low'], row['absolute_ci_high'], lift)})"

    def signed_percent(number: Any) -> str:
        return _percent(number, signed=True)

    relative_interval = _interval(row["relative_ci_low"], row["relative_ci_high"], signed_percent)
    relative = signed_percent(row["relative_lift"])
    if not _missing(row["relative_lift"]):
        relative += f" ({relative_interval})"
    test = "two-proportion z" if row["test"] == TWO_PROPORTION else "Welch t"
    significant = "n/a" if _missing(row["significant"]) else ("yes" if row["significant"] else "no")
    p_value = "n/a" if _missing(row["p_value"]) else _p(row["p_value"]).removeprefix("p ")
    p_value = p_value.removeprefix("= ")
    return (
        f"| {label} | {test} | {value(row['treatment_value'])} | {value(row['holdout_value'])} "
        f"| {absolute} | {relative} | {p_value} | {significant} |"
    )


def _warnings(rows: pd.DataFrame) -> list[str]:
    first = rows.iloc[0]
    warnings = []
    if not first["window_complete"]:
        days = first["window_days"]
        if _missing(days):
            warnings.append(
                "the measurement window is unknown (the run is missing from export_runs)"
            )
        else:
            end = pd.Timestamp(first["export_date"]).date() + timedelta(days=int(days))
            warnings.append(
                f"the {int(days)}-day measurement window is not complete (it ends around {end}): "
                "conversions can still come in, so these figures are provisional"
            )
    for group in ("treatment", "holdout"):
        n = int(first[f"{group}_n"])
        if n < MIN_GROUP_SIZE:
            warnings.append(
                f"the {group} group has only {n} member{'s' if n != 1 else ''} "
                f"(fewer than {MIN_GROUP_SIZE}): too small for a reliable comparison"
            )
    return warnings


def write_report(frame: pd.DataFrame, path: str | Path) -> Path:
    """A short Markdown report of `frame` (as returned by `measure_campaigns`); returns the path.

    One section per export run: its window, a table of both metrics, one plain-language line
    per metric, and a warning when the window is not complete or a group is too small.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Campaign lift",
        "",
        "Treatment (exported) against holdout (held back, never exported) members of each export "
        "run. A member converts with at least one completed order in the measurement window after "
        "the export; revenue is net, in GBP, per member. Lift is treatment minus holdout "
        "(relative: treatment / holdout - 1), with 95% confidence intervals; significant means "
        "p < 0.05 (two-proportion z test for conversion, Welch's t test for revenue).",
        "",
    ]
    if frame.empty:
        lines.append("No export runs to measure yet.")
    else:
        computed = frame["computed_at"].iloc[0]
        lines += [f"Computed at {pd.Timestamp(computed):%Y-%m-%d %H:%M:%S} UTC.", ""]
        order = frame.sort_values(["export_name", "export_date", "run_id"], kind="stable")
        for (export_name, run_id), rows in order.groupby(
            ["export_name", "run_id"], sort=False, dropna=False
        ):
            rows = rows.sort_values("metric", key=lambda column: column != CONVERSION)
            first = rows.iloc[0]
            days = first["window_days"]
            window = "unknown window" if _missing(days) else f"{int(days)}-day window"
            state = "complete" if first["window_complete"] else "not complete"
            lines += [
                f"## {export_name}, exported {pd.Timestamp(first['export_date']):%Y-%m-%d}",
                "",
                f"Run `{run_id}`; {window}, {state}; treatment {int(first['treatment_n']):,} "
                f"members, holdout {int(first['holdout_n']):,}.",
                "",
            ]
            for warning in _warnings(rows):
                lines += [f"> **Warning:** {warning}.", ""]
            lines += [
                "| Metric | Test | Treatment | Holdout | Absolute lift | Relative lift "
                "| p-value | Significant |",
                "|---|---|---|---|---|---|---|---|",
            ]
            lines += [_table_row(row) for _, row in rows.iterrows()]
            lines.append("")
            lines += [f"- {_sentence(row)}" for _, row in rows.iterrows()]
            lines.append("")
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return path


def write_chart(frame: pd.DataFrame, path: str | Path) -> Path:
    """PNG of the absolute lift with its 95% interval per export run, one panel per metric.

    Green points are significant (p < 0.05), grey ones are not or unknown; a run without an
    interval shows its point only, one without a lift shows nothing on its line.
    """
    from ml.clustering.charts import _save, plt

    height = max(2.5, 0.6 * frame["run_id"].nunique() + 1.5)
    figure, axes = plt.subplots(1, 2, figsize=(11, height))
    for axis, metric, title, scale, unit in (
        (axes[0], CONVERSION, "Conversion rate lift", 100.0, "percentage points"),
        (axes[1], REVENUE, "Revenue per customer lift", 1.0, "GBP"),
    ):
        rows = frame[frame["metric"] == metric].sort_values(["export_name", "export_date"])
        labels = [
            f"{row.export_name} {pd.Timestamp(row.export_date):%Y-%m-%d}"
            for row in rows.itertuples()
        ]
        positions = list(range(len(rows)))
        lift = rows["absolute_lift"].astype(float).to_numpy() * scale
        low = rows["absolute_ci_low"].astype(float).to_numpy() * scale
        high = rows["absolute_ci_high"].astype(float).to_numpy() * scale
        for position, point, low_end, high_end, significant in zip(
            positions, lift, low, high, rows["significant"], strict=True
        ):
            if math.isnan(point):
                continue
            colour = "tab:green" if not _missing(significant) and significant else "tab:gray"
            if not (math.isnan(low_end) or math.isnan(high_end)):
                axis.plot([low_end, high_end], [position, position], color=colour, linewidth=2)
            axis.scatter([point], [position], color=colour, zorder=3)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_yticks(positions, labels)
        axis.set_ylim(len(rows) - 0.5, -0.5)
        axis.set_title(title)
        axis.set_xlabel(f"treatment - holdout ({unit}), 95% CI")
        if not len(rows):
            axis.text(
                0.5, 0.5, "no export runs", ha="center", va="center", transform=axis.transAxes
            )
    figure.tight_layout()
    return _save(figure, path)
