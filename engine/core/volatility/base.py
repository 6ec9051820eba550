"""The interface every online volatility model implements, and what it declares about itself.

A model class declares what it needs (:data:`Needs`), whether it is fitted on a refit
schedule, whether it estimates its own Student-t ``nu``, and how to build itself from a
:class:`~engine.core.spec.RiskSpec` (:meth:`VolatilityModel.from_spec`). The price book
reads only these declarations, so a model registered under a name
(:mod:`engine.core.volatility.registry`) runs in the book without the book knowing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from engine.core.online import OnlineComponent

if TYPE_CHECKING:  # the spec imports the registry; the core types only
    from engine.core.spec import RiskSpec
    from engine.core.volatility.deep import PredictorLoader

#: What a model forecasts from, per tick: ``returns`` (decimal log returns), ``rv``
#: (realised variance, decimal^2), ``returns+rv`` (both), or ``forecasts`` (the other
#: models' forecasts of the same tick, e.g. a combination).
Needs = Literal["returns", "rv", "returns+rv", "forecasts"]


@dataclass(slots=True)
class VolOutput:
    """One volatility model's forecasts for a segment (``nu`` NaN when the model has none)."""

    before: np.ndarray
    after: np.ndarray
    nu_before: np.ndarray
    nu_after: np.ndarray

    @classmethod
    def without_nu(cls, before: np.ndarray, after: np.ndarray) -> VolOutput:
        """The forecasts of a model that estimates no ``nu`` (both ``nu`` arrays NaN)."""
        return cls(before, after, np.full(before.shape[0], np.nan), np.full(after.shape[0], np.nan))


@dataclass(frozen=True, slots=True)
class Build:
    """What a model may use to build itself (:meth:`VolatilityModel.from_spec`)."""

    spec: RiskSpec
    predictors: PredictorLoader | None = None
    """Builds a deep model's predictor (the core imports none; the pipeline injects it)."""
    models: Mapping[str, VolatilityModel] | None = None
    """For models that need ``forecasts``: the spec's other models, already built."""


class VolatilityModel(OnlineComponent):
    """A per-symbol, one-step-ahead volatility forecaster, updated per tick.

    Units: log returns in decimals (a 1% move is 0.01); sigma in the same units, for
    the horizon of one tick of that symbol.
    """

    #: Version of the model's *parameters and equations*, reported with every alert.
    model_version: ClassVar[str] = "1"
    #: What the model forecasts from (see :data:`Needs`).
    needs: ClassVar[Needs] = "returns"
    #: Whether its parameters are estimated on a refit schedule (a
    #: :class:`~engine.core.volatility.refitted.RefittedVolatility`).
    fitted: ClassVar[bool] = False
    #: Whether it forecasts a Student-t ``nu`` (the ``t`` distribution then uses it
    #: instead of the kurtosis of the model's standardised residuals).
    estimates_nu: ClassVar[bool] = False

    @classmethod
    def from_spec(cls, name: str, build: Build) -> VolatilityModel:
        """The model registered as ``name``, configured by ``build.spec``."""
        raise NotImplementedError(f"{cls.__name__} does not say how to build itself from a spec")

    @classmethod
    def check_spec(cls, name: str, spec: RiskSpec) -> None:
        """Raise ``ValueError`` if ``spec`` cannot run this model (called by ``RiskSpec``)."""

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Consume one micro-batch of returns, in arrival order.

        Returns ``(sigma_before, sigma_after)``: for observation ``i``, the forecast of
        its return made with data up to ``i - 1``, and the forecast of the *next* return
        made with data up to and including ``i``. NaN while a symbol warms up. A NaN
        return (a symbol's first tick) leaves the state unchanged.
        """
        raise NotImplementedError

    def step(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        rv: np.ndarray,
        others: Mapping[str, VolOutput],
    ) -> VolOutput:
        """One segment of ticks, given everything a model may need; what the book calls.

        ``returns`` are decimal log returns, ``rv`` realised variances (NaN where a tick
        has none), ``others`` the outputs of the models stepped before this one. The
        default feeds :meth:`update` with ``returns`` or ``rv`` as :attr:`needs` says.
        """
        before, after = self.update(slots, rv if self.needs == "rv" else returns)
        return VolOutput.without_nu(before, after)
