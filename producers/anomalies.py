r"""Seeded price streams with injected, labelled anomalies: the ground truth of the evaluation.

Each symbol's calm stream is a GARCH(1,1) with unit-variance Student-t innovations
(parameters drawn per symbol from the ranges of :mod:`producers.synthetic`:
:math:`\nu \sim U(4, 10)`, :math:`\alpha \sim U(0.03, 0.12)`,
:math:`\alpha+\beta \sim U(0.93, 0.99)`, annual volatility :math:`U(0.1, 0.6)`), one tick
every ``interval_ms``, zero drift and *no* jumps of its own, so every unusual event in
it is one we put there and labelled. Volume is log-normal around a per-symbol level,
scaled by the conditional volatility.

Anomalies, each at a random tick after a clean burn-in and at least ``spacing`` ticks
from the previous one, sized in units of the conditional standard deviation
:math:`\sigma_t` at their start:

``jump``
    one return of :math:`\pm k\sigma_t`, :math:`k \sim U(k_0, 25)` with :math:`k_0 = 10`
    by default, kept (a news move). Window: that tick.
``flash_crash``
    a fall of :math:`k\sigma_t`, :math:`k \sim U(15, 40)`, spread over 1-3 ticks, then
    a recovery of 70-100% of it over 3-10 ticks. Window: fall and recovery.
``level_shift``
    a permanent move of :math:`\pm k\sigma_t`, :math:`k \sim U(15, 30)`, spread evenly
    over 5-10 ticks (each tick 1.5-6 :math:`\sigma` out of line). Window: those ticks.
``vol_burst``
    returns scaled by :math:`m \sim U(3, 6)` for 20-100 ticks. Window: those ticks.
``frozen``
    the feed repeats the last price and volume for 10-50 ticks, then catches up with
    the true price. Window: the frozen ticks and the catch-up tick.
``stale``
    no ticks for 20-200 intervals; the stream resumes at the true price. Window: the
    first tick after the silence (nothing is observable before it).

``magnitude`` records ``k`` (in :math:`\sigma` units), ``m``, or the number of ticks.
Sizes are in conditional standard deviations, but calm returns are Student t: in a
:math:`t_4` stream a move beyond :math:`8\sigma` occurs about 3 times in 10,000 ticks
by itself, so at a budget of one false alarm per 10,000 ticks no detector can flag
every 8-sigma jump there. ``min_jump`` lowers :math:`k_0` to measure how recall falls
with size. Everything is a deterministic function of the arguments (seed included).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.boundary.schemas import PriceTick
from engine.errors import InputError
from producers.synthetic import TRADING_YEAR_S, _standard_t, symbol_names

KINDS = ("jump", "flash_crash", "level_shift", "vol_burst", "frozen", "stale")
"""Every kind of injected anomaly, in report order."""


@dataclass(frozen=True, slots=True)
class Injected:
    """One labelled anomaly: ticks ``start..end`` (inclusive, per-symbol tick numbers)."""

    symbol: str
    kind: str
    start: int
    end: int
    magnitude: float


@dataclass(frozen=True, slots=True)
class LabelledStream:
    """The ticks (``symbol``, ``tick``, ``ts``, ``price``, ``volume``, ``label``) and the anomalies.

    ``label`` is the anomaly kind for ticks inside a window, else ``""``. Rows are in
    time order, symbols in order within a timestamp.
    """

    frame: pd.DataFrame
    anomalies: tuple[Injected, ...]

    def ticks(self) -> Iterator[PriceTick]:
        """The stream as price ticks (``event_id`` is ``SYMBOL-tick``)."""
        f = self.frame
        for symbol, tick, ts, price, volume in zip(
            f["symbol"].tolist(),
            f["tick"].tolist(),
            f["ts"].tolist(),
            f["price"].tolist(),
            f["volume"].tolist(),
            strict=True,
        ):
            yield PriceTick(symbol, ts, price, volume, f"{symbol}-{tick}")


def labelled_prices(
    n_symbols: int = 10,
    ticks: int = 20_000,
    *,
    kinds: Sequence[str] = KINDS,
    spacing: int = 400,
    burn_in: int = 1000,
    interval_ms: int = 1000,
    seed: int = 0,
    start_ms: int = 1_600_000_000_000,
    min_jump: float = 10.0,
) -> LabelledStream:
    """Calm GARCH-t streams with anomalies of ``kinds`` injected (see the module docstring).

    Parameters
    ----------
    n_symbols, ticks
        Symbols, and ticks per symbol before injection (``stale`` removes some).
    kinds
        Kinds to inject, drawn uniformly per anomaly; empty for a calm stream.
    spacing
        Least distance in ticks between the starts of two anomalies of a symbol.
    burn_in
        Clean ticks at the start of each symbol.
    min_jump
        Smallest jump, in conditional standard deviations (``k_0``).

    Examples
    --------
    >>> s = labelled_prices(2, 3000, kinds=("jump",), seed=1)
    >>> sorted({a.kind for a in s.anomalies}), len(s.frame) == 6000
    (['jump'], True)
    >>> calm = labelled_prices(1, 500, kinds=())
    >>> calm.anomalies, bool((calm.frame["label"] == "").all())
    ((), True)
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise InputError(f"unknown anomaly kinds {sorted(unknown)}; choose from {list(KINDS)}")
    if n_symbols < 1 or ticks < 10:
        raise InputError("need at least one symbol and ten ticks")
    frames = []
    anomalies: list[Injected] = []
    for i, symbol in enumerate(symbol_names(n_symbols)):
        rng = np.random.default_rng([seed, i])
        frame, injected = _symbol(
            rng, symbol, ticks, kinds, spacing, burn_in, interval_ms, start_ms, min_jump
        )
        frames.append(frame)
        anomalies += injected
    frame = pd.concat(frames, ignore_index=True)
    order = np.lexsort((frame["symbol"].to_numpy(), frame["ts"].to_numpy()))
    return LabelledStream(frame.iloc[order].reset_index(drop=True), tuple(anomalies))


def _symbol(
    rng: np.random.Generator,
    symbol: str,
    ticks: int,
    kinds: Sequence[str],
    spacing: int,
    burn_in: int,
    interval_ms: int,
    start_ms: int,
    min_jump: float,
) -> tuple[pd.DataFrame, list[Injected]]:
    sigma_ann = rng.uniform(0.10, 0.60)
    alpha = rng.uniform(0.03, 0.12)
    beta = rng.uniform(0.93, 0.99) - alpha
    nu = rng.uniform(4.0, 10.0)
    h_bar = sigma_ann**2 * (interval_ms / 1000.0) / TRADING_YEAR_S
    omega = h_bar * (1.0 - alpha - beta)
    base_volume = math.exp(rng.uniform(math.log(100.0), math.log(10_000.0)))
    z = _standard_t(rng, nu, (ticks,))
    noise = rng.standard_normal(ticks)
    # calm GARCH(1,1)
    sigma = np.empty(ticks)
    r = np.empty(ticks)
    h, eps = h_bar, 0.0
    for t in range(ticks):
        h = omega + alpha * eps * eps + beta * h
        sigma[t] = math.sqrt(h)
        eps = sigma[t] * z[t]
        r[t] = eps
    r[0] = 0.0
    volume = np.round(base_volume * (sigma / math.sqrt(h_bar)) * np.exp(0.5 * noise - 0.125))
    keep = np.ones(ticks, dtype=bool)
    frozen = np.zeros(ticks, dtype=bool)
    label = np.full(ticks, "", dtype=object)
    injected: list[Injected] = []
    t = burn_in
    while kinds:
        t += int(rng.integers(spacing, 2 * spacing))
        if t + 220 >= ticks:
            break
        kind = kinds[int(rng.integers(len(kinds)))]
        start, end, magnitude = _inject(rng, kind, t, r, sigma, keep, frozen, min_jump)
        label[start : end + 1] = kind
        injected.append(Injected(symbol, kind, start, end, magnitude))
    logp = math.log(rng.uniform(10.0, 500.0)) + np.cumsum(r)
    price = np.round(np.exp(logp), 6)
    # a frozen feed repeats the last price it showed (and its volume)
    for t in np.flatnonzero(frozen):
        price[t] = price[t - 1]
        volume[t] = volume[t - 1]
    tick = np.arange(ticks)
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "tick": tick,
            "ts": start_ms + tick * interval_ms,
            "price": price,
            "volume": volume,
            "label": label,
        }
    )[keep]
    # renumber ticks after removing the stale stretches; windows follow their ticks
    new_index = np.cumsum(keep) - 1
    injected = [
        Injected(a.symbol, a.kind, int(new_index[a.start]), int(new_index[a.end]), a.magnitude)
        for a in injected
    ]
    frame["tick"] = np.arange(len(frame))
    return frame.reset_index(drop=True), injected


def _inject(
    rng: np.random.Generator,
    kind: str,
    t: int,
    r: np.ndarray,
    sigma: np.ndarray,
    keep: np.ndarray,
    frozen: np.ndarray,
    min_jump: float,
) -> tuple[int, int, float]:
    """Edit the returns (or the tick mask) in place; returns the window and the size."""
    s = sigma[t]
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "jump":
        k = rng.uniform(min_jump, 25.0)
        r[t] += sign * k * s
        return t, t, k
    if kind == "flash_crash":
        k = rng.uniform(15.0, 40.0)
        fall = int(rng.integers(1, 4))
        back = int(rng.integers(3, 11))
        share = rng.uniform(0.7, 1.0)
        r[t : t + fall] -= k * s / fall
        r[t + fall : t + fall + back] += share * k * s / back
        return t, t + fall + back - 1, k
    if kind == "level_shift":
        k = rng.uniform(15.0, 30.0)
        length = int(rng.integers(5, 11))
        r[t : t + length] += sign * k * s / length
        return t, t + length - 1, k
    if kind == "vol_burst":
        m = rng.uniform(3.0, 6.0)
        length = int(rng.integers(20, 101))
        r[t : t + length] *= m
        return t, t + length - 1, m
    if kind == "frozen":
        length = int(rng.integers(10, 51))
        frozen[t : t + length] = True
        return t, t + length, float(length)
    if kind == "stale":
        length = int(rng.integers(20, 201))
        keep[t : t + length] = False
        return t + length, t + length, float(length)  # observable at the first tick after
    raise AssertionError(kind)
