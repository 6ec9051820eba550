"""File sinks for the embedded runner: alerts (and latest state) and dead letters as JSON Lines.

Each line is one JSON document; files are written in append mode and flushed after
every batch, so a reader tailing the file (``tail -f``) sees alerts as they happen.
An alert id already written by this sink is not written again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from engine.alerts import Alert
from engine.boundary.records import DeadLetter
from engine.sinks.base import WriteResult
from engine.stages import LatestState


class JsonlWriter:
    """Append JSON documents to a file, one per line."""

    def __init__(self, path: Path, *, truncate: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = self.path.open("wb" if truncate else "ab")
        self.count = 0

    def write(self, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            self._file.write(orjson.dumps(doc) + b"\n")
            self.count += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class AlertFile(JsonlWriter):
    """Alerts as JSON Lines, each alert id at most once."""

    def __init__(self, path: Path, *, truncate: bool = True) -> None:
        super().__init__(path, truncate=truncate)
        self._seen: set[str] = set()

    def write_alerts(self, alerts: Iterable[Alert]) -> int:
        """Write the alerts not written before; returns how many were new."""
        fresh = [a for a in alerts if a.alert_id not in self._seen]
        self._seen.update(a.alert_id for a in fresh)
        self.write(a.to_json() for a in fresh)
        return len(fresh)


class DeadLetterFile(JsonlWriter):
    """Dead letters as JSON Lines, original bytes in base64."""

    def write_letters(self, letters: Iterable[DeadLetter]) -> None:
        self.write(letter.to_json() for letter in letters)


class JsonlSink:
    """A :class:`~engine.sinks.base.Sink` of JSON Lines files in ``out_dir``.

    ``alerts.jsonl`` gets every alert once (:class:`AlertFile`); with ``latest=True``,
    ``latest.jsonl`` gets every latest-state hash as it is written (``{"key": ..., **fields}``),
    the file form of the Redis hashes. ``truncate=False`` appends to existing files.
    """

    def __init__(self, out_dir: Path, *, truncate: bool = True, latest: bool = False) -> None:
        out_dir = Path(out_dir)
        self.alerts = AlertFile(out_dir / "alerts.jsonl", truncate=truncate)
        self.latest = JsonlWriter(out_dir / "latest.jsonl", truncate=truncate) if latest else None

    @property
    def alerts_path(self) -> Path:
        return self.alerts.path

    async def write(
        self, *, latest: Sequence[LatestState] = (), alerts: Sequence[Alert] = ()
    ) -> WriteResult:
        if self.latest is not None and latest:
            self.latest.write({"key": state.key, **state.fields} for state in latest)
        written = self.alerts.write_alerts(alerts)
        return WriteResult(written, len(alerts) - written)

    async def close(self) -> None:
        self.alerts.close()
        if self.latest is not None:
            self.latest.close()
