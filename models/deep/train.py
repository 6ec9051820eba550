"""Walk-forward training of the deep volatility models (``riskstream deep train``).

Procedure, seeded (``seed``) and single-threaded (``threads``), so one command reproduces
the committed artifacts:

1. read the S&P 500 returns and realized variance (:mod:`models.deep.data`), from 2000;
2. **walk-forward validation** on the training period only: for each validation year
   ``Y`` in ``folds`` (2011-2014), fit the GARCH feature's parameters and the scaling
   constants on targets up to the end of ``Y - 1``, train for ``epochs`` epochs and
   record the validation QLIKE after every epoch (the learning curves). The number of
   epochs served is the one with the lowest mean validation QLIKE across the folds;
3. the **final model** is trained the same way on every target up to ``train_end``
   (2014-12-31) for that many epochs; the **test period** (targets 2015-01-01 to
   2018-04-30) is touched once, to score the exported artifact;
4. export to ONNX with its card (:mod:`models.deep.export`); the report, learning curves
   and the card's metrics describe exactly the files written.

Loss: **QLIKE** by default. The network outputs ``h``, a log-variance forecast, and the
loss is ``RV / e^h - log(RV / e^h) - 1``: the loss the models are compared with, one of
the two (with MSE on levels) that rank forecasts consistently when realized variance is
a noisy proxy of the true variance (Patton 2011), and it makes ``e^h`` an unbiased
variance forecast directly. MSE on log RV (``loss="mse-log"``) is available; its
forecast of ``E[log RV]`` is biased low as a variance, so a constant ``0.5 * s^2`` (the
training residual variance) is added, the log-normal correction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.core.backtest.stats import diebold_mariano, qlike, squared_error
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.core.volatility.deep_features import FEATURES, RETURNS_FEATURES, FeatureParams
from models.deep.data import (
    Samples,
    Series,
    fit_feature_params,
    load_series,
    make_samples,
    squared_returns,
)

Loss = Literal["qlike", "mse-log"]
Target = Literal["rv", "returns"]

DEFAULT_SIZES: dict[str, dict[str, Any]] = {
    "lstm": {"hidden": 32},
    "transformer": {"d_model": 32, "heads": 4, "layers": 1, "ff": 64, "dropout": 0.1},
}


@dataclass(frozen=True)
class TrainOptions:
    """Everything that determines the trained models (written into the cards)."""

    models: tuple[str, ...] = ("lstm", "transformer")
    seed: int = 7
    window: int = 22
    burn: int = 50
    ewma_lambda: float = DEFAULT_LAMBDA
    train_end: str = "2014-12-31"
    test_start: str = "2015-01-01"
    test_end: str = "2018-04-30"
    folds: tuple[int, ...] = (2011, 2012, 2013, 2014)
    epochs: int = 60
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: Loss = "qlike"
    sizes: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    threads: int = 1
    data: Path | None = None
    train_start: str | None = None
    """First target day used for training (``None``: every day from 2000); tests shorten it."""
    plots: bool = True
    progress: bool = True
    version: str = "1"
    target: Target = "rv"
    """``rv``: features and target from realized variance; ``returns``: the returns-only
    variant, the squared return in place of RV (:func:`models.deep.data.squared_returns`),
    exported as ``<kind>-returns``."""

    @property
    def suffix(self) -> str:
        """The model directory's suffix after the network kind (``-returns`` or nothing)."""
        return "-returns" if self.target == "returns" else ""

    @property
    def inputs(self) -> tuple[str, ...]:
        return RETURNS_FEATURES if self.target == "returns" else FEATURES


@dataclass
class Fitted:
    """A trained network with the constants it needs: scaling and, for mse-log, the bias term."""

    net: Any
    params: FeatureParams
    mean: np.ndarray
    std: np.ndarray
    target_mean: float
    target_std: float
    train_curve: list[float]
    val_curve: list[float]
    bias: float = 0.0
    """Added to the log forecast (mse-log: half the training residual variance; qlike: 0)."""

    def log_var(self, X: np.ndarray) -> np.ndarray:
        """Log-variance forecasts (decimal^2) of raw windows, through torch."""
        import torch

        self.net.eval()
        with torch.no_grad():
            y = self.net(torch.from_numpy(scale(X, self.mean, self.std))).numpy()
        return self.target_mean + self.bias + self.target_std * y.astype(np.float64)


def scale(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((X - mean) / std).astype(np.float32)


def _qlike_torch(pred: Any, y: Any, target_std: float) -> Any:
    import torch

    d = torch.clamp(target_std * (y - pred), max=30.0)  # log(RV / forecast)
    return (torch.exp(d) - d - 1.0).mean()


def fit_network(
    kind: str,
    train: Samples,
    val: Samples | None,
    params: FeatureParams,
    options: TrainOptions,
    epochs: int,
    label: str = "",
) -> Fitted:
    """Train one network on ``train`` for ``epochs`` epochs (validation loss after each)."""
    import torch
    from tqdm.auto import tqdm

    from models.deep.nets import build

    torch.manual_seed(options.seed)
    gen = torch.Generator().manual_seed(options.seed)
    mean = train.X.reshape(-1, train.X.shape[-1]).mean(axis=0)
    std = train.X.reshape(-1, train.X.shape[-1]).std(axis=0)
    t_mean, t_std = float(train.y.mean()), float(train.y.std())
    X = torch.from_numpy(scale(train.X, mean, std))
    y = torch.from_numpy(((train.y - t_mean) / t_std).astype(np.float32))
    net = build(kind, len(FEATURES), params.window, options.sizes[kind])
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    fitted = Fitted(net, params, mean, std, t_mean, t_std, [], [])
    bar = tqdm(range(epochs), desc=label or kind, disable=not options.progress, leave=False)
    for _ in bar:
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for start in range(0, len(y), options.batch):
            idx = order[start : start + options.batch]
            pred = net(X[idx])
            if options.loss == "qlike":
                loss = _qlike_torch(pred, y[idx], t_std)
            else:
                loss = torch.mean((pred - y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
        if options.loss == "mse-log":
            _set_bias(fitted, train)
        fitted.train_curve.append(_mean_qlike(fitted, train))
        if val is not None and len(val):
            fitted.val_curve.append(_mean_qlike(fitted, val))
            bar.set_postfix(
                train=f"{fitted.train_curve[-1]:.4f}", val=f"{fitted.val_curve[-1]:.4f}"
            )
    if options.loss == "mse-log":
        _set_bias(fitted, train)
    return fitted


def _set_bias(fitted: Fitted, train: Samples) -> None:
    """mse-log: shift the log forecast by half the training residual variance (log-normal mean)."""
    fitted.bias = 0.0
    resid = train.y - fitted.log_var(train.X)
    fitted.bias = 0.5 * float(resid.var())


def _mean_qlike(fitted: Fitted, samples: Samples) -> float:
    return float(qlike(np.exp(samples.y), np.exp(fitted.log_var(samples.X))).mean())


def metrics(
    log_var: np.ndarray, samples: Samples, baseline: np.ndarray | None = None
) -> dict[str, float]:
    """QLIKE and MSE (decimal^2 and percent^2 scales) of variance forecasts against RV."""
    rv, h = np.exp(samples.y), np.exp(log_var)
    ql = qlike(rv, h)
    out = {
        "n": len(rv),
        "qlike": float(ql.mean()),
        "mse_pct2": float(squared_error(rv * 1e4, h * 1e4).mean()),
        "mse_log": float(np.mean((samples.y - log_var) ** 2)),
    }
    if baseline is not None:
        dm = diebold_mariano(ql, qlike(rv, baseline))
        out["dm_vs_garch_feature"] = dm.statistic
        out["dm_p_vs_garch_feature"] = dm.p_value
    return out


@dataclass
class TrainResult:
    """What :func:`train` produced, per model: its final fit, curves, metrics and files."""

    options: TrainOptions
    series: Series
    chosen_epochs: dict[str, int]
    folds: dict[str, list[Fitted]]
    final: dict[str, Fitted]
    test: dict[str, dict[str, float]]
    baseline_test: dict[str, float]
    seconds: dict[str, float]
    files: list[Path] = field(default_factory=list)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def train(
    options: TrainOptions, out: Path | None = None, echo: Callable[[str], None] = print
) -> TrainResult:
    """Run the procedure of the module docstring; export to ``out/<model>/`` when given."""
    _set_threads(options.threads)
    series = load_series(options.data)
    if options.target == "returns":
        series = squared_returns(series)
    final_params = fit_feature_params(
        series, options.train_end, window=options.window, burn=options.burn, lam=options.ewma_lambda
    )
    chosen: dict[str, int] = {}
    folds: dict[str, list[Fitted]] = {}
    final: dict[str, Fitted] = {}
    test: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    test_samples = make_samples(series, final_params).between(options.test_start, options.test_end)
    baseline = np.exp(test_samples.X[:, -1, FEATURES.index("log_garch_var")])
    baseline_test = metrics(np.log(baseline), test_samples)
    fold_data = []
    for year in options.folds:
        params = fit_feature_params(
            series,
            f"{year - 1}-12-31",
            window=options.window,
            burn=options.burn,
            lam=options.ewma_lambda,
        )
        samples = make_samples(series, params)
        fold_data.append(
            (
                year,
                params,
                samples.between(options.train_start, f"{year - 1}-12-31"),
                samples.between(f"{year}-01-01", f"{year}-12-31"),
            )
        )
    for kind in options.models:
        t0 = time.perf_counter()
        folds[kind] = []
        for year, params, tr, va in fold_data:
            folds[kind].append(
                fit_network(kind, tr, va, params, options, options.epochs, f"{kind} fold {year}")
            )
        curves = np.array([f.val_curve for f in folds[kind]])
        chosen[kind] = int(np.argmin(curves.mean(axis=0))) + 1
        samples = make_samples(series, final_params)
        tr = samples.between(options.train_start, options.train_end)
        final[kind] = fit_network(
            kind, tr, None, final_params, options, chosen[kind], f"{kind} final"
        )
        test[kind] = metrics(final[kind].log_var(test_samples.X), test_samples, baseline)
        seconds[kind] = time.perf_counter() - t0
        echo(
            f"{kind}: {chosen[kind]} epochs (walk-forward), test QLIKE {test[kind]['qlike']:.4f} "
            f"(GARCH feature {baseline_test['qlike']:.4f}, DM p {test[kind]['dm_p_vs_garch_feature']:.3g}), "
            f"{seconds[kind]:.0f} s"
        )
    result = TrainResult(options, series, chosen, folds, final, test, baseline_test, seconds)
    if out is not None:
        from models.deep.export import export_all

        result.files = export_all(result, Path(out))
    return result


def options_json(options: TrainOptions) -> dict[str, Any]:
    doc = asdict(options)
    doc["data"] = None if options.data is None else str(options.data)
    for key in ("plots", "progress"):
        doc.pop(key)
    return doc


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
