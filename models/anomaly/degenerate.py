"""Calibration on degenerate streams: how often a score reaches 0.9999 where nothing happens.

The promise of a calibrated score is that 0.9999 marks one normal row in 10,000 on any
stream. This module measures it where detectors usually break: constant and stale series,
quantised values, noise-free periodic series, level shifts, and session gaps (weekends,
holidays and nights of exchange-traded series, a 24/7 market), generated and real
(``arch.data.sp500`` daily closes, the shared one-minute S&P 500 bars), and checks on the
labelled streams of :mod:`producers.anomalies` that jumps and flash crashes are still found.

Every stream marks its *quiet* rows, where nothing happens: in a generated stream every row
but the events put in it (the level shifts themselves); in a real price series every row
whose log return, and the ``QUIET_ROWS - 1`` before it, are within ``QUIET_SIGMAS``
conditional standard deviations (RiskMetrics EWMA, lambda 0.94, made before the return)
of zero, so a session gap with an ordinary price change is quiet and a crash and the rows
whose features still hold it (the 10-row move, the 9-change burst) are not. The figure per stream is the number of quiet rows
scoring at least 0.9999, per 10,000 quiet rows (the target: at most 2).

The generated streams are seeded; none of them was used to choose a detector's settings
beyond what each docstring states (``docs/models/anomaly.md``, "Degenerate streams").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.core.volatility.ewma import ewma_next

QUIET_SIGMAS = 3.0
"""A real series' row is quiet when its log return is within this many conditional sigmas."""
QUIET_ROWS = 10
"""Rows a move stays in the detectors' features (``move_10``; ``burst`` spans 9 changes):
a row is quiet only if no return in its last ``QUIET_ROWS`` was beyond ``QUIET_SIGMAS``
(it was 3, the ``move_3`` window, until the 9-change burst statistic was seen alerting on
the August 2011 S&P 500 volatility burst, docs/models/anomaly.md)."""
ALERT = 0.9999
"""The score the figures count (the price alert threshold)."""
MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Stream:
    """One series to score: epoch-ms ``ts``, ``values``, the quiet rows, the event rows.

    ``calendar`` is what the scorer is told (``None``: its default, ``auto``).
    """

    name: str
    kind: str
    ts: np.ndarray
    values: np.ndarray
    quiet: np.ndarray
    events: np.ndarray
    calendar: str | None = None
    labels: pd.DatetimeIndex | None = None


@dataclass(frozen=True, slots=True)
class StreamFigures:
    """What :func:`measure` reports for one stream (scores from :func:`score_stream`)."""

    name: str
    kind: str
    rows: int
    quiet: int
    quiet_alerts: int
    per_10k: float
    max_quiet: float
    events: int
    events_caught: int

    def row(self) -> str:
        caught = f"{self.events_caught}/{self.events}" if self.events else ""
        return (
            f"| {self.name} | {self.kind} | {self.rows:,} | {self.quiet:,} | {self.quiet_alerts} "
            f"| {self.per_10k:.2f} | {self.max_quiet:.6f} | {caught} |"
        )


HEADER = (
    "| stream | kind | rows | quiet rows | quiet rows >= 0.9999 | per 10,000 | max quiet score "
    "| events >= 0.9999 |\n|---|---|---:|---:|---:|---:|---:|---:|"
)


def _minutes(n: int, start: str = "2024-01-01", step_ms: int = 5 * MINUTE_MS) -> np.ndarray:
    return pd.Timestamp(start, tz="UTC").value // 1_000_000 + np.arange(n) * step_ms


def _quiet_all(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.ones(n, dtype=bool), np.zeros(n, dtype=bool)


def generated(n: int = 10_000, seed: int = 11) -> list[Stream]:
    """The generated degenerate streams (24/7 timestamps every 5 minutes unless stated)."""
    rng = np.random.default_rng(seed)
    ts = _minutes(n)
    out = []
    q, e = _quiet_all(n)
    out.append(Stream("constant", "constant", ts, np.full(n, 100.0), q, e))
    out.append(Stream("constant zero", "constant", ts, np.zeros(n), q, e))
    # stale: a random walk the feed shows only at geometric update times (mean 30 rows)
    walk = 100.0 + np.cumsum(rng.normal(0.0, 0.05, n))
    update = rng.random(n) < 1.0 / 30.0
    update[0] = True
    shown = walk[np.maximum.accumulate(np.where(update, np.arange(n), 0))]
    out.append(Stream("stale (runs of ~30)", "stale", ts, shown, q, e))
    # stale for long: runs of 200-800 rows
    marks = np.cumsum(rng.integers(200, 800, n // 200))
    update = np.zeros(n, dtype=bool)
    update[marks[marks < n]] = True
    update[0] = True
    shown = walk[np.maximum.accumulate(np.where(update, np.arange(n), 0))]
    out.append(Stream("stale (runs of 200-800)", "stale", ts, shown, q, e))
    # quantised: a random walk in ticks of 0.01 with a step sd of 0.6 ticks
    ticks = np.round(np.cumsum(rng.normal(0.0, 0.6, n)))
    out.append(Stream("quantised walk (tick 0.01)", "quantised", ts, 100.0 + 0.01 * ticks, q, e))
    out.append(
        Stream("counts (Poisson 0.3)", "quantised", ts, rng.poisson(0.3, n).astype(float), q, e)
    )
    out.append(
        Stream("binary (on 10%)", "quantised", ts, (rng.random(n) < 0.1).astype(float), q, e)
    )
    k = np.arange(n)
    out.append(Stream("sine (period 288)", "periodic", ts, 100 + np.sin(2 * np.pi * k / 288), q, e))
    out.append(Stream("sawtooth (period 60)", "periodic", ts, (k % 60).astype(float), q, e))
    out.append(Stream("square (period 48)", "periodic", ts, ((k // 24) % 2).astype(float), q, e))
    # level shifts: piecewise constant, a shift every 300-1500 rows (the shift rows are events)
    starts = np.cumsum(rng.integers(300, 1500, n // 300))
    starts = starts[starts < n]
    level = np.zeros(n)
    for s in starts:
        level[s:] += rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 5.0)
    events = np.zeros(n, dtype=bool)
    events[starts] = True
    out.append(Stream("level shifts", "level shift", ts, 50.0 + level, ~events, events))
    return out


def _xnys_sessions(start: str, end: str) -> pd.DataFrame:
    from engine.anomaly.sessions import get_calendar

    return get_calendar("XNYS", start, end).schedule


def session_streams(seed: int = 12) -> list[Stream]:
    """Generated random walks on real trading calendars (session gaps, no events)."""
    rng = np.random.default_rng(seed)
    out = []
    sched = _xnys_sessions("2000-01-01", "2019-12-31")
    dates = (
        pd.DatetimeIndex(sched.index).tz_localize("UTC") if sched.index.tz is None else sched.index
    )
    ts = dates.as_unit("ms").asi8
    n = len(ts)
    values = 1000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    q, e = _quiet_all(n)
    out.append(Stream("XNYS daily, dates", "session gaps", ts, values, q, e))
    closes = sched["close"].dt.tz_convert("UTC").to_numpy(dtype="datetime64[ms]").astype(np.int64)
    out.append(Stream("XNYS daily, closes", "session gaps", closes, values, q, e))
    # one-minute bars over 30 sessions (nights, a weekend every 5 sessions, holidays)
    part = sched.loc["2019-11-01":"2019-12-31"].iloc[:30]
    stamps = np.concatenate(
        [
            np.arange(o.value // 1_000_000, c.value // 1_000_000, MINUTE_MS)
            for o, c in zip(part["open"], part["close"], strict=True)
        ]
    )
    m = len(stamps)
    bars = 3000.0 * np.exp(np.cumsum(rng.normal(0.0, 3e-4, m)))
    q, e = _quiet_all(m)
    out.append(Stream("XNYS 1-minute bars", "session gaps", stamps, bars, q, e))
    # a 24/7 market: hourly, every hour of every day
    h = 10_000
    hourly = _minutes(h, "2021-01-01", 60 * MINUTE_MS)
    crypto = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.008, h)))
    q, e = _quiet_all(h)
    out.append(Stream("24/7 hourly", "session gaps", hourly, crypto, q, e))
    daily = _minutes(3000, "2015-01-01", DAY_MS)
    crypto_d = 500.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, 3000)))
    q, e = _quiet_all(3000)
    out.append(Stream("24/7 daily", "session gaps", daily, crypto_d, q, e))
    return out


def quiet_returns(
    values: np.ndarray, sigmas: float = QUIET_SIGMAS, rows: int = QUIET_ROWS
) -> np.ndarray:
    """Rows whose log return, and the ``rows - 1`` before it, are within ``sigmas`` EWMA
    (0.94) standard deviations made before each (a move counts for the ``rows`` rows whose
    features hold it).

    The first 20 rows (the EWMA's warm-up) are not quiet (nothing is known yet).

    >>> x = 100.0 * np.exp(np.r_[np.zeros(1), np.cumsum(np.tile([0.01, -0.01], 30))])
    >>> x[41:] *= 1.2  # a 20% move at row 41
    >>> q = quiet_returns(x)
    >>> bool(q[40]), bool(q[41:51].any()), bool(q[51])
    (True, False, True)
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    r = np.diff(np.log(values), prepend=np.nan)
    quiet = np.zeros(len(values), dtype=bool)
    var = np.nan
    for i in range(1, len(values)):
        if i > 20 and np.isfinite(var):
            quiet[i] = abs(r[i]) <= sigmas * np.sqrt(var)
        var = r[i] ** 2 if not np.isfinite(var) else ewma_next(var, r[i], DEFAULT_LAMBDA)
    out = quiet.copy()
    for back in range(1, min(rows, len(quiet))):
        out[back:] &= quiet[:-back]
        out[:back] = False
    return out


def real_streams() -> list[Stream]:
    """``arch.data.sp500`` daily closes (as dates) and the one-minute S&P 500 bars (New York)."""
    from producers.sources import arch_daily, sp500_1min

    out = []
    daily = arch_daily("sp500")
    dates = pd.DatetimeIndex(daily["timestamp"]).tz_convert("America/New_York").normalize()
    stamps = dates.tz_localize(None).tz_localize("UTC").as_unit("ms").asi8
    values = daily["price"].to_numpy(dtype=float)
    quiet = quiet_returns(values)
    out.append(
        Stream(
            "S&P 500 daily (arch)",
            "real",
            stamps,
            values,
            quiet,
            np.zeros(len(values), bool),
            labels=pd.DatetimeIndex(dates.tz_localize(None)),
        )
    )
    try:
        minute = sp500_1min()
    except Exception:  # the shared file is optional outside the project's machines
        return out
    ms = pd.DatetimeIndex(minute["timestamp"]).as_unit("ms").asi8
    bars = minute["price"].to_numpy(dtype=float)
    out.append(
        Stream(
            "S&P 500 1-minute (4 days)",
            "real",
            ms,
            bars,
            quiet_returns(bars),
            np.zeros(len(bars), bool),
        )
    )
    return out


def all_streams() -> list[Stream]:
    return generated() + session_streams() + real_streams()


def score_stream(stream: Stream, detector: str = "robust") -> np.ndarray:
    """Scores of ``stream`` as ``riskstream anomaly score`` computes them."""
    from engine.anomaly.series import score_values

    kwargs: dict[str, Any] = {}
    if stream.calendar is not None:
        kwargs["calendar"] = stream.calendar
    return score_values(stream.ts, stream.values, detector, **kwargs)


def figures(stream: Stream, scores: np.ndarray) -> StreamFigures:
    quiet = stream.quiet & ~np.isnan(scores)
    hits = int((scores[quiet] >= ALERT).sum())
    return StreamFigures(
        name=stream.name,
        kind=stream.kind,
        rows=len(scores),
        quiet=int(quiet.sum()),
        quiet_alerts=hits,
        per_10k=1e4 * hits / max(int(quiet.sum()), 1),
        max_quiet=float(np.nanmax(scores[quiet])) if quiet.any() else float("nan"),
        events=int(stream.events.sum()),
        events_caught=int((scores[stream.events] >= ALERT).sum()),
    )


def measure(
    streams: list[Stream] | None = None,
    detector: str = "robust",
    progress: Callable[[str], None] = lambda _: None,
) -> list[StreamFigures]:
    """Score every stream and count quiet rows at or above 0.9999 (module docstring)."""
    out = []
    for stream in streams if streams is not None else all_streams():
        progress(f"degenerate: {stream.name}")
        out.append(figures(stream, score_stream(stream, detector)))
    return out


def markdown(rows: list[StreamFigures]) -> str:
    return "\n".join([HEADER, *(r.row() for r in rows)])


# --- the embedded demo (the price stream's stage) and the labelled streams ------------------


@dataclass(frozen=True, slots=True)
class DemoFigures:
    """The stream stage on the embedded demo's daily closes (``riskstream run``), per symbol."""

    symbol: str
    rows: int
    quiet: int
    quiet_alerts: int
    alerts_first_year: int
    mondays_1999: int
    score_2008_10_13: float

    def row(self) -> str:
        return (
            f"| {self.symbol} | {self.rows:,} | {self.quiet:,} | {self.quiet_alerts} "
            f"| {1e4 * self.quiet_alerts / max(self.quiet, 1):.2f} | {self.mondays_1999} "
            f"| {self.score_2008_10_13:.6f} |"
        )


DEMO_HEADER = (
    "| symbol | rows | quiet rows | quiet rows >= 0.9999 | per 10,000 | of them 1999 Mondays "
    "| score on 2008-10-13 |\n|---|---:|---:|---:|---:|---:|---:|"
)


def demo(batch: int = 5000) -> list[DemoFigures]:
    """Replay the demo's closes through the price pipeline the settings build (default settings)."""
    from engine.config import Settings
    from engine.offline.embedded import tick_records
    from engine.pipeline import PricePipeline
    from producers.sources import bundled_prices, frame_to_ticks

    pipeline = PricePipeline.from_settings(Settings())
    stage = next(s for s in pipeline.stages if s.name == "anomaly_prices")
    stage.keep = True
    frame = bundled_prices()
    records = list(tick_records(frame_to_ticks(frame)))
    now = int(frame["timestamp"].max().value // 1_000_000) + DAY_MS
    for start in range(0, len(records), batch):
        pipeline.process(records[start : start + batch], now_ms=now)
    cap = stage.captured.arrays()
    keys = np.asarray(cap["keys"])
    scores = 1.0 - 10.0 ** -np.asarray(cap["surprisal"])
    when = pd.DatetimeIndex(pd.to_datetime(cap["ts"], unit="ms", utc=True)).tz_convert(
        "America/New_York"
    )
    out = []
    for symbol in sorted(set(keys.tolist())):
        own = keys == symbol
        s, d = scores[own], when[own]
        price = frame.loc[frame["symbol"] == symbol, "price"].to_numpy(dtype=float)
        quiet = quiet_returns(price)[: len(s)]
        hit = quiet & (s >= ALERT)
        crash = d.normalize() == pd.Timestamp("2008-10-13", tz="America/New_York")
        out.append(
            DemoFigures(
                symbol=symbol,
                rows=int(own.sum()),
                quiet=int(quiet.sum()),
                quiet_alerts=int(hit.sum()),
                alerts_first_year=int(((s >= ALERT) & (d.year == 1999)).sum()),
                mondays_1999=int((hit & (d.day_of_week == 0) & (d.year == 1999)).sum()),
                score_2008_10_13=float(s[crash][0]) if crash.any() else float("nan"),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class LabelledFigures:
    """Recall within 3 ticks of jumps and flash crashes, and calm false alarms (per 10,000)."""

    section: str
    symbols: int
    ticks: int
    jump: float
    flash_crash: float
    false_alarms_calm: float

    def row(self) -> str:
        return (
            f"| {self.section} | {self.symbols} x {self.ticks:,} | {self.jump:.2f} "
            f"| {self.flash_crash:.2f} | {self.false_alarms_calm:.2f} |"
        )


LABELLED_HEADER = (
    "| section | symbols x ticks | jump recall@3 | flash_crash recall@3 | calm false alarms /10k |"
    "\n|---|---|---:|---:|---:|"
)


def labelled(
    section: str = "series", symbols: int = 5, ticks: int = 20_000, seed: int = 1
) -> LabelledFigures:
    """The evaluation's protocol (:mod:`models.anomaly.evaluate_prices`) at threshold 0.9999.

    ``section`` ``series`` scores each symbol as ``riskstream anomaly score`` does, ``stream``
    with the stream's default detector; labelled run ``seed``, calm run ``seed + 1``.
    """
    from engine.anomaly.policy import AlertPolicy
    from models.anomaly.evaluate_prices import (
        alerts_of,
        score_alerts,
        series_surprisal,
        stream_surprisal,
    )
    from producers.anomalies import labelled_prices

    policy = AlertPolicy(ALERT)
    lab = labelled_prices(symbols, ticks, seed=seed)
    calm = labelled_prices(symbols, ticks, kinds=(), seed=seed + 1)
    fn = series_surprisal if section == "series" else stream_surprisal
    kinds, _, _, _ = score_alerts(lab, alerts_of(lab, fn(lab, "robust"), policy))
    calm_alerts = int(alerts_of(calm, fn(calm, "robust"), policy).sum())
    recall = {k.kind: k.recall_fast for k in kinds}
    return LabelledFigures(
        section=section,
        symbols=symbols,
        ticks=ticks,
        jump=recall.get("jump", float("nan")),
        flash_crash=recall.get("flash_crash", float("nan")),
        false_alarms_calm=1e4 * calm_alerts / len(calm.frame),
    )


def report(labelled_runs: bool = True, progress: Callable[[str], None] = lambda _: None) -> str:
    """Every figure of this module as Markdown (what ``riskstream anomaly degenerate`` prints)."""
    parts = [
        "### `riskstream anomaly score` (default detector)",
        "",
        markdown(measure(progress=progress)),
    ]
    progress("degenerate: the embedded demo's closes through the price stage")
    parts += ["", "### The price stream's stage on the embedded demo", "", DEMO_HEADER]
    parts += [d.row() for d in demo()]
    if labelled_runs:
        parts += ["", "### Labelled streams (seeds 1 and 2), threshold 0.9999", "", LABELLED_HEADER]
        for section in ("series", "stream"):
            progress(f"degenerate: labelled streams, {section}")
            parts.append(labelled(section).row())
    return "\n".join(parts)
