"""Scenarios from real data and GENERATED option books for the options benchmark and tests.

Real data (bundled with ``arch``): S&P 500 daily closes (``arch.data.sp500``, 1999-2018) and
the CBOE VIX (``arch.data.vix``, 2014-2019). On their common days, the joint pairs
``(S&P 500 log return, VIX log change)`` are the market factor and the implied-vol factor.

Generated (clearly so; no package ships option positions): :func:`generated_book` draws
``n_underlyings`` stocks whose log returns are ``beta * market + idiosyncratic`` (betas,
idiosyncratic vols and spots drawn from a seeded generator), and option positions on them
(strikes, expiries, rights, quantities drawn too), with implied vols set to the last VIX
level times a per-stock multiplier. :func:`scenarios` then draws one-day scenarios: the
market return and vol change as a bootstrap of real days (heavy tails and the negative
return-vol correlation included), the idiosyncratic parts normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.options.black import FloatArray
from engine.options.book import OptionBook

ONE_DAY = 1.0 / 365.0


@dataclass(frozen=True, slots=True)
class MarketHistory:
    """Real joint daily moves: S&P 500 log returns and VIX log changes on common days."""

    market_return: FloatArray
    vol_change: FloatArray
    last_vix: float
    first_day: str
    last_day: str


@dataclass(frozen=True, slots=True)
class GeneratedMarket:
    """The generated part of a universe: per-stock beta and daily idiosyncratic vol."""

    beta: FloatArray
    idio_vol: FloatArray


def market_history() -> MarketHistory:
    """S&P 500 and VIX from ``arch.data``, aligned on the days both have (2014-2018)."""
    import arch.data.sp500
    import arch.data.vix

    spx = np.log(arch.data.sp500.load()["Adj Close"]).diff()
    vix = arch.data.vix.load()["vix"]
    joint = spx.to_frame("r").join(np.log(vix).diff().rename("v"), how="inner").dropna()
    return MarketHistory(
        market_return=joint["r"].to_numpy(),
        vol_change=joint["v"].to_numpy(),
        last_vix=float(vix.loc[: joint.index[-1]].iloc[-1]),
        first_day=str(joint.index[0].date()),
        last_day=str(joint.index[-1].date()),
    )


def generated_book(
    n_options: int, n_underlyings: int, history: MarketHistory, *, seed: int = 7
) -> tuple[OptionBook, GeneratedMarket]:
    """A GENERATED book of European options on generated stocks (see the module docstring).

    Strikes at moneyness 0.8-1.2, expiries 7 days to 1 year, calls and puts, quantities
    long and short of 1-50 contracts of 100; implied vol = last VIX x U(0.8, 1.6).
    """
    rng = np.random.default_rng(seed)
    spot = rng.uniform(20.0, 500.0, n_underlyings)
    beta = rng.uniform(0.6, 1.4, n_underlyings)
    idio_vol = rng.uniform(0.008, 0.02, n_underlyings)  # daily
    vol_level = history.last_vix / 100.0 * rng.uniform(0.8, 1.6, n_underlyings)
    underlying = rng.integers(0, n_underlyings, n_options)
    underlying[:n_underlyings] = np.arange(min(n_underlyings, n_options))  # each one used
    strike = spot[underlying] * rng.uniform(0.8, 1.2, n_options)
    t = rng.integers(7, 366, n_options) / 365.0
    call = rng.random(n_options) < 0.5
    contracts = rng.integers(1, 51, n_options) * np.where(rng.random(n_options) < 0.6, 1, -1)
    book = OptionBook(
        underlying=underlying,
        strike=strike,
        t=t,
        call=call,
        quantity=(100.0 * contracts).astype(np.float64),
        spot=spot,
        rate=np.full(n_underlyings, 0.02),
        dividend_yield=rng.uniform(0.0, 0.03, n_underlyings),
        vol=vol_level[underlying],
    )
    return book, GeneratedMarket(beta, idio_vol)


def scenarios(
    history: MarketHistory, market: GeneratedMarket, n_scenarios: int, *, seed: int = 11
) -> tuple[FloatArray, FloatArray]:
    """One-day scenarios ``(returns (n, U), vol_change (n,))``: real days bootstrapped, plus
    generated normal idiosyncratic returns."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, len(history.market_return), n_scenarios)
    market_return = history.market_return[days]
    idio = rng.standard_normal((n_scenarios, len(market.beta))) * market.idio_vol
    returns = market_return[:, None] * market.beta[None, :] + idio
    return returns, history.vol_change[days].copy()
