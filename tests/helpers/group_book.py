"""The mixed book split over four portfolios for the scaled-out service tests.

Two ``riskstream portfolio serve --group`` instances share the four portfolios (two on
each of the 2 ``positions`` partitions); the first half of the prices flows with both
up, then one instance is killed and the second half flows while the other takes its
portfolios over. Some positions take effect after the kill (:data:`LATER`), so they
are pending at the hand-over. Used by ``tests/portfolio/test_portfolio_group_greeks.py``
and ``tests/portfolio/test_portfolio_group_option_stress.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.faults.harness import produce, wait_until
from engine.portfolio.group import partition_of
from engine.portfolio.positions import Position

from .mixed_book import create_book_topics
from .streams import price_messages, tick_stamps

LATER = "2020-11-02T00:00:00Z"  # after the kill: pending at the hand-over
#: The first half of the prices: ticks before this time flow before the kill.
HALF = "2020-10-01T00:00:00Z"
#: Every portfolio's output must have reached this time before one instance is killed.
FIRST = "2020-09-25T00:00:00Z"
HOLDINGS = [  # (slot, symbol, quantity, from)
    (0, "NVDA-C15", -30.0, ""), (0, "NVDA", 5000.0, ""),
    (1, "EURUSD-C120", 4.0, ""), (1, "EURUSD", 50_000.0, ""), (1, "NVDA-P12A", 20.0, LATER),
    (2, "NVDA-P12A", 10.0, ""), (2, "BTCUSD", 1.0, ""),
    (3, "NVDA-C15", 5.0, ""), (3, "EURUSD-C120", -2.0, LATER),
]  # fmt: skip


def epoch_ms(iso: str) -> int:
    """Epoch milliseconds (UTC) of an ISO-8601 time with its zone, e.g. ``...T00:00:00Z``."""
    return int(pd.Timestamp(iso).value // 1_000_000)


def portfolio_names() -> list[str]:
    """Four portfolio ids, two on each of the 2 ``positions`` partitions."""
    by_partition: dict[int, list[str]] = {0: [], 1: []}
    for k in range(100):
        name = f"book{k}"
        if len(by_partition[partition_of(name, 2)]) < 2:
            by_partition[partition_of(name, 2)].append(name)
    return [by_partition[0][0], by_partition[1][0], by_partition[0][1], by_partition[1][1]]


def start_group_feed(
    bootstrap: str, names: list[str], frame: pd.DataFrame, files: dict[str, Path]
) -> tuple[np.ndarray, list[tuple[bytes, bytes]], int]:
    """Write :data:`HOLDINGS` of ``names`` to ``files["pos"]``, create the topics, publish the
    instruments of ``files["instruments"]``, the positions and the ticks before :data:`HALF`.

    Returns the ticks' epoch ms, every tick as a ``prices`` message, and how many of them
    were published (the caller publishes ``ticks[half:]`` after the kill).
    """
    rows = [(names[k], s, q, t) for k, s, q, t in HOLDINGS]
    pd.DataFrame(rows, columns=["portfolio", "symbol", "quantity", "timestamp"]).to_csv(
        files["pos"], index=False
    )
    create_book_topics(bootstrap, files["instruments"])
    produce(
        bootstrap,
        "positions",
        [
            (p.encode(), Position(p, s, q, *([] if not t else [epoch_ms(t)])).to_json())
            for p, s, q, t in rows
        ],
    )
    stamps = tick_stamps(frame)
    ticks = price_messages(frame)
    half = int((stamps < epoch_ms(HALF)).sum())
    produce(bootstrap, "prices", ticks[:half])
    return stamps, ticks, half


def service_env(bootstrap: str, redis_url: str, base_currency: str) -> dict[str, str]:
    """This process's environment with the services' Kafka, Redis and base currency."""
    return {
        **os.environ,
        "RISKSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_BASE_CURRENCY": base_currency,
    }


class Instance:
    """One ``riskstream portfolio serve --group`` child process in its own session."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "portfolio", "serve", *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig: int) -> int:
        """Send ``sig`` to the instance's process group if it runs; its exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        code = self.proc.wait(60)
        self.log.close()
        return code


def kill_one_and_hand_over(
    args: list[str],
    env: dict[str, str],
    logs: Path,
    feed: tuple[str, np.ndarray, list[tuple[bytes, bytes]], int],
    reached: Callable[[], dict[str, int]],
    what: str,
    on_first_timeout: Callable[[], str] = lambda: "",
) -> None:
    """Two instances with ``args``; one killed; the survivor takes its portfolios over.

    Waits (120 s) until every portfolio's output (``reached``: portfolio -> epoch ms) is
    at :data:`FIRST`, kills the second instance with SIGKILL, publishes the rest of the
    ticks (``feed``: bootstrap, stamps, ticks, half as :func:`start_group_feed` returns
    them), waits (180 s) until every output is at the third-last tick time, and stops
    the survivor with SIGTERM, which it must exit 0 from. ``what`` names the output in
    the timeout messages; ``on_first_timeout`` adds to the first one.
    """
    bootstrap, stamps, ticks, half = feed
    a = Instance(args, env, logs / "a.log")
    b = Instance(args, env, logs / "b.log")
    try:
        first = epoch_ms(FIRST)
        try:
            wait_until(lambda: min(reached().values()) >= first, 120, f"the first {what}", 1.0)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {reached()} < {first}{on_first_timeout()}") from None
        assert b.stop(signal.SIGKILL) == -signal.SIGKILL
        produce(bootstrap, "prices", ticks[half:])
        target = int(sorted(set(stamps))[-3])
        try:
            wait_until(lambda: min(reached().values()) >= target, 180, f"the last {what}", 1.0)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {reached()} < {target}") from None
    finally:
        b.stop(signal.SIGKILL)
        assert a.stop(signal.SIGTERM) == 0, (logs / "a.log").read_text()[-3000:]
