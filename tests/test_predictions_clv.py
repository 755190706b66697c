"""BG/NBD and Gamma-Gamma: the published CDNOW figures, closed forms against simulation, and
parameters recovered from data simulated with known ones."""

from __future__ import annotations

import numpy as np
import pytest

from ml.predictions import clv

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2):
# the BG/NBD parameters fitted on the CDNOW sample (2,357 customers, 39 weeks, time in weeks).
CDNOW = clv.BgNbdParameters(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_cdnow_parameters_give_the_published_conditional_expectation() -> None:
    # The paper's worked example (and Hardie's spreadsheet of it): customer 0001 of the CDNOW
    # sample made x = 2 repeat purchases, the last at t_x = 30.43 weeks, observed for
    # T = 38.86 weeks; expected purchases in the next 39 weeks, equation (10): 1.226.
    expected = clv.conditional_expected_purchases(CDNOW, 39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=0.0005)


def test_a_new_customer_expectation_is_the_conditional_one_with_no_history() -> None:
    # E[X(t)] (equation 9) must equal E[Y(t) | x = 0, t_x = 0, T = 0] (equation 10)
    for t in (1.0, 39.0, 78.0):
        new = clv.expected_purchases_new_customer(CDNOW, t)
        conditional = clv.conditional_expected_purchases(CDNOW, t, 0, 0.0, 0.0)
        assert float(new) == pytest.approx(float(conditional), rel=1e-10)


def test_expected_purchases_of_a_new_customer_match_simulation() -> None:
    rng = np.random.default_rng(3)
    T = np.full(200_000, 39.0)
    x, _ = clv.simulate_bgnbd(CDNOW, T, rng)
    assert x.mean() == pytest.approx(
        float(clv.expected_purchases_new_customer(CDNOW, 39.0)), rel=0.02
    )


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    alive = clv.probability_alive(
        CDNOW, np.array([0, 2, 2, 2]), np.array([0, 30, 30, 30]), np.array([38.86, 31, 38.86, 60])
    )
    assert alive[0] == 1.0
    assert 1.0 > alive[1] > alive[2] > alive[3] > 0.0


def test_bgnbd_recovers_simulated_parameters_within_five_percent() -> None:
    true = clv.BgNbdParameters(r=0.8, alpha=60.0, a=0.6, b=2.5)
    rng = np.random.default_rng(7)
    T = rng.uniform(200, 700, size=50_000)
    x, t_x = clv.simulate_bgnbd(true, T, rng)
    fitted, log_likelihood = clv.fit_bgnbd(x, t_x, T)
    for name, value in true.as_dict().items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.05), name
    # the optimum is at least as likely as the truth
    assert log_likelihood >= clv.bgnbd_log_likelihood(true, x, t_x, T).sum()


def test_gamma_gamma_recovers_simulated_parameters_within_five_percent() -> None:
    # the spend parameters of the CDNOW sample in Fader, Hardie & Lee (2005, JMR)
    true = clv.GammaGammaParameters(p=6.25, q=3.74, gamma=15.44)
    # p is told apart from gamma by how much one customer's purchases vary, which few
    # purchases per customer show best (the mean of many purchases is p / nu, whatever p)
    rng = np.random.default_rng(11)
    x = rng.integers(1, 5, size=50_000)
    m = clv.simulate_gamma_gamma(true, x, rng)
    fitted, _ = clv.fit_gamma_gamma(x, m)
    for name, value in true.as_dict().items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.05), name


def test_gradients_match_finite_differences() -> None:
    from ml.predictions.clv import _bgnbd_value_and_gradient, _gamma_gamma_value_and_gradient

    x = np.array([0.0, 1.0, 4.0])
    t_x = np.array([0.0, 10.0, 30.0])
    T = np.array([20.0, 25.0, 40.0])
    point = clv.BgNbdParameters(0.7, 5.0, 0.9, 2.1)
    value, gradient = _bgnbd_value_and_gradient(point, x, t_x, T)
    for row, name in enumerate(("r", "alpha", "a", "b")):
        moved = point.as_dict()
        moved[name] += 1e-7
        numeric = (clv.bgnbd_log_likelihood(clv.BgNbdParameters(**moved), x, t_x, T) - value) / 1e-7
        np.testing.assert_allclose(gradient[row], numeric, rtol=1e-4, atol=1e-5)
    spend = clv.GammaGammaParameters(6.0, 3.5, 15.0)
    counts = np.array([1.0, 3.0])
    means = np.array([20.0, 35.0])
    value, gradient = _gamma_gamma_value_and_gradient(spend, counts, means)
    for row, name in enumerate(("p", "q", "gamma")):
        moved = spend.as_dict()
        moved[name] += 1e-7
        numeric = (
            clv.gamma_gamma_log_likelihood(clv.GammaGammaParameters(**moved), counts, means) - value
        ) / 1e-7
        np.testing.assert_allclose(gradient[row], numeric, rtol=1e-4, atol=1e-5)


def test_expected_value_shrinks_a_customer_mean_towards_the_population() -> None:
    spend = clv.GammaGammaParameters(p=6.25, q=3.74, gamma=15.44)
    population = spend.mean_value
    assert population == pytest.approx(15.44 * 6.25 / 2.74)
    values = clv.expected_purchase_value(
        spend, np.array([0, 1, 50]), np.array([np.nan, 100.0, 100.0])
    )
    assert values[0] == pytest.approx(population)
    # (gamma + x m) p / (p x + q - 1)
    assert values[1] == pytest.approx((15.44 + 100.0) * 6.25 / (6.25 + 2.74))
    assert population < values[1] < values[2] < 100.0


def test_gamma_gamma_refuses_customers_without_purchases() -> None:
    with pytest.raises(ValueError, match="without purchases"):
        clv.fit_gamma_gamma(np.array([0, 2]), np.array([10.0, 20.0]))
