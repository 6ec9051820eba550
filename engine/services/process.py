"""One local server process (Kafka, Redis, Prometheus) that riskstream starts and controls.

A :class:`ManagedProcess` runs in its own session and process group, with stdin closed
and stdout and stderr appended to ``<state dir>/<name>.log``. Signals go to the whole group,
so a wrapper script and its children stop together. The same data directory and ports
are reused by :meth:`~ManagedProcess.restart`, which is what crash tests rely on.

Processes started without ``detach=True`` are remembered in this Python process: they are
listed by :func:`running_processes` and killed by an ``atexit`` hook, so a test run that
forgets one does not leave it behind. Detached processes (``riskstream services start``)
outlive the command that started them and are found later through
:mod:`engine.services.registry`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from engine.services.errors import ServiceStartError

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()
# Detached processes stay referenced for the life of this interpreter: their handles remain
# usable, and no ``Popen`` is garbage-collected (with a ResourceWarning) while its child runs.
_detached: list[ManagedProcess] = []


def log_tail(path: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    """The last ``lines`` lines of a log file (``"<no log>"`` when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return "<no log>"
    text = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) if text else "<empty log>"


class ManagedProcess(ABC):
    """Base class of a local server process: start, wait until ready, stop, crash, freeze.

    Subclasses say how to run the server (:meth:`command`), what to write before each
    start (:meth:`prepare`) and how to tell it is ready (:meth:`probe`).

    Parameters
    ----------
    name
        Short name used in messages and for the log file, e.g. ``"kafka-1"``.
    state_dir
        Directory of the log file and of any data the server keeps; created if missing.
        ``None``: a new temporary directory ``riskstream-<name>-*``, deleted by :meth:`close`.
    detach
        Leave the process running when this Python process exits (for the CLI).
    ready_timeout
        Seconds :meth:`start` waits for :meth:`probe` to succeed.
    """

    def __init__(
        self,
        name: str,
        state_dir: Path | None,
        *,
        detach: bool = False,
        ready_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self._owns_state_dir = state_dir is None
        if state_dir is None:
            state_dir = Path(tempfile.mkdtemp(prefix=f"riskstream-{name}-"))
        self.state_dir = Path(state_dir).resolve()
        self.detach = detach
        self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._probe_error: BaseException | None = None

    # --- What subclasses provide ----------------------------------------------------------
    @abstractmethod
    def command(self) -> list[str]:
        """The argument vector of the server."""

    @abstractmethod
    def probe(self) -> bool:
        """Whether the running server answers requests (cheap; called repeatedly)."""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients reach the server (``host:port`` or a URL), for messages."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Write configuration or format storage before each start. Default: nothing."""

    def environment(self) -> Mapping[str, str] | None:
        """Extra environment variables of the server process. Default: none."""
        return None

    # --- State ----------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        """The server's combined stdout and stderr, appended across restarts."""
        return self.state_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """The process id while running, else ``None``."""
        return self._proc.pid if self.is_running and self._proc else None

    @property
    def is_running(self) -> bool:
        """Whether the process exists and has not exited (a paused process is running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def is_paused(self) -> bool:
        """Whether :meth:`pause` froze the process and :meth:`resume` has not thawed it."""
        return self._paused and self.is_running

    @property
    def returncode(self) -> int | None:
        """Exit status of the last run once it has exited (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of :attr:`log_path`."""
        return log_tail(self.log_path, lines)

    # --- Lifecycle ------------------------------------------------------------------------
    def launch(self) -> None:
        """Spawn the process without waiting for it to be ready (see :meth:`wait_ready`)."""
        if self.is_running:
            raise ServiceStartError(f"{self.name} is already running (pid {self.pid})")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        argv = self.command()
        env = dict(os.environ)
        env.update(self.environment() or {})
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} riskstream starts: {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.state_dir,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServiceStartError(f"cannot run {argv[0]} for {self.name}: {exc}") from None
        self._paused = False
        with _live_lock:
            if self.detach:
                if self not in _detached:
                    _detached.append(self)
            else:
                _live.add(self)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until :meth:`probe` succeeds.

        Raises :class:`ServiceStartError`, quoting the end of the log, when the process
        exits first or is not ready within ``timeout`` seconds (default
        ``ready_timeout``); in the latter case the process is killed first, so a failed
        start never leaves a half-started server behind.
        """
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None:
                raise ServiceStartError(f"{self.name} was never started")
            code = self._proc.poll()
            if code is not None:
                self._forget()
                raise ServiceStartError(
                    f"{self.name} exited with status {code} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if self._probe_quietly():
                return
            if time.monotonic() >= deadline:
                self.kill()
                why = f" (last probe error: {self._probe_error!r})" if self._probe_error else ""
                raise ServiceStartError(
                    f"{self.name} was not ready at {self.address} within {timeout:.0f} s{why}; "
                    f"killed it; last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def _probe_quietly(self) -> bool:
        try:
            return self.probe()
        except Exception as exc:  # a probe that raises simply means "not ready yet"
            self._probe_error = exc
            return False

    def start(self, timeout: float | None = None) -> Self:
        """Spawn the process and wait until it answers; returns ``self``."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop gracefully: SIGTERM to the group, then SIGKILL after ``timeout`` seconds.

        Returns the exit status (``None`` if it was never started). Safe to call twice.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            if self._paused:
                self._signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
            self._signal(signal.SIGKILL)  # stragglers left in the group, if any
        self._forget()
        return self._proc.returncode

    def kill(self) -> int | None:
        """Crash the server: SIGKILL to the group, no shutdown hooks run. Returns its status."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._signal(signal.SIGKILL)
            self._proc.wait()
        self._forget()
        return self._proc.returncode

    def pause(self, timeout: float = 5.0) -> None:
        """Freeze the server (SIGSTOP): it keeps its sockets but answers nothing.

        Returns once the kernel reports the process stopped (or after ``timeout`` s).
        """
        if not self.is_running or self._proc is None:
            raise ServiceStartError(f"{self.name} is not running")
        self._signal(signal.SIGSTOP)
        self._paused = True
        stat = Path(f"/proc/{self._proc.pid}/stat")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            except (OSError, IndexError):
                return  # no /proc, or the process is gone: nothing to wait for
            time.sleep(0.01)

    def resume(self) -> None:
        """Thaw a server frozen by :meth:`pause` (SIGCONT)."""
        if not self.is_running:
            raise ServiceStartError(f"{self.name} is not running")
        self._signal(signal.SIGCONT)
        self._paused = False

    def restart(self, timeout: float | None = None, *, stop_timeout: float = 20.0) -> Self:
        """Stop if running (gracefully), then start again with the same data dir and ports."""
        self.stop(stop_timeout)
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and delete the state directory if this object created it."""
        self.stop()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _forget(self) -> None:
        self._paused = False
        with _live_lock:
            _live.discard(self)

    # --- Context manager ------------------------------------------------------------------
    def __enter__(self) -> Self:
        if not self.is_running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self.is_paused else "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {self.name} {state} at {self.address}>"


def running_processes() -> list[ManagedProcess]:
    """Non-detached processes started by this Python process that are still running."""
    with _live_lock:
        candidates = list(_live)
    return [proc for proc in candidates if proc.is_running]


def stop_all(timeout: float = 10.0) -> list[ManagedProcess]:
    """Stop every process listed by :func:`running_processes`; return the ones that were."""
    leftovers = running_processes()
    for proc in leftovers:
        proc.stop(timeout)
    return leftovers


@atexit.register
def _kill_leftovers() -> None:
    for proc in running_processes():
        proc.kill()
    with _live_lock:
        detached = list(_detached)
    for proc in detached:
        proc.returncode  # noqa: B018 - polls: reaps one that was stopped from elsewhere
