"""The returns-only LSTM trained on the breadth benchmark's development half (never the hold-out).

An alternative to the S&P 500 training of ``lstm_r``: the same network, features and
QLIKE loss against the next squared log return, on the daily development-half series of
:mod:`engine.bench.breadth` (every asset class). The hold-out series are never read.
Per series: its most recent ``max_obs`` closes, the windows of the engine's own
recursion (:func:`engine.core.volatility.deep_features.series_windows` with the squared
return as ``rv``), each paired with the next squared return. Epochs are chosen on each
series' last ``val_share`` of samples (by time); the final model is trained on every sample
for that many epochs and exported as ``<out>/lstm-returns`` with its card.

``python -m models.deep.breadth_dev --out .run/deep-dev`` trains it. Then
``RISKSTREAM_DEEP_MODEL_DIR=.run/deep-dev python -m engine.bench.breadth.deep_vs_garch
--half hold-out`` judges it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from engine.artifacts.cards import sha256_file
from engine.bench.breadth.deep_vs_garch import Config, daily_series
from engine.core.volatility.deep_features import FLOOR, RETURNS_FEATURES, series_windows
from engine.deep.card import ONNX_FILE, DeepCard
from models.deep.data import Samples, fit_feature_params, load_series, squared_returns
from models.deep.export import OPSET, PARITY, export_onnx, parity
from models.deep.train import TrainOptions, _set_threads, fit_network, today

NAME = "lstm-returns"


def series_samples(closes: pd.Series, params) -> Samples:  # type: ignore[no-untyped-def]
    """Windows after each day of one close series and the next day's log squared return."""
    logp = np.log(closes.to_numpy(dtype=float))
    returns = np.append(np.nan, np.diff(logp))
    windows, ready = series_windows(returns, returns**2, params)
    used = np.flatnonzero(np.isfinite(returns))
    src, dst = used[:-1], used[1:]
    keep = ready[src]
    src, dst = src[keep], dst[keep]
    y = np.log(np.maximum(returns[dst] ** 2, FLOOR))
    return Samples(windows[src], y, pd.DatetimeIndex(closes.index[dst]))


def _concat(parts: list[Samples]) -> Samples:
    return Samples(
        np.concatenate([p.X for p in parts]),
        np.concatenate([p.y for p in parts]),
        pd.DatetimeIndex(np.concatenate([p.dates.to_numpy() for p in parts])),
    )


def train_development(
    out: Path, *, epochs: int = 10, max_obs: int = 3000, val_share: float = 0.2, seed: int = 7
) -> dict[str, object]:
    """Train and export (see the module docstring); returns what the card records."""
    options = replace(TrainOptions(), models=("lstm",), target="returns", seed=seed, progress=False)
    _set_threads(options.threads)
    started = time.perf_counter()
    sp500 = squared_returns(load_series())
    params = fit_feature_params(
        sp500, options.train_end, window=options.window, burn=options.burn, lam=options.ewma_lambda
    )
    series = daily_series(Config(which="development"))
    train_parts, val_parts, names = [], [], []
    for s in series:
        samples = series_samples(s.prices.iloc[-max_obs:], params)
        cut = int(len(samples) * (1 - val_share))
        if cut < 100:
            continue
        idx = np.arange(len(samples))
        train_parts.append(Samples(samples.X[:cut], samples.y[:cut], samples.dates[idx < cut]))
        val_parts.append(Samples(samples.X[cut:], samples.y[cut:], samples.dates[idx >= cut]))
        names.append(s.name)
    train, val = _concat(train_parts), _concat(val_parts)
    probe = fit_network("lstm", train, val, params, options, epochs, "lstm development")
    chosen = int(np.argmin(probe.val_curve)) + 1
    final = fit_network("lstm", _concat([train, val]), None, params, options, chosen, "final")
    directory = out / NAME
    path = directory / ONNX_FILE
    version = f"{NAME}-dev-1-seed{seed}"
    export_onnx(final, path, name=NAME, version=version, inputs=RETURNS_FEATURES)
    diff = parity(final, path, val.X[:2000])
    if not diff <= PARITY:
        raise RuntimeError(f"onnxruntime differs from torch by {diff:.2e} > {PARITY}")
    training = {
        "data": "breadth benchmark, development half (engine/bench/breadth/split.py)",
        "series": names,
        "max_obs": max_obs,
        "validation": f"last {val_share:.0%} of each series' samples (by time)",
        "val_qlike_curve": probe.val_curve,
        "epochs": chosen,
        "loss": "qlike",
        "target": "next squared log return",
        "seed": seed,
        "samples": len(train) + len(val),
        "seconds": round(time.perf_counter() - started, 1),
        "trained_at": today(),
        "features_fitted_on": "S&P 500 returns to 2014-12-31 (GARCH feature, init_var)",
    }
    card = DeepCard(
        name=NAME,
        kind="lstm",
        version=version,
        inputs=RETURNS_FEATURES,
        mean=tuple(float(x) for x in final.mean),
        std=tuple(float(x) for x in final.std),
        target_mean=float(final.target_mean),
        target_std=float(final.target_std),
        features=params,
        opset=OPSET,
        extra={
            "onnx": {"sha256": sha256_file(path), "parity_max_abs_diff": diff},
            "architecture": {"network": "lstm", **options.sizes["lstm"]},
            "training": training,
            "command": f"python -m models.deep.breadth_dev --out {out} --epochs {epochs}",
        },
    )
    card.save(directory)
    return training


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m models.deep.breadth_dev")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-obs", type=int, default=3000)
    args = parser.parse_args()
    doc = train_development(args.out, epochs=args.epochs, max_obs=args.max_obs)
    print(
        f"lstm-returns (development half): {len(doc['series'])} series, {doc['samples']} samples, "  # type: ignore[arg-type]
        f"{doc['epochs']} epochs chosen, val QLIKE {[round(v, 4) for v in doc['val_qlike_curve']]}, "  # type: ignore[union-attr]
        f"{doc['seconds']} s"
    )


if __name__ == "__main__":
    main()
