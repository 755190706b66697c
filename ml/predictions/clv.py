"""Customer lifetime value: BG/NBD for repeat purchases and P(alive), Gamma-Gamma for spend.

Fitted here by maximum likelihood with scipy (L-BFGS-B on the log of each parameter), from the
closed forms of the papers:

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science
  24(2)): while active, a customer buys as a Poisson process of rate lambda ~ Gamma(r, alpha);
  after each purchase they drop out with probability p ~ Beta(a, b). Per customer, x repeat
  purchases, the last at t_x, observed for T since the first purchase (any unit of time; Teal
  uses days). Log-likelihood (equation 6 of the paper):
      ln B(a, b + x) - ln B(a, b) + ln G(r + x) - ln G(r) + r ln alpha
      + ln[ (alpha + T)^-(r+x) + [x > 0] a / (b + x - 1) (alpha + t_x)^-(r+x) ]
  Expected purchases in the next t (equation 10), P(alive) (Fader, Hardie & Lee 2008 note
  "Computing P(alive) using the BG/NBD model") and the expected purchases of a new customer
  in (0, t] (equation 9) are the functions below.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves", Journal of
  Marketing Research 42(4), and Fader & Hardie's note "The Gamma-Gamma model of monetary
  value"): a purchase's value ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers; fitted on
  the customers with at least one repeat purchase, from their number of purchases x and mean
  value m. E[M | x, m] = (gamma + x m) p / (p x + q - 1).

CLV over the next `months` = expected purchases x expected value per purchase (undiscounted,
in the currency of the values). Why not a library: `lifetimes` (last release 2020) is no longer
maintained, and PyMC-Marketing's CLV models bring PyMC, PyTensor (a C compiler at run time),
ArviZ, numba and some thirty other packages: too much for two closed-form likelihoods.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class BgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParameters:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def mean_value(self) -> float:
        """The population's expected value of a purchase, gamma p / (q - 1) (q > 1)."""
        return self.gamma * self.p / (self.q - 1) if self.q > 1 else float("inf")


def _by_value(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values of x, the index of each entry's value): the special functions of x
    (log-gamma, digamma, log-beta) are computed once per distinct count, not per customer."""
    return np.unique(x, return_inverse=True)


def bgnbd_log_likelihood(
    params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    return _bgnbd_terms(params, x, np.asarray(t_x, float), np.asarray(T, float), _by_value(x))[0]


def _bgnbd_terms(
    params: BgNbdParameters,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log-likelihood, log of the 'still active' term, log of the 'dropped out' term, log of
    their sum)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    distinct, index = groups
    common = (betaln(a, b + distinct) - betaln(a, b) + gammaln(r + distinct) - gammaln(r))[
        index
    ] + r * np.log(alpha)
    stayed = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full(x.shape, -np.inf)
    log_b = np.log(np.maximum(b + distinct - 1, np.finfo(float).tiny))[index]
    dropped[repeat] = np.log(a) - log_b[repeat] - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    total = np.logaddexp(stayed, dropped)
    return common + total, stayed, dropped, total


def _bgnbd_value_and_gradient(
    params: BgNbdParameters,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's log-likelihood and its derivatives by (r, alpha, a, b), 4 x n."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    groups = groups if groups is not None else _by_value(x)
    distinct, index = groups
    value, stayed, dropped, total = _bgnbd_terms(params, x, t_x, T, groups)
    repeat = x > 0
    share_stayed = np.exp(stayed - total)
    share_dropped = np.exp(dropped - total)
    safe_b = np.where(repeat, b + x - 1, 1.0)
    digamma_r = (digamma(r + distinct) - digamma(r))[index]
    digamma_ab = (digamma(a + b) - digamma(a + b + distinct))[index]
    digamma_b = (digamma(b + distinct) - digamma(b))[index]
    gradient = np.vstack(
        [
            digamma_r
            + np.log(alpha)
            - share_stayed * np.log(alpha + T)
            - share_dropped * np.log(alpha + t_x),
            r / alpha - (r + x) * (share_stayed / (alpha + T) + share_dropped / (alpha + t_x)),
            digamma_ab + share_dropped / a,
            digamma_b + digamma_ab - share_dropped / safe_b,
        ]
    )
    return value, gradient


def fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
    start: BgNbdParameters | None = None,
) -> tuple[BgNbdParameters, float]:
    """Maximum likelihood BG/NBD parameters and the total log-likelihood at them."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    scale = float(np.mean(T)) or 1.0
    total_weight = float(weights.sum())
    groups = _by_value(x)

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = BgNbdParameters(*np.exp(log_params))
        value, gradient = _bgnbd_value_and_gradient(params, x, t_x, T, groups)
        mean = float(np.dot(weights, value)) / total_weight
        if not np.isfinite(mean):
            return 1e300, np.zeros(4)
        # the chain rule through the log of each parameter
        slope = (gradient @ weights) / total_weight * np.exp(log_params)
        return -mean, -slope

    first = start or BgNbdParameters(1.0, scale, 1.0, 1.0)
    result = minimize(
        negative,
        np.log([first.r, first.alpha, first.a, first.b]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 4,
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-7},
    )
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParameters(float(r), float(alpha), float(a), float(b)), float(
        -result.fun * total_weight
    )


def expected_purchases_new_customer(params: BgNbdParameters, t: np.ndarray | float) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] of a customer just acquired (equation 9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def probability_alive(
    params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive | x, t_x, T): 1 for a customer without repeat purchases, else
    1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    with np.errstate(divide="ignore", over="ignore"):
        log_ratio = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        alive = 1.0 / (1.0 + np.exp(log_ratio))
    return np.where(x > 0, alive, 1.0)


def conditional_expected_purchases(
    params: BgNbdParameters, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] of a customer with this history
    (equation 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    z = t / (alpha + T + t)
    future = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    )
    return future * probability_alive(params, x, t_x, T)


def gamma_gamma_log_likelihood(
    params: GammaGammaParameters, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Each customer's Gamma-Gamma log-likelihood of a mean value m over x purchases."""
    x = np.asarray(x, dtype=np.float64)
    return _gamma_gamma_value(params, x, np.asarray(m, dtype=np.float64), _by_value(x))


def _gamma_gamma_value(
    params: GammaGammaParameters,
    x: np.ndarray,
    m: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    p, q, gamma = params.p, params.q, params.gamma
    distinct, index = groups
    per_x = (gammaln(p * distinct + q) - gammaln(p * distinct) + p * distinct * np.log(distinct))[
        index
    ]
    return (
        per_x
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        - (p * x + q) * np.log(gamma + x * m)
    )


def _gamma_gamma_value_and_gradient(
    params: GammaGammaParameters,
    x: np.ndarray,
    m: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's log-likelihood and its derivatives by (p, q, gamma), 3 x n."""
    p, q, gamma = params.p, params.q, params.gamma
    groups = groups if groups is not None else _by_value(x)
    distinct, index = groups
    value = _gamma_gamma_value(params, x, m, groups)
    spent = np.log(gamma + x * m)
    digamma_pxq = digamma(p * distinct + q)
    by_p = (distinct * (digamma_pxq - digamma(p * distinct) + np.log(distinct)))[index]
    gradient = np.vstack(
        [
            by_p + x * (np.log(m) - spent),
            digamma_pxq[index] - digamma(q) + np.log(gamma) - spent,
            q / gamma - (p * x + q) / (gamma + x * m),
        ]
    )
    return value, gradient


def fit_gamma_gamma(
    x: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None
) -> tuple[GammaGammaParameters, float]:
    """Maximum likelihood Gamma-Gamma parameters (x >= 1 and m > 0 for every customer)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if len(x) == 0 or np.any(x < 1) or np.any(m <= 0):
        raise ValueError(
            "Gamma-Gamma needs customers with at least one purchase and a positive mean value; "
            f"got {len(x)} customers, {int(np.sum(x < 1))} without purchases, "
            f"{int(np.sum(m <= 0))} with a mean value <= 0"
        )
    weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total_weight = float(weights.sum())
    groups = _by_value(x)

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = GammaGammaParameters(*np.exp(log_params))
        value, gradient = _gamma_gamma_value_and_gradient(params, x, m, groups)
        mean = float(np.dot(weights, value)) / total_weight
        if not np.isfinite(mean):
            return 1e300, np.zeros(3)
        slope = (gradient @ weights) / total_weight * np.exp(log_params)
        return -mean, -slope

    mean = float(np.average(m, weights=weights))
    result = minimize(
        negative,
        np.log([1.0, 3.0, 2.0 * mean]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 3,
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-7},
    )
    p, q, gamma = np.exp(result.x)
    return GammaGammaParameters(float(p), float(q), float(gamma)), float(-result.fun * total_weight)


def expected_purchase_value(
    params: GammaGammaParameters, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """E[M | x, m]: a customer's expected value per purchase; the population mean when x = 0."""
    p, q, gamma = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=np.float64)
    m = np.nan_to_num(np.asarray(m, dtype=np.float64))
    value = (gamma + x * m) * p / (p * x + q - 1)
    return np.where(x > 0, value, params.mean_value)


def simulate_bgnbd(
    params: BgNbdParameters, T: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(x, t_x) of customers drawn from the BG/NBD story, each observed for T after a first
    purchase at 0: draw lambda and p, then purchase gaps until the customer drops out (with
    probability p after each repeat purchase) or the window ends."""
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    rate = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    dropout = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    now = np.zeros(n)
    # the first purchase at 0 never ends a customer: dropping out follows repeat purchases
    active = np.ones(n, dtype=bool)
    while np.any(active):
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, size=len(idx)) / np.maximum(rate[idx], 1e-300)
        inside = now[idx] <= T[idx]
        bought = idx[inside]
        x[bought] += 1
        t_x[bought] = now[bought]
        active[idx[~inside]] = False
        active[bought] = rng.random(len(bought)) >= dropout[bought]
    return x, t_x


def simulate_gamma_gamma(
    params: GammaGammaParameters, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The mean purchase value of customers with x purchases each (x >= 1), drawn from the
    Gamma-Gamma story."""
    x = np.asarray(x, dtype=np.int64)
    nu = rng.gamma(params.q, 1.0 / params.gamma, size=len(x))
    # the sum of x Gamma(p, nu) values is Gamma(p x, nu)
    return rng.gamma(params.p * x, 1.0 / nu) / x


def customer_lifetime_value(
    bgnbd: BgNbdParameters,
    gamma_gamma: GammaGammaParameters,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    days: float,
) -> dict[str, np.ndarray]:
    """Expected purchases in the next `days`, P(alive), expected value per purchase and their
    product, the CLV, per customer (t_x and T in days)."""
    purchases = conditional_expected_purchases(bgnbd, days, x, t_x, T)
    value = expected_purchase_value(gamma_gamma, x, m)
    return {
        "expected_purchases": purchases,
        "p_alive": probability_alive(bgnbd, x, t_x, T),
        "expected_order_value": value,
        "clv": purchases * value,
    }
