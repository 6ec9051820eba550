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
closed form; :func:`min_norm_moves_numerical` solves the same problem with SLSQP in
whitened coordinates ``m = A z`` (``C = A A'``), minimising ``|z|^2`` subject to
``pnl(A z) = -L``, started from the linear answer of the book's delta.
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
    if not np.isfinite(loss) or loss <= 0.0:
        raise InputError(f"loss must be a positive amount, got {loss}")
    if not np.isfinite(horizon) or horizon <= 0.0:
        raise InputError(f"horizon must be positive, got {horizon}")
    scaled = cov * horizon
    try:
        move = min_norm_moves(exposure, scaled, loss)
    except InputError as exc:
        raise InputError(f"portfolio {portfolio}: {exc}") from None
    sigma = float(np.sqrt(exposure @ scaled @ exposure))
    k = loss / sigma
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
    )


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
