"""Degenerate inputs never crash a feature kernel, a stage or the price pipeline.

Constant, stale-then-moving, two-value (quantised) and single-tick series, with and
without volume, on the 24/7, XNYS and auto clocks, give finite features, or NaN where the
rule of docs/models/anomaly.md ("Degenerate streams and session gaps") says so:

- a volatility forecast of 0 (a price that has not moved) is no scale: ``z``, the moves
  and ``burst`` standardised by it are NaN (this used to raise ZeroDivisionError in the
  compiled ``burst`` on the first moves after a stale stretch);
- a step with no time on the clock (a repeated timestamp, two ticks while an explicit
  calendar's exchange is closed, a close then the next open) has a NaN gap and is not
  learnt as an interval.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.anomaly.features.prices import PRICE_FEATURES, PriceFeatures
from engine.anomaly.features.series import SERIES_FEATURES, SeriesFeatures
from engine.boundary.schemas import PriceTick
from engine.config import Settings
from engine.pipeline import PricePipeline

START = int(pd.Timestamp("2024-01-02 14:30", tz="UTC").value // 1_000_000)
"""The XNYS open of 2 January 2024, epoch ms: one-minute ticks from here are in session."""
MINUTE = 60_000
CLI = (sys.executable, "-m", "engine.cli")
NOW = START + 365 * 86_400_000
SCALED = [PRICE_FEATURES.index(c) for c in ("z", "move_2", "move_3", "move_10", "burst")]
ALWAYS_FINITE = [PRICE_FEATURES.index(c) for c in ("volume_z", "frozen", "frozen_surprisal")]


def _stale_then_moving(n: int = 120, stale: int = 60) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.r_[np.full(stale, 100.0), 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n - stale)))]


PRICES = {
    "constant": np.full(120, 100.0),
    "stale then moving": _stale_then_moving(),
    "two values (tick 0.01)": np.where(np.random.default_rng(3).random(120) < 0.5, 100.0, 100.01),
    "single tick": np.array([100.0]),
}


def _book_like_sigma(prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log returns and an EWMA(0.94) forecast made before each, 0 while nothing moved."""
    r = np.r_[np.nan, np.diff(np.log(prices))]
    sigma = np.full(r.size, np.nan)
    var = 0.0
    for i in range(1, r.size):
        sigma[i] = np.sqrt(var)
        var = 0.94 * var + 0.06 * r[i] ** 2
    return r, sigma


@pytest.mark.parametrize("calendar", ["24/7", "XNYS", "auto"])
@pytest.mark.parametrize("volume", [None, 1000.0])
@pytest.mark.parametrize("name", sorted(PRICES))
def test_price_features_of_degenerate_series_are_finite_or_documented_nan(
    name: str, volume: float | None, calendar: str
) -> None:
    prices = PRICES[name]
    r, sigma = _book_like_sigma(prices)
    f = PriceFeatures(calendar=calendar)
    f.ensure(1)
    ts = START + np.arange(prices.size) * MINUTE
    vol = np.full(prices.size, np.nan if volume is None else volume)
    out = f.update(np.zeros(prices.size, np.int64), ts, r, sigma, vol)
    assert not np.isinf(out).any()
    assert np.isfinite(out[:, ALWAYS_FINITE]).all()
    # standardised features are defined exactly where the forecast before them is a scale
    no_scale = ~(sigma > 0)
    assert np.isnan(out[no_scale][:, SCALED]).all()
    z = out[:, PRICE_FEATURES.index("z")]
    assert np.isfinite(z[~no_scale]).all()
    # in-session minute ticks: every step after the first is an ordinary interval
    assert np.isfinite(out[1:, PRICE_FEATURES.index("gap")]).all()
    assert np.abs(out[2:, PRICE_FEATURES.index("gap")]).max(initial=0.0) < 1e-9


def test_burst_after_a_stale_stretch_waits_for_a_scale_then_is_finite() -> None:
    """The first moves after 60 unchanged prices: NaN while the window starts at a zero
    forecast (it used to raise ZeroDivisionError), finite from the first window with one."""
    prices = _stale_then_moving()
    r, sigma = _book_like_sigma(prices)
    f = PriceFeatures()
    f.ensure(1)
    ts = START + np.arange(prices.size) * MINUTE
    out = f.update(np.zeros(prices.size, np.int64), ts, r, sigma, np.full(prices.size, np.nan))
    burst = out[:, PRICE_FEATURES.index("burst")]
    first_scale = int(np.flatnonzero(sigma > 0)[0])  # the tick after the first move
    assert np.isnan(burst[: first_scale + 8]).all()
    assert np.isfinite(burst[first_scale + 8 :]).all()


def test_ticks_while_the_exchange_is_closed_are_no_intervals_on_an_explicit_calendar() -> None:
    """Extended-hours minute bars on XNYS (04:00-19:00 New York, three days): the bars
    outside the session have no trading time between them, so their gap is NaN, and the
    session's bars stay ordinary one-minute steps (learning 1 ms intervals would make
    every one of them a gap)."""
    stamps = _extended_hours(15 * 60)
    ts = stamps.tz_convert("UTC").as_unit("ms").asi8
    n = ts.size
    f = PriceFeatures(calendar="XNYS")
    f.ensure(1)
    r = np.r_[np.nan, np.full(n - 1, 1e-4)]
    out = f.update(np.zeros(n, np.int64), ts, r, np.full(n, 1e-4), np.full(n, np.nan))
    gap = out[:, PRICE_FEATURES.index("gap")]
    local = stamps.hour * 60 + stamps.minute
    in_session = (local > 9 * 60 + 30) & (local <= 16 * 60)
    closed = (local < 9 * 60 + 30) | (local > 16 * 60)
    assert np.isnan(gap[closed][1:]).all()
    assert np.abs(gap[in_session]).max() < 1e-9


def _extended_hours(minutes: int) -> pd.DatetimeIndex:
    """One-minute New York stamps from 04:00, ``minutes`` a day, 3-5 January 2024."""
    days = pd.to_datetime(["2024-01-03", "2024-01-04", "2024-01-05"])
    return pd.DatetimeIndex(
        [
            t
            for d in days
            for t in pd.date_range(d + pd.Timedelta("04:00:00"), periods=minutes, freq="min")
        ]
    ).tz_localize("America/New_York")


@pytest.mark.xfail(strict=True, reason="known: the date-stamp rule reads 00:00 UTC as a close")
def test_an_intraday_tick_at_midnight_utc_is_no_gap_on_an_explicit_calendar() -> None:
    """Not yet met: 19:00 New York is 00:00 UTC, which sessions.py reads as a date stamp,
    the close of the next day's session, so the clock jumps a whole session forward (and
    back at 19:01): the 19:00 bar scores a gap of log(390). Fixing it needs the date-stamp
    rule per series (a series of date stamps), not per timestamp."""
    stamps = _extended_hours(16 * 60)
    ts = stamps.tz_convert("UTC").as_unit("ms").asi8
    f = PriceFeatures(calendar="XNYS")
    f.ensure(1)
    n = ts.size
    r = np.r_[np.nan, np.full(n - 1, 1e-4)]
    out = f.update(np.zeros(n, np.int64), ts, r, np.full(n, 1e-4), np.full(n, np.nan))
    assert not (out[:, PRICE_FEATURES.index("gap")] > 1.0).any()


def test_series_features_do_not_learn_repeated_timestamps() -> None:
    """Two rows per second (a feed with whole-second stamps): the second of each pair has
    no interval, and the first is an ordinary one-second step, not a 1000-fold gap."""
    ts = np.repeat(np.arange(200) * 1000, 2)
    x = np.round(100 + np.cumsum(np.random.default_rng(5).normal(0, 0.01, ts.size)), 2)
    f = SeriesFeatures(window=50, min_obs=5, calendar="24/7")
    f.ensure(1)
    out = f.update(np.zeros(ts.size, np.int64), ts, x)
    gap = out[:, SERIES_FEATURES.index("gap")]
    assert np.isnan(gap[1::2]).all()
    assert np.abs(gap[2::2]).max() < 1e-9
    assert not np.isinf(out).any()


@pytest.mark.parametrize("calendar", ["24/7", "XNYS", "auto"])
def test_series_features_of_constant_and_quantised_series_are_finite_or_nan(
    calendar: str,
) -> None:
    for x in (np.full(300, 5.0), np.where(np.arange(300) % 7 == 0, 1.0, 0.0), np.array([3.0])):
        f = SeriesFeatures(window=50, min_obs=5, calendar=calendar)
        f.ensure(1)
        ts = START + np.arange(x.size) * MINUTE
        out = f.update(np.zeros(x.size, np.int64), ts, x)
        assert not np.isinf(out).any()
        assert np.isfinite(out[:, SERIES_FEATURES.index("frozen_surprisal")]).all()


def _ticks(prices: np.ndarray, ts: np.ndarray, volume: float | None) -> list:
    extra = {} if volume is None else {"volume": volume}
    return [
        PriceTick("HALT", int(t), float(p), **extra).to_record(i)
        for i, (t, p) in enumerate(zip(ts, prices, strict=True))
    ]


@pytest.mark.parametrize("volume", [None, 0.0])
def test_default_price_pipeline_scores_a_real_series_with_a_halt(volume: float | None) -> None:
    """The shared one-minute S&P 500 bars (four days, nights between them) with a halt:
    the price frozen for an hour on the second day, then trading resumes at its real
    prices. The default pipeline (every model, the anomaly stage) scores every tick,
    finite and in [0, 1], and the halt's frozen run alerts at most once."""
    from producers.sources import sp500_1min

    minute = sp500_1min()  # ../shared/data, beside every clone the project runs on
    ts = pd.DatetimeIndex(minute["timestamp"]).as_unit("ms").asi8
    prices = minute["price"].to_numpy(dtype=float).copy()
    halt = slice(400, 460)
    prices[halt] = prices[halt.start - 1]
    pipe = PricePipeline.from_settings(Settings())
    scores: list[float] = []
    alerts = []
    records = _ticks(prices, ts, volume)
    for k in range(0, len(records), 97):  # micro-batches, as a worker sees them
        out = pipe.process(records[k : k + 97], now_ms=NOW)
        assert not out.dead_letters
        alerts += [a for a in out.alerts if a.kind == "anomaly"]
        scores += [float(s.fields["score"]) for s in out.latest if "anomaly" in s.key]
    assert len(scores) == len(range(0, len(records), 97))
    assert all(0.0 <= s <= 1.0 for s in scores)
    frozen = [a for a in alerts if a.details["driver"] == "frozen_surprisal"]
    assert len(frozen) <= 1


@pytest.mark.parametrize("name", sorted(PRICES))
def test_default_price_pipeline_survives_each_degenerate_series(name: str) -> None:
    prices = PRICES[name]
    ts = START + np.arange(prices.size) * MINUTE
    out = PricePipeline.from_settings(Settings()).process(_ticks(prices, ts, 1000.0), now_ms=NOW)
    assert out.accepted == prices.size
    scores = [float(s.fields["score"]) for s in out.latest if "anomaly" in s.key]
    assert len(scores) == 1 and 0.0 <= scores[0] <= 1.0


@pytest.fixture(scope="module")
def halted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five hours of one-minute prices: 150 unchanged, then a random walk."""
    path = tmp_path_factory.mktemp("halted") / "prices.csv"
    stamps = pd.date_range("2024-01-02 14:30", periods=300, freq="min", tz="UTC")
    pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbol": "HALT",
            "price": _stale_then_moving(300, 150),
            "volume": 1000,
        }
    ).to_csv(path, index=False)
    return path


def test_riskstream_run_on_a_halted_symbol(halted_csv: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "run", "--prices", str(halted_csv), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ZeroDivisionError" not in done.stderr


def test_anomaly_score_on_a_halted_series(halted_csv: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(halted_csv)
    series = tmp_path / "series.csv"
    frame.rename(columns={"price": "value"})[["timestamp", "value"]].to_csv(series, index=False)
    out = tmp_path / "scored.csv"
    done = subprocess.run(
        [*CLI, "anomaly", "score", "--input", str(series), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    scores = pd.read_csv(out)["anomaly_score"].to_numpy()
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert scores[:150].max() < 0.9999  # a constant stretch is no evidence
