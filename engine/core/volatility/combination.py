"""The simple forecast combination: the equal-weight mean of other models' variance forecasts.

``sigma_combo = sqrt(mean_k sigma_k^2)`` over the named models, NaN unless every one of
them has a forecast. It keeps no state of its own: its forecast before a tick is the
combination of the others' forecasts before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import Build, VolatilityModel, VolOutput
from engine.core.volatility.registry import register

if TYPE_CHECKING:
    from engine.core.spec import RiskSpec


@register("combo")
class CombinationVolatility(VolatilityModel):
    """See the module docstring.

    >>> from engine.core.var.methods import VolOutput
    >>> one = VolOutput(np.array([0.01]), np.array([0.02]), None, None)
    >>> two = VolOutput(np.array([0.03]), np.array([np.nan]), None, None)
    >>> before, after = CombinationVolatility(("a", "b")).combine({"a": one, "b": two})
    >>> before.round(6).tolist(), after.tolist()
    ([0.022361], [nan])
    """

    name = "combo"
    needs = "forecasts"

    def __init__(self, components: Sequence[str]) -> None:
        if len(components) < 2:
            raise ValueError("a combination needs at least two models")
        self.components = tuple(components)
        super().__init__()

    @classmethod
    def from_spec(cls, name: str, build: Build) -> CombinationVolatility:
        """The combination of every other model of the spec (``build.models``)."""
        return cls(tuple(build.models or ()))

    @classmethod
    def check_spec(cls, name: str, spec: RiskSpec) -> None:
        if len(spec.vol_models) < 3:
            raise ValueError(f"{name} averages the other models: name at least two besides it")

    @property
    def model_version(self) -> str:  # type: ignore[override]
        return "combo-equal-variance-" + "+".join(self.components)

    def columns(self) -> Sequence[Column]:
        return (Column("unused", np.int8, 0),)

    def combine(self, outputs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(before, after)`` from the components' outputs (``.before``, ``.after``)."""
        before = np.mean([outputs[c].before ** 2 for c in self.components], axis=0)
        after = np.mean([outputs[c].after ** 2 for c in self.components], axis=0)
        return np.sqrt(before), np.sqrt(after)

    def step(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        rv: np.ndarray,
        others: Mapping[str, VolOutput],
    ) -> VolOutput:
        before, after = self.combine(others)
        return VolOutput.without_nu(before, after)

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("combo is computed from the other models: call combine")
