"""Campaign measurement: the two tests against hand arithmetic and scipy, their edge cases, the
lift table written from a real DuckDB file, the Markdown report and the chart.

Expected values are computed here independently of ml/activation/measurement.py: the pooled z
test and the Wald and log-ratio intervals with explicit arithmetic (statsmodels is not
installed), Welch's test with scipy.stats.ttest_ind_from_stats(equal_var=False).
"""

from __future__ import annotations

import math
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest
from scipy import stats

from ml.activation.measurement import (
    LIFT_COLUMNS,
    measure_campaigns,
    two_proportion_test,
    welch_t_test,
    write_chart,
    write_report,
)

Z975 = 1.959963984540054  # the 97.5% quantile of the standard normal distribution
NOW = datetime(2026, 12, 1, 6, 0, 0)


def two_sided_normal_p(z_stat: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z, by the complementary error function."""
    return math.erfc(abs(z_stat) / math.sqrt(2))


def hand_two_proportion(x_t: int, n_t: int, x_h: int, n_h: int) -> dict[str, float]:
    p_t, p_h = x_t / n_t, x_h / n_h
    wald_se = math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    pooled = (x_t + x_h) / (n_t + n_h)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_h))
    log_se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_h - 1 / n_h)
    return {
        "treatment_value": p_t,
        "holdout_value": p_h,
        "absolute_lift": p_t - p_h,
        "absolute_ci_low": p_t - p_h - Z975 * wald_se,
        "absolute_ci_high": p_t - p_h + Z975 * wald_se,
        "relative_lift": p_t / p_h - 1,
        "relative_ci_low": math.exp(math.log(p_t / p_h) - Z975 * log_se) - 1,
        "relative_ci_high": math.exp(math.log(p_t / p_h) + Z975 * log_se) - 1,
        "p_value": two_sided_normal_p((p_t - p_h) / pooled_se),
    }


def hand_welch(m_t: float, v_t: float, n_t: int, m_h: float, v_h: float, n_h: int) -> dict:
    se = math.sqrt(v_t / n_t + v_h / n_h)
    df = (v_t / n_t + v_h / n_h) ** 2 / (
        (v_t / n_t) ** 2 / (n_t - 1) + (v_h / n_h) ** 2 / (n_h - 1)
    )
    quantile = stats.t.ppf(0.975, df)
    log_se = math.sqrt(v_t / (n_t * m_t**2) + v_h / (n_h * m_h**2))
    scipy_result = stats.ttest_ind_from_stats(
        m_t, math.sqrt(v_t), n_t, m_h, math.sqrt(v_h), n_h, equal_var=False
    )
    return {
        "treatment_value": m_t,
        "holdout_value": m_h,
        "absolute_lift": m_t - m_h,
        "absolute_ci_low": m_t - m_h - quantile * se,
        "absolute_ci_high": m_t - m_h + quantile * se,
        "relative_lift": m_t / m_h - 1,
        "relative_ci_low": math.exp(math.log(m_t / m_h) - Z975 * log_se) - 1,
        "relative_ci_high": math.exp(math.log(m_t / m_h) + Z975 * log_se) - 1,
        "p_value": float(scipy_result.pvalue),
    }


def assert_figures(result: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


# --- two_proportion_test ------------------------------------------------------------------


def test_two_proportion_200_of_1000_against_150_of_1000():
    result = two_proportion_test(200, 1000, 150, 1000)

    assert_figures(result, hand_two_proportion(200, 1000, 150, 1000))
    # The same figures written out: 20% vs 15%, +5 points (+1.68 to +8.32), p = 0.0033.
    assert result["absolute_lift"] == pytest.approx(0.05)
    assert result["absolute_ci_low"] == pytest.approx(0.016767193754520, rel=1e-9)
    assert result["absolute_ci_high"] == pytest.approx(0.083232806245479, rel=1e-9)
    assert result["relative_lift"] == pytest.approx(1 / 3)
    assert result["p_value"] == pytest.approx(0.0032562696284, rel=1e-9)
    assert result["treatment_n"] == 1000 and result["holdout_n"] == 1000
    assert result["significant"] is True
    assert result["note"] is None


def test_two_proportion_not_significant_and_negative_lift():
    result = two_proportion_test(30, 1000, 35, 1000)

    assert_figures(result, hand_two_proportion(30, 1000, 35, 1000))
    assert result["absolute_lift"] == pytest.approx(-0.005)
    assert result["relative_ci_low"] < result["relative_lift"] < result["relative_ci_high"]
    assert result["significant"] is False


def test_two_proportion_no_holdout_conversion_has_no_relative_lift():
    result = two_proportion_test(3, 10, 0, 10)

    assert result["absolute_lift"] == pytest.approx(0.3)
    wald_se = math.sqrt(0.3 * 0.7 / 10)
    assert result["absolute_ci_low"] == pytest.approx(0.3 - Z975 * wald_se, rel=1e-12)
    pooled_se = math.sqrt(0.15 * 0.85 * (1 / 10 + 1 / 10))
    assert result["p_value"] == pytest.approx(two_sided_normal_p(0.3 / pooled_se), rel=1e-12)
    assert math.isnan(result["relative_lift"])
    assert math.isnan(result["relative_ci_low"]) and math.isnan(result["relative_ci_high"])
    assert result["note"] == "no relative lift: no holdout member converted (division by zero)"


def test_two_proportion_no_treatment_conversion_has_a_relative_lift_without_interval():
    result = two_proportion_test(0, 10, 2, 10)

    assert result["relative_lift"] == pytest.approx(-1.0)
    assert math.isnan(result["relative_ci_low"])
    assert result["note"] == "no interval for the relative lift: no treatment member converted"


def test_two_proportion_without_any_conversion_gives_no_test():
    result = two_proportion_test(0, 50, 0, 20)

    assert result["absolute_lift"] == 0.0
    for key in ("absolute_ci_low", "absolute_ci_high", "p_value", "relative_lift"):
        assert math.isnan(result[key]), key
    assert result["significant"] is None
    assert result["note"] == (
        "no interval for the absolute lift: each group converted all or none of its members; "
        "no p-value: no variation, no member converted in both groups; "
        "no relative lift: no holdout member converted (division by zero)"
    )


@pytest.mark.parametrize(
    ("counts", "note"),
    [
        ((1, 1, 3, 10), "the treatment has 1 member: at least 2 per group are needed for a test"),
        (
            (1, 1, 0, 1),
            "the treatment has 1 member and the holdout has 1 member: "
            "at least 2 per group are needed for a test",
        ),
        ((4, 10, 0, 0), "no holdout members (holdout_percent 0?): nothing to compare with"),
        ((0, 0, 1, 10), "no treatment members: nothing was exported"),
    ],
)
def test_two_proportion_groups_too_small(counts, note):
    result = two_proportion_test(*counts)

    for key in ("absolute_ci_low", "absolute_ci_high", "relative_lift", "p_value"):
        assert math.isnan(result[key]), key
    assert result["significant"] is None
    assert result["note"] == note


def test_two_proportion_rejects_impossible_counts():
    with pytest.raises(ValueError, match="the treatment has 11 conversions but only 10 members"):
        two_proportion_test(11, 10, 1, 10)
    with pytest.raises(ValueError, match=r"n_h \(holdout members\) is -1"):
        two_proportion_test(1, 10, 0, -1)
    with pytest.raises(ValueError, match=r"x_t \(treatment conversions\) is 1.5"):
        two_proportion_test(1.5, 10, 0, 10)


# --- welch_t_test -------------------------------------------------------------------------


def test_welch_against_scipy_and_hand_intervals():
    result = welch_t_test(12.5, 400.0, 1000, 10.0, 300.0, 800)

    assert_figures(result, hand_welch(12.5, 400.0, 1000, 10.0, 300.0, 800))
    # Written out: +2.50 GBP (0.77 to 4.23), +25%, p = 0.0046.
    assert result["absolute_ci_low"] == pytest.approx(0.773394022365, rel=1e-9)
    assert result["absolute_ci_high"] == pytest.approx(4.226605977635, rel=1e-9)
    assert result["p_value"] == pytest.approx(0.004565158569, rel=1e-9)
    assert result["relative_lift"] == pytest.approx(0.25)
    assert result["significant"] is True
    assert result["note"] is None


def test_welch_unequal_sizes_and_variances_not_significant():
    result = welch_t_test(4.2, 90.0, 40, 3.9, 10.0, 12)

    assert_figures(result, hand_welch(4.2, 90.0, 40, 3.9, 10.0, 12))
    assert result["significant"] is False


def test_welch_zero_variance_in_both_groups():
    result = welch_t_test(5.0, 0.0, 10, 5.0, 0.0, 10)

    assert result["absolute_lift"] == 0.0
    assert result["relative_lift"] == 0.0
    for key in ("absolute_ci_low", "absolute_ci_high", "relative_ci_low", "p_value"):
        assert math.isnan(result[key]), key
    assert result["significant"] is None
    assert (
        result["note"] == "no interval or p-value: zero variance in both groups (every value equal)"
    )


def test_welch_zero_variance_in_one_group_still_tests():
    sample = [4.0, 8.0] * 5  # mean 6, sample variance 40 / 9
    result = welch_t_test(6.0, 40 / 9, 10, 5.0, 0.0, 10)

    # With var_h = 0 the Welch df is n_t - 1: a one-sample t test of the treatment against 5.
    expected = stats.ttest_1samp(sample, 5.0)
    assert result["p_value"] == pytest.approx(float(expected.pvalue), rel=1e-9)
    half = stats.t.ppf(0.975, 9) * math.sqrt(40 / 9 / 10)
    assert result["absolute_ci_low"] == pytest.approx(1.0 - half, rel=1e-12)
    assert result["absolute_ci_high"] == pytest.approx(1.0 + half, rel=1e-12)


def test_welch_zero_holdout_revenue_has_no_relative_lift():
    result = welch_t_test(3.0, 20.0, 50, 0.0, 0.0, 50)

    assert result["absolute_lift"] == 3.0
    assert not math.isnan(result["p_value"])
    assert math.isnan(result["relative_lift"])
    assert result["note"] == "no relative lift: the holdout mean is zero (division by zero)"


def test_welch_groups_too_small_and_bad_input():
    result = welch_t_test(5.0, float("nan"), 1, 4.0, 2.0, 10)
    assert math.isnan(result["p_value"])
    assert (
        result["note"] == "the treatment has 1 member: at least 2 per group are needed for a test"
    )

    with pytest.raises(ValueError, match="var_h is -1.0: a variance cannot be negative"):
        welch_t_test(5.0, 1.0, 10, 4.0, -1.0, 10)


# --- measure_campaigns on a real DuckDB file ----------------------------------------------

OUTCOME_COLUMNS = (
    "run_id varchar, export_name varchar, segment_name varchar, export_date date, "
    "as_of timestamp, window_days integer, window_end timestamp, customer_id varchar, "
    "group_name varchar, converted boolean, orders_in_window bigint, "
    "revenue_gbp decimal(18, 2), window_complete boolean"
)


def outcome_rows() -> list[tuple]:
    """Run r1 of `cart` (complete): treatment 10 members, 4 converted, revenue 10, 20, 30, 40
    and six zeros (mean 10, variance 2000/9); holdout 5, 1 converted with 25 (mean 5, variance
    125). Run r2 of `welcome` (window still open): treatment 3 (one converted with 12), holdout 1.
    """
    rows = []
    r1 = ("r1", "cart", "cart_abandoners_24h", date(2026, 11, 10), datetime(2026, 11, 10))
    r1_window = (14, datetime(2026, 11, 24))
    for number, revenue in enumerate([10, 20, 30, 40, 0, 0, 0, 0, 0, 0]):
        rows.append(
            (*r1, *r1_window, f"cus_t{number:02d}", "treatment", revenue > 0, int(revenue > 0))
            + (revenue, True)
        )
    for number, revenue in enumerate([25, 0, 0, 0, 0]):
        rows.append(
            (*r1, *r1_window, f"cus_h{number:02d}", "holdout", revenue > 0, int(revenue > 0))
            + (revenue, True)
        )
    r2 = ("r2", "welcome", "new_customers", date(2026, 11, 25), datetime(2026, 11, 25))
    r2_window = (7, datetime(2026, 12, 2))
    for number, revenue in enumerate([12, 0, 0]):
        rows.append(
            (*r2, *r2_window, f"cus_w{number:02d}", "treatment", revenue > 0, int(revenue > 0))
            + (revenue, False)
        )
    rows.append((*r2, *r2_window, "cus_v00", "holdout", False, 0, 0, False))
    return rows


@pytest.fixture
def warehouse(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema marts")
    connection.execute(f"create table marts.fct_campaign_outcomes ({OUTCOME_COLUMNS})")
    connection.executemany(
        "insert into marts.fct_campaign_outcomes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        outcome_rows(),
    )
    yield connection
    connection.close()


def lift_table(connection) -> pd.DataFrame:
    return connection.execute(
        "select * from activation.campaign_lift order by export_name, run_id, metric"
    ).df()


def test_measure_campaigns_writes_exact_rows(warehouse):
    frame = measure_campaigns(warehouse, now=NOW)
    table = lift_table(warehouse)

    assert list(table.columns) == list(LIFT_COLUMNS)
    assert len(frame) == len(table) == 4
    assert list(
        zip(table["export_name"], table["run_id"], table["metric"], table["test"], strict=True)
    ) == [
        ("cart", "r1", "conversion_rate", "two_proportion_z"),
        ("cart", "r1", "revenue_per_customer_gbp", "welch_t"),
        ("welcome", "r2", "conversion_rate", "two_proportion_z"),
        ("welcome", "r2", "revenue_per_customer_gbp", "welch_t"),
    ]
    conversion, revenue, open_conversion, open_revenue = (row for _, row in table.iterrows())

    assert conversion["export_date"] == pd.Timestamp("2026-11-10")
    assert conversion["window_days"] == 14 and bool(conversion["window_complete"]) is True
    assert (conversion["treatment_n"], conversion["holdout_n"]) == (10, 5)
    assert_figures(conversion.to_dict(), hand_two_proportion(4, 10, 1, 5))
    assert bool(conversion["significant"]) is False
    assert conversion["note"] is None or pd.isna(conversion["note"])
    assert conversion["computed_at"] == pd.Timestamp(NOW)

    assert_figures(revenue.to_dict(), hand_welch(10.0, 2000 / 9, 10, 5.0, 125.0, 5))
    assert (revenue["treatment_value"], revenue["holdout_value"]) == (10.0, 5.0)

    assert bool(open_conversion["window_complete"]) is False
    assert (open_conversion["treatment_n"], open_conversion["holdout_n"]) == (3, 1)
    assert open_conversion["treatment_value"] == pytest.approx(1 / 3)
    assert open_conversion["holdout_value"] == 0.0
    for row in (open_conversion, open_revenue):
        assert pd.isna(row["p_value"]) and pd.isna(row["absolute_ci_low"])
        assert pd.isna(row["significant"])
        assert row["note"] == (
            "the holdout has 1 member: at least 2 per group are needed for a test"
        )
    assert open_revenue["treatment_value"] == pytest.approx(4.0)


def test_measure_campaigns_as_of_leaves_out_later_exports_and_open_windows(warehouse):
    frame = measure_campaigns(warehouse, as_of="2026-11-20", now=NOW)

    # Cutoff 2026-11-21 00:00: r2 (exported 11-25) is not measured; r1's window (to 11-24)
    # has not ended by then.
    assert set(frame["run_id"]) == {"r1"}
    assert frame["window_complete"].tolist() == [False, False]
    assert lift_table(warehouse)["run_id"].tolist() == ["r1", "r1"]


def test_an_export_made_at_the_cutoff_is_listed_with_its_window_just_opened(warehouse):
    # as of 2026-11-24: cutoff 2026-11-25 00:00, the moment r2 was exported
    frame = measure_campaigns(warehouse, as_of="2026-11-24", now=NOW)

    assert frame["run_id"].tolist() == ["r1", "r1", "r2", "r2"]
    assert frame["window_complete"].tolist() == [True, True, False, False]


def test_measure_campaigns_replaces_the_table(warehouse):
    measure_campaigns(warehouse, now=NOW)
    warehouse.execute("delete from marts.fct_campaign_outcomes where run_id = 'r2'")
    measure_campaigns(warehouse, now=NOW)

    assert lift_table(warehouse)["run_id"].tolist() == ["r1", "r1"]


def test_measure_campaigns_with_no_runs_writes_an_empty_table(warehouse):
    warehouse.execute("delete from marts.fct_campaign_outcomes")

    frame = measure_campaigns(warehouse, now=NOW)

    assert frame.empty and list(frame.columns) == list(LIFT_COLUMNS)
    assert lift_table(warehouse).empty


def test_measure_campaigns_without_the_mart_says_what_to_build(tmp_path):
    connection = duckdb.connect(str(tmp_path / "empty.duckdb"))
    with pytest.raises(LookupError, match="marts.fct_campaign_outcomes is not in the warehouse"):
        measure_campaigns(connection)
    connection.close()


# --- report and chart ---------------------------------------------------------------------


def test_report_has_a_section_per_run_with_plain_lines_and_warnings(warehouse, tmp_path):
    frame = measure_campaigns(warehouse, now=NOW)
    path = write_report(frame, tmp_path / "reports" / "campaign_lift.md")
    text = path.read_text(encoding="utf-8")

    # 40% vs 20%: Wald half-width 1.96 * sqrt(.4 * .6 / 10 + .2 * .8 / 5) = 46.4 points;
    # pooled z = .2 / sqrt(1/3 * 2/3 * (1/10 + 1/5)) = 0.7746, p = 0.44.
    assert (
        "- Conversion 40.0% vs 20.0% in the holdout: +20.0 points (95% CI -26.4 to +66.4), "
        "p = 0.44, not significant." in text
    )
    # Welch: +5.00 with half-width t(0.975, df) * sqrt(2000/9/10 + 125/5) = 15.20, p = 0.48.
    welch = hand_welch(10.0, 2000 / 9, 10, 5.0, 125.0, 5)
    assert (round(welch["absolute_ci_low"], 2), round(welch["absolute_ci_high"], 2)) == (
        -10.20,
        20.20,
    )
    assert round(welch["p_value"], 2) == 0.48
    assert (
        "- Revenue per customer £10.00 vs £5.00 in the holdout: +£5.00 "
        "(95% CI -£10.20 to +£20.20), p = 0.48, not significant." in text
    )
    assert (
        "| Conversion rate | two-proportion z | 40.0% | 20.0% | +20.0 pts (95% CI -26.4 to +66.4) "
        "| +100.0% (95% CI -70.4% to +1251.1%) | 0.44 | no |" in text
    )
    assert (
        "| Conversion rate | two-proportion z | 33.3% | 0.0% | +33.3 pts (95% CI n/a) | n/a "
        "| n/a | n/a |" in text
    )
    assert "## cart, exported 2026-11-10" in text
    assert "## welcome, exported 2026-11-25" in text
    assert text.index("## cart") < text.index("## welcome")
    assert (
        "> **Warning:** the 7-day measurement window is not complete (it ends around 2026-12-02)"
        in text
    )
    assert "> **Warning:** the holdout group has only 1 member (fewer than 30)" in text
    assert "Note: the holdout has 1 member: at least 2 per group are needed for a test." in text
    assert "Computed at 2026-12-01 06:00:00 UTC." in text


def test_report_without_runs(tmp_path):
    frame = pd.DataFrame(columns=list(LIFT_COLUMNS))
    text = write_report(frame, tmp_path / "campaign_lift.md").read_text(encoding="utf-8")

    assert "No export runs to measure yet." in text


def test_chart_is_a_png(warehouse, tmp_path):
    frame = measure_campaigns(warehouse, now=NOW)
    path = write_chart(frame, tmp_path / "charts" / "campaign_lift.png")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
