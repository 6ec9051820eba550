"""Greeks and the options VaR in the portfolio's base currency, at the live FX rates.

The convention (:mod:`engine.options.greeks`): each position's amounts in its price
currency times that currency's rate into the base, FX held fixed; ``delta_units`` stays
in units of the underlying; a currency without a rate is reported, never taken as 1.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.options.greeks import GREEK_NAMES, UnderlyingMarket, portfolio_greeks
from engine.options.instruments import Instrument, option_terms
from engine.options.live import GreeksMonitor, greeks_fields
from engine.options.live_var import options_var

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
AMOUNTS = ("value", "delta", "gamma", "vega", "theta", "rho")


def option(name: str, underlying: str, strike: float, currency: str, right: str = "call",
           multiplier: float = 100.0) -> Instrument:  # fmt: skip
    terms = option_terms(strike=strike, expiry="2024-07-01", right=right, style="european")
    return Instrument(
        name, "option", underlying, currency=currency, multiplier=multiplier, option=terms
    )


INSTRUMENTS = {
    "EURUSD": Instrument("EURUSD", "fx", currency="USD", calendar="24/5"),
    "USDJPY": Instrument("USDJPY", "fx", currency="JPY", calendar="24/5"),
    "NVDA": Instrument("NVDA", "equity", currency="USD"),
    "NKY": Instrument("NKY", "index", currency="JPY", calendar="XTKS"),
    "SAP": Instrument("SAP", "equity", currency="EUR", calendar="XETR"),
    "NVDA-C": option("NVDA-C", "NVDA", 500.0, "USD"),
    "NVDA-P": option("NVDA-P", "NVDA", 450.0, "USD", right="put"),
    "NKY-C": option("NKY-C", "NKY", 33_000.0, "JPY", multiplier=1000.0),
    "SAP-C": option("SAP-C", "SAP", 140.0, "EUR"),
    "SMI-C": option("SMI-C", "SMI", 11_000.0, "CHF", multiplier=10.0),
}
MARKETS = {
    "NVDA": UnderlyingMarket(0.05, 0.0, 0.5),
    "NKY": UnderlyingMarket(0.001, 0.02, 0.2),
    "SAP": UnderlyingMarket(0.03, 0.01, 0.25),
    "SMI": UnderlyingMarket(0.01, 0.03, 0.15),
}
SPOTS = {
    "EURUSD": 1.25, "USDJPY": 140.0, "NVDA": 480.0, "NKY": 33_500.0, "SAP": 138.0,
    "SMI": 11_100.0,
}  # fmt: skip
HELD = {
    "desk": {"NVDA-C": 3.0, "NVDA-P": -2.0, "NVDA": -100.0, "NKY-C": 1.0, "SAP-C": 5.0},
    "swiss": {"SMI-C": 2.0, "NVDA-C": 1.0},
}


def snapshots(base: str | None) -> dict[str, object]:
    out = portfolio_greeks(HELD, INSTRUMENTS, {}, SPOTS, MARKETS, ts_ms=T0, base_currency=base)
    return {s.portfolio: s for s in out}


def test_each_underlyings_greeks_are_its_local_greeks_times_the_live_rate() -> None:
    local, euro = snapshots(None)["desk"], snapshots("EUR")["desk"]
    assert local.underlyings == euro.underlyings == ("NKY", "NVDA", "SAP")
    assert local.currency is None and euro.currency == "EUR" and euro.missing_fx == ()
    # USD -> EUR: the inverse of EURUSD; JPY -> EUR crossed through USD: 1/USDJPY/EURUSD
    rates = {"NVDA": 1 / 1.25, "NKY": 1 / 140.0 / 1.25, "SAP": 1.0}
    for k, u in enumerate(euro.underlyings):
        for name in AMOUNTS:
            want = float(local.by_underlying[name][k]) * rates[u]
            assert math.isclose(float(euro.by_underlying[name][k]), want, rel_tol=1e-14), (u, name)
        assert euro.by_underlying["delta_units"][k] == local.by_underlying["delta_units"][k]
    for name in AMOUNTS:
        assert math.isclose(
            euro.total(name),
            sum(float(local.by_underlying[name][k]) * rates[u] for k, u in enumerate(euro.underlyings)),
            rel_tol=1e-13,
        )  # fmt: skip
    # the short shares are in the delta, in euros: -100 x 480 USD at 1.25
    assert local.by_underlying["delta"][1] != euro.by_underlying["delta"][1]
    assert (euro.options, euro.unpriced) == (4, 0)


def test_the_base_currency_itself_converts_at_exactly_one() -> None:
    local, dollar = snapshots(None)["desk"], snapshots("USD")["desk"]
    nvda = dollar.underlyings.index("NVDA")
    for name in AMOUNTS:
        assert dollar.by_underlying[name][nvda] == local.by_underlying[name][nvda]


def test_a_currency_without_a_rate_is_reported_and_its_positions_left_out() -> None:
    swiss = snapshots("EUR")["swiss"]
    assert swiss.missing_fx == ("CHF",)  # no CHF pair in the reference data
    assert swiss.underlyings == ("NVDA",) and (swiss.options, swiss.unpriced) == (1, 1)
    fields = greeks_fields(swiss)
    assert fields["currency"] == "EUR" and fields["fx_missing"] == "CHF"
    # a pair without a price yet is a missing rate too, not a rate of 1
    no_rate = {k: v for k, v in SPOTS.items() if k != "EURUSD"}
    (desk, _) = portfolio_greeks(
        HELD, INSTRUMENTS, {}, no_rate, MARKETS, ts_ms=T0, base_currency="EUR"
    )
    assert desk.missing_fx == ("JPY", "USD") and desk.underlyings == ("SAP",)
    assert "currency" not in greeks_fields(snapshots(None)["desk"])


def test_the_options_var_scales_with_the_rate() -> None:
    held = {"NVDA-C": 3.0, "NVDA-P": -2.0}
    cov = (["NVDA"], np.array([[0.03**2]]))
    args = (held, INSTRUMENTS, {}, SPOTS, MARKETS, cov)
    kw = {"ts_ms": T0, "horizon_ms": 86_400_000, "n_scenarios": 500, "seed": 3}
    local = options_var(*args, **kw)
    euro = options_var(*args, **kw, base_currency="EUR")
    assert local is not None and euro is not None
    for name in ("var", "var_full", "var_gap"):
        assert math.isclose(getattr(euro, name), getattr(local, name) / 1.25, rel_tol=1e-12)
    assert options_var(*args, **kw, base_currency="CHF") is None  # no USD->CHF route


def test_the_monitor_publishes_in_its_base_currency() -> None:
    monitor = GreeksMonitor(MARKETS, base_currency="EUR")
    monitor.instruments.update(INSTRUMENTS)
    for name, qty in HELD["desk"].items():
        monitor.set_position("desk", name, qty, T0)
    (snap,), _ = monitor.evaluate(SPOTS, T0)
    expected = snapshots("EUR")["desk"]
    assert snap.currency == "EUR"
    for name in GREEK_NAMES:
        assert np.array_equal(snap.by_underlying[name], expected.by_underlying[name])


def test_the_offline_command_converts_with_the_market_files_fx_spots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "instruments.csv").write_text(
        "instrument,kind,currency,calendar,underlying,strike,expiry,right,style,multiplier\n"
        "EURUSD,fx,USD,24/5,,,,,,\n"
        "NVDA,equity,USD,XNYS,,,,,,\n"
        "NVDA-C,option,USD,XNYS,NVDA,500,2024-07-01,call,european,100\n"
    )
    (tmp_path / "positions.csv").write_text("portfolio,symbol,quantity\ndesk,NVDA-C,3\n")
    (tmp_path / "market.csv").write_text(
        "timestamp,underlying,spot,rate,dividend_yield,vol\n"
        "2024-01-01T00:00:00Z,NVDA,480,0.05,0,0.5\n"
        "2024-01-01T00:00:00Z,EURUSD,1.25,0.05,0.04,0.08\n"
        "2024-01-02T00:00:00Z,EURUSD,1.10,0.05,0.04,0.08\n"
    )
    args = ["options", "greeks", "--positions", str(tmp_path / "positions.csv"),
            "--instruments", str(tmp_path / "instruments.csv"),
            "--market", str(tmp_path / "market.csv")]  # fmt: skip
    for base, out in ((None, "local.csv"), ("EUR", "euro.csv")):
        extra = [] if base is None else ["--base-currency", base]
        monkeypatch.setattr(
            sys, "argv", ["riskstream", *args, *extra, "--out", str(tmp_path / out)]
        )
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == 0
    local = pd.read_csv(tmp_path / "local.csv")
    euro = pd.read_csv(tmp_path / "euro.csv")
    assert "currency" not in local and set(euro["currency"]) == {"EUR"}
    assert euro["missing_fx"].isna().all()
    rows = euro["underlying"] == "*"
    # the second day: NVDA unchanged, the euro at 1.10 dollars
    for day, fx in ((0, 1.25), (1, 1.10)):
        got = euro[rows].iloc[day]
        want = local[local["underlying"] == "*"].iloc[day]
        for name in AMOUNTS:
            assert math.isclose(got[name], want[name] / fx, rel_tol=1e-12), (day, name)

    bad = ["--base-currency", "euro", "--out", str(tmp_path / "x.csv")]
    monkeypatch.setattr(sys, "argv", ["riskstream", *args, *bad])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2


def test_a_portfolio_moves_between_monitors_with_its_positions_and_breaches() -> None:
    source = GreeksMonitor(MARKETS, delta_limit=1.0)
    source.instruments.update(INSTRUMENTS)
    for name, qty in HELD["desk"].items():
        source.set_position("desk", name, qty, T0)
    source.set_position("desk", "SAP-C", 0.0, T0 + 86_400_000)  # pending: closes later
    source.set_position("other", "NVDA-C", 1.0, T0)
    (snap, _), alerts = source.evaluate(SPOTS, T0)
    assert [a.subject for a in alerts] == ["desk", "other"]
    state = source.portfolio_state("desk")
    assert state["breached"] == ["desk|delta"] and len(state["pending"]) == 1

    target = GreeksMonitor(MARKETS, delta_limit=1.0)
    target.instruments.update(INSTRUMENTS)
    target.put_portfolio("desk", state)
    source.drop_portfolio("desk")
    assert set(source.positions) == {"other"} and source.breached == {"other|delta"}
    (moved,), again = target.evaluate(SPOTS, T0)
    assert again == []  # still beyond its limit: no second alert after the move
    for name in GREEK_NAMES:
        assert np.array_equal(moved.by_underlying[name], snap.by_underlying[name])
    (later,), _ = target.evaluate(SPOTS, T0 + 86_400_000)
    assert "SAP" not in later.underlyings  # the pending close came along
