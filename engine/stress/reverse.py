"""Reverse stress test: the most plausible moves that lose a given amount.

For a linear book with exposures ``w`` (quantity x price, currency units) the P&L of
relative moves ``m`` is ``w' m``. The most plausible ``m`` producing a loss ``L > 0``
is the one of smallest Mahalanobis norm ``sqrt(m' C^-1 m)`` under the covariance ``C``
of returns subject to ``w' m = -L``; by Lagrange (the minimum-norm solution of one
linear constraint in the metric ``C^-1``)::

    m* = -L C w / (w' C w),     ||m*||_C = L / sigma_p,     sigma_p = sqrt(w' C w)

``C`` is the engine's EWMA covariance of grid log returns, used for relative moves to
first order; scaled by ``horizon`` grid intervals (square-root-of-time), it makes the
moves those of a ``horizon``-interval shock. No inverse is needed, so a singular ``C``
(two symbols moving as one) is fine; only ``sigma_p = 0`` (a riskless book) has no
answer.

Plausibility: ``k = ||m*||_C`` is the loss in standard deviations of the book's P&L.
Under the normal model ``P(pnl <= -L) = Phi(-k)`` (``tail_probability``); and
``P(chi2_n >= k^2)`` (``chi2_probability``, ``n`` symbols) is the probability that a
random move of all ``n`` symbols is at least as far from zero in Mahalanobis norm, the
more conservative reading of how extreme ``m*`` is.

Non-linear books (options: a P&L function of the moves that is not ``w' m``) have no
closed form. :func:`reverse_stress_revalued` (what ``riskstream stress reverse`` runs on
a book holding options) keeps the most plausible *direction* of the book's delta
``d = -L C delta / (delta' C delta)`` (the linear answer for the delta book) and finds the
smallest scale ``s > 0`` whose fully revalued P&L is ``-L``: ``pnl(s d) = -L``. The search:

1. scan ``s`` on a geometric grid, :data:`GRID_PER_DOUBLING` points per doubling from
   ``2**-12`` up to the largest scale that keeps every price positive (every move
   above -100%) and every move at most :data:`MAX_MOVE` (+1,000%);
2. take the first grid interval on which ``pnl + L`` changes sign (the first crossing of
   the loss as the shock grows) and solve ``pnl(s d) = -L`` in it by Brent's method
   (:func:`scipy.optimize.brentq`, ``xtol = 1e-15`` and ``rtol = 1e-15`` in ``s``);
3. accept the answer when the revalued loss equals ``L`` within :data:`LOSS_TOLERANCE`
   of ``L`` (relative); it always does for a P&L continuous in the moves.

A loss reached and given back inside one grid interval (a 4.4% step in scale) is not
seen, and the answer is the smallest shock *along* ``d``, not over every direction: for
a book whose P&L is far from its delta, :func:`min_norm_moves_numerical` solves the
full problem with SLSQP in whitened coordinates ``m = A z`` (``C = A A'``), minimising
``|z|^2`` subject to ``pnl(A z) = -L``, started from the linear answer of the book's
delta, but it is a local optimiser without a guarantee of reaching the loss. The
plausibility figures of the answer are those of its moves: ``k = s L / sigma_delta``
(the moves' Mahalanobis norm, ``sigma_delta`` the P&L sigma of the delta book).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from engine.errors import InputError


@dataclass(frozen=True, slots=True)
class ReverseStress:
    """The minimum-Mahalanobis-norm moves losing ``loss`` (currency, positive) on one book.

    ``move`` are relative price changes (fractions) per symbol; ``sigma`` the standard
    deviation of the book's P&L over the horizon (currency); ``mahalanobis`` the norm
    ``k = loss / sigma``; ``feasible`` is false when some move is -100% or worse (the
    linear book cannot lose that much without a price reaching zero).
    """

    portfolio: str
    symbols: tuple[str, ...]
    move: np.ndarray
    loss: float
    horizon: float
    sigma: float
    mahalanobis: float
    tail_probability: float
    chi2_probability: float
    feasible: bool
    scale: float = 1.0
    """``s``: the moves are ``s`` times the delta book's linear answer (1 for a linear book)."""
    pnl: float | None = None
    """The fully revalued P&L of ``move`` (currency), for a book revalued in full."""


def min_norm_moves(exposure: np.ndarray, cov: np.ndarray, loss: float) -> np.ndarray:
    """``m* = -loss * C w / (w' C w)``: relative moves whose linear P&L ``w' m*`` is ``-loss``.

    >>> m = min_norm_moves(np.array([100.0, 50.0]), np.array([[0.04, 0.0], [0.0, 0.01]]), 10.0)
    >>> [round(float(x), 6) for x in m], round(float(np.array([100.0, 50.0]) @ m), 9)
    ([-0.094118, -0.011765], -10.0)
    """
    cw = cov @ exposure
    variance = float(exposure @ cw)
    if not np.isfinite(variance) or variance <= 0.0:
        raise InputError(
            "the book has no risk under the covariance (w'Cw = 0): no move loses money"
        )
    return -loss * cw / variance


def reverse_stress(
    portfolio: str,
    symbols: tuple[str, ...],
    exposure: np.ndarray,
    cov: np.ndarray,
    loss: float,
    *,
    horizon: float = 1.0,
) -> ReverseStress:
    """The reverse stress of one linear book; ``cov`` per grid interval, ``horizon`` in intervals.

    Parameters
    ----------
    exposure
        Quantity x price of each symbol (currency units), in ``symbols`` order.
    cov
        Covariance of grid log returns of ``symbols`` (per interval).
    loss
        The loss to produce, currency units; positive (the P&L is ``-loss``).
    horizon
        Number of grid intervals the moves happen over (the covariance is scaled by it).
    """
    scaled, move = _scaled_min_norm(portfolio, exposure, cov, loss, horizon)
    sigma = float(np.sqrt(exposure @ scaled @ exposure))
    k = loss / sigma
    return _reverse_stress(portfolio, symbols, move, loss, horizon, sigma, k)


def _scaled_min_norm(
    portfolio: str, exposure: np.ndarray, cov: np.ndarray, loss: float, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """The covariance over ``horizon`` intervals and the minimum-norm moves losing ``loss``.

    Validates ``loss`` (a positive amount) and ``horizon`` (positive); an
    :class:`InputError` from :func:`min_norm_moves` is re-raised naming ``portfolio``.
    """
    if not np.isfinite(loss) or loss <= 0.0:
        raise InputError(f"loss must be a positive amount, got {loss}")
    if not np.isfinite(horizon) or horizon <= 0.0:
        raise InputError(f"horizon must be positive, got {horizon}")
    scaled = cov * horizon
    try:
        return scaled, min_norm_moves(exposure, scaled, loss)
    except InputError as exc:
        raise InputError(f"portfolio {portfolio}: {exc}") from None


def _reverse_stress(
    portfolio: str,
    symbols: tuple[str, ...],
    move: np.ndarray,
    loss: float,
    horizon: float,
    sigma: float,
    k: float,
    *scaled: float,
) -> ReverseStress:
    """The result for moves ``move`` that are ``k`` standard deviations ``sigma`` away.

    Adds the plausibility figures: the one-sided normal tail beyond ``k``, the chi-square
    probability of a Mahalanobis norm ``k`` over ``len(symbols)`` factors, and whether every
    move keeps its price positive (``move > -1``). ``scaled``: the numerical search's
    ``scale`` and revalued ``pnl`` (left at their defaults for a linear book).
    """
    return ReverseStress(
        portfolio,
        symbols,
        move,
        loss,
        horizon,
        sigma,
        k,
        float(stats.norm.sf(k)),
        float(stats.chi2.sf(k * k, df=len(symbols))),
        bool((move > -1.0).all()),
        *scaled,
    )


GRID_PER_DOUBLING = 16
"""Points of the scale grid per doubling of the shock (a 4.4% step)."""
MAX_MOVE = 10.0
"""The largest relative move the search goes to (+1,000%)."""
LOSS_TOLERANCE = 1e-9
"""The revalued loss of a reverse stress equals the target within this fraction of it."""


def reverse_stress_revalued(
    portfolio: str,
    symbols: tuple[str, ...],
    delta: np.ndarray,
    pnl: Callable[[np.ndarray], np.ndarray],
    cov: np.ndarray,
    loss: float,
    *,
    horizon: float = 1.0,
) -> ReverseStress:
    """The smallest shock along the delta book's most plausible direction whose fully
    revalued P&L is ``-loss`` (the search of the module docstring).

    Parameters
    ----------
    delta
        Currency per 1.00 relative move of each symbol at no move (the P&L's gradient).
    pnl
        Maps moves (rows x symbols, relative changes) to the revalued P&L of each row.
    cov, loss, horizon
        As for :func:`reverse_stress`.

    Raises
    ------
    InputError
        When the book has no delta risk (no direction), or no shock along the direction
        loses ``loss`` before a price reaches zero or a move reaches :data:`MAX_MOVE`.
    """
    scaled, direction = _scaled_min_norm(portfolio, delta, cov, loss, horizon)
    down = direction[direction < 0.0]
    top = MAX_MOVE / float(np.abs(direction).max())
    if len(down):
        top = min(top, float((-1.0 / down).min()) * (1.0 - 1e-9))  # prices stay positive
    steps = int(np.ceil(GRID_PER_DOUBLING * max(np.log2(top) + 12.0, 1.0)))
    grid = top * np.exp2(-np.arange(steps, -1, -1) / GRID_PER_DOUBLING)
    gap = pnl(grid[:, None] * direction[None, :]) + loss
    crossed = np.flatnonzero(gap <= 0.0)
    if not len(crossed):
        raise InputError(
            f"portfolio {portfolio}: no shock along the most plausible direction loses "
            f"{loss:,.2f} before a price reaches zero or a move reaches {MAX_MOVE:.0%} "
            f"(the largest loss on the way is {-float(np.min(gap - loss)):,.2f})"
        )
    first = int(crossed[0])
    if gap[first] == 0.0:
        s = float(grid[first])
    else:
        low = 0.0 if first == 0 else float(grid[first - 1])
        s = optimize.brentq(
            lambda t: float(pnl(t * direction[None, :])[0]) + loss,
            low,
            float(grid[first]),
            xtol=1e-15,
            rtol=1e-15,
            maxiter=200,
        )
    move = s * direction
    revalued = float(pnl(move[None, :])[0])
    if not abs(revalued + loss) <= LOSS_TOLERANCE * loss:
        raise InputError(
            f"portfolio {portfolio}: the search stopped at a loss of {-revalued:,.2f}, not "
            f"{loss:,.2f} (the P&L jumps along the direction)"
        )
    sigma = float(np.sqrt(delta @ scaled @ delta))
    k = s * loss / sigma
    return _reverse_stress(portfolio, symbols, move, loss, horizon, sigma, k, s, revalued)


def min_norm_moves_numerical(
    pnl: Callable[[np.ndarray], float],
    cov: np.ndarray,
    loss: float,
    *,
    delta: np.ndarray,
    tol: float = 1e-10,
) -> np.ndarray:
    """Smallest-Mahalanobis-norm moves with ``pnl(m) = -loss`` for a non-linear book.

    ``pnl`` maps relative moves (fractions) to P&L in currency units; ``delta`` is its
    gradient at no move (currency per unit of relative move: quantity x price for spot),
    whose closed-form answer starts the search. Raises :class:`InputError` when the
    optimiser does not reach the loss to ``1e-6``.

    >>> cov = np.array([[0.04, 0.0], [0.0, 0.01]])
    >>> w = np.array([100.0, 50.0])
    >>> m = min_norm_moves_numerical(lambda m: float(w @ m), cov, 10.0, delta=w)
    >>> bool(np.allclose(m, min_norm_moves(w, cov, 10.0), rtol=1e-6))
    True
    """
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))  # C = root root'
    start = np.linalg.lstsq(root, min_norm_moves(delta, cov, loss), rcond=None)[0]
    result = optimize.minimize(
        lambda z: float(z @ z),
        start,
        jac=lambda z: 2.0 * z,
        constraints=[{"type": "eq", "fun": lambda z: (pnl(root @ z) + loss) / loss}],
        method="SLSQP",
        options={"ftol": tol, "maxiter": 500},
    )
    move = root @ result.x
    if not abs(pnl(move) + loss) <= 1e-6 * max(1.0, loss):
        raise InputError(f"no move found that loses {loss} ({result.message})")
    return move
