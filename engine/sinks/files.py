"""File sinks for the embedded runner: alerts and dead letters as JSON Lines.

Each line is one JSON document; files are written in append mode and flushed after
every batch, so a reader tailing the file (``tail -f``) sees alerts as they happen.
An alert id already written by this sink is not written again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

from engine.alerts import Alert
from engine.records import DeadLetter


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
