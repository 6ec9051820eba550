"""The options part of a portfolio in the stream: delta-gamma VaR and its gap to full revaluation.

For the streaming Greeks: the European options a portfolio holds are an
:class:`~engine.options.book.OptionBook` at the evaluation time; the factor scenarios are
``n_scenarios`` draws of the underlyings' log returns over one grid interval from
``N(0, C)``, ``C`` the portfolio book's EWMA covariance of grid returns (so the horizon is
the book's interval), with implied vols held fixed (the stream has no vol factor yet).
On those scenarios:

- ``var`` is the delta-gamma VaR (:func:`engine.options.var.quadratic_pnl`, the method
  published as ``var_method = "delta-gamma-mc"``),
- ``var_full`` the full-revaluation VaR (:func:`engine.options.book.revalue`),
- ``var_gap = var - var_full`` (positive: the approximation overstates the risk);
- ``es``, ``es_full`` and ``es_gap`` the same for the expected shortfall at ``es_level``:
  the mean loss of the scenarios at or beyond the lower ``1 - es_level`` quantile of each
  P&L, on the same scenarios.

VaR is a positive loss in the price currency (with ``base_currency``: in the base
currency, each option's P&L converted at its currency's live rate, FX held fixed, as the
Greeks are; a missing rate gives no VaR) at confidence ``level``: the lower
``1 - level`` empirical quantile of P&L (numpy's linear interpolation), as in
:mod:`engine.options.var`. Options left out (``excluded``): American ones (the full
revaluation kernel is European) and those expiring within the horizon. Draws are seeded
with ``(seed, ts_ms)``, so a recomputation after a restart gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.options.book import OptionBook, revalue, sensitivities
from engine.options.currency import BaseRates
from engine.options.greeks import UnderlyingMarket, expiry_ms
from engine.options.instruments import Instrument
from engine.options.var import quadratic_pnl

METHOD = "delta-gamma-mc"
_MS_PER_YEAR = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class OptionsVar:
    """Delta-gamma VaR of a portfolio's European options and its gap to full revaluation.

    Currency units, losses positive; ``horizon_ms`` is the grid interval the scenarios span.
    """

    method: str
    level: float
    horizon_ms: int
    scenarios: int
    var: float
    var_full: float
    var_gap: float
    excluded: int
    es_level: float
    es: float
    es_full: float
    es_gap: float


def options_var(
    held: Mapping[str, float],
    instruments: Mapping[str, Instrument],
    vols: Mapping[str, float],
    spots: Mapping[str, float],
    markets: Mapping[str, UnderlyingMarket],
    covariance: tuple[Sequence[str], np.ndarray],
    *,
    ts_ms: int,
    horizon_ms: int,
    level: float = 0.99,
    es_level: float = 0.975,
    n_scenarios: int = 2_000,
    seed: int = 0,
    base_currency: str | None = None,
) -> OptionsVar | None:
    """The options VaR of one portfolio's holdings, or ``None`` when it cannot be computed.

    ``covariance`` is ``(symbols, C)``: the covariance of grid log returns of ``symbols``
    (only symbols with enough history). ``None`` when the portfolio holds no European
    option that can be valued, or an underlying has no covariance row, spot or market.
    """
    if not (0.5 < level < 1.0 and 0.5 < es_level < 1.0):
        raise ValueError("level and es_level must be strictly between 0.5 and 1")
    horizon = horizon_ms / _MS_PER_YEAR
    names, cov = covariance
    index = {s: i for i, s in enumerate(names)}
    rows = []
    excluded = 0
    rates = None if base_currency is None else BaseRates(instruments, spots, base_currency)
    for symbol in sorted(held):
        inst = instruments.get(symbol)
        if inst is None or inst.option is None or not held[symbol]:
            continue
        t = (expiry_ms(inst) - ts_ms) / _MS_PER_YEAR
        if t <= 0.0:
            continue  # expired: worth nothing here, as in the Greeks
        if inst.option.style == "american" or t <= horizon:
            excluded += 1
            continue
        u = inst.underlying
        market, spot = markets.get(u), spots.get(u)
        if market is None or spot is None or not math.isfinite(spot) or u not in index:
            return None
        vol = vols.get(symbol, market.vol)
        fx = 1.0 if rates is None else rates(inst.currency)
        if not (math.isfinite(fx) and fx > 0.0):
            return None
        units = held[symbol] * inst.multiplier * fx  # P&L per unit of price, in the base
        rows.append((u, units, inst.option.strike, t, inst.option.is_call, vol))
    if not rows:
        return None
    underlyings = sorted({r[0] for r in rows})
    slot = {u: k for k, u in enumerate(underlyings)}
    book = OptionBook(
        underlying=np.array([slot[r[0]] for r in rows], dtype=np.int64),
        strike=np.array([r[2] for r in rows], dtype=np.float64),
        t=np.array([r[3] for r in rows], dtype=np.float64),
        call=np.array([r[4] for r in rows], dtype=bool),
        quantity=np.array([r[1] for r in rows], dtype=np.float64),
        spot=np.array([spots[u] for u in underlyings], dtype=np.float64),
        rate=np.array([markets[u].rate for u in underlyings], dtype=np.float64),
        dividend_yield=np.array([markets[u].dividend_yield for u in underlyings]),
        vol=np.array([r[5] for r in rows], dtype=np.float64),
    )
    sub = np.asarray(cov, dtype=np.float64)[np.ix_(
        [index[u] for u in underlyings], [index[u] for u in underlyings]
    )]  # fmt: skip
    returns = _normal_draws(sub, n_scenarios, np.random.default_rng([seed, ts_ms]))
    vol_change = np.zeros(n_scenarios)
    full_pnl = revalue(book, returns, vol_change, horizon)
    approx_pnl = quadratic_pnl(sensitivities(book, book.greeks(), horizon), returns, vol_change)
    var_full, var = _var(full_pnl, level), _var(approx_pnl, level)
    es_full, es = _es(full_pnl, es_level), _es(approx_pnl, es_level)
    return OptionsVar(
        METHOD,
        level,
        horizon_ms,
        n_scenarios,
        var,
        var_full,
        var - var_full,
        excluded,
        es_level,
        es,
        es_full,
        es - es_full,
    )


def _var(pnl: np.ndarray, level: float) -> float:
    """VaR at ``level``: minus the lower ``1 - level`` quantile of P&L (linear interpolation)."""
    return -float(np.quantile(pnl, 1.0 - level))


def _es(pnl: np.ndarray, level: float) -> float:
    """ES at ``level``: minus the mean P&L at or below its lower ``1 - level`` quantile.

    >>> _es(np.arange(-50.0, 50.0), 0.95)  # the five worst of 100: -50..-46
    48.0
    """
    cut = np.quantile(pnl, 1.0 - level)
    return -float(pnl[pnl <= cut].mean())


def _normal_draws(cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of ``N(0, cov)`` through the symmetric square root (cov may be singular)."""
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return rng.standard_normal((n, len(cov))) @ root.T
