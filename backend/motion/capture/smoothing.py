"""L1 trend filtering of per-frame estimates: the robust temporal smoother that
turns per-frame fits into a motion before the whole-clip solve refines it.

minimise  Σ_t w_t |x_t - y_t|²  +  λ Σ_t |x_{t+1} - 2 x_t + x_{t-1}|

The L1 penalty on acceleration (the norm of a group's vector acceleration) makes
the result piecewise linear in time: noise on a held pose is flattened to a
constant, while a fast move costs only linearly and keeps its peak; frames with
no data (w = 0) are bridged by straight lines. Solved by iteratively reweighted
least squares: each iteration is one banded (pentadiagonal) solve
(scipy.linalg.solveh_banded), linear in the number of frames.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded


def _second_difference_bands(n: int, omega: np.ndarray) -> np.ndarray:
    """Upper banded form (3, n) of D2ᵀ diag(omega) D2 (omega (n-2,))."""
    ab = np.zeros((3, n))
    # D2 row k touches k, k+1, k+2 with (1, -2, 1).
    coeffs = np.array([1.0, -2.0, 1.0])
    for a in range(3):
        for b in range(a, 3):
            vals = omega * coeffs[a] * coeffs[b]
            # entry (k + a, k + b) sits at row 2 - (b - a), column k + b of the upper band
            ab[2 - (b - a), b:n - 2 + b] += vals
    return ab


def trend_filter(y: np.ndarray, weights: np.ndarray, lam: float, eps: float = 1e-4,
                 iterations: int = 12) -> np.ndarray:
    """Smooth y (T, k) (k components smoothed as one vector) with data weights (T,) and
    L1 acceleration weight `lam`; returns (T, k)."""
    y = np.asarray(y, np.float64)
    n = len(y)
    w = np.asarray(weights, np.float64)
    if n < 3 or lam <= 0:
        return y.copy()
    x = y.copy()
    for _ in range(iterations):
        acc = np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1)
        omega = lam / (2.0 * np.maximum(acc, eps))      # the quadratic that touches lam·|a| at the current a
        ab = _second_difference_bands(n, omega)
        ab[2] += w + 1e-9
        x = solveh_banded(ab, w[:, None] * y)
    return x
