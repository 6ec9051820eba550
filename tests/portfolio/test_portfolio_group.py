"""Two ``riskstream portfolio serve --group`` processes share the portfolios, across a kill -9.

Real Kafka (prices in 3 partitions, positions in 4) and real Redis; the services are
child processes of the CLI. Prices arrive in three phases: the first with both instances
up, the second while one is killed with SIGKILL (the other takes its partitions over),
the third after it is restarted (the partitions are shared again). At the end every
portfolio's Redis hashes must equal the offline commands on the same input
(``riskstream portfolio var`` and ``riskstream stress run``), and the ``stress_limit``
alerts must be those of one process replaying the input, each exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from engine.boundary.schemas import PriceTick
from engine.boundary.timeutil import format_ts
from engine.cli import app
from engine.core.portfolio import PortfolioBook
from engine.faults.harness import produce
from engine.portfolio.group import PREFIX
from engine.portfolio.positions import Position
from engine.portfolio.service import ALERTS_STREAM, HASH_PREFIX, STRESS_PREFIX
from engine.services.kafka_admin import create_topic
from engine.stress.library import load_library
from engine.stress.live import StressMonitor

from ..helpers.prices import bundled_with_walks

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DAY = 86_400_000
LEVELS = "0.95,0.99"
GROUP = "pg-test"
PORTFOLIOS = 24
SYMBOLS = ("SPX", "NASDAQ", "GOLD", "OIL")


def _prices() -> pd.DataFrame:
    """About 450 trading days of S&P 500 and NASDAQ closes and two synthetic symbols."""
    frame = bundled_with_walks(650, 25, (("GOLD", 300.0, 0.01), ("OIL", 60.0, 0.025)))
    # only days on which every symbol trades: every price partition moves every day
    wide = frame.pivot_table(index="timestamp", columns="symbol", values="price").dropna()
    frame = wide.reset_index().melt(id_vars="timestamp", var_name="symbol", value_name="price")
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def _positions(start: int, span: int) -> list[Position]:
    """24 portfolios of 2-4 symbols; some change or close a holding later on."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(PORTFOLIOS):
        name = f"pf{k:02d}"
        held = rng.choice(SYMBOLS, size=int(rng.integers(2, 5)), replace=False)
        scale = float(rng.choice([0.2, 1.0, 5.0]))
        for symbol in held:
            qty = round(float(rng.normal(0, 40)) * scale * 100 / (3000 if symbol != "OIL" else 60))
            out.append(Position(name, str(symbol), float(qty or 1)))
        if k % 3 == 0:  # a later change of the first holding
            ts = start + int(rng.integers(span // 5, 4 * span // 5)) // DAY * DAY
            out.append(Position(name, str(held[0]), float(rng.integers(-20, 20) or 3), ts))
        if k % 5 == 1:  # a holding closed later on
            ts = start + int(rng.integers(span // 5, 4 * span // 5)) // DAY * DAY
            out.append(Position(name, str(held[-1]), 0.0, ts))
    return out


def _held_at(positions: list[Position], close: int) -> dict[str, dict[str, float]]:
    """Each portfolio's holdings after the positions effective at or before ``close``."""
    held: dict[str, dict[str, float]] = {}
    for p in sorted(positions, key=lambda p: p.ts):
        if p.ts <= close:
            book = held.setdefault(p.portfolio, {})
            if p.quantity == 0.0:
                book.pop(p.symbol, None)
            else:
                book[p.symbol] = p.quantity
    return held


def _replay(frame: pd.DataFrame, positions: list[Position], limit: float | None) -> tuple:
    """One process over the whole input: the closes and the stress_limit alerts it raises."""
    book = PortfolioBook(interval_ms=DAY, levels=(0.95, 0.99), min_obs=20)
    for p in positions:
        book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    monitor = StressMonitor(load_library().runnable(), every_ms=60_000, limit=limit)
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    closes, alerts, worst = [], [], {}
    for day in np.unique(ms // DAY):
        rows = np.flatnonzero(ms // DAY == day)
        before = book.last_close_ms
        book.on_ticks(
            frame["symbol"].iloc[rows].astype(str), ms[rows], frame["price"].to_numpy()[rows]
        )
        close = book.last_close_ms
        if close is not None and close != before:
            closes.append(close)
            if monitor.due(close):
                snaps, fired = monitor.evaluate(book, close)
                alerts += fired
                worst.update((s.portfolio, s.worst[1]) for s in snaps)
    return closes, alerts, worst


class Instance:
    """One ``riskstream portfolio serve --group`` child process in its own session."""

    def __init__(self, name: str, env: dict[str, str], args: list[str], log: Path) -> None:
        self.name, self.env, self.args, self.log = name, env, args, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", "portfolio", "serve", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(60)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for instance in started:  # no orphans, whatever happened
        instance.kill()


def owned(instance: Instance) -> list[int]:
    """The positions partitions an instance said it owns after its latest rebalance."""
    marker = "own positions partitions "
    lines = [line for line in instance.log.read_text().splitlines() if marker in line]
    if not lines:
        return []
    text = lines[-1].split(marker, 1)[1].split("]", 1)[0].strip("[")
    return [int(x) for x in text.split(",") if x.strip()]


def shared(a: Instance, b: Instance) -> bool:
    """Whether each instance owns some partitions and together all four, once each."""
    return bool(owned(a)) and bool(owned(b)) and sorted(owned(a) + owned(b)) == [0, 1, 2, 3]


def _wait(condition: Callable[[], bool], timeout: float, what: str, group: list[Instance]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [
            i.name
            for i in group
            if not i.running and i.proc is not None and i.proc.returncode not in (None, -9)
        ]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {i.name}\n{i.tail()}" for i in group)
            raise AssertionError(
                f"waiting for {what}: {'exited ' + str(dead) if dead else 'timed out'}\n{logs}"
            )
        time.sleep(0.2)


def test_two_instances_share_the_portfolios_across_a_kill_and_equal_the_offline_commands(
    fresh_kafka, redis_url, tmp_path: Path, instances: list[Instance]
):
    frame = _prices()
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    start, span = int(ms[0]), int(ms[-1] - ms[0])
    positions = _positions(start, span)
    days = np.unique(ms // DAY)
    # the limit: between the smallest and largest worst loss, so some portfolios cross it
    _, _, worst = _replay(frame, positions, None)
    limit = float(np.quantile([-w for w in worst.values()], 0.5))
    closes, alerts, _ = _replay(frame, positions, limit)
    assert len(alerts) >= 3 and len(closes) > 400

    broker = fresh_kafka()
    create_topic(broker.bootstrap, "prices", partitions=3)
    create_topic(broker.bootstrap, "positions", partitions=4)
    produce(broker.bootstrap, "positions", [(p.portfolio.encode(), p.to_json()) for p in positions])
    ticks = [
        (s.encode(), PriceTick(s, int(t), float(p)).to_json())
        for t, s, p in zip(ms, frame["symbol"], frame["price"], strict=True)
    ]
    phase_ends = [days[len(days) * 2 // 5], days[len(days) * 7 // 10], days[-1] + 1]
    cuts = [int(np.searchsorted(ms // DAY, d)) for d in phase_ends]

    def close_of(phase: int) -> int:
        """The stream's last close after a phase: the watermark holds the last day back,
        and the day before it stays open (no later tick), so the third-last day's close."""
        third_last = days[days < phase_ends[phase]][-3]
        return next(c for c in closes if c // DAY == third_last)

    client = redis.Redis.from_url(redis_url)

    def stamps() -> list[int | None]:
        docs = [client.get(f"{PREFIX}{GROUP}:positions:{p}") for p in range(4)]
        return [None if d is None else orjson.loads(d)["stamp"] for d in docs]

    env = {
        **os.environ,
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
    }
    args = [
        "--group", GROUP, "--interval", "1d", "--levels", LEVELS, "--stress-every", "1m",
        "--stress-limit", repr(limit), "--session-timeout", "6", "--snapshot-every", "5",
        "--idle", "600", "--max-records", "150",
    ]  # fmt: skip
    a = Instance("a", env, args, tmp_path / "a.log")
    b = Instance("b", env, args, tmp_path / "b.log")
    instances += [a, b]

    produce(broker.bootstrap, "prices", ticks[: cuts[0]])
    a.start()
    b.start()
    _wait(lambda: stamps() == [close_of(0)] * 4, 180, "phase 1 on both instances", instances)
    _wait(lambda: shared(a, b), 60, "the partitions shared by both", instances)

    produce(broker.bootstrap, "prices", ticks[cuts[0] : cuts[1]])
    time.sleep(0.3)  # a is most likely in the middle of the phase
    a.kill()
    _wait(lambda: owned(b) == [0, 1, 2, 3], 60, "b to take a's partitions over", instances)
    _wait(lambda: stamps() == [close_of(1)] * 4, 180, "phase 2 after a's kill -9", instances)

    a.start()
    _wait(lambda: shared(a, b), 60, "the restarted a to get partitions back", instances)
    produce(broker.bootstrap, "prices", ticks[cuts[1] :])
    _wait(lambda: stamps() == [close_of(2)] * 4, 180, "phase 3 on both instances", instances)
    assert shared(a, b)
    assert b.stop() == 0 and a.stop() == 0

    # offline, on the same input up to the stream's last close
    final = close_of(2)
    cut = frame[ms // DAY <= final // DAY]
    price_file = tmp_path / "prices.csv"
    cut.assign(timestamp=cut["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        price_file, index=False
    )
    held = _held_at(positions, final)
    timed, now_held = tmp_path / "positions.csv", tmp_path / "held.csv"
    timed.write_text(
        "portfolio,symbol,quantity,timestamp\n"
        + "".join(
            f"{p.portfolio},{p.symbol},{p.quantity},{format_ts(max(p.ts, 0))}\n" for p in positions
        )
    )
    now_held.write_text(
        "portfolio,symbol,quantity\n"
        + "".join(f"{n},{s},{q}\n" for n, h in held.items() for s, q in h.items())
    )
    runner = CliRunner()
    var_out, stress_out = tmp_path / "var.csv", tmp_path / "stress.csv"
    result = runner.invoke(app, ["portfolio", "var", "--prices", str(price_file), "--positions", str(timed),
                                 "--out", str(var_out), "--levels", LEVELS])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["stress", "run", "--prices", str(price_file), "--positions", str(now_held),
                                 "--out", str(stress_out)])  # fmt: skip
    assert result.exit_code == 0, result.output

    offline = pd.read_csv(var_out)
    offline = offline[
        pd.to_datetime(offline["timestamp"]) == pd.Timestamp(final, unit="ms", tz="UTC")
    ]
    assert set(offline["portfolio"]) == {n for n, h in held.items() if h}
    for name, rows in offline.groupby("portfolio"):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(HASH_PREFIX + name).items()}
        assert fields["ts"] == format_ts(final), name
        for level, var, es in zip(rows["level"], rows["var"], rows["es"], strict=True):
            label = {0.95: "95", 0.99: "99"}[level]
            assert float(fields[f"var_{label}"]) == pytest.approx(var, rel=1e-12), (name, level)
            assert float(fields[f"es_{label}"]) == pytest.approx(es, rel=1e-12), (name, level)

    scenarios = pd.read_csv(stress_out)
    for name, rows in scenarios.groupby("portfolio"):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(STRESS_PREFIX + name).items()}
        assert fields["ts"] == format_ts(final), name
        streamed = {
            k.removeprefix("pnl:"): float(v) for k, v in fields.items() if k.startswith("pnl:")
        }
        assert set(streamed) == set(rows["scenario"]), name
        for scenario, pnl in zip(rows["scenario"], rows["pnl"], strict=True):
            assert streamed[scenario] == pytest.approx(pnl, rel=1e-9, abs=1e-6), (name, scenario)

    written = [
        {k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(ALERTS_STREAM)
    ]
    ids = [w["alert_id"] for w in written]
    assert len(ids) == len(set(ids)), "an alert was written twice"
    assert sorted(ids) == sorted(x.alert_id for x in alerts)
    assert {w["subject"] for w in written} == {x.subject for x in alerts}
