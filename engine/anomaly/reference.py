"""Reference samples of normal behaviour: calibration priors and model training data.

A detector's calibration starts new keys from a *prior* (the calibration state reached
on normal data), and the model detectors are fitted on normal data. For prices the
normal data is seeded calm GARCH-t streams (:func:`producers.anomalies.labelled_prices`
with no anomalies) run through the same book and feature code as the stream, so the
features have exactly the stream's definitions, including the book's EWMA volatility
forecast (the book's EWMA model, computed with the same component). Everything here is
deterministic and cached per process.
"""

from __future__ import annotations

import functools

import numpy as np

from engine.anomaly.features.prices import PriceFeatures
from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP
from engine.core.slots import SlotIndex
from engine.core.volatility import EWMAVolatility

#: Seed of the reference streams (kept apart from the evaluation's seeds).
REFERENCE_SEED = 20_240_501


def price_feature_rows(
    frame: object, *, lam: float = DEFAULT_LAMBDA, warmup: int = DEFAULT_WARMUP
) -> np.ndarray:
    """Stream features of a long price frame (``symbol``, ``ts``, ``price``, ``volume``), in row order.

    The rows must be in time order per symbol, without repeats (what the book's
    sequencer accepts). Log returns per symbol and the RiskMetrics forecast of the
    core's :class:`~engine.core.volatility.EWMAVolatility` (the book's EWMA model) feed
    :class:`PriceFeatures`, exactly as the stage feeds it from the book's step.
    """
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    index = SlotIndex()
    slots, _ = index.lookup(frame["symbol"].astype(str).tolist())
    ts = frame["ts"].to_numpy(dtype=np.int64)
    logp = np.log(frame["price"].to_numpy(dtype=np.float64))
    n = len(frame)
    volume = frame["volume"].to_numpy(dtype=np.float64) if "volume" in frame else np.full(n, np.nan)
    returns = np.full(n, np.nan)
    order = np.argsort(slots, kind="stable")
    same = slots[order][1:] == slots[order][:-1]
    returns[order[1:][same]] = np.diff(logp[order])[same]
    vol = EWMAVolatility(lam, warmup)
    features = PriceFeatures()
    vol.ensure(len(index))
    features.ensure(len(index))
    sigma_before, _ = vol.update(slots, returns)
    return features.update(slots, ts, returns, sigma_before, volume)


@functools.cache
def calm_price_features(
    symbols: int = 8, ticks: int = 5000, seed: int = REFERENCE_SEED
) -> np.ndarray:
    """Feature rows of seeded calm price streams (warm-up rows dropped; read-only)."""
    from producers.anomalies import labelled_prices

    stream = labelled_prices(symbols, ticks, kinds=(), seed=seed)
    rows = price_feature_rows(stream.frame)
    tick = stream.frame["tick"].to_numpy()
    rows = rows[tick >= 50]
    rows.setflags(write=False)
    return rows


@functools.cache
def calm_series_features(rows: int = 5000, seed: int = REFERENCE_SEED) -> np.ndarray:
    """Feature rows (:mod:`~engine.anomaly.features.series`) of calm univariate series.

    Two series of ``rows`` regular rows each, pooled: a random walk and a stationary
    AR(1) (coefficient 0.5), both with Student-t(5) innovations: the prior of the
    series detector's calibration, conservative for both kinds.
    """
    from engine.anomaly.features.series import SeriesFeatures

    rng = np.random.default_rng([seed, 7])
    walk = np.cumsum(rng.standard_t(5, rows))
    ar = np.empty(rows)
    ar[0] = 0.0
    noise = rng.standard_t(5, rows)
    for t in range(1, rows):
        ar[t] = 0.5 * ar[t - 1] + noise[t]
    out = []
    for values in (walk + 1000.0, ar + 100.0):
        features = SeriesFeatures()
        features.ensure(1)
        X = features.update(np.zeros(rows, np.int64), np.arange(rows) * 1000, values)
        out.append(X[50:])
    rows_out = np.vstack(out)
    rows_out.setflags(write=False)
    return rows_out
