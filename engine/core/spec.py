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

Besides the default models, a spec may name the deep models ``lstm`` and ``transformer``
(ONNX, :mod:`engine.core.volatility.deep`; both need realized variance) and ``combo``,
the equal-weight average of the variance forecasts of every other model in the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.volatility.fitting import RefitSchedule

VOL_MODELS = ("ewma", "garch", "gjr", "har")
#: Deep volatility models, served through ONNX from ``deep_model_dir`` (opt-in).
DEEP_VOL_MODELS = ("lstm", "transformer")
#: Volatility models that forecast from realized variance (a tick's ``rv``), not returns alone.
RV_VOL_MODELS = ("har", *DEEP_VOL_MODELS)
#: The equal-weight combination of the other models' variance forecasts (opt-in).
COMBINATION = "combo"
KNOWN_VOL_MODELS = (*VOL_MODELS, *DEEP_VOL_MODELS, COMBINATION)
DISTRIBUTIONS = ("normal", "t", "fhs", "cf", "mix")
#: The distributions a ``mix`` averages.
MIXED = ("t", "fhs", "cf")

#: The method riskstream publishes by default. Chosen by the backtests of
#: docs/models/backtests.md: see `riskstream backtest`.
DEFAULT_METHOD = "gjr-mix"


def method_names(vol_models: tuple[str, ...]) -> tuple[str, ...]:
    """All methods for the given volatility models, ``hs`` last.

    >>> method_names(("ewma",))
    ('ewma-normal', 'ewma-t', 'ewma-fhs', 'ewma-cf', 'ewma-mix', 'hs')
    """
    return (*(f"{v}-{d}" for v in vol_models for d in DISTRIBUTIONS), "hs")


@dataclass(frozen=True)
class RiskSpec:
    """Everything the price book needs to know (built from settings by the pipeline)."""

    var_levels: tuple[float, ...] = (0.95, 0.99)
    es_level: float = 0.975
    vol_models: tuple[str, ...] = VOL_MODELS
    ewma_lambda: float = 0.94
    warmup: int = 20
    window: int = 1000
    """Historical and filtered-historical window (returns)."""
    min_obs: int = 250
    """Returns (or residuals) needed before empirical quantiles are reported."""
    garch_window: int = 1000
    garch_refit: RefitSchedule = field(
        default_factory=lambda: RefitSchedule(first=250, every=20, delay=5)
    )
    har_window: int = 1000
    har_refit: RefitSchedule = field(
        default_factory=lambda: RefitSchedule(first=250, every=20, delay=5)
    )
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

    def __post_init__(self) -> None:
        unknown = set(self.vol_models) - set(KNOWN_VOL_MODELS)
        if unknown:
            raise ValueError(
                f"unknown volatility models {sorted(unknown)}; choose from {list(KNOWN_VOL_MODELS)}"
            )
        if not self.vol_models:
            raise ValueError("at least one volatility model is needed")
        if COMBINATION in self.vol_models and len(self.vol_models) < 3:
            raise ValueError("combo averages the other models: name at least two besides it")
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
        if self.min_obs > self.window:
            raise ValueError(f"min_obs {self.min_obs} exceeds the window {self.window}")

    @property
    def methods(self) -> tuple[str, ...]:
        return method_names(self.vol_models)

    @property
    def monitored(self) -> tuple[str, ...]:
        """The methods backtested in the stream (see :attr:`backtest_methods`).

        >>> RiskSpec().monitored, RiskSpec(backtest_methods=("hs",)).monitored
        (('gjr-mix',), ('gjr-mix', 'hs'))
        >>> len(RiskSpec(backtest_methods=("all",)).monitored)
        21
        """
        if "all" in self.backtest_methods:
            return self.methods
        return tuple(dict.fromkeys((self.method, *self.backtest_methods)))

    @property
    def levels(self) -> tuple[float, ...]:
        """Every level forecast (VaR levels and the ES level), ascending.

        >>> RiskSpec().levels
        (0.95, 0.975, 0.99)
        """
        return tuple(sorted({*self.var_levels, self.es_level}))

    @property
    def tail_probs(self) -> tuple[float, ...]:
        """``1 - level`` for :attr:`levels`, ascending (the order windows report them in)."""
        return tuple(1.0 - level for level in reversed(self.levels))

    def level_index(self, level: float) -> int:
        return self.levels.index(level)

    def vol_of(self, method: str) -> str | None:
        """The volatility model of a method (``None`` for ``hs``)."""
        return None if method == "hs" else method.split("-", 1)[0]
