"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky,
"Collaborative filtering for implicit feedback datasets", ICDM 2008), in numpy and scipy.

Every (user, item) pair has a preference p (1 when they interacted, else 0) and a confidence
c = 1 + confidence x weight. With item factors Y fixed, each user's factors solve
    (Y'Y + Y'(C_u - I)Y + reg I) x_u = Y' C_u p_u,
where Y'(C_u - I)Y = sum over the user's items of (c - 1) y y': one sparse product with the
items' outer products (items x factors^2) gives every user's matrix at once, and numpy solves
the small systems in batches. Items are solved the same way with the users' factors, summing
the users' outer products chunk by chunk so memory stays bounded.

Fitting runs on a seeded sample of users (`als_sample_users`); every user with an interaction
then has their factors solved once against the item factors ("fold-in"), so a million
customers cost one pass (users without any interaction keep factors of 0).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

_CHUNK = 20_000


def solve_rows(
    confidence: sparse.csr_matrix, fixed: np.ndarray, regularization: float
) -> np.ndarray:
    """Factors of every row of `confidence` (rows x cols, values c - 1) given the columns'
    factors `fixed` (cols x f)."""
    rows, cols = confidence.shape
    f = fixed.shape[1]
    gram = fixed.T @ fixed + regularization * np.eye(f)
    result = np.zeros((rows, f))
    small_columns = cols * f * f <= 60_000_000
    if small_columns:
        outer = np.einsum("ij,ik->ijk", fixed, fixed).reshape(cols, f * f)
    else:
        by_column = confidence.tocsc()
    for start in range(0, rows, _CHUNK):
        block = confidence[start : start + _CHUNK]
        if small_columns:
            extra = np.asarray(block @ outer)
        else:
            extra = np.zeros((block.shape[0], f * f))
            for first in range(0, cols, _CHUNK):
                part = by_column[start : start + _CHUNK, first : first + _CHUNK]
                chunk = fixed[first : first + _CHUNK]
                extra += part @ np.einsum("ij,ik->ijk", chunk, chunk).reshape(len(chunk), f * f)
        systems = gram[None, :, :] + extra.reshape(-1, f, f)
        # right-hand side: sum of c y over the row's columns, c = 1 + (c - 1)
        ones = block.copy()
        ones.data = np.ones_like(ones.data)
        rhs = np.asarray(ones @ fixed + block @ fixed)
        result[start : start + block.shape[0]] = np.linalg.solve(systems, rhs[..., None])[..., 0]
    return result


def fit_als(
    weights: sparse.csr_matrix,
    *,
    factors: int,
    iterations: int,
    regularization: float,
    confidence: float,
    sample_rows: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """User factors (every row of `weights`) and item factors, fitted on `sample_rows`."""
    rng = np.random.default_rng(seed)
    scaled = weights.multiply(confidence).tocsr().astype(np.float64)
    sample = scaled[sample_rows]
    items = rng.normal(0, 0.01, size=(weights.shape[1], factors))
    users = np.zeros((len(sample_rows), factors))
    by_item = sample.T.tocsr()
    for _ in range(iterations):
        users = solve_rows(sample, items, regularization)
        items = solve_rows(by_item, users, regularization)
    # fold-in: every user with an interaction (a user without one has the factors 0 anyway)
    everyone = np.zeros((weights.shape[0], factors))
    active = np.flatnonzero(np.diff(scaled.indptr))
    everyone[active] = solve_rows(scaled[active], items, regularization)
    return everyone, items
