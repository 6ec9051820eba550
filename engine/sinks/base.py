"""What every sink of results offers: the worker and the embedded runner write through it.

A :class:`Sink` takes one micro-batch's latest-state hashes and alerts at a time, in
batch order, and says how many alerts were new to it (an alert id it has written before
is not written again: replays are harmless). :class:`~engine.sinks.redis.RedisSink`
writes to Redis (hashes, the alert stream and its live channel);
:class:`~engine.sinks.files.JsonlSink` to JSON Lines files. The worker's ordered writer
(:mod:`engine.worker.writer`) and the embedded runner (:mod:`engine.offline.embedded`) take any
of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.alerts import Alert
from engine.stages import LatestState


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Alerts of one write that were new to the sink, and those it already held."""

    alerts_written: int
    alerts_duplicate: int


class Sink(Protocol):
    """Where results go (module docstring)."""

    async def write(
        self, *, latest: Sequence[LatestState] = (), alerts: Sequence[Alert] = ()
    ) -> WriteResult:
        """Write one batch's outputs; returns once they are durable for this sink."""
        ...

    async def close(self) -> None:
        """Release the sink's resources (a written batch stays written)."""
        ...
