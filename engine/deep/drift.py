"""The drift stage: Page-Hinkley on each watched model's forecast losses, per symbol.

For every accepted tick with realized variance, the loss of a watched volatility
model's forecast for it is ``QLIKE(RV, sigma_before^2)``; a
:class:`~engine.core.drift.PageHinkleyDrift` per model watches those losses per
symbol (mode ``up``: only a *rise* in the loss is drift). A detection raises a
``drift`` alert (deterministic id from the model, symbol and tick) and marks the
model for refit in the symbol's state (``refit_due``), shown with the detection count
in the Redis hash ``riskstream:model:<symbol>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.alerts import Alert, alert_id
from engine.core.drift import PageHinkleyDrift
from engine.core.online import OnlineComponent
from engine.errors import ConfigError
from engine.stages import LatestState, StageInput, StageOutput

if TYPE_CHECKING:
    from engine.config import Settings


class DriftStage:
    """See the module docstring; ``models`` are names of the book's volatility models."""

    name = "drift"

    def __init__(
        self,
        models: Sequence[str],
        *,
        versions: dict[str, str] | None = None,
        min_instances: int = 30,
        delta: float = 0.05,
        threshold: float = 25.0,
    ) -> None:
        self.models = tuple(models)
        self.versions = versions or {}
        self.detectors = {
            m: PageHinkleyDrift(
                f"drift_{m}",
                min_instances=min_instances,
                delta=delta,
                threshold=threshold,
                mode="up",
            )
            for m in self.models
        }

    def components(self) -> tuple[OnlineComponent, ...]:
        return tuple(self.detectors.values())

    def run(self, data: StageInput) -> StageOutput:
        step, cols = data.step, data.columns
        out = StageOutput()
        if step.slots.size == 0:
            return out
        rv = cols.rv[step.accepted] if cols.rv.size else np.full(step.slots.size, np.nan)
        ts = cols.ts[step.accepted]
        touched = np.unique(step.slots)
        found: list[tuple[int, Alert]] = []
        for model, detector in self.detectors.items():
            sigma = step.sigma_before.get(model)
            if sigma is None:
                continue
            h = sigma * sigma
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = rv / h
                loss = np.where((rv > 0) & (h > 0), ratio - np.log(ratio) - 1.0, np.nan)
            detected, statistic = detector.update(step.slots, loss)
            for i in np.flatnonzero(detected).tolist():
                symbol = data.keys[int(step.slots[i])]
                slot = int(step.slots[i])
                found.append(
                    (
                        i,
                        Alert(
                            alert_id=alert_id(
                                "drift", symbol, f"page-hinkley:{model}", str(int(ts[i]))
                            ),
                            kind="drift",
                            subject=symbol,
                            ts=int(ts[i]),
                            severity="warning",
                            value=float(statistic[i]),
                            threshold=detector.threshold,
                            model=model,
                            model_version=self.versions.get(model, ""),
                            details={
                                "detector": "page-hinkley",
                                "loss": "qlike",
                                "refit": "requested",
                                "drifts": int(detector.state["drifts"][slot]),
                            },
                        ),
                    )
                )
        out.alerts = [a for _, a in sorted(found, key=lambda pair: pair[0])]
        for slot in touched.tolist():
            fields: dict[str, str] = {}
            seen = 0
            for model, detector in self.detectors.items():
                fields[f"{model}_drifts"] = str(int(detector.state["drifts"][slot]))
                fields[f"{model}_refit_due"] = str(int(detector.state["refit_due"][slot]))
                seen += int(detector.state["seen"][slot])
            fields["seq"] = str(seen)
            out.latest.append(
                LatestState(
                    key=f"riskstream:model:{data.keys[slot]}",
                    seq_field="seq",
                    seq=seen,
                    fields=fields,
                )
            )
        return out


def drift_stages(settings: Settings) -> list[DriftStage]:
    """The drift stage the settings ask for (``RISKSTREAM_DRIFT_MODELS``), or none."""
    if not settings.drift.models:
        return []
    unknown = set(settings.drift.models) - set(settings.risk.vol_models)
    if unknown:
        raise ConfigError(
            f"RISKSTREAM_DRIFT_MODELS: {sorted(unknown)} are not among RISKSTREAM_VOL_MODELS "
            f"{list(settings.risk.vol_models)}"
        )
    return [
        DriftStage(
            settings.drift.models,
            min_instances=settings.drift.min_obs,
            delta=settings.drift.delta,
            threshold=settings.drift.threshold,
        )
    ]
