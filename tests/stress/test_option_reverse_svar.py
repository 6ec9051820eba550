"""Reverse stress and stressed VaR of books holding options: options revalued in full.

- A single long put: its full-revaluation P&L under a fall is not its delta's (it gains
  more: long convexity), and the short put loses more than delta-only says.
- Reverse stress: the moves found lose the target once the options are repriced, to the
  documented tolerance (:data:`engine.stress.reverse.LOSS_TOLERANCE`); QuantLib repricing
  the written moves agrees.
- ``stress svar``: equals QuantLib repricing the option at each historical day's moved
  price over the window, on real S&P 500 and NASDAQ closes.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import InputError
from engine.options.greeks import UnderlyingMarket
from engine.options.instruments import Instrument, option_terms
from engine.stress.option_pnl import OptionHoldings
from engine.stress.revalue import RevaluedBook, book_delta
from engine.stress.reverse import LOSS_TOLERANCE, reverse_stress_revalued
from engine.stress.stressed import stressed_risk
from producers.sources import bundled_prices
from tests.options.conftest import TODAY, Case, QuantLibPricer

VALUATION = date(TODAY.year(), TODAY.month(), TODAY.dayOfMonth())
VALUATION_MS = int(np.datetime64(VALUATION.isoformat(), "ms").astype(np.int64))
SPOT, STRIKE, DAYS, MULT = 4000.0, 3800.0, 91, 100.0
SPX = UnderlyingMarket(rate=0.04, dividend_yield=0.015, vol=0.22)


def _put_book(contracts: float) -> RevaluedBook:
    put = Instrument(
        "P", "option", "SPX", multiplier=MULT,
        option=option_terms(strike=STRIKE, expiry=(VALUATION + timedelta(days=DAYS)).isoformat(),
                            right="put", style="european"),
    )  # fmt: skip
    holdings = OptionHoldings({"p": {"P": contracts}}, {"P": put}, {}, {"SPX": SPX}, VALUATION_MS)
    return RevaluedBook("p", ("SPX",), np.array([SPOT]), np.zeros(1), holdings)


def _quantlib_put(spot: float) -> float:
    case = Case(spot, STRIKE, DAYS, SPX.rate, SPX.dividend_yield, SPX.vol, False)
    return float(QuantLibPricer("bsm").prices([case], "analytic")[0])


def test_a_long_put_under_a_fall_is_worth_more_than_its_delta_says_and_a_short_put_loses_more():
    long_put, short_put = _put_book(10.0), _put_book(-10.0)
    down = np.array([[-0.15]])
    full_long, full_short = float(long_put.pnl(down)[0]), float(short_put.pnl(down)[0])
    delta_long, delta_short = (float(book_delta(b)[0] * -0.15) for b in (long_put, short_put))
    # QuantLib's repricing is the full revaluation
    expected = 10.0 * MULT * (_quantlib_put(SPOT * 0.85) - _quantlib_put(SPOT))
    assert full_long == pytest.approx(expected, rel=1e-10)
    assert full_short == -full_long
    # long convexity: the long put gains more than delta-only, the short put loses more
    assert full_long > delta_long > 0.0
    assert full_short < delta_short < 0.0
    assert -full_short > 1.2 * -delta_short


def test_reverse_stress_of_a_long_put_reaches_the_loss_once_repriced_and_needs_more_than_delta():
    book = _put_book(10.0)
    cov = np.array([[0.0002]])
    loss = 40_000.0  # the put is worth about 64,000: it can lose that much on a rise
    result = reverse_stress_revalued(
        "p", book.symbols, book_delta(book), book.pnl, cov, loss, horizon=5.0
    )
    assert result.move[0] > 0.0  # a long put loses when the index rises
    assert result.pnl is not None and abs(result.pnl + loss) <= LOSS_TOLERANCE * loss
    repriced = 10.0 * MULT * (_quantlib_put(SPOT * (1.0 + result.move[0])) - _quantlib_put(SPOT))
    assert repriced == pytest.approx(-loss, rel=LOSS_TOLERANCE + 1e-10)
    # delta-only would stop at scale 1; the put's convexity softens the loss, so more is needed
    assert result.scale > 1.05
    assert result.mahalanobis == pytest.approx(abs(result.move[0]) / np.sqrt(5.0 * 0.0002))


def test_reverse_stress_refuses_a_loss_the_book_cannot_reach():
    book = _put_book(10.0)  # at most its premium, about 64,000, can be lost
    with pytest.raises(InputError, match="no shock along the most plausible direction loses"):
        reverse_stress_revalued(
            "p", book.symbols, book_delta(book), book.pnl, np.array([[0.0002]]), 100_000.0
        )


# --- through the CLI, on real closes -------------------------------------------------------


def _files(tmp_path: Path, days: int) -> tuple[Path, Path, Path, Path, pd.DataFrame, str]:
    """SPX and NASDAQ closes (last ``days`` days up to 2018) at midnight UTC, a book of
    long SPX puts hedged with NASDAQ, and the option files."""
    frame = bundled_prices()
    frame = frame.assign(timestamp=frame["timestamp"].dt.floor("D"))
    frame = frame[frame["timestamp"] >= frame["timestamp"].iloc[-1] - pd.Timedelta(days=days)]
    last = frame["timestamp"].iloc[-1].date()
    expiry = (last + timedelta(days=DAYS)).isoformat()
    prices, positions = tmp_path / "prices.csv", tmp_path / "positions.csv"
    instruments, market = tmp_path / "instruments.csv", tmp_path / "market.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        prices, index=False
    )
    spx = float(frame.loc[frame["symbol"] == "SPX", "price"].iloc[-1])
    instruments.write_text(
        "instrument,underlying,strike,expiry,right,style,multiplier\n"
        f"SPXP,SPX,{round(0.95 * spx)},{expiry},put,european,100\n"
    )
    market.write_text("underlying,rate,dividend_yield,vol\nSPX,0.025,0.02,0.25\n")
    positions.write_text("portfolio,symbol,quantity\nbook,SPXP,10\nbook,NASDAQ,30\n")
    return prices, positions, instruments, market, frame, expiry


def _quantlib_book(frame: pd.DataFrame, strike: float, spx_move: np.ndarray) -> np.ndarray:
    """10 puts x 100 repriced by QuantLib at the last SPX close moved by ``spx_move``."""
    spx = float(frame.loc[frame["symbol"] == "SPX", "price"].iloc[-1])
    pricer = QuantLibPricer("bsm")
    cases = [Case(spx * (1.0 + m), strike, DAYS, 0.025, 0.02, 0.25, False) for m in spx_move]
    base = pricer.prices([Case(spx, strike, DAYS, 0.025, 0.02, 0.25, False)], "analytic")[0]
    return 1000.0 * (pricer.prices(cases, "analytic") - base)


def test_stress_reverse_cli_writes_moves_whose_quantlib_repricing_loses_the_target(tmp_path):
    prices, positions, instruments, market, frame, _ = _files(tmp_path, 400)
    out, summary = tmp_path / "reverse.csv", tmp_path / "summary.csv"
    loss = 15_000.0  # the puts and the NASDAQ hedge can lose about 27,000 along the direction
    args = ["stress", "reverse", "--prices", str(prices), "--positions", str(positions),
            "--loss", str(loss), "--out", str(out), "--summary", str(summary),
            "--instruments", str(instruments), "--greeks-market", str(market)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    moves = pd.read_csv(out).set_index("symbol")["move"]
    assert set(moves.index) == {"SPX", "NASDAQ"}  # SPX is held only through the puts
    strike = float(round(0.95 * frame.loc[frame["symbol"] == "SPX", "price"].iloc[-1]))
    nasdaq = float(frame.loc[frame["symbol"] == "NASDAQ", "price"].iloc[-1])
    repriced = _quantlib_book(frame, strike, np.array([moves["SPX"]]))[0]
    total = repriced + 30.0 * nasdaq * moves["NASDAQ"]
    assert total == pytest.approx(-loss, rel=LOSS_TOLERANCE + 1e-10)
    stats = pd.read_csv(summary).iloc[0]
    assert abs(stats["revalued_pnl"] + loss) <= LOSS_TOLERANCE * loss
    assert stats["feasible"]


def test_stress_svar_of_an_options_book_is_quantlib_repricing_over_the_window(tmp_path):
    prices, _, instruments, market, frame, _ = _files(tmp_path, 120)
    positions = tmp_path / "puts.csv"
    positions.write_text("portfolio,symbol,quantity\nputs,SPXP,10\n")
    out = tmp_path / "svar.csv"
    args = ["stress", "svar", "--prices", str(prices), "--positions", str(positions),
            "--out", str(out), "--window", "20", "--horizon", "1",
            "--instruments", str(instruments), "--greeks-market", str(market)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).iloc[0]

    spx = frame[frame["symbol"] == "SPX"].set_index("timestamp")["price"]
    returns = np.diff(np.log(spx.to_numpy()))  # SPX and NASDAQ share every day here
    strike = float(round(0.95 * spx.iloc[-1]))
    pnl = _quantlib_book(frame, strike, np.expm1(returns))
    expected = stressed_risk(pnl, window=20, horizon=1)
    assert row["var"] == pytest.approx(expected.var, rel=1e-10)
    assert row["es"] == pytest.approx(expected.es, rel=1e-10)
    assert row["start"] == spx.index[1 + expected.start].date().isoformat()
    assert expected.var > 0.0
