"""What the price book computes: volatility models, VaR methods, levels, windows, refits.

A VaR method is named ``<volatility>-<distribution>`` (``ewma-normal``, ``gjr-t``,
``garch-fhs``, ``har-cf``, ...) or ``hs``:

``normal``  sigma times the standard normal quantile;
``t``       sigma times the unit-variance Student-t quantile; ``nu`` from the GARCH fit,
            or (EWMA, HAR) from the excess kurtosis of the model's standardised residuals;
``fhs``     filtered historical simulation: sigma times the empirical quantile of the
            model's standardised residuals ``r_t / sigma_{t|t-1}`` over the window;
``cf``      Cornish-Fisher: the normal quantile corrected with the skewness and kurtosis
            of those standardised residuals;
``mix``     the equal-weight combination of ``t``, ``fhs`` and ``cf`` (VaR and ES each the
            mean of the three; of those available while ``cf`` is outside its domain).
            Each of the three errs in its own direction on fat-tailed, skewed returns
            (Student-t is symmetric, FHS is noisy in the far tail, Cornish-Fisher
            overshoots at high kurtosis); the average is the classic forecast-combination
            remedy and passes the backtests the single methods fail (docs/models/backtests.md);
``hs``      historical simulation: the empirical quantile of the returns over the window.

``avg`` is the equal-weight average of the VaR and ES of the ``average_methods``
(:mod:`engine.core.var.average`), across volatility models; it exists when each of them
is a method of the spec.

``champion`` is a method in its own right: per symbol, the VaR and ES of one of the
``champion_methods``, the live one, chosen online by their own rolling backtests
(:mod:`engine.core.champion`). It exists when every candidate is a method of the spec.

Besides the default models, a spec may name the deep models ``lstm`` and ``transformer``
(ONNX, :mod:`engine.core.volatility.deep`; both need realized variance) and ``combo``,
the equal-weight average of the variance forecasts of every other model in the spec.

The names are not listed here: volatility models and distributions are registered
classes (:mod:`engine.core.volatility.registry`, :mod:`engine.core.var.registry`), and
the spec accepts whatever is registered. Adding either is one class in one file
(docs/models/volatility.md, "Adding a model").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from engine.core.champion import LOSSES, Loss
from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP
from engine.core.var.average import AVERAGE, AVERAGE_METHODS
from engine.core.var.registry import distribution_names
from engine.core.volatility.fitting import RefitSchedule
from engine.core.volatility.registry import vol_model, vol_model_names

#: The volatility models of the default spec (any registered name may be chosen).
VOL_MODELS = ("ewma", "garch", "gjr", "har")
ResidualZeros = Literal["keep", "skip"]

#: When GARCH-family and HAR models refit by default: first at 250 returns, then every 20
#: trading sessions (a month), each fit used 5 sessions after its request.
DEFAULT_REFIT = RefitSchedule(first=250, every=20, delay=5, clock="sessions")

#: Settings names (``RISKSTREAM_<NAME>``) that differ from the spec field they set.
SETTING_NAMES = {"var_window": "window", "var_min_obs": "min_obs", "var_method": "method"}
#: Settings that make the refit schedule shared by ``garch_refit`` and ``har_refit``.
REFIT_SETTINGS = ("refit_first", "refit_every", "refit_delay", "refit_clock")

#: The governed method: the live one of the champion candidates, per symbol.
CHAMPION = "champion"
#: Candidates of the champion, the first being live until another is judged better. Chosen
#: a priori: GJR (which nests GARCH) and EWMA (no fit, nothing to go wrong) with the
#: fat-tailed distributions. ``normal`` is left out (thin-tailed at 99%), ``cf`` alone (it
#: overshoots at high kurtosis; ``mix`` holds it) and ``hs``: its VaR is an order statistic
#: of the window, constant for as long as the window's tail does not change (163 returns on
#: one series of the breadth benchmark), which the issue forbids beyond 60.
#: The default candidates: one volatility model (GJR-t, refitted), three distributions.
#: The EWMA methods, candidates once, won on pinball loss but covered the 99% VaR worse
#: (S&P 500 2003-2018: 1.27% violations published against 0.94%).
CHAMPION_METHODS = ("gjr-mix", "gjr-fhs", "gjr-t")

#: The method riskstream publishes by default: the governed champion (its candidates,
#: loss and hysteresis chosen on the development half of the breadth benchmark,
#: docs/benchmarks/breadth.md).
DEFAULT_METHOD = CHAMPION


def method_names(vol_models: tuple[str, ...]) -> tuple[str, ...]:
    """All methods for the given volatility models, ``hs`` last.

    >>> method_names(("ewma",))
    ('ewma-normal', 'ewma-t', 'ewma-fhs', 'ewma-cf', 'ewma-mix', 'hs')
    """
    return (*(f"{v}-{d}" for v in vol_models for d in distribution_names()), "hs")


@dataclass(frozen=True)
class RiskSpec:
    """Everything the price book needs to know (built from settings by the pipeline)."""

    var_levels: tuple[float, ...] = (0.95, 0.99)
    es_level: float = 0.975
    vol_models: tuple[str, ...] = VOL_MODELS
    ewma_lambda: float = DEFAULT_LAMBDA
    warmup: int = DEFAULT_WARMUP
    window: int = 1000
    """Historical and filtered-historical window (returns)."""
    min_obs: int = 250
    """Returns (or residuals) needed before empirical quantiles are reported."""
    garch_window: int = 1000
    garch_refit: RefitSchedule = DEFAULT_REFIT
    har_window: int = 1000
    har_refit: RefitSchedule = DEFAULT_REFIT
    method: str = DEFAULT_METHOD
    """The published method (Redis, ``risk.updates``, alerts)."""
    backtest_methods: tuple[str, ...] = ()
    """Methods backtested in the stream over rolling windows besides the published one
    (always backtested); ``("all",)``: every method."""
    backtest_window: int = 250
    """Returns per rolling backtest window."""
    backtest_significance: float = 0.05
    """Rolling backtests reject below this p-value."""
    deep_model_dir: str | None = None
    """Directory of the deep models (``<dir>/lstm``, ``<dir>/transformer``); ``None``: ``onnx/deep``."""
    average_methods: tuple[str, ...] = AVERAGE_METHODS
    """The methods ``avg`` averages (two or more distinct methods of the spec)."""
    champion_methods: tuple[str, ...] = CHAMPION_METHODS
    """Candidates of the ``champion`` method, the first live until another is judged better."""
    champion_level: float = 0.99
    """The VaR level the champion scores (``pinball``) and counts violations at (its
    traffic light); forecast even when it is not a VaR level of the spec."""
    champion_loss: Loss = "pinball"
    """How candidates are scored: ``pinball`` (VaR at the highest VaR level) or ``fz0``
    (VaR and ES at the ES level)."""
    champion_window: int = 250
    """Scored returns per candidate window (also the window of its traffic light)."""
    champion_margin: float = 0.05
    """How much lower a challenger's mean loss must be: a fraction of the live method's
    for ``pinball``, an absolute difference for ``fz0``."""
    champion_patience: int = 250
    """Consecutive returns a challenger must lead by the margin before it goes live."""
    residual_zeros: ResidualZeros = "keep"
    """Zero returns (a price unchanged since the symbol's previous tick) in the
    standardised-residual windows of ``fhs``, ``cf`` and the EWMA/HAR ``t``: ``keep`` them,
    or ``skip`` them (a stale price carries no information about the shape of the
    residual distribution; a stale stretch would otherwise pile zeros into the window,
    shrink its spread and inflate its kurtosis). The returns window (``hs``) and the
    volatility models always see every return."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RiskSpec:
        """The spec from settings named as their environment variables name them.

        ``var_window``, ``var_min_obs`` and ``var_method`` set :attr:`window`,
        :attr:`min_obs` and :attr:`method`; ``refit_first``, ``refit_every``,
        ``refit_delay`` and ``refit_clock`` make one schedule for both :attr:`garch_refit` and
        :attr:`har_refit` (missing ones from :data:`DEFAULT_REFIT`); a path becomes a
        string. Every other key must be a field of the spec (``TypeError`` otherwise);
        absent fields keep their defaults.

        >>> spec = RiskSpec.from_mapping({"var_window": 500, "refit_every": 50})
        >>> spec.window, spec.garch_refit.every, spec.har_refit.first
        (500, 50, 250)
        """
        kwargs: dict[str, Any] = {}
        refit: dict[str, Any] = {}
        for key, value in values.items():
            if key in REFIT_SETTINGS:
                refit[key.removeprefix("refit_")] = value
            elif key == "deep_model_dir" and value is not None:
                kwargs[key] = os.fspath(value)
            else:
                kwargs[SETTING_NAMES.get(key, key)] = value
        if refit:
            kwargs["garch_refit"] = kwargs["har_refit"] = replace(DEFAULT_REFIT, **refit)
        return cls(**kwargs)

    def __post_init__(self) -> None:
        known = vol_model_names()
        unknown = set(self.vol_models) - set(known)
        if unknown:
            raise ValueError(
                f"unknown volatility models {sorted(unknown)}; choose from {list(known)}"
            )
        if not self.vol_models:
            raise ValueError("at least one volatility model is needed")
        for name in self.vol_models:
            vol_model(name).check_spec(name, self)
        if self.method not in self.methods:
            raise ValueError(
                f"VaR method {self.method!r} is not available with volatility models "
                f"{list(self.vol_models)}; choose from {list(self.methods)}"
            )
        unknown = set(self.monitored) - set(self.methods)
        if unknown:
            raise ValueError(
                f"cannot backtest unknown methods {sorted(unknown)}; choose from "
                f"{list(self.methods)} or 'all'"
            )
        if self.backtest_window < 20:
            raise ValueError(f"backtest window {self.backtest_window} is below 20 returns")
        if not 0.0 < self.backtest_significance < 0.5:
            raise ValueError(f"backtest significance {self.backtest_significance} not in (0, 0.5)")
        self._check_average()
        self._check_champion()
        if self.residual_zeros not in ("keep", "skip"):
            raise ValueError(f"residual_zeros {self.residual_zeros!r}: choose keep or skip")
        if self.min_obs > self.window:
            raise ValueError(f"min_obs {self.min_obs} exceeds the window {self.window}")

    def _check_average(self) -> None:
        parts = self.average_methods
        if len(set(parts)) < 2 or len(set(parts)) != len(parts):
            raise ValueError(f"avg needs two or more distinct methods, got {list(parts)}")
        if {AVERAGE, CHAMPION} & set(parts):
            raise ValueError("avg averages methods other than avg and champion")

    def _check_champion(self) -> None:
        if not self.champion_methods or CHAMPION in self.champion_methods:
            raise ValueError("champion needs candidate methods other than itself")
        if self.champion_loss not in LOSSES:
            raise ValueError(f"champion loss {self.champion_loss!r}: choose from {list(LOSSES)}")
        if not 0.5 < self.champion_level < 1.0:
            raise ValueError(f"champion level {self.champion_level} not in (0.5, 1)")
        if self.champion_window < 20 or self.champion_patience < 1 or self.champion_margin < 0:
            raise ValueError("champion needs window >= 20, patience >= 1 and margin >= 0")

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method of the spec: ``avg`` after ``hs`` when its parts are all available,
        ``champion`` last when its candidates are.

        >>> RiskSpec().methods[-3:], RiskSpec(vol_models=("ewma",), method="hs").methods[-1]
        (('hs', 'avg', 'champion'), 'hs')
        """
        base = method_names(self.vol_models)
        if set(self.average_methods) <= set(base):
            base = (*base, AVERAGE)
        return (*base, CHAMPION) if set(self.champion_methods) <= set(base) else base

    def parts(self, method: str) -> tuple[str, ...]:
        """The single-model methods a method is made of: ``avg``'s parts, each candidate's
        for ``champion``, else the method itself.

        >>> RiskSpec(champion_methods=("avg", "gjr-t")).parts("champion")
        ('gjr-mix', 'ewma-fhs', 'gjr-t')
        """
        if method == CHAMPION:
            return tuple(dict.fromkeys(p for m in self.champion_methods for p in self.parts(m)))
        return self.average_methods if method == AVERAGE else (method,)

    @property
    def champion_vol_models(self) -> tuple[str, ...]:
        """The volatility models the champion's candidates need, in the spec's order."""
        needed = {self.vol_of(m) for m in self.parts(CHAMPION)}
        known = vol_model_names()
        if any(vol_model(v).needs == "forecasts" for v in needed if v in known):
            return self.vol_models  # a combination averages every other model
        return tuple(v for v in self.vol_models if v in needed) or self.vol_models[:1]

    @property
    def average_vol_models(self) -> tuple[str, ...]:
        """The volatility models ``avg``'s parts need, in the spec's order."""
        needed = {self.vol_of(m) for m in self.average_methods}
        return tuple(v for v in self.vol_models if v in needed) or self.vol_models[:1]

    @property
    def monitored(self) -> tuple[str, ...]:
        """The methods backtested in the stream (see :attr:`backtest_methods`).

        >>> RiskSpec().monitored, RiskSpec(backtest_methods=("hs",)).monitored
        (('champion',), ('champion', 'hs'))
        >>> len(RiskSpec(backtest_methods=("all",)).monitored)
        23
        """
        if "all" in self.backtest_methods:
            return self.methods
        return tuple(dict.fromkeys((self.method, *self.backtest_methods)))

    @property
    def levels(self) -> tuple[float, ...]:
        """Every level forecast (VaR levels, the ES level, the champion's level), ascending.

        >>> RiskSpec().levels
        (0.95, 0.975, 0.99)
        """
        extra = (self.champion_level,) if CHAMPION in self.methods else ()
        return tuple(sorted({*self.var_levels, self.es_level, *extra}))

    @property
    def tail_probs(self) -> tuple[float, ...]:
        """``1 - level`` for :attr:`levels`, ascending (the order windows report them in)."""
        return tuple(1.0 - level for level in reversed(self.levels))

    def level_index(self, level: float) -> int:
        return self.levels.index(level)

    def vol_of(self, method: str) -> str | None:
        """The volatility model of a method (``None`` for ``hs``; the base candidate's for
        ``champion``, the first part's for ``avg``)."""
        if method == CHAMPION:
            method = self.champion_methods[0]
        if method == AVERAGE:
            method = self.average_methods[0]
        return None if method == "hs" else method.split("-", 1)[0]
