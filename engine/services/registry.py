"""What ``riskstream services start`` left running, so ``stop`` and ``status`` find it later.

The registry is a directory (``.run/services`` by default). For each service it holds
``<name>.pid`` (the process id, for humans and scripts) and ``<name>.json`` (pid, process
start time, address, log and state paths, environment it provides), plus ``services.env``
with one ``KEY=value`` line per environment variable of the services that were started
(``RISKSTREAM_KAFKA_BOOTSTRAP``, ``RISKSTREAM_REDIS_URL``), readable by
``set -a; . .run/services/services.env``, ``docker --env-file`` and pydantic-settings.

A service stopped with ``riskstream services stop`` keeps its variables in
``services.env``, under a comment saying it is stopped (``stopped.json`` remembers
them): the file describes the deployment, and a worker started from it while Redis is
stopped must wait for Redis (the worker's start-up policy), not run without it.

A recorded process is recognised by its pid *and* its kernel start time, so a pid that
the system has since given to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.services.process import ManagedProcess

ENV_FILE = "services.env"
STOPPED_FILE = "stopped.json"


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22),
    ``None`` if there is no such live (non-zombie) process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited, waiting to be reaped
        return None
    return int(fields[19])


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One service started by ``riskstream services start``."""

    name: str
    pid: int
    start_ticks: int
    address: str
    log_path: str
    state_dir: str
    env: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def is_alive(self) -> bool:
        """Whether the very process that was recorded is still running."""
        return process_start_ticks(self.pid) == self.start_ticks

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM its process group, SIGKILL after ``timeout`` s; ``False`` if it was not running."""
        if not self.is_alive:
            return False
        for sig in (signal.SIGCONT, signal.SIGTERM):  # SIGCONT: it may have been paused
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
        deadline = time.monotonic() + timeout
        while self.is_alive and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.is_alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            while self.is_alive and time.monotonic() < deadline + 10:
                time.sleep(0.1)
        return True


class Registry:
    """The registry directory ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def env_path(self) -> Path:
        """``<root>/services.env``."""
        return self.root / ENV_FILE

    def add(self, name: str, process: ManagedProcess, env: Mapping[str, str]) -> ServiceRecord:
        """Record a running process and rewrite ``services.env``."""
        pid = process.pid
        ticks = process_start_ticks(pid) if pid else None
        if pid is None or ticks is None:
            raise RuntimeError(f"{name} is not running; nothing to record")
        record = ServiceRecord(
            name=name,
            pid=pid,
            start_ticks=ticks,
            address=process.address,
            log_path=str(process.log_path),
            state_dir=str(process.state_dir),
            env=dict(env),
            started_at=time.time(),
        )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / f"{name}.json").write_text(json.dumps(asdict(record), indent=2) + "\n")
        (self.root / f"{name}.pid").write_text(f"{pid}\n")
        self._set_stopped(name, None)
        self.write_env()
        return record

    def stopped(self) -> dict[str, dict[str, str]]:
        """Environment of each service stopped by :meth:`stop` and not started since."""
        try:
            return dict(json.loads((self.root / STOPPED_FILE).read_text()))
        except (OSError, ValueError):
            return {}

    def _set_stopped(self, name: str, env: Mapping[str, str] | None) -> None:
        stopped = self.stopped()
        if env is None:
            stopped.pop(name, None)
        else:
            stopped[name] = dict(env)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / STOPPED_FILE).write_text(json.dumps(stopped, indent=2) + "\n")

    def get(self, name: str) -> ServiceRecord | None:
        """The record of ``name``, alive or not; ``None`` if there is none (or it is unreadable)."""
        path = self.root / f"{name}.json"
        try:
            return ServiceRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def records(self) -> list[ServiceRecord]:
        """All records, by name."""
        if not self.root.is_dir():
            return []
        found = (self.get(path.stem) for path in sorted(self.root.glob("*.json")))
        return [record for record in found if record is not None]

    def forget(self, name: str) -> None:
        """Remove ``name``'s files and rewrite ``services.env``."""
        for suffix in (".json", ".pid"):
            (self.root / f"{name}{suffix}").unlink(missing_ok=True)
        self.write_env()

    def stop(self, name: str, timeout: float = 20.0) -> bool:
        """Stop ``name`` if its recorded process runs, then forget it; whether it was running."""
        record = self.get(name)
        stopped = record.stop(timeout) if record else False
        if record is not None:
            self._set_stopped(name, record.env)
        self.forget(name)
        return stopped

    def env(self) -> dict[str, str]:
        """Environment provided by the services that are running now."""
        out: dict[str, str] = {}
        for record in self.records():
            if record.is_alive:
                out.update(record.env)
        return out

    def write_env(self) -> Path:
        """Rewrite ``services.env``: the running services' variables, then the stopped ones'
        under a comment naming them (module docstring); returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        running = self.env()
        text = "# Written by `riskstream services start`; environment of the services.\n"
        text += "".join(f"{key}={value}\n" for key, value in sorted(running.items()))
        for name, env in sorted(self.stopped().items()):
            kept = {k: v for k, v in env.items() if k not in running}
            if kept:
                text += (
                    f"# {name} is stopped (`riskstream services start {name}`); "
                    "a worker started from this file waits for it.\n"
                )
                text += "".join(f"{key}={value}\n" for key, value in sorted(kept.items()))
        self.env_path.write_text(text)
        return self.env_path
