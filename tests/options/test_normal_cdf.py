"""The branch-free normal CDF of the full-revaluation kernel equals the library functions.

References: mpmath at 50 digits (``erfc``, and the derivation of the stored coefficients)
and ``scipy.special.ndtr``. The tolerances are the accuracy the module docstring states.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from scipy.special import ndtr

from engine.options.normal_cdf import ERFCX_POWERS, erfcx_array, exp_arith, norm_cdf_array


def _erfcx_powers(degree: int = 24, nodes: int = 80) -> np.ndarray:
    """The derivation of the module docstring: Chebyshev interpolant of erfcx(z)/t in y."""
    mp.mp.dps = 50

    def q(y):
        t = (y + 1) / 2
        z = 2 / t - 2
        return mp.erfc(z) * mp.exp(z * z) / t

    ys = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / nodes) for k in range(nodes)]
    values = [q(y) for y in ys]
    cheb = [
        2 / mp.mpf(nodes) * sum(v * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / nodes)
                                for k, v in enumerate(values))
        for j in range(degree + 1)
    ]  # fmt: skip
    cheb[0] /= 2
    t_prev, t_cur = [mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]  # T_0, T_1 in powers of y
    powers = [cheb[0] * 1] + [mp.mpf(0)] * degree
    powers[1] += cheb[1]
    for j in range(2, degree + 1):
        t_next = [mp.mpf(0)] * (j + 1)
        for i, a in enumerate(t_cur):
            t_next[i + 1] += 2 * a
        for i, a in enumerate(t_prev):
            t_next[i] -= a
        for i, a in enumerate(t_next):
            powers[i] += cheb[j] * a
        t_prev, t_cur = t_cur, t_next
    return np.array([float(p) for p in powers])


def test_the_stored_coefficients_are_the_documented_chebyshev_interpolant() -> None:
    np.testing.assert_allclose(ERFCX_POWERS, _erfcx_powers(), rtol=1e-13, atol=1e-20)


def test_erfcx_is_within_1e_15_relative_of_mpmath_on_0_to_30() -> None:
    mp.mp.dps = 30
    z = np.concatenate([[0.0], np.geomspace(1e-8, 30.0, 400), np.linspace(0.0, 8.0, 401)])
    ours = erfcx_array(z)
    exact = np.array([float(mp.erfc(mp.mpf(v)) * mp.exp(mp.mpf(v) ** 2)) for v in z])
    assert np.max(np.abs(ours - exact) / exact) <= 1e-15


def test_exp_is_within_2_ulps_of_numpy_down_to_minus_700() -> None:
    y = np.concatenate([np.linspace(-700.0, 0.0, 100_001), -np.geomspace(1e-12, 1.0, 1001)])
    ours = np.array([exp_arith(v) for v in y[::50]] + [exp_arith(v) for v in y[-1001:]])
    expected = np.exp(np.concatenate([y[::50], y[-1001:]]))
    assert np.max(np.abs(ours - expected) / expected) <= 4.5e-16
    assert exp_arith(-800.0) == pytest.approx(np.exp(-700.0), rel=1e-15)  # the documented floor


def test_norm_cdf_equals_scipy_to_1e_16_absolute_and_to_the_stated_relative_bound() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(-37.0, 9.0, 400_001), rng.normal(0.0, 2.0, 100_000)])
    ours = norm_cdf_array(x)
    reference = ndtr(x)
    assert np.max(np.abs(ours - reference)) <= 1e-16 * 4  # a few units in the last place of 1
    relative = np.abs(ours - reference) / reference
    assert np.all(relative <= 1e-15 * (1.0 + x * x))
    assert np.all((ours >= 0.0) & (ours <= 1.0))
