"""``riskstream bench recovery``: seconds from ``kill -9`` of a worker to its next alert.

Each run starts its own Kafka and Redis, one worker (default models unless the caller's
environment says otherwise) and a paced ``prices`` stream (the fault suite's seeded
stream, ``rate`` ticks per second). Midway, the worker's own process, and only it, is
sent SIGKILL (as ``kill -9 PID`` does; its process group is left alone, so the fit
pool's fate is the worker's own doing), and the same worker is started again at once.

Measured per run:

``recovery_s``
    from the kill to the first alert, in Redis, raised by a tick produced after the kill.
    A tick counts as produced after the kill when its event time is beyond that of the
    tick the paced producer was due to send :data:`MARGIN_S` after it. Alert times are
    the Redis stream ids (Redis's clock, the same machine's).
``orphans``
    processes that descended from the killed worker and were still alive
    :data:`ORPHAN_GRACE_S` after the kill.

With static membership (``RISKSTREAM_GROUP_INSTANCE_ID``, the default here) the
restarted worker takes its partitions back as soon as it has started; ``--dynamic``
shows the old behaviour, a wait for the dead member's session to expire
(``RISKSTREAM_KAFKA_SESSION_TIMEOUT_S``, 60 s by default).
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.faults.chaos import FaultConfig, PacedProduction, WorkerGroup, fault_stream, sleep_until
from engine.faults.harness import wait_until
from engine.services.testing import ServiceHub

#: A tick stream's configuration: refits every 1,000 returns, not the daily default of 20
#: (docs/operations/scaling.md), or the fit pool, not recovery, would be measured.
TICK_STREAM_ENV = {"RISKSTREAM_REFIT_EVERY": "1000"}
#: A tick due this long after the kill is certainly produced after it.
MARGIN_S = 0.5
#: Seconds after the kill by which every descendant of the worker must be gone.
ORPHAN_GRACE_S = 5.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children first."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = [int(p) for p in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            found += children
            stack += children
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True, slots=True)
class RecoveryRun:
    seed: int
    recovery_s: float
    orphans: int
    pool_processes: int
    """Descendants of the worker when it was killed (fit pool, resource tracker)."""


@dataclass(slots=True)
class RecoveryReport:
    static: bool
    rate: int
    runs: list[RecoveryRun] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(r.recovery_s for r in self.runs)

    def markdown(self) -> str:
        membership = "static (RISKSTREAM_GROUP_INSTANCE_ID)" if self.static else "dynamic"
        lines = [
            f"kill -9 recovery, {membership} membership, {self.rate} ticks/s, "
            f"{len(self.runs)} runs",
            "",
            "| seed | kill to first post-kill alert (s) | worker's processes at kill | left after 5 s |",
            "|---:|---:|---:|---:|",
            *(
                f"| {r.seed} | {r.recovery_s:.2f} | {r.pool_processes} | {r.orphans} |"
                for r in self.runs
            ),
            "",
            f"median {self.median_s:.2f} s, max {max(r.recovery_s for r in self.runs):.2f} s, "
            f"processes left behind {sum(r.orphans for r in self.runs)}",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {"static": self.static, "rate": self.rate, "median_s": self.median_s} | {
            "runs": [asdict(r) for r in self.runs]
        }


def _first_alert_after(client: object, event_ms: int, since: float, timeout: float) -> float:
    """Wall-clock time (s) at which the first alert for an event after ``event_ms`` was added."""
    deadline = time.monotonic() + timeout
    last_id = f"{int(since * 1000)}-0"
    while time.monotonic() < deadline:
        entries = client.xrange("riskstream:alerts", min=last_id)  # type: ignore[attr-defined]
        for entry_id, fields in entries:
            if _event_ms(fields) > event_ms:
                return int(entry_id.split(b"-")[0]) / 1000
        time.sleep(0.05)
    raise TimeoutError(f"no alert for a tick produced after the kill within {timeout:.0f} s")


def _event_ms(fields: dict[bytes, bytes]) -> int:
    from engine.boundary.timeutil import parse_ts

    return parse_ts(fields[b"ts"].decode())


def one_run(
    config: FaultConfig, seed: int, workdir: Path, *, static: bool, env: dict[str, str]
) -> RecoveryRun:
    """One run (module docstring)."""
    messages = fault_stream(config, seed)
    with ServiceHub(workdir / f"seed-{seed}", "native") as hub:
        kafka, redis = hub.kafka(), hub.redis()
        settings = config.settings(kafka_bootstrap=kafka.bootstrap)
        worker_env = config.worker_env(kafka.bootstrap, redis.url, f"recovery-{seed}")
        worker_env.pop("RISKSTREAM_KAFKA_SESSION_TIMEOUT_S")  # the production default
        worker_env.update(TICK_STREAM_ENV)
        worker_env.update(env)
        if static:
            worker_env["RISKSTREAM_GROUP_INSTANCE_ID"] = "recovery-worker-1"
        group = WorkerGroup(worker_env, workdir / f"seed-{seed}" / "workers")
        client = redis.client()
        try:
            worker = group.add()
            started = time.monotonic()
            wall0 = time.time()
            production = PacedProduction(settings, messages, config.rate).start()
            sleep_until(started + config.duration_s / 2)
            assert worker.proc is not None
            below = descendants(worker.proc.pid)
            killed_at = time.time()
            os.kill(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(10)
            due = int((killed_at - wall0 + MARGIN_S) * config.rate)
            event_ms = messages[min(due, len(messages) - 1)].event_ms or 0
            worker.start()
            first = _first_alert_after(client, event_ms, killed_at, config.duration_s + 120)
            wait_until(
                lambda: time.time() >= killed_at + ORPHAN_GRACE_S, ORPHAN_GRACE_S + 1, "grace"
            )
            orphans = sum(alive(p) for p in below)
            production.join(config.duration_s * 3 + 120)
            return RecoveryRun(seed, round(first - killed_at, 3), orphans, len(below))
        finally:
            client.close()
            group.close()


def run(
    *,
    runs: int,
    rate: int,
    events: int,
    static: bool,
    workdir: Path,
    env: dict[str, str],
    progress: Callable[[str], None] = lambda m: None,
) -> RecoveryReport:
    config = FaultConfig(
        events=events, rate=rate, runs=runs, models="garch,gjr,har", method="gjr-mix"
    )
    report = RecoveryReport(static=static, rate=rate)
    for seed in config.seeds:
        result = one_run(config, seed, workdir, static=static, env=env)
        report.runs.append(result)
        progress(
            f"run {len(report.runs)}/{runs}: {result.recovery_s:.2f} s to the first post-kill "
            f"alert, {result.orphans} of {result.pool_processes} child processes left"
        )
    return report


@dataclass(frozen=True, slots=True)
class FirstTick:
    """A worker's start: seconds to Ready, then from Ready to its first processed tick."""

    fresh_cache: bool
    start_to_ready_s: float
    ready_to_first_tick_s: float

    def markdown(self) -> str:
        cache = "empty numba cache (a fresh install)" if self.fresh_cache else "numba cache filled"
        return (
            f"worker start with {cache}: {self.start_to_ready_s:.1f} s to Ready, then "
            f"{self.ready_to_first_tick_s:.2f} s to its first processed tick"
        )


def first_tick(workdir: Path, *, fresh_cache: bool) -> FirstTick:
    """Start a worker (default models) and time its first tick, produced when it says Ready.

    ``fresh_cache`` points numba at an empty cache directory (``NUMBA_CACHE_DIR``), so
    every kernel compiles as on a fresh install.
    """
    from engine.boundary.schemas import PriceTick
    from engine.boundary.timeutil import now_ms
    from engine.faults.harness import WorkerProcess, produce

    with ServiceHub(workdir / "first-tick", "native") as hub:
        kafka, redis = hub.kafka(), hub.redis()
        env = FaultConfig(models="garch,gjr,har", method="gjr-mix").worker_env(
            kafka.bootstrap, redis.url, "first-tick"
        )
        env["RISKSTREAM_DATA_DIR"] = str(workdir / "first-tick" / "worker")
        env.update(TICK_STREAM_ENV)
        if fresh_cache:
            cache = workdir / "first-tick" / "numba-cache"
            cache.mkdir(parents=True, exist_ok=True)
            env["NUMBA_CACHE_DIR"] = str(cache)
        worker = WorkerProcess(env, workdir / "first-tick" / "worker.log")
        client = redis.client()
        try:
            began = time.monotonic()
            worker.start(ready_timeout=300)
            ready = worker.ready_at
            tick = PriceTick("FIRST", now_ms(), 100.0)
            produce(kafka.bootstrap, "prices", [(tick.key, tick.to_json())])
            wait_until(lambda: client.exists("riskstream:risk:FIRST"), 120, "the first tick")
            return FirstTick(fresh_cache, ready - began, time.monotonic() - ready)
        finally:
            client.close()
            worker.kill()
