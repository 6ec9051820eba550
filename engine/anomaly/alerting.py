"""Anomaly alerts: what they carry, built the same way for every stream and detector.

An anomaly alert (``kind = "anomaly"``) has a deterministic id,
``alert_id("anomaly", subject, "<detector>@<version>", event)``, so a replayed event
never raises a second one. ``value`` is the calibrated score in [0, 1] and
``threshold`` the policy's threshold on it. ``details`` has the stream, the detector,
the surprisal (``-log10`` of the tail probability) and its threshold, the triggering
event, the channel that drove the alert and every feature of the event (so an
explainer can work from the alert alone). ``attributions`` lists the channels,
largest first: ``feature``, its ``value``, and in ``shap`` the channel's surprisal
(for the statistical channels that *is* the contribution: how rare that value was;
tree models get SHAP values from the explanation machinery instead, computed off the
hot path by :mod:`engine.explain.service` from the model's input vector, which the stage
attaches as ``explain_input``; their SHAP attributions then replace the channel list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.alerts import Alert, Attribution, alert_id
from engine.anomaly.calibration import score_from_surprisal
from engine.anomaly.detectors.base import Detector, Scores
from engine.anomaly.policy import AlertPolicy

KIND = "anomaly"
TOP_ATTRIBUTIONS = 3


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def anomaly_alert(
    *,
    stream: str,
    subject: str,
    event_key: str,
    ts: int,
    detector: Detector,
    scores: Scores,
    row: int,
    policy: AlertPolicy,
    feature_names: Sequence[str],
    features: np.ndarray,
    context: dict[str, Any] | None = None,
    explain_input: Any = None,
) -> Alert:
    """The alert of row ``row`` of a batch the detector scored (see the module docstring);
    ``features`` is that row's feature vector, named by ``feature_names``."""
    surprisal = float(scores.surprisal[row])
    channels = scores.names
    channel_surprisal = scores.channels[row]
    channel_values = scores.values[row]
    order = [
        k
        for k in np.argsort(-np.nan_to_num(channel_surprisal, nan=-1.0))
        if np.isfinite(channel_surprisal[k])
    ][:TOP_ATTRIBUTIONS]
    attributions = tuple(
        Attribution(
            feature=channels[k],
            value=_finite(channel_values[k]),
            shap=round(float(channel_surprisal[k]), 6),
        )
        for k in order
    )
    details: dict[str, Any] = {
        "stream": stream,
        "detector": detector.name,
        "surprisal": round(surprisal, 6),
        "threshold_surprisal": round(policy.surprisal, 6),
        "event": event_key,
        "driver": channels[order[0]] if order else None,
        "features": {
            name: _finite(value)
            for name, value in zip(feature_names, features.tolist(), strict=True)
        },
    }
    if context:
        details.update(context)
    return Alert(
        alert_id=alert_id(KIND, subject, f"{detector.name}@{detector.version}", event_key),
        kind=KIND,
        subject=subject,
        ts=int(ts),
        severity=policy.severity(surprisal),  # type: ignore[arg-type]
        value=float(score_from_surprisal(surprisal)),
        threshold=policy.threshold,
        model=f"anomaly_{detector.name}",
        model_version=detector.version,
        details=details,
        # a tree model's alert gets SHAP attributions from the explanation service instead
        attributions=None if explain_input is not None else attributions,
        explain_input=explain_input,
    )
