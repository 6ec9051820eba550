"""Fault injection over real processes: Kafka (KRaft), riskstream workers, redis-server.

Each test sends a seeded ``prices`` stream (event ids ``SYMBOL-<n>``) at a fixed rate
while it hurts the system, then lets the independent checker (:mod:`engine.faults.checker`)
replay the input topic offline and compare: lost alerts, duplicate alerts, spurious
alerts, symbols whose state differs, dead letters lost or invented, gaps in the input's
per-symbol sequence numbers. Every one of them must be 0.

The size comes from ``RISKSTREAM_FAULT_*`` (:class:`engine.faults.chaos.FaultConfig`): small by
default (CI), e.g. ``RISKSTREAM_FAULT_EVENTS=200000 RISKSTREAM_FAULT_KILLS=10
RISKSTREAM_FAULT_RUNS=10 RISKSTREAM_FAULT_OUTAGE_S=30`` for the long configuration, and
``RISKSTREAM_FAULT_REPORT=file.jsonl`` to keep every run's figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config import Settings
from engine.faults.chaos import (
    FaultConfig,
    PacedProduction,
    WorkerGroup,
    fault_stream,
    injected_reasons,
    record_report,
    sleep_until,
)
from engine.faults.checker import CheckReport, check_prices, expected_prices, state_differences
from engine.faults.harness import ConsumedRecord, alert_entries, wait_until
from engine.services.kafka_cluster import KafkaCluster
from engine.services.redis import RedisServer
from engine.services.testing import ServiceHub
from producers.messages import Message

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

CONFIG = FaultConfig.from_env()


@dataclass
class Run:
    """One seeded run: its services, workers and production, for a fault to act on."""

    config: FaultConfig
    seed: int
    kafka: Any
    """A :class:`KafkaBroker`, or a :class:`KafkaCluster` for the replication tests."""
    redis: RedisServer
    group: WorkerGroup
    settings: Settings
    messages: list[Message]
    root: Path
    started: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def at(self, fraction: float) -> None:
        """Wait until ``fraction`` of the production time has passed."""
        sleep_until(self.started + fraction * self.config.duration_s)

    def fault_times(self) -> list[float]:
        """``config.kills`` fractions of the production, evenly spread."""
        n = self.config.kills
        return [(i + 1) / (n + 1) for i in range(n)]


Fault = Callable[[Run], None]
Check = Callable[[Run, CheckReport], None]


def fault_runs(
    tmp_path: Path,
    name: str,
    fault: Fault,
    *,
    workers: int = 1,
    bad_fraction: float = 0.0,
    check: Check | None = None,
    brokers: int = 1,
    expected_errors: tuple[str, ...] = (),
    worker_env: Mapping[str, str] | None = None,
) -> None:
    """Run ``fault`` over ``CONFIG.runs`` seeded runs; every invariant must hold in each.

    ``brokers=3`` runs a three-node KRaft cluster, topics with replication factor 3 and
    ``min.insync.replicas=2``.
    """
    reports: list[str] = []
    failed = 0
    for seed in CONFIG.seeds:
        root = tmp_path / f"seed-{seed}"
        began = time.monotonic()
        with ServiceHub(root / "services", "native") as hub:
            kafka: Any = hub.kafka() if brokers == 1 else hub.kafka_cluster(brokers)
            redis: Any = hub.redis(persistence=True)
            settings = CONFIG.settings(kafka_bootstrap=kafka.bootstrap, replication_factor=brokers)
            env = CONFIG.worker_env(kafka.bootstrap, redis.url, "faults")
            env["RISKSTREAM_REPLICATION_FACTOR"] = str(brokers)
            env.update(worker_env or {})
            group = WorkerGroup(env, root / "workers")
            run = Run(
                CONFIG,
                seed,
                kafka,
                redis,
                group,
                settings,
                fault_stream(CONFIG, seed, bad_fraction=bad_fraction),
                root,
            )
            client = redis.client()
            try:
                for _ in range(workers):
                    group.add()
                run.started = time.monotonic()
                production = PacedProduction(settings, run.messages, CONFIG.rate).start()
                fault(run)
                production.join(CONFIG.duration_s * 3 + 120)
                report = check_prices(
                    kafka.bootstrap, client, settings, timeout_s=60 + CONFIG.events / 2000
                )
                errors = [e for e in group.errors() if not any(x in e for x in expected_errors)]
                assert errors == [], f"unexpected worker errors {errors}; {report.summary()}"
                if check is not None:
                    check(run, report)
            except BaseException:
                _print_worker_logs(group)
                raise
            finally:
                client.close()
                group.close()
        if not report.ok:
            _print_worker_logs(group)
        seconds = time.monotonic() - began
        record_report(CONFIG, name, seed, report, seconds, **run.notes)
        reports.append(f"seed {seed} ({seconds:.0f} s): {report.summary()}")
        failed += not report.ok
    print(f"\n{name}: {len(reports) - failed}/{len(reports)} runs clean\n" + "\n".join(reports))
    assert failed == 0, "\n".join(reports)
    assert report.expected_alerts > 0, "no alerts: the run proves nothing about alert delivery"


def _print_worker_logs(group: WorkerGroup, lines: int = 80) -> None:
    """Each worker's log tail on stdout, which pytest shows with a failing test."""
    for worker in group.workers:
        print(f"\n----- {worker.name}: last {lines} log lines -----\n{worker.tail(lines)}")


@pytest.mark.parametrize("workers", [1, 2], ids=["1w", "2w"])
def test_kill9_workers_repeatedly(tmp_path: Path, workers: int) -> None:
    """SIGKILL a worker ``kills`` times while the stream flows; workers take turns."""

    def fault(run: Run) -> None:
        for i, when in enumerate(run.fault_times()):
            run.at(when)
            run.group.kill(i % len(run.group.workers))
        run.notes["kills"] = len(run.fault_times())
        run.notes["workers"] = workers

    fault_runs(tmp_path, f"kill9_{workers}w", fault, workers=workers)


def test_rolling_sigterm_restarts(tmp_path: Path) -> None:
    """SIGTERM and restart each worker in turn (a rolling deploy), ``kills`` restarts."""

    def fault(run: Run) -> None:
        for i, when in enumerate(run.fault_times()):
            run.at(when)
            run.group.restart(i % len(run.group.workers))
        run.notes["restarts"] = len(run.fault_times())

    fault_runs(tmp_path, "rolling_restart", fault, workers=CONFIG.workers)


def test_scale_out_and_in(tmp_path: Path) -> None:
    """1 worker -> ``workers`` -> 1 while the stream flows: every step is a rebalance."""
    peak = max(2, CONFIG.workers)
    steps = peak - 1

    def fault(run: Run) -> None:
        for i in range(steps):
            run.at((i + 1) / (2 * steps + 1))
            run.group.add()
        for i in range(steps):
            run.at((steps + i + 1) / (2 * steps + 1))
            run.group.remove()
        run.notes["peak_workers"] = peak

    fault_runs(tmp_path, "scale_1_to_peak_to_1", fault, workers=1)


def test_worker_stopped_while_the_group_rebalances(tmp_path: Path) -> None:
    """A worker told to stop (SIGTERM) is caught by a rebalance before it has left the
    group: it must still exit, promptly and with status 0.

    faust answers such a rebalance by closing the consumer (``_on_rebalance_when_stopped``);
    its close broke aiokafka's coordinator and the worker hung in its final offset commit
    (``BatchingConsumerThread.close``; found when ``bench compare`` stopped two workers a
    second apart). To make the race certain, the stopping worker is held in its stop by
    pausing Redis (the batch its stop waits for cannot be written), and the other worker
    is SIGKILLed so that the group rebalances once its session expires. Then Redis
    resumes; both workers are started again for the rest of the stream.
    """

    def fault(run: Run) -> None:
        other, stopping = run.group.workers
        run.at(0.3)
        mark = stopping.log_path.stat().st_size
        run.redis.pause()
        try:
            # Batches keep coming: a second later the writer holds one Redis cannot take,
            # and the stop waits for it (its last checkpoint follows it).
            time.sleep(1.0)
            stopping.terminate()
            wait_until(
                lambda: "Wait for streams" in stopping.log_since(mark),
                30,
                f"{stopping.name} to begin its stop",
            )
            other.kill()
            wait_until(
                lambda: "Revoking previously assigned partitions" in stopping.log_since(mark),
                60,  # the workers' session timeout is 6 s (FaultConfig.worker_env)
                f"the group to rebalance while {stopping.name} stops",
            )
            assert stopping.running, "the stop was not held: the race was not reproduced"
        finally:
            run.redis.resume()
        began = time.monotonic()
        code = stopping.wait_exit(60)
        run.notes["stop_s"] = round(time.monotonic() - began, 1)
        assert code == 0, f"{stopping.name} exited {code}:\n{stopping.tail()}"
        other.start()
        stopping.start()

    fault_runs(tmp_path, "stopped_while_rebalancing", fault, workers=2)


def _redis_retried(run: Run) -> int:
    return sum(
        w.log_path.read_text("utf-8", "replace").count("Redis write failed")
        for w in run.group.workers
    )


INJECT_DIR = Path(__file__).parent / "inject"


def test_processing_failure_crashes_without_a_checkpoint(tmp_path: Path) -> None:
    """A price micro-batch with alerts fails after the books took it (injected:
    ``inject/sitecustomize.py``): the worker stops without checkpointing those books (the
    last checkpoint stays the truth, as after a kill) and its restart replays from there.

    Checkpointing them would persist the failed batch's ticks as applied, so the replay
    would skip them and their alerts, which were never written, would be lost.
    """
    trigger = tmp_path / "fail-at-ticks"
    crashes = CONFIG.kills
    per_symbol = CONFIG.events // CONFIG.symbols

    def fault(run: Run) -> None:
        # The failures are placed in the input (the first alerting batch past each tick
        # number), not in time: however long a restart takes, each one happens, with
        # input still to come.
        due = [per_symbol * (crash + 1) // (crashes + 1) for crash in range(crashes)]
        trigger.write_text("\n".join(map(str, due)))
        worker = run.group.workers[0]
        codes = []
        for crash in range(crashes):
            wait_until(
                lambda: not worker.running,
                CONFIG.duration_s * 2 + 60,
                f"the worker to stop on failure {crash + 1} (ticks numbered >= {due[crash]})",
            )
            assert worker.proc is not None
            codes.append(worker.proc.returncode)
            log = worker.log_path.read_text("utf-8", "replace")
            assert log.count("processing failed; stopping the worker") == crash + 1, worker.tail()
            worker.start()
        assert trigger.read_text() == "", "a failure was not injected"
        run.notes["crashes"] = len(codes)
        run.notes["exit_codes"] = codes
        assert all(code != 0 for code in codes), codes

    inject = [str(INJECT_DIR), os.environ.get("PYTHONPATH", "")]
    fault_runs(
        tmp_path,
        "processing_failure",
        fault,
        expected_errors=(
            "injected processing failure",
            "processing failed",
            "Crashed reason=",
            "We experienced a crash",
        ),
        worker_env={
            "PYTHONPATH": os.pathsep.join(filter(None, inject)),
            "RISKSTREAM_TEST_FAIL_FILE": str(trigger),
        },
    )


def _redis_outage(stop: Callable[[Run], None], start: Callable[[Run], None]) -> Fault:
    """A fault taking Redis away ``outage_s`` after 30% of the ticks, then giving it back."""

    def fault(run: Run) -> None:
        run.at(0.3)
        stop(run)
        time.sleep(CONFIG.outage_s)
        start(run)
        run.notes["outage_s"] = CONFIG.outage_s

    return fault


def _redis_outage_noticed(run: Run, report: CheckReport) -> None:
    """The workers saw the outage (retried their writes) and none of them died of it."""
    run.notes["redis_write_retries_logged"] = _redis_retried(run)
    assert run.notes["redis_write_retries_logged"] > 0, "the outage was not noticed"
    assert all(w.starts == 1 and w.running for w in run.group.workers), "a worker died"


def test_redis_killed_and_restarted(tmp_path: Path) -> None:
    """SIGKILL redis-server (append-only file on), keep it down ``outage_s``, start it again."""
    fault = _redis_outage(lambda run: run.redis.kill(), lambda run: run.redis.restart())
    fault_runs(tmp_path, "redis_killed", fault, check=_redis_outage_noticed)


def test_redis_unreachable(tmp_path: Path) -> None:
    """SIGSTOP redis-server for ``outage_s`` (connections hang, then time out), then SIGCONT."""
    fault = _redis_outage(lambda run: run.redis.pause(), lambda run: run.redis.resume())
    fault_runs(tmp_path, "redis_unreachable", fault, check=_redis_outage_noticed)


def _tail(run: Run, n: int, *, timeout: float | None = None) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "engine.cli",
        "alerts",
        "tail",
        "--group",
        "fault-subscriber",
        "--consumer",
        "sub-1",
        "--from-start",
        "--json",
        "--claim-idle-ms",
        "1000",
    ]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    out = (run.root / f"tail-{n}.jsonl").open("wb")
    env = {**run.group.env, "RISKSTREAM_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    out.close()
    return proc


def test_subscriber_disconnected(tmp_path: Path) -> None:
    """An ``alerts tail`` subscriber is SIGKILLed ``kills`` times while alerts flow.

    Its consumer group (``XREADGROUP`` + ``XACK`` after printing) must hand it every
    alert: the distinct ids it printed equal the alert stream's, nothing stays pending.
    """

    def fault(run: Run) -> None:
        tails = 0
        proc = _tail(run, tails)
        # Alerts start once symbols have enough history for the published method.
        for when in run.fault_times():
            run.at(0.5 + when / 2)
            proc.kill()
            proc.wait(10)
            tails += 1
            proc = _tail(run, tails)
        run.notes["subscriber_kills"] = tails
        run.notes["tail"] = proc

    def check(run: Run, report: CheckReport) -> None:
        proc = run.notes.pop("tail")
        proc.kill()
        proc.wait(10)
        last = _tail(run, 99, timeout=5)
        assert last.wait(120) == 0, (run.root / "tail-99.jsonl").read_text()
        printed: list[str] = []
        for path in sorted(run.root.glob("tail-*.jsonl")):
            for line in path.read_bytes().splitlines():
                if line.startswith(b"{"):
                    printed.append(orjson.loads(line)["alert_id"])
        client = run.redis.client()
        stream_ids = {e["alert_id"] for e in alert_entries(client)}
        pending = client.xpending("riskstream:alerts", "fault-subscriber")["pending"]
        client.close()
        run.notes["subscriber_printed"] = len(printed)
        run.notes["subscriber_lost"] = len(stream_ids - set(printed))
        run.notes["subscriber_reprinted"] = len(printed) - len(set(printed))
        assert run.notes["subscriber_lost"] == 0
        assert set(printed) == stream_ids
        assert pending == 0

    fault_runs(tmp_path, "subscriber_disconnected", fault, check=check)


def test_bad_input_one_percent(tmp_path: Path) -> None:
    """1% bad records of every kind, and a worker crash: 0 crashes of our own, dead
    letters equal the injected records, state equals the replay of the good records alone."""

    def fault(run: Run) -> None:
        run.at(0.5)
        run.group.kill(0)

    def check(run: Run, report: CheckReport) -> None:
        injected = injected_reasons(run.messages)
        run.notes["injected_bad"] = sum(injected.values())
        assert Counter(report.dead_letter_reasons) == injected
        good = [m for m in run.messages if m.expected is None]
        clean = expected_prices(
            [ConsumedRecord(0, i, m.key, m.value, {}) for i, m in enumerate(good)], run.settings
        )
        client = run.redis.client()
        try:
            run.notes["state_diff_vs_good_only"] = state_differences(client, clean.latest)
            observed = {e["alert_id"] for e in alert_entries(client)}
        finally:
            client.close()
        assert run.notes["state_diff_vs_good_only"] == 0
        assert observed == clean.alert_ids
        assert run.group.workers[0].starts == 2  # the one planned kill, no crash

    fault_runs(tmp_path, "bad_input_1pct", fault, bad_fraction=0.01, check=check)


#: What aiokafka logs at ERROR while a broker is down or frozen (it reconnects, finds the
#: new leader, finds the new group coordinator when the lost broker was the coordinator,
#: rejoins the group and carries on; a failed commit means a replay, which the watermark
#: makes a no-op): a broker fault test expects these and nothing else.
BROKER_DOWN_ERRORS = (
    "KafkaConnectionError",
    "Unable connect to node",
    "Unable to update metadata",
    "NodeNotReadyError",
    "NotLeaderForPartitionError",
    "Failed fetch messages from",
    # the killed or frozen broker was the consumer group's coordinator
    "marking coordinator dead",
    "Heartbeat send request failed",
    "Group Coordinator Request failed",
    # the session expired meanwhile: the worker rejoins (unknown member, stale generation,
    # rebalance in progress) and the uncommitted records are replayed
    "OffsetCommit failed for group faults due to group error",
)


def _leader(run: Run) -> Any:
    cluster: KafkaCluster = run.kafka
    leader = cluster.leader("prices", 0)
    assert leader is not None, "prices-0 has no leader"
    run.notes["leader_node"] = leader.node_id
    return leader


def test_partition_leader_killed_and_restarted(tmp_path: Path) -> None:
    """Three brokers (RF 3, min.insync.replicas 2): SIGKILL the leader of ``prices``-0,
    keep it down ``outage_s``, restart it; producers and workers fail over."""

    def fault(run: Run) -> None:
        run.at(0.3)
        leader = _leader(run)
        leader.kill()
        time.sleep(CONFIG.outage_s)
        leader.restart()
        run.notes["outage_s"] = CONFIG.outage_s

    fault_runs(
        tmp_path,
        "leader_killed",
        fault,
        workers=CONFIG.workers,
        brokers=3,
        expected_errors=BROKER_DOWN_ERRORS,
    )


def test_broker_paused(tmp_path: Path) -> None:
    """Three brokers: SIGSTOP the leader of ``prices``-0 for ``outage_s``, then SIGCONT."""

    def fault(run: Run) -> None:
        run.at(0.3)
        leader = _leader(run)
        leader.pause()
        time.sleep(CONFIG.outage_s)
        leader.resume()
        run.notes["outage_s"] = CONFIG.outage_s

    fault_runs(
        tmp_path,
        "broker_paused",
        fault,
        workers=CONFIG.workers,
        brokers=3,
        expected_errors=BROKER_DOWN_ERRORS,
    )
