"""Start a peer (or the naive agent) as a subprocess, time it and collect its alerts.

Each row runs in its own process against the benchmark's broker, topic and Redis, so
frameworks do not share an interpreter, and is measured the same way
(:class:`engine.bench.peers.meter.Meter`). Its alerts are read back from the
``riskstream:alerts`` stream, where riskstream's worker writes its own.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.bench.peers.work import ALERTS_STREAM
from engine.errors import InputError
from engine.faults.harness import wait_until

PeerName = Literal["quix", "bytewax", "naive"]
PEERS: tuple[PeerName, ...] = ("quix", "bytewax")
"""The peer rows of ``riskstream bench compare`` (the naive agent has its own)."""

MODULES: dict[PeerName, str] = {
    "quix": "engine.bench.peers.quix",
    "bytewax": "engine.bench.peers.bytewax_flow",
    "naive": "engine.bench.naive_faust",
}
DISTRIBUTIONS: dict[PeerName, str] = {
    "quix": "quixstreams",
    "bytewax": "bytewax",
    "naive": "faust-streaming",
}
IMPORTS: dict[PeerName, str] = {"quix": "quixstreams", "bytewax": "bytewax", "naive": "faust"}
NAMES: dict[PeerName, str] = {
    "quix": "Quix Streams",
    "bytewax": "bytewax",
    "naive": "naive Faust agent",
}
SHAPES: dict[PeerName, str] = {
    "quix": "State API, batching Redis sink",
    "bytewax": "stateful_map, Kafka batches of 1,000",
    "naive": "per event",
}


@dataclass(frozen=True, slots=True)
class PeerRun:
    """One timed run: records/s (first record processed to last written) and alert ids."""

    name: PeerName
    version: str
    rate: float
    count: int
    alert_ids: frozenset[str]

    @property
    def product(self) -> str:
        """The framework and its version, e.g. ``bytewax 0.21.1``."""
        return f"{NAMES[self.name]} {self.version}"

    @property
    def label(self) -> str:
        """A table row's name: the product and how the row uses it."""
        return f"{self.product} ({SHAPES[self.name]})"


def parse_peers(text: str) -> tuple[PeerName, ...]:
    """``--peers``: comma-separated names of :data:`PEERS`, or ``none``.

    >>> parse_peers("quix, bytewax"), parse_peers("none")
    (('quix', 'bytewax'), ())
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    unknown = [n for n in names if n not in PEERS]
    if unknown or not names:
        raise InputError(f"--peers {text!r}: give some of {', '.join(PEERS)}, or none")
    return tuple(n for n in PEERS if n in names)


def check_installed(names: list[PeerName]) -> None:
    """Raise :class:`InputError` naming the fix when a peer's framework is not installed."""
    missing = [n for n in names if importlib.util.find_spec(IMPORTS[n]) is None]
    if missing:
        raise InputError(
            f"{', '.join(DISTRIBUTIONS[n] for n in missing)} not installed: "
            "pip install 'riskstream[peers]', or leave the peer rows out with --peers none"
        )


def version(name: PeerName) -> str:
    """The installed version of a peer's framework."""
    return importlib.metadata.version(DISTRIBUTIONS[name])


def start(
    name: PeerName,
    *,
    bootstrap: str,
    redis_url: str,
    expected: int,
    workdir: Path,
    topic: str = "prices",
    partitions: int = 8,
    from_latest: bool = False,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a row's process in a fresh consumer group; returns it and its rate file.

    Its output goes to ``<workdir>/<name>-<ns>.log``.
    """
    stem = f"{name}-{time.time_ns()}"
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{stem}.json"
    argv = [
        sys.executable, "-m", MODULES[name],
        "--bootstrap", bootstrap, "--redis-url", redis_url,
        "--expected", str(expected), "--out", str(out), "--topic", topic,
    ]  # fmt: skip
    if name == "quix":
        argv += ["--group", stem, "--state-dir", str(workdir / f"{stem}-state")]
    elif name == "naive":
        argv += ["--partitions", str(partitions), "--app-id", stem]
    if from_latest:
        argv.append("--from-latest")
    with (workdir / f"{stem}.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, out


def wait_rate(proc: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, float]:
    """Wait for the rate file (``{"count", "seconds", "rate"}``); fail if the process exits."""
    wait_until(lambda: out.exists() or proc.poll() is not None, timeout, f"{out.stem}")
    if not out.exists():
        raise RuntimeError(f"{out.stem} exited {proc.returncode}; see {out.with_suffix('.log')}")
    doc: dict[str, float] = json.loads(out.read_text())
    return doc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a row's process (SIGTERM: each framework's clean shutdown), then wait."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def alert_ids(redis_url: str, *, exclude_prefix: str | None = None) -> list[str]:
    """Ids of the ``var_breach`` alerts in ``riskstream:alerts`` (repeats kept, to be seen).

    ``exclude_prefix`` leaves out symbols starting with it (the latency runs' symbols).
    """
    import redis

    ids: list[str] = []
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        start = "-"
        while True:
            entries = client.xrange(ALERTS_STREAM, min=start, count=10_000)
            for _, fields in entries:
                if fields.get("kind") != "var_breach":
                    continue
                if exclude_prefix and fields["subject"].startswith(exclude_prefix):
                    continue
                ids.append(fields["alert_id"])
            if len(entries) < 10_000:
                return ids
            start = "(" + entries[-1][0]


def run(
    name: PeerName,
    *,
    bootstrap: str,
    redis_url: str,
    expected: int,
    workdir: Path,
    topic: str = "prices",
    partitions: int = 8,
    timeout: float = 1800.0,
) -> PeerRun:
    """Run a row over the first ``expected`` records of ``topic`` and collect its alerts.

    Redis should hold no other alerts: the caller flushes it before and after.
    """
    proc, out = start(
        name,
        bootstrap=bootstrap,
        redis_url=redis_url,
        expected=expected,
        workdir=workdir,
        topic=topic,
        partitions=partitions,
    )
    try:
        doc = wait_rate(proc, out, timeout)
        ids = alert_ids(redis_url)
    finally:
        stop(proc)
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"{name} wrote {len(ids) - len(set(ids))} alerts twice")
    return PeerRun(name, version(name), float(doc["rate"]), int(doc["count"]), frozenset(ids))
