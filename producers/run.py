"""The send loop: pace a message stream, hand it to a sink, show progress, report.

A sink is where messages go: Kafka (:class:`producers.kafka.KafkaSink`) or a JSON Lines
file (:class:`JsonlSink`). :func:`send_all` drives any of them the same way and returns
a :class:`ProduceReport` once every message is delivered or known to have failed.

Pacing (at most one of them):

``rate``
    events per second of wall-clock time: message ``i`` is sent no earlier than
    ``i / rate`` seconds after the first.
``speed``
    a multiple of real time by the events' own timestamps: a message whose event time is
    ``Δ`` ms after the first message's is sent no earlier than ``Δ / speed`` ms after it
    (``speed=1`` replays in real time, ``60`` a minute per second). Messages without an
    event time, or stamped earlier than the schedule, go out at once.

Without either, messages go as fast as the sink takes them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from engine.errors import InputError
from producers.messages import Message, message_line

MIN_SLEEP_S = 0.001
"""Pacing sleeps only when at least this far ahead of schedule, so fast rates send in bursts."""


@dataclass(frozen=True, slots=True)
class ProduceReport:
    """What a run delivered.

    ``sent`` counts messages acknowledged by the broker (or written to the file),
    ``failed`` those that were not, ``bad`` the injected bad records among all of them;
    ``seconds`` is wall-clock time from the first send to the final flush.
    """

    topic: str
    sent: int
    failed: int
    seconds: float
    bad: int = 0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        """Delivered messages per second of wall-clock time."""
        return self.sent / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        """One line for people, e.g. ``sent 1,000 messages to prices in 0.10 s (10,000 events/s)``."""
        text = f"sent {self.sent:,} messages to {self.topic} in {self.seconds:.2f} s ({self.rate:,.0f} events/s)"
        if self.bad:
            text += f", {self.bad:,} of them injected bad records"
        if self.failed:
            text += f"; {self.failed:,} FAILED (first error: {self.first_error})"
        return text


class Sink(Protocol):
    """Where :func:`send_all` puts messages.

    ``close`` flushes and may be called more than once; counts are final after it.
    """

    topic: str

    def send(self, message: Message) -> None: ...
    def close(self) -> None: ...
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def first_error(self) -> str | None: ...


class JsonlSink:
    """Messages as JSON Lines (:func:`producers.messages.message_line`), to a file or stdout.

    Parameters
    ----------
    out
        A path (created or truncated), or ``None`` for standard output.
    topic
        Written on every line: the topic the messages are meant for.
    """

    def __init__(self, out: Path | None, topic: str) -> None:
        self.topic = topic
        self._owned = out is not None
        if out is None:
            self._file: IO[bytes] = sys.stdout.buffer
        else:
            try:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                self._file = Path(out).open("wb")  # noqa: SIM115 - open until close()
            except OSError as exc:
                raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
        self._count = 0

    def send(self, message: Message) -> None:
        self._file.write(message_line(message, self.topic))
        self._count += 1

    def close(self) -> None:
        """Flush (and close a file this sink opened); closing twice is harmless."""
        if self._file.closed:
            return
        self._file.flush()
        if self._owned:
            self._file.close()

    @property
    def delivered(self) -> int:
        return self._count

    @property
    def failed(self) -> int:
        return 0

    @property
    def first_error(self) -> str | None:
        return None


def paced(
    messages: Iterable[Message],
    *,
    rate: float | None = None,
    speed: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Message]:
    """Yield ``messages`` no faster than ``rate`` or ``speed`` allows (module docstring).

    ``clock`` (seconds) and ``sleep`` are injectable for tests.
    """
    if rate is not None and speed is not None:
        raise InputError("give a rate or a speed, not both")
    if rate is not None and not rate > 0:
        raise InputError(f"rate must be positive, got {rate}")
    if speed is not None and not speed > 0:
        raise InputError(f"speed must be positive, got {speed}")
    if rate is None and speed is None:
        yield from messages
        return
    start = clock()
    first_event: int | None = None
    for i, message in enumerate(messages):
        if rate is not None:
            due = start + i / rate
        elif message.event_ms is None:
            due = start
        else:
            if first_event is None:
                first_event = message.event_ms
            assert speed is not None
            due = start + (message.event_ms - first_event) / 1000.0 / speed
        ahead = due - clock()
        if ahead >= MIN_SLEEP_S:
            sleep(ahead)
        yield message


def send_all(
    messages: Iterable[Message],
    sink: Sink,
    *,
    rate: float | None = None,
    speed: float | None = None,
    total: int | None = None,
    progress: bool = False,
    description: str | None = None,
) -> ProduceReport:
    """Send every message to ``sink`` (paced), close it, and report.

    Blocks until the sink is closed, i.e. until every message is acknowledged or failed.
    ``total`` (if known) sizes the progress bar, which goes to standard error. The sink
    is closed even if the stream raises (e.g. Ctrl-C); the error then propagates.
    """
    stream = paced(messages, rate=rate, speed=speed)
    bad = 0
    started = time.perf_counter()
    try:
        if progress:
            bad = _send_with_progress(stream, sink, total, description or sink.topic)
        else:
            for message in stream:
                sink.send(message)
                bad += message.expected is not None
    finally:
        sink.close()
    seconds = time.perf_counter() - started
    return ProduceReport(
        sink.topic, sink.delivered, sink.failed, seconds, bad, first_error=sink.first_error
    )


def _send_with_progress(
    stream: Iterable[Message], sink: Sink, total: int | None, description: str
) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} ev/s"),
        TextColumn("delivered {task.fields[delivered]:,}, failed {task.fields[failed]:,}"),
        TimeElapsedColumn(),
    )
    bad = 0
    count = 0
    shown = 0
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, rate=0.0, delivered=0, failed=0)
        started = last = time.perf_counter()
        rate = 0.0
        for message in stream:
            sink.send(message)
            bad += message.expected is not None
            count += 1
            now = time.perf_counter()
            if now - last >= 0.1:
                recent = (count - shown) / (now - last)
                rate = recent if shown == 0 else 0.7 * rate + 0.3 * recent
                bar.update(
                    task,
                    advance=count - shown,
                    rate=rate,
                    delivered=sink.delivered,
                    failed=sink.failed,
                )
                shown, last = count, now
        sink.close()  # flush inside the bar, so it shows the final delivered count
        elapsed = time.perf_counter() - started
        bar.update(
            task,
            advance=count - shown,
            total=total if total is not None else count,
            rate=count / elapsed if elapsed > 0 else 0.0,
            delivered=sink.delivered,
            failed=sink.failed,
        )
    return bad
