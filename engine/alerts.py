"""Alerts: what they carry, and their deterministic ids.

An alert's id is a hash of the rule that fired, its subject and the triggering event,
and of nothing else (no wall-clock time, no Kafka offset). Replaying an event after a
crash therefore reproduces the same id, and the Redis sink drops the repeat: delivery
is at-least-once, alert entries are exactly-once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from engine.boundary.timeutil import format_ts, parse_ts

Severity = Literal["info", "warning", "critical"]


def alert_id(kind: str, subject: str, rule: str, event_key: str) -> str:
    """Deterministic id: ``<kind>-<20 hex digits>``.

    >>> alert_id("var_breach", "SPX", "ewma_normal@0.99", "1572946260000")
    'var_breach-59937b099052fae0e6e4'
    """
    digest = hashlib.blake2b(
        f"{kind}|{subject}|{rule}|{event_key}".encode(), digest_size=10
    ).hexdigest()
    return f"{kind}-{digest}"


@dataclass(frozen=True, slots=True)
class Attribution:
    """One feature's contribution to a model output (SHAP value, in the model's output units)."""

    feature: str
    value: float | str | None
    shap: float


@dataclass(frozen=True, slots=True)
class Alert:
    """A model-driven alert.

    ``ts`` is the triggering event's time (epoch ms). ``value`` and ``threshold`` are
    in the units of the rule (for VaR breaches: the realised loss and the VaR, both
    in log-return units).
    """

    alert_id: str
    kind: str
    subject: str
    ts: int
    severity: Severity
    value: float
    threshold: float
    model: str
    model_version: str
    details: Mapping[str, Any] = field(default_factory=dict)
    attributions: tuple[Attribution, ...] | None = None
    explain_input: Any = field(default=None, compare=False, repr=False)
    """What an explainer needs to attach ``attributions`` (an
    :class:`engine.explain.ExplainInput`), set by a model's stage and consumed by the
    adapters' explanation step (:mod:`engine.explain.service`). Never written anywhere."""

    def fields(self) -> dict[str, str]:
        """The Redis Stream entry: flat text fields (``details`` and ``attributions`` as JSON)."""
        out = {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "subject": self.subject,
            "ts": format_ts(self.ts),
            "severity": self.severity,
            "value": repr(float(self.value)),
            "threshold": repr(float(self.threshold)),
            "model": self.model,
            "model_version": self.model_version,
            "details": orjson.dumps(dict(self.details)).decode(),
        }
        if self.attributions is not None:
            out["attributions"] = orjson.dumps(
                [
                    {"feature": a.feature, "value": a.value, "shap": a.shap}
                    for a in self.attributions
                ]
            ).decode()
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON document (JSONL sink, pub/sub): the stream fields with numbers as numbers."""
        doc: dict[str, Any] = dict(self.fields())
        doc["value"] = float(self.value)
        doc["threshold"] = float(self.threshold)
        doc["details"] = dict(self.details)
        if self.attributions is not None:
            doc["attributions"] = orjson.loads(doc["attributions"])
        return doc

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Alert:
        """Rebuild an alert from a Redis Stream entry (bytes or text keys and values)."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        attributions = None
        if "attributions" in f:
            attributions = tuple(Attribution(**a) for a in orjson.loads(f["attributions"]))
        return cls(
            alert_id=f["alert_id"],
            kind=f["kind"],
            subject=f["subject"],
            ts=parse_ts(f["ts"]),
            severity=f["severity"],  # type: ignore[arg-type]
            value=float(f["value"]),
            threshold=float(f["threshold"]),
            model=f["model"],
            model_version=f["model_version"],
            details=orjson.loads(f.get("details", "{}")),
            attributions=attributions,
        )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
