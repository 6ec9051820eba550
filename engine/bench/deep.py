"""Benchmark of deep-volatility serving: batched cost per tick and single-request latency.

One core (``onnxruntime`` with one intra-op thread), no services. ``symbols`` symbols
each get a real S&P 500 history (returns and realized variance from a random starting
day) pushed through :class:`~engine.core.volatility.deep.DeepVolatility` untimed until
every window is ready; then micro-batches of one tick per symbol are timed:

``batched``     the model's whole ``update_rv`` per tick: feature recursions, windows
                copied out, **one** onnxruntime call for the batch, forecasts published;
``inference``   the onnxruntime call alone per tick (same batches);
``single``      latency of one symbol's tick on its own (a batch of 1): p50 and p99 of
                ``update_rv``, and of the bare onnxruntime call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.bench.result import BenchResult
from engine.core.volatility.deep import DeepVolatility
from engine.deep.model import DeepVolModel, model_dir


@dataclass
class DeepBench(BenchResult):
    model: str
    version: str
    symbols: int
    batches: int
    batched_us_per_tick: float
    inference_us_per_tick: float
    single_p50_us: float
    single_p99_us: float
    single_inference_p50_us: float
    single_inference_p99_us: float
    load_average: float
    cpus: int


def _history(length: int, symbols: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``[length, symbols]`` returns and RV from the S&P 500 file, each symbol from a random day."""
    from models.deep.data import load_series

    series = load_series()
    ok = np.isfinite(series.rv)
    r, rv = series.returns[ok], series.rv[ok]
    starts = rng.integers(0, len(r) - length, symbols)
    idx = starts[None, :] + np.arange(length)[:, None]
    return r[idx], rv[idx]


def run_one(
    name: str, *, symbols: int, batches: int, root: Path | None, seed: int = 0
) -> DeepBench:
    model = DeepVolModel(model_dir(name, root), threads=1)
    vol = DeepVolatility(name, model)
    vol.ensure(symbols)
    rng = np.random.default_rng(seed)
    warm = model.card.features.ready_after + 1
    r, rv = _history(warm + batches, symbols, rng)
    slots = np.arange(symbols, dtype=np.int64)
    for t in range(warm):
        vol.update_rv(slots, r[t], rv[t])
    # time the inference call alone as the model sees it
    spent = [0.0]
    predict = model.predict_log_var

    def timed(windows: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = predict(windows)
        spent[0] += time.perf_counter() - t0
        return out

    model.predict_log_var = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    for t in range(warm, warm + batches):
        _, after = vol.update_rv(slots, r[t], rv[t])
    total = time.perf_counter() - t0
    model.predict_log_var = predict  # type: ignore[method-assign]
    assert np.isfinite(after).all()
    ticks = symbols * batches
    one = np.zeros(1, np.int64)
    single, bare = [], []
    scaled = model.card.scale(np.zeros((1, model.window, len(model.card.inputs))))
    for t in range(200):
        x, y = r[warm + t % batches, :1], rv[warm + t % batches, :1]
        t0 = time.perf_counter()
        vol.update_rv(one, x, y)
        single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.run(scaled)
        bare.append(time.perf_counter() - t0)
    us = 1e6
    return DeepBench(
        model=name,
        version=model.version,
        symbols=symbols,
        batches=batches,
        batched_us_per_tick=total / ticks * us,
        inference_us_per_tick=spent[0] / ticks * us,
        single_p50_us=float(np.percentile(single, 50) * us),
        single_p99_us=float(np.percentile(single, 99) * us),
        single_inference_p50_us=float(np.percentile(bare, 50) * us),
        single_inference_p99_us=float(np.percentile(bare, 99) * us),
        load_average=os.getloadavg()[0],
        cpus=os.cpu_count() or 1,
    )


def run(
    models: tuple[str, ...] = ("lstm", "transformer"),
    *,
    symbols: int = 1000,
    batches: int = 50,
    root: Path | None = None,
) -> list[DeepBench]:
    return [run_one(m, symbols=symbols, batches=batches, root=root) for m in models]


def markdown(results: list[DeepBench]) -> str:
    lines = [
        "| model | symbols | batched µs/tick | of which onnxruntime | single tick p50 / p99 µs | "
        "single onnxruntime p50 / p99 µs | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in results:
        lines.append(
            f"| {b.model} | {b.symbols:,} | {b.batched_us_per_tick:.2f} | "
            f"{b.inference_us_per_tick:.2f} | {b.single_p50_us:.0f} / {b.single_p99_us:.0f} | "
            f"{b.single_inference_p50_us:.0f} / {b.single_inference_p99_us:.0f} | "
            f"{b.load_average:.2f} on {b.cpus} CPUs |"
        )
    return "\n".join(lines)
