"""Portfolio Greeks in currency, the monitor's limits and state, and ``riskstream options greeks``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.options.black import black76, black_scholes_merton
from engine.options.greeks import UnderlyingMarket, portfolio_greeks
from engine.options.instruments import Instrument, option_terms
from engine.options.live import GreeksMonitor, greeks_fields
from engine.options.reference import Listing

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def option(name: str, underlying: str, strike: float, right: str, style: str = "european",
           multiplier: float = 100.0, expiry: str = "2024-07-01") -> Instrument:  # fmt: skip
    terms = option_terms(strike=strike, expiry=expiry, right=right, style=style)
    return Instrument(name, "option", underlying, multiplier=multiplier, option=terms)


INSTRUMENTS = {
    "C": option("C", "SPX", 100.0, "call"),
    "P": option("P", "SPX", 90.0, "put"),
    "N": option("N", "NDX", 200.0, "call", multiplier=10.0),
    "FUT": Instrument("FUT", "future", "CL", expiry=pd.Timestamp("2024-12-01").date()),
    "FC": option("FC", "FUT", 80.0, "call"),
    "OLD": option("OLD", "SPX", 100.0, "call", expiry="2023-12-01"),
}
MARKETS = {
    "SPX": UnderlyingMarket(0.05, 0.01, 0.2),
    "NDX": UnderlyingMarket(0.04, 0.0, 0.3),
    "FUT": UnderlyingMarket(0.03, 0.0, 0.25),
}


def test_greeks_are_per_unit_greeks_times_contracts_multiplier_and_spot() -> None:
    spots = {"SPX": 101.0, "NDX": 210.0, "FUT": 82.0}
    held = {"p": {"C": 2.0, "P": -3.0, "N": 1.0, "SPX": -50.0, "FC": 1.0, "OLD": 4.0, "FUT": 1.0}}
    (snap,) = portfolio_greeks(held, INSTRUMENTS, {"P": 0.25}, spots, MARKETS, ts_ms=T0)
    t = (pd.Timestamp("2024-07-01", tz="UTC").value // 10**6 - T0) / (365 * DAY)
    c = black_scholes_merton(101.0, 100.0, t, 0.05, 0.01, 0.2, True)
    p = black_scholes_merton(101.0, 90.0, t, 0.05, 0.01, 0.25, False)  # its own vol
    n = black_scholes_merton(210.0, 200.0, t, 0.04, 0.0, 0.3, True)
    f = black76(82.0, 80.0, t, 0.03, 0.25, True)
    assert snap.underlyings == ("FUT", "NDX", "SPX")
    assert (snap.options, snap.expired, snap.unpriced) == (4, 1, 1)  # OLD expired, FUT unvalued
    spx = snap.underlyings.index("SPX")
    by = snap.by_underlying
    assert by["delta_units"][spx] == pytest.approx(200 * c.delta - 300 * p.delta - 50, rel=1e-13)
    assert by["delta"][spx] == pytest.approx((200 * c.delta - 300 * p.delta - 50) * 101, rel=1e-13)
    assert by["gamma"][spx] == pytest.approx((200 * c.gamma - 300 * p.gamma) * 101**2, rel=1e-13)
    assert by["vega"][spx] == pytest.approx(200 * c.vega - 300 * p.vega, rel=1e-13)
    assert by["theta"][spx] == pytest.approx(200 * c.theta - 300 * p.theta, rel=1e-13)
    assert by["value"][spx] == pytest.approx(200 * c.price - 300 * p.price - 50 * 101, rel=1e-13)
    ndx = snap.underlyings.index("NDX")
    assert by["rho"][ndx] == pytest.approx(10 * n.rho, rel=1e-13)
    fut = snap.underlyings.index("FUT")
    assert by["rho"][fut] == pytest.approx(100 * f.rho, rel=1e-13)  # Black-76: -T V
    assert snap.delta == pytest.approx(float(by["delta"].sum()), rel=1e-15)


def test_portfolios_without_options_are_left_out_and_missing_market_counts_unpriced() -> None:
    held = {"spot": {"SPX": 1.0}, "opt": {"C": 1.0, "N": 1.0}}
    snaps = portfolio_greeks(held, INSTRUMENTS, {}, {"SPX": 100.0}, MARKETS, ts_ms=T0)
    assert [s.portfolio for s in snaps] == ["opt"]
    assert (snaps[0].options, snaps[0].unpriced) == (1, 1)


def test_limits_alert_once_per_crossing_with_deterministic_ids_and_survive_a_restart() -> None:
    def monitor() -> GreeksMonitor:
        m = GreeksMonitor(MARKETS, delta_limit=8_000.0, vega_limit=1e9)
        m.apply([Listing(k, v) for k, v in INSTRUMENTS.items()])
        return m

    m = monitor()
    m.set_position("p", "C", 1.0, T0)
    m.set_position("p", "C", 2.0, T0 + 2 * DAY)
    assert m.evaluate({"SPX": 100.0}, T0 - DAY) == ([], [])  # not held yet
    _, alerts = m.evaluate({"SPX": 100.0}, T0)
    assert alerts == []  # 1 x 100 x 0.58 x 100 < 8000
    snaps, alerts = m.evaluate({"SPX": 100.0}, T0 + 2 * DAY)
    assert [a.kind for a in alerts] == ["greek_limit"] and alerts[0].details["greek"] == "delta"
    assert alerts[0].value == abs(snaps[0].delta) and alerts[0].threshold == 8_000.0
    again = monitor()
    again.restore(m.to_state())
    assert again.evaluate({"SPX": 100.0}, T0 + 3 * DAY)[1] == []  # still in breach
    replay = monitor()
    replay.set_position("p", "C", 2.0, T0)
    assert replay.evaluate({"SPX": 100.0}, T0 + 2 * DAY)[1][0].alert_id == alerts[0].alert_id
    fields = greeks_fields(snaps[0])
    assert float(fields["delta"]) == snaps[0].delta and "delta_units:SPX" in fields
    with pytest.raises(ValueError, match="delta limit"):
        GreeksMonitor(MARKETS, delta_limit=0.0)


def test_tombstones_withdraw_instruments_and_their_vols() -> None:
    m = GreeksMonitor(MARKETS)
    m.apply([Listing("C", INSTRUMENTS["C"], 0.3)])
    assert m.is_option("C") and m.vols == {"C": 0.3}
    m.apply([Listing("C", None)])
    assert not m.is_option("C") and m.vols == {}


def test_the_offline_command_writes_the_monitors_numbers(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    (tmp_path / "positions.csv").write_text(
        "portfolio,symbol,quantity,timestamp\nbook,C,2,\nbook,SPX,-100,\nbook,P,-1,2024-01-02T00:00:00Z\n"
    )
    (tmp_path / "instruments.csv").write_text(
        "instrument,underlying,strike,expiry,right,style,multiplier,vol\n"
        "C,SPX,100,2024-07-01,call,european,100,\nP,SPX,90,2024-07-01,put,american,100,0.25\n"
    )
    (tmp_path / "market.csv").write_text(
        "timestamp,underlying,spot,rate,dividend_yield,vol\n"
        "2024-01-01T00:00:00Z,SPX,100,0.05,0.01,0.2\n2024-01-02T00:00:00Z,SPX,101,0.05,0.01,0.21\n"
    )
    out = tmp_path / "out.csv"
    args = [
        "options",
        "greeks",
        *(f"--{n}={tmp_path / (n + '.csv')}" for n in ("positions", "instruments", "market")),
        f"--out={out}",
    ]
    monkeypatch.setattr(sys, "argv", ["riskstream", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code in (0, None), capsys.readouterr().err
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert table["underlying"].tolist() == ["*", "SPX", "*", "SPX"]
    assert table["timestamp"].tolist()[2] == "2024-01-02T00:00:00Z"
    m = GreeksMonitor({"SPX": UnderlyingMarket(0.05, 0.01, 0.21)})
    m.apply(
        [
            Listing("C", INSTRUMENTS["C"]),
            Listing("P", option("P", "SPX", 90.0, "put", "american"), 0.25),
        ]
    )
    for p, s, q in (("book", "C", 2.0), ("book", "SPX", -100.0), ("book", "P", -1.0)):
        m.set_position(p, s, q, T0)
    (snap,) = m.evaluate({"SPX": 101.0}, T0 + DAY)[0]
    last = table.iloc[2]
    for name in ("value", "delta", "gamma", "vega", "theta", "rho"):
        assert last[name] == snap.total(name), name
    assert np.isnan(last["delta_units"]) and table.iloc[3]["options"] == 2
