"""Option positions under stress are repriced fully: QuantLib agrees, delta-only does not.

The book: long SPX puts (European at three strikes and expiries, one American) and a short
call, held on a market whose SPX close is 4,000; the scenarios: SPX -30% (hypothetical) and
a spot x vol grid. Every P&L is compared with QuantLib repricing each option at the shocked
spot and vol (analytic European engine, Barone-Adesi–Whaley for the American), time to
expiry unchanged (an instantaneous shock).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from engine.options.greeks import UnderlyingMarket
from engine.options.instruments import Instrument, option_terms
from engine.options.pricing import price_vanilla
from engine.stress.moves import Market, library_moves
from engine.stress.option_pnl import MIN_VOL, OptionHoldings, option_stress_pnl
from engine.stress.pnl import book_stress
from engine.stress.scenarios import HypotheticalScenario, Shock, SpotVolGrid
from tests.options.conftest import TODAY, Case, QuantLibPricer

VALUATION = date(TODAY.year(), TODAY.month(), TODAY.dayOfMonth())
VALUATION_MS = int(np.datetime64(VALUATION.isoformat(), "ms").astype(np.int64))
SPOT = 4000.0
SPX = UnderlyingMarket(rate=0.04, dividend_yield=0.015, vol=0.18)

# (name, strike, days to expiry, right, style, contracts, own vol or None)
TERMS = [
    ("P3600-30", 3600.0, 30, "put", "european", 10.0, 0.26),
    ("P3800-91", 3800.0, 91, "put", "european", 25.0, None),
    ("P4000-365", 4000.0, 365, "put", "european", 5.0, 0.2),
    ("P3900-180A", 3900.0, 180, "put", "american", 8.0, None),
    ("C4400-91", 4400.0, 91, "call", "european", -6.0, 0.15),
]


def _instruments() -> dict[str, Instrument]:
    return {
        name: Instrument(
            name,
            "option",
            "SPX",
            multiplier=100.0,
            option=option_terms(
                strike=k,
                expiry=(VALUATION + timedelta(days=d)).isoformat(),
                right=right,
                style=style,
            ),
        )
        for name, k, d, right, style, _, _ in TERMS
    }


def _holdings(**extra: float) -> OptionHoldings:
    positions = {"puts": {name: q for name, *_, q, _ in TERMS}}
    positions["puts"].update(extra)
    vols = {name: v for name, *_, v in TERMS if v is not None}
    return OptionHoldings(positions, _instruments(), vols, {"SPX": SPX}, VALUATION_MS)


def _market() -> Market:
    return Market(("SPX", "AAA"), np.array([SPOT, 50.0]), np.eye(2) * 1e-4, np.array([100, 100]))


def _quantlib_prices(spot: float, vol_shift: float) -> np.ndarray:
    """QuantLib's unit price of every option of TERMS at ``spot`` and its vol + ``vol_shift``."""
    pricer = QuantLibPricer("bsm")
    out = []
    for _, strike, days, right, style, _, vol in TERMS:
        sigma = max((SPX.vol if vol is None else vol) + vol_shift, MIN_VOL)
        case = Case(spot, strike, days, SPX.rate, SPX.dividend_yield, sigma, right == "call")
        out.append(pricer.prices([case], "baw" if style == "american" else "analytic")[0])
    return np.array(out)


def _assert_quantlib_prices(ours: np.ndarray, reference: np.ndarray) -> None:
    """European: to 1e-10 (``max(1, price)`` scaled, as tests/options); American: within
    QuantLib's own stopping rule for BAW's critical price, 1e-6 x strike (ours solves it
    to 1e-12 x strike, tests/options/test_american.py)."""
    for (name, strike, *_), a, b in zip(TERMS, ours, reference, strict=True):
        american = name.endswith("A")
        tolerance = 1e-6 * strike if american else 1e-10 * max(1.0, abs(b))
        assert abs(a - b) <= tolerance, (name, a, b)


def _book_pnl(base: np.ndarray, shocked: np.ndarray) -> float:
    contracts = np.array([t[5] for t in TERMS])
    return float(contracts * 100.0 @ (shocked - base))


def test_a_30_percent_fall_reprices_every_option_as_quantlib_does_and_not_as_delta_does() -> None:
    crash = HypotheticalScenario(
        "crash", 1, "SPX -30%", "approved", (Shock("symbol", "SPX", -0.30),)
    )
    market = _market()
    moves = library_moves([crash], market)
    result = option_stress_pnl(_holdings(), ["puts"], market.symbols, market.prices, moves)
    full = float(result.pnl[0, 0])
    assert result.positions == tuple(("puts", t[0]) for t in sorted(TERMS))
    order = [sorted(TERMS).index(t) for t in TERMS]  # result rows are in symbol order
    _assert_quantlib_prices(result.base[order], _quantlib_prices(SPOT, 0.0))
    _assert_quantlib_prices(result.shocked[0, order], _quantlib_prices(SPOT * 0.7, 0.0))
    assert full == pytest.approx(_book_pnl(result.base[order], result.shocked[0, order]), rel=1e-14)
    assert result.options.tolist() == [len(TERMS)]

    # delta-only: sum of contracts x 100 x delta x S x move (the engine's deltas: QuantLib's
    # analytic ones for the European options; its BAW engine gives no delta)
    delta = price_vanilla(
        SPOT, [t[1] for t in TERMS], [t[2] / 365.0 for t in TERMS], SPX.rate, SPX.dividend_yield,
        [SPX.vol if t[6] is None else t[6] for t in TERMS], [t[3] == "call" for t in TERMS],
        [t[4] == "american" for t in TERMS],
    ).delta  # fmt: skip
    contracts = np.array([t[5] for t in TERMS])
    delta_pnl = float(contracts * 100.0 @ delta) * SPOT * -0.30
    # long puts are long convexity: the full revaluation gains far more than delta says
    assert full > 0.0 and delta_pnl > 0.0
    assert full - delta_pnl > 0.2 * delta_pnl


def test_a_spot_vol_grid_moves_the_vol_of_every_option_and_floors_it() -> None:
    grid = SpotVolGrid("grid", 1, "", "approved", (-0.1, 0.0, 0.1), (-0.5, 0.0, 0.1))
    market = _market()
    moves = library_moves([grid], market)
    result = option_stress_pnl(_holdings(), ["puts"], market.symbols, market.prices, moves)
    order = [sorted(TERMS).index(t) for t in TERMS]
    for c in range(len(moves.names)):
        spot_move, vol_move = moves.spot[c, 0], moves.vol[c, 0]
        shocked = result.shocked[c, order]
        _assert_quantlib_prices(shocked, _quantlib_prices(SPOT * (1.0 + spot_move), vol_move))
        expected = _book_pnl(result.base[order], shocked)
        assert result.pnl[0, c] == pytest.approx(expected, rel=1e-14)
    # vol -0.50 takes every vol below zero: all floored, none refused
    assert result.options.tolist() == [len(TERMS)] and result.unpriced.tolist() == [0]


def test_expired_and_unpriceable_options_are_left_out_and_counted() -> None:
    instruments = _instruments()
    instruments["OLD"] = Instrument(
        "OLD", "option", "SPX", multiplier=100.0,
        option=option_terms(strike=4000.0, expiry=VALUATION.isoformat(), right="put", style="european"),
    )  # fmt: skip
    instruments["NOPX"] = Instrument(
        "NOPX", "option", "ZZZ", multiplier=100.0,
        option=option_terms(strike=10.0, expiry="2030-01-01", right="put", style="european"),
    )  # fmt: skip
    base = _holdings(OLD=3.0, NOPX=4.0)
    holdings = OptionHoldings(
        base.positions, instruments, base.vols, {"SPX": SPX, "ZZZ": SPX}, VALUATION_MS
    )
    crash = HypotheticalScenario("crash", 1, "", "approved", (Shock("symbol", "SPX", -0.30),))
    market = _market()
    moves = library_moves([crash], market)
    result = option_stress_pnl(holdings, ["puts"], market.symbols, market.prices, moves)
    assert (result.options[0], result.expired[0], result.unpriced[0]) == (len(TERMS), 1, 1)
    alone = option_stress_pnl(_holdings(), ["puts"], market.symbols, market.prices, moves)
    assert result.pnl[0, 0] == alone.pnl[0, 0]


def test_a_book_of_spot_and_options_adds_the_linear_and_the_full_revaluation_parts() -> None:
    crash = HypotheticalScenario("crash", 1, "", "approved", (Shock("symbol", "SPX", -0.30),))
    market = _market()
    moves = library_moves([crash], market)
    holdings = _holdings(SPX=-200.0)  # a spot hedge held alongside the puts
    linear = {"puts": {"SPX": -200.0}, "stocks": {"AAA": 10.0}}
    stress = book_stress(linear, holdings, market, moves)
    options_only = option_stress_pnl(holdings, ["puts"], market.symbols, market.prices, moves)
    assert stress.portfolios == ("puts", "stocks")
    assert stress.pnl[0, 0] == pytest.approx(options_only.pnl[0, 0] + (-200.0 * SPOT * -0.30))
    assert stress.pnl[1, 0] == 0.0  # AAA is not shocked (no propagation)
    assert stress.options.tolist() == [len(TERMS), 0]
