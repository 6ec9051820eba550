"""Reverse stress: the smallest Mahalanobis-norm moves that lose a given amount."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from engine.errors import InputError
from engine.stress.reverse import min_norm_moves, min_norm_moves_numerical, reverse_stress


def random_book(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.01, (n, n))
    cov = a @ a.T + np.diag(rng.uniform(1e-5, 4e-4, n))
    exposure = rng.uniform(-1e6, 2e6, n)
    return exposure, cov


@pytest.mark.parametrize("seed", range(5))
def test_the_moves_reproduce_the_target_loss_to_1e_6(seed):
    exposure, cov = random_book(12, seed)
    result = reverse_stress("p", tuple(f"S{i}" for i in range(12)), exposure, cov, 2.5e6)
    assert float(exposure @ result.move) == pytest.approx(-2.5e6, abs=1e-6)


def test_the_moves_are_the_analytic_minimum_norm_solution():
    exposure, cov = random_book(6, 7)
    loss = 1e5
    move = min_norm_moves(exposure, cov, loss)
    analytic = -loss * cov @ exposure / (exposure @ cov @ exposure)
    np.testing.assert_allclose(move, analytic, rtol=1e-12)
    # any other move with the same loss has a larger Mahalanobis norm
    inv = np.linalg.inv(cov)
    norm = float(np.sqrt(move @ inv @ move))
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.normal(size=6)
        d -= exposure * (exposure @ d) / (exposure @ exposure)  # keep w'm = -loss
        other = move + 1e-3 * d
        assert float(np.sqrt(other @ inv @ other)) >= norm


def test_the_closed_form_agrees_with_a_numerical_optimiser_on_a_small_book():
    exposure, cov = random_book(3, 1)
    loss = 5e4
    inv = np.linalg.inv(cov)
    found = optimize.minimize(
        lambda m: m @ inv @ m,
        x0=np.full(3, -loss / exposure.sum()),
        jac=lambda m: 2.0 * inv @ m,
        constraints=[
            {"type": "eq", "fun": lambda m: exposure @ m + loss, "jac": lambda m: exposure}
        ],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 500},
    )
    assert found.success, found.message
    np.testing.assert_allclose(min_norm_moves(exposure, cov, loss), found.x, rtol=1e-5)


def test_plausibility_is_the_loss_in_standard_deviations_and_its_normal_tail():
    exposure, cov = np.array([1e6, 5e5]), np.array([[1e-4, 2e-5], [2e-5, 4e-4]])
    sigma = float(np.sqrt(exposure @ cov @ exposure))
    result = reverse_stress("p", ("A", "B"), exposure, cov, 3.0 * sigma)
    assert result.sigma == pytest.approx(sigma)
    assert result.mahalanobis == pytest.approx(3.0)
    assert result.mahalanobis == pytest.approx(
        np.sqrt(result.move @ np.linalg.inv(cov) @ result.move)
    )
    assert result.tail_probability == pytest.approx(stats.norm.sf(3.0))
    assert result.chi2_probability == pytest.approx(stats.chi2.sf(9.0, 2))
    assert result.feasible
    # over 10 intervals the same loss is sqrt(10) times more plausible in sigmas
    ten = reverse_stress("p", ("A", "B"), exposure, cov, 3.0 * sigma, horizon=10)
    assert ten.mahalanobis == pytest.approx(3.0 / np.sqrt(10))


def test_a_loss_beyond_what_prices_allow_is_flagged_infeasible():
    result = reverse_stress("p", ("A",), np.array([100.0]), np.array([[1e-4]]), 150.0)
    assert result.move[0] == pytest.approx(-1.5) and not result.feasible


def test_a_riskless_book_or_a_non_positive_loss_is_refused():
    with pytest.raises(InputError, match="portfolio p: the book has no risk"):
        reverse_stress("p", ("A",), np.array([0.0]), np.array([[1e-4]]), 1.0)
    with pytest.raises(InputError, match="loss must be a positive amount"):
        reverse_stress("p", ("A",), np.array([1.0]), np.array([[1e-4]]), -1.0)


def test_a_non_linear_book_is_solved_numerically_and_hits_the_loss():
    """A delta-gamma book (a short option position): P&L = w'm + m' G m / 2."""
    exposure, cov = random_book(4, 3)
    gamma = -np.diag(np.abs(exposure)) * 2.0  # short gamma: losses grow faster than linear
    loss = 3e4

    def pnl(m: np.ndarray) -> float:
        return float(exposure @ m + 0.5 * m @ gamma @ m)

    move = min_norm_moves_numerical(pnl, cov, loss, delta=exposure)
    assert pnl(move) == pytest.approx(-loss, abs=1e-6)
    linear = min_norm_moves(exposure, cov, loss)
    inv = np.linalg.inv(cov)
    # short gamma makes the loss reachable with a smaller, more plausible move
    assert move @ inv @ move < linear @ inv @ linear
    # and no feasible move nearby is more plausible (first-order optimality, checked by SLSQP)
    found = optimize.minimize(
        lambda m: m @ inv @ m,
        x0=linear,
        constraints=[{"type": "eq", "fun": lambda m: pnl(m) + loss}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert move @ inv @ move == pytest.approx(found.fun, rel=1e-4)
