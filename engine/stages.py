"""Add-on models that run inside the pipeline, after the core book's step.

A :class:`Stage` is how a model joins the stream without touching the pipeline: an
anomaly detector on prices, an anomaly or credit model on transactions. It declares
its per-key state as online components (they are stored in the same persisted row as
the key's core state, so they survive restarts and rebalances with it), and for each
micro-batch it receives the validated columns and the book's step result and returns
alerts and latest-state hashes for Redis.

Rules a stage follows:

* it updates state only for records whose status is ``Status.ACCEPTED`` (a ``REPLAY``
  must change nothing: that is what makes redelivery harmless);
* it is deterministic: the same records in the same per-key order give the same
  state, alerts (with deterministic ids, :func:`engine.alerts.alert_id`) and outputs;
* it does no I/O; slow work (model explanations) belongs to the adapters' output
  stage, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.alerts import Alert
from engine.core.online import OnlineComponent


@dataclass(frozen=True, slots=True)
class LatestState:
    """A Redis hash holding the latest state of something (a symbol, a customer).

    Written only if ``seq`` (the value of field ``seq_field``, which only grows for a
    key) is not older than what Redis holds, so a replay never moves it backwards.
    """

    key: str
    seq_field: str
    seq: int
    fields: Mapping[str, str]


@dataclass(slots=True)
class StageInput:
    """What a stage sees of one micro-batch."""

    columns: Any
    """The accepted records' columns (:class:`~engine.boundary.validation.PriceColumns` or
    :class:`~engine.boundary.validation.TransactionColumns`), in arrival order."""
    step: Any
    """The book's step (:class:`~engine.core.PriceStep` or :class:`~engine.core.CustomerStep`)."""
    keys: list[str]
    """Slot -> key (symbol or customer id) of the book."""
    now_ms: int


@dataclass(slots=True)
class StageOutput:
    alerts: list[Alert] = field(default_factory=list)
    latest: list[LatestState] = field(default_factory=list)


class Stage(Protocol):
    """An add-on model (see the module docstring for the rules it follows)."""

    name: str

    def components(self) -> tuple[OnlineComponent, ...]:
        """Per-key state, persisted in the key's row; empty for stateless stages."""
        ...

    def run(self, data: StageInput) -> StageOutput:
        """Process one micro-batch."""
        ...
