"""Deep volatility (LSTM, Transformer through ONNX) as an online model of the price book.

Each symbol keeps its rolling window of feature vectors (:mod:`engine.core.volatility.deep_features`)
and the two feature recursions in its state row. A micro-batch pushes every tick with a
return and a realized variance into its symbol's window, copies each tick's window out,
and makes **one** batched inference call for all of them, across symbols; the forecast
after a tick is ``sqrt(exp(log-variance forecast))``. Ticks without realized variance
leave the model unchanged (like HAR-RV), and a symbol publishes once its window is ready
(``window + burn`` days). ``update`` takes returns *and* realized variances.

The predictor is any object with ``predict_log_var(windows)`` and a ``card`` giving
its feature constants and version (:class:`~engine.deep.model.DeepVolModel` in the
engine, injected by the pipeline), so the core itself imports no model and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Protocol

import numba
import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import Build, VolatilityModel, VolOutput
from engine.core.volatility.deep_features import (
    FEATURES,
    N_FEATURES,
    RETURNS_FEATURES,
    FeatureParams,
    advance,
)
from engine.core.volatility.registry import register


class Card(Protocol):
    """What the core reads of a deep model's card (:class:`engine.deep.card.DeepCard`)."""

    @property
    def features(self) -> FeatureParams: ...
    @property
    def version(self) -> str: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...


class Predictor(Protocol):
    @property
    def card(self) -> Card: ...

    def predict_log_var(self, windows: np.ndarray) -> np.ndarray: ...


#: Builds the predictor of a deep model kind (``lstm``, ``transformer``) from a model
#: directory: :func:`engine.deep.model.load_cached` in the engine.
PredictorLoader = Callable[[str, str | None], Predictor]


@numba.njit(cache=True, nogil=True)
def _publish(slots, used, ready, pred, sigma, before, after):  # pragma: no cover - compiled
    k = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        before[i] = sigma[s]
        if used[i]:
            sigma[s] = pred[k] if ready[i] else np.nan
            if ready[i]:
                k += 1
        after[i] = sigma[s]


@register("lstm", "transformer")
class DeepVolatility(VolatilityModel):
    """See the module docstring; ``kind`` names the network (``lstm``, ``transformer``)."""

    needs = "returns+rv"
    #: The inputs the model's card must list, in order (a returns-only card is refused).
    inputs: ClassVar[tuple[str, ...]] = FEATURES
    #: The model directory's name under the deep model root, by registered name.
    directories: ClassVar[Mapping[str, str]] = {}

    def __init__(self, kind: str, predictor: Predictor) -> None:
        self.kind = kind
        self.name = kind  # type: ignore[misc]
        self.predictor = predictor
        self.card = predictor.card
        if tuple(self.card.inputs) != self.inputs:
            raise ValueError(
                f"volatility model {kind!r} takes inputs {list(self.inputs)}; its model "
                f"{self.card.version!r} was trained on {list(self.card.inputs)}"
            )
        self.params = predictor.card.features
        super().__init__()

    @classmethod
    def from_spec(cls, name: str, build: Build) -> DeepVolatility:
        if build.predictors is None:
            raise ValueError(
                f"volatility model {name!r} needs a predictor loader: "
                "PriceRiskBook(..., predictors=engine.deep.model.load_cached)"
            )
        directory = cls.directories.get(name, name)
        return cls(name, build.predictors(directory, build.spec.deep_model_dir))

    @property
    def model_version(self) -> str:  # type: ignore[override]
        return self.card.version

    def columns(self) -> Sequence[Column]:
        return (
            Column("ewma", np.float64, 0.0),
            Column("garch", np.float64, 0.0),
            Column("nobs", np.int64, 0),
            Column("ring", np.float64, 0.0, self.params.window * N_FEATURES),
            Column("sigma", np.float64, np.nan),
        )

    def update_rv(
        self, slots: np.ndarray, returns: np.ndarray, rv: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`VolatilityModel.update`, with each tick's realized variance."""
        n, p, st = slots.shape[0], self.params, self.state
        windows = np.empty((n, p.window, N_FEATURES))
        used, ready = advance(
            slots,
            returns,
            rv,
            st["ewma"],
            st["garch"],
            st["nobs"],
            st["ring"],
            p.ewma_lambda,
            p.garch_omega,
            p.garch_alpha,
            p.garch_beta,
            p.init_var,
            p.window,
            p.ready_after,
            windows,
        )
        go = used & ready
        pred = np.sqrt(np.exp(self.predictor.predict_log_var(windows[go])))
        before, after = np.empty(n), np.empty(n)
        _publish(slots, used, ready, pred, st["sigma"], before, after)
        return before, after

    def step(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        rv: np.ndarray,
        others: Mapping[str, VolOutput],
    ) -> VolOutput:
        before, after = self.update_rv(slots, returns, rv)
        return VolOutput.without_nu(before, after)

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("deep volatility needs realized variance: call update_rv")


@register("lstm_r")
class ReturnsDeepVolatility(DeepVolatility):
    """The returns-only deep model for daily-only feeds (``lstm_r``: ``onnx/deep/lstm-returns``).

    The same network and feature recursion as :class:`DeepVolatility`, with the squared
    log return ``r_t^2`` (decimal^2) in place of realized variance
    (:data:`~engine.core.volatility.deep_features.RETURNS_FEATURES`), trained to forecast
    the next squared return under QLIKE: it needs returns only. The forecast after the
    tick at ``t`` uses returns up to and including ``t``.
    """

    needs = "returns"
    inputs: ClassVar[tuple[str, ...]] = RETURNS_FEATURES
    directories: ClassVar[Mapping[str, str]] = {"lstm_r": "lstm-returns"}

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(returns, dtype=np.float64)
        return self.update_rv(slots, r, r * r)

    def step(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        rv: np.ndarray,
        others: Mapping[str, VolOutput],
    ) -> VolOutput:
        before, after = self.update(slots, returns)
        return VolOutput.without_nu(before, after)
