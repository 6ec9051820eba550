"""Valuation in a base currency through live FX pairs, FX as a risk factor, calendars.

Real data: Ecdat/Garch (US dollars per DM, GBP, JPY, CHF, daily 1980-87), the DJIA, and
BTC-USD (24/7) with NVIDIA (NYSE sessions) in 2020-21 (:mod:`fx_data`). A holding with a
constant local price (a deposit) isolates the currency's part of the risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.anomaly.sessions import get_calendar
from engine.core.dists import normal_factors
from engine.core.portfolio import PortfolioBook
from engine.errors import InputError
from engine.options.instruments import instrument_from_mapping
from engine.options.reference import Listing
from engine.portfolio.positions import Position, apply_listings, run_portfolio

from .fx_data import btc_nvda, djia, garch_fx, long_frame

DAY = 86_400_000


def listing(name: str, kind: str, currency: str, calendar: str = "XNYS") -> Listing:
    inst = instrument_from_mapping(
        {"instrument": name, "kind": kind, "currency": currency, "calendar": calendar}
    )
    return Listing(name, inst)


FX = [listing(s, "fx", "USD", "24/5") for s in ("DEMUSD", "GBPUSD", "JPYUSD", "CHFUSD")]


def fx_ticks(wide: pd.DataFrame, deposits: dict[str, str] | None = None) -> pd.DataFrame:
    """Ticks of the pairs, plus a deposit quoted at a constant 100 per currency given."""
    wide = wide.copy()
    for name in deposits or {}:
        wide[name] = 100.0
    return long_frame(wide)


def run(frame, positions, listings, base="USD", **kw):  # type: ignore[no-untyped-def]
    return run_portfolio(
        frame, positions, interval_ms=DAY, levels=(0.99,), base_currency=base,
        listings=listings, **kw,
    )  # fmt: skip


def test_a_foreign_deposit_has_exactly_the_pairs_var() -> None:
    """1,000 units of a DM deposit at 100 DM are 100,000 DM: the same risk as holding
    100,000 units of DEMUSD, and its VaR is the pair's EWMA VaR (zero local volatility)."""
    wide = garch_fx().iloc[:300]
    frame = fx_ticks(wide, {"BUND": "DEM"})
    listings = [*FX, listing("BUND", "equity", "DEM")]
    deposit, _ = run(frame, [Position("p", "BUND", 1000.0)], listings)
    pair, _ = run(frame, [Position("p", "DEMUSD", 100_000.0)], listings)
    np.testing.assert_allclose(deposit["var"], pair["var"], rtol=1e-12)
    np.testing.assert_allclose(deposit["value"], 100_000.0 * wide["DEMUSD"].iloc[20:], rtol=1e-12)
    assert (deposit["missing_fx"] == "").all() and (deposit["currency"] == "USD").all()

    # independently: RiskMetrics EWMA of the pair's log returns (adjust=True weights)
    r = np.log(wide["DEMUSD"]).diff().dropna()
    sigma = np.sqrt((r**2).ewm(alpha=0.06, adjust=True).mean())
    q, _ = normal_factors(0.99)
    expected = q * sigma.to_numpy() * (100_000.0 * wide["DEMUSD"].iloc[1:].to_numpy())
    np.testing.assert_allclose(deposit["var"].to_numpy(), expected[19:], rtol=1e-9)
    assert deposit["var"].min() > 0.0


def test_the_inverse_pair_gives_the_same_book() -> None:
    """Quoted as USDDEM (DM per dollar) instead of DEMUSD, the value and VaR are unchanged."""
    wide = garch_fx()[["DEMUSD"]].iloc[:200]
    inverse = (1.0 / wide).rename(columns={"DEMUSD": "USDDEM"})
    held = [Position("p", "BUND", 1000.0)]
    bund = listing("BUND", "equity", "DEM")
    direct, direct_parts = run(fx_ticks(wide, {"BUND": "DEM"}), held, [FX[0], bund])
    flipped, flipped_parts = run(
        fx_ticks(inverse, {"BUND": "DEM"}), held, [listing("USDDEM", "fx", "DEM", "24/5"), bund]
    )
    np.testing.assert_allclose(flipped["value"], direct["value"], rtol=1e-12)
    np.testing.assert_allclose(flipped["var"], direct["var"], rtol=1e-9)
    # the pair is a risk factor with the opposite sign of exposure
    fx_direct = direct_parts[direct_parts["symbol"] == "DEMUSD"]["exposure"].to_numpy()
    fx_flipped = flipped_parts[flipped_parts["symbol"] == "USDDEM"]["exposure"].to_numpy()
    np.testing.assert_allclose(fx_flipped, -fx_direct, rtol=1e-12)


def test_a_cross_rate_goes_through_usd() -> None:
    """In a GBP book, a yen deposit is worth 100 * JPYUSD / GBPUSD pounds per unit, and both
    pairs are its risk factors (yen up against the dollar, pound up against the dollar)."""
    wide = garch_fx()[["JPYUSD", "GBPUSD"]].iloc[:100]
    frame = fx_ticks(wide, {"JGB": "JPY"})
    totals, parts = run(
        frame, [Position("p", "JGB", 10.0)], [*FX, listing("JGB", "equity", "JPY")], base="GBP"
    )
    expected = 10.0 * 100.0 * wide["JPYUSD"] / wide["GBPUSD"]
    np.testing.assert_allclose(totals["value"], expected.iloc[20:], rtol=1e-12)
    last = parts[parts["timestamp"] == parts["timestamp"].max()].set_index("symbol")
    x = float(totals["value"].iloc[-1])
    assert last.loc["JPYUSD", "exposure"] == pytest.approx(x, rel=1e-12)
    assert last.loc["GBPUSD", "exposure"] == pytest.approx(-x, rel=1e-12)
    assert last["component_var"].sum() == pytest.approx(totals["var"].iloc[-1], rel=1e-12)


def test_a_missing_rate_is_reported_not_taken_as_one() -> None:
    """A Swiss franc holding with no CHF pair: NaN value and VaR, 'CHF' named; once the
    CHFUSD pair has ticks (it starts trading on day 40 here), the value follows it."""
    wide = garch_fx()[["DEMUSD", "CHFUSD"]].iloc[:80].copy()
    wide.loc[wide.index[:40], "CHFUSD"] = np.nan  # the pair's ticks begin on day 40
    frame = fx_ticks(wide, {"SWISS": "CHF"})
    held = [Position("p", "SWISS", 5.0), Position("p", "DEMUSD", 1000.0)]
    listings = [*FX, listing("SWISS", "equity", "CHF")]
    totals, _ = run(frame, held, listings, min_obs=5)
    missing = totals[totals["missing_fx"] != ""]
    assert set(missing["missing_fx"]) == {"CHF"}
    assert missing["value"].isna().all() and missing["var"].isna().all()
    assert missing["timestamp"].max() < wide.index[40] <= totals["timestamp"].max()
    known = totals[totals["missing_fx"] == ""]
    assert known["timestamp"].min() >= wide.index[40]
    np.testing.assert_allclose(
        known["value"],
        (5.0 * 100.0 * wide["CHFUSD"] + 1000.0 * wide["DEMUSD"]).loc[known["timestamp"]],
        rtol=1e-12,
    )

    # no pair at all in the reference data: missing at every close
    never, _ = run(frame, held, [FX[0], listing("SWISS", "equity", "CHF")], min_obs=5)
    assert (never["missing_fx"] == "CHF").all() and never["var"].isna().all()


def test_fx_risk_adds_to_a_foreign_equity() -> None:
    """The DJIA held in a GBP book moves with the index and with GBPUSD: its VaR is that
    of the two factors with the covariance of both, more than the index's alone here."""
    fx = garch_fx()[["GBPUSD"]]
    wide = fx.join(djia().rename("DJIA"), how="inner").iloc[:400]
    frame = long_frame(wide)
    listings = [*FX, listing("DJIA", "index", "USD")]
    held = [Position("p", "DJIA", 1.0)]
    gbp, _ = run(frame, held, listings, base="GBP")
    r = np.log(wide).diff().dropna()
    base_return = r["DJIA"] - r["GBPUSD"]  # a dollar asset in pounds
    names = ["DJIA", "GBPUSD"]  # zero-mean RiskMetrics covariance, adjust=True weights
    c = np.array(
        [[(r[a] * r[b]).ewm(alpha=0.06, adjust=True).mean().iloc[-1] for b in names] for a in names]
    )
    x = float(gbp["value"].iloc[-1])
    q, _ = normal_factors(0.99)
    expected = q * np.sqrt(np.array([x, -x]) @ c @ np.array([x, -x]))
    assert gbp["var"].iloc[-1] == pytest.approx(expected, rel=1e-9)
    local_only = q * x * np.sqrt(c[0, 0])
    assert gbp["var"].iloc[-1] != pytest.approx(local_only, rel=1e-3)
    assert base_return.std() > r["DJIA"].std()  # in these years the pound added risk


def test_weekend_crypto_moves_accumulate_into_the_next_session() -> None:
    """BTC trades every day, NVDA on NYSE sessions: with BTC marked 24/7 the grid closes
    only on sessions (exchange-calendars' XNYS), and BTC's Monday return is Friday close to
    Monday close. Unmarked, weekends become grid points where NVDA's return is 0."""
    frame = btc_nvda()
    held = [Position("p", "BTCUSD", 1.0), Position("p", "NVDA", 100.0)]
    listings = [listing("BTCUSD", "crypto", "USD", "24/7"), listing("NVDA", "equity", "USD")]
    totals, _ = run(frame, held, listings)
    closes = pd.DatetimeIndex(totals["timestamp"]).tz_convert(None).normalize()
    sessions = get_calendar("XNYS", "2020-01-01", "2021-12-31").sessions
    nvda_days = pd.DatetimeIndex(frame.loc[frame["symbol"] == "NVDA", "timestamp"]).tz_convert(None)
    assert set(closes) <= set(nvda_days) <= set(sessions)
    assert closes.day_of_week.max() <= 4

    book = PortfolioBook(interval_ms=DAY, levels=(0.99,), base_currency="USD")
    apply_listings(book, listings)
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    monday = pd.Timestamp("2020-03-16", tz="UTC")  # after a weekend of large BTC moves
    upto = (frame["timestamp"] < monday + pd.Timedelta(days=1)).to_numpy()
    book.on_ticks(frame["symbol"][upto], ms[upto], frame["price"].to_numpy()[upto])
    book.on_ticks(["NVDA"], np.array([monday.value // 1_000_000 + 2 * DAY]), np.array([1.0]))
    btc = frame[frame["symbol"] == "BTCUSD"].set_index("timestamp")["price"]
    friday = monday - pd.Timedelta(days=3)
    assert book._returns[book.index["BTCUSD"]] == pytest.approx(
        np.log(btc[monday] / btc[friday]), rel=1e-12
    )

    unmarked, _ = run(frame, held, [listing("BTCUSD", "crypto", "USD"), listings[1]])
    weekends = pd.DatetimeIndex(unmarked["timestamp"]).day_of_week >= 5
    assert weekends.sum() > 50


def test_references_survive_the_state_round_trip() -> None:
    book = PortfolioBook(interval_ms=DAY, base_currency="GBP")
    apply_listings(book, [*FX, listing("BTCUSD", "crypto", "USD", "24/7")])
    again = PortfolioBook.from_state(book.to_state())
    assert again.base_currency == "GBP" and again.currency == book.currency
    assert again.pairs["GBPUSD"] == ("GBP", "USD") and again.continuous == {"BTCUSD"}
    apply_listings(again, [Listing("GBPUSD", None)])
    assert "GBPUSD" not in again.pairs and "GBPUSD" not in again.currency


def test_the_base_currency_itself_carries_no_fx_risk() -> None:
    """5,000 pounds held as GBPUSD in a pound book: worth 5,000 at every close, no VaR;
    the same holding in a dollar book has the pair's risk."""
    wide = garch_fx()[["GBPUSD"]].iloc[:120]
    held = [Position("p", "GBPUSD", 5000.0)]
    pounds, parts = run(long_frame(wide), held, FX, base="GBP")
    np.testing.assert_allclose(pounds["value"], 5000.0, rtol=1e-12)
    assert (pounds["var"] == 0.0).all() and (parts["exposure"] == 0.0).all()
    dollars, _ = run(long_frame(wide), held, FX, base="USD")
    assert (dollars["var"] > 0.0).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--base-currency", "GBP"], "--base-currency needs --instruments"),
        (["--instruments", "{inst}", "--base-currency", "pounds"], "expected a currency code"),
    ],
)
def test_the_offline_command_refuses_a_bad_base_currency(tmp_path, extra, message) -> None:
    from typer.testing import CliRunner

    from engine.cli import app

    prices, positions = tmp_path / "p.csv", tmp_path / "q.csv"
    inst = tmp_path / "i.csv"
    long_frame(garch_fx().iloc[:30]).to_csv(prices, index=False)
    positions.write_text("portfolio,symbol,quantity\np,DEMUSD,1\n")
    inst.write_text("instrument,kind,currency,calendar\nDEMUSD,fx,USD,24/5\n")
    args = [a.replace("{inst}", str(inst)) for a in extra]
    result = CliRunner().invoke(
        app,
        ["portfolio", "var", "--prices", str(prices), "--positions", str(positions),
         "--out", str(tmp_path / "o.csv"), *args],
        env={"COLUMNS": "240"},
    )  # fmt: skip
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)


def test_a_file_ending_on_a_weekend_does_not_close_it() -> None:
    """The offline command flushes the open bucket at the end of the file, but a weekend of
    BTC ticks is not a grid point: the last close stays Friday's NVDA session."""
    frame = btc_nvda()
    frame = frame[frame["timestamp"] <= pd.Timestamp("2020-03-15", tz="UTC")]  # a Sunday
    held = [Position("p", "BTCUSD", 1.0), Position("p", "NVDA", 100.0)]
    listings = [listing("BTCUSD", "crypto", "USD", "24/7"), listing("NVDA", "equity", "USD")]
    totals, _ = run(frame, held, listings)
    assert totals["timestamp"].max() == pd.Timestamp("2020-03-13", tz="UTC")


def test_stress_scenarios_move_the_fx_factor_in_the_base_currency() -> None:
    """The streamed stress of a pound book holding the DJIA: a 10% rise of GBPUSD loses
    10% of the holding's pound value, a 20% fall of the DJIA 20% of it, and a spot grid
    over every symbol moves the DJIA, not the pair (which would cancel it)."""
    from engine.stress.live import StressMonitor
    from engine.stress.scenarios import HypotheticalScenario, Shock, SpotVolGrid

    wide = garch_fx()[["GBPUSD"]].join(djia().rename("DJIA"), how="inner").iloc[:60]
    book = PortfolioBook(interval_ms=DAY, levels=(0.99,), base_currency="GBP")
    apply_listings(book, [*FX, listing("DJIA", "index", "USD")])
    book.set_position("p", "DJIA", 3.0, 0)
    frame = long_frame(wide)
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    book.on_ticks(frame["symbol"], ms, frame["price"].to_numpy(float))
    book.flush()
    scenarios = [
        HypotheticalScenario("pound-up", 1, "GBPUSD +10%", "approved", (Shock("symbol", "GBPUSD", 0.10),)),
        HypotheticalScenario("dow-down", 1, "DJIA -20%", "approved", (Shock("symbol", "DJIA", -0.20),)),
        SpotVolGrid("grid", 1, "every symbol", "approved", (-0.1, 0.1), (0.0,)),
    ]  # fmt: skip
    (snap,), _ = StressMonitor(scenarios, every_ms=0).evaluate(book, int(ms[-1]))
    value = 3.0 * wide["DJIA"].iloc[-1] / wide["GBPUSD"].iloc[-1]
    pnl = dict(zip(snap.names, snap.pnl.tolist(), strict=True))
    assert pnl["pound-up"] == pytest.approx(-0.10 * value, rel=1e-12)
    assert pnl["dow-down"] == pytest.approx(-0.20 * value, rel=1e-12)
    assert pnl["grid:spot-0.10:vol+0.00"] == pytest.approx(-0.10 * value, rel=1e-12)
    assert pnl["grid:spot+0.10:vol+0.00"] == pytest.approx(0.10 * value, rel=1e-12)
