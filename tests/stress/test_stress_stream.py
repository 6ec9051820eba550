"""Stress in the stream: the portfolio service's scenario P&L equals ``riskstream stress run``.

The service's own ``step`` is driven with the records a Kafka poll would return and an
in-memory stand-in for Redis (no broker, no server): what it writes to
``riskstream:stress:<portfolio>`` must equal the offline command's ``portfolio,scenario,pnl``
on the prices up to the service's latest close, and a ``stress_limit`` alert must be
written once per breach, across a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from engine.cli import app
from engine.config import Settings
from engine.core.portfolio import PortfolioBook
from engine.portfolio.positions import Position
from engine.portfolio.service import (
    ALERTS_STREAM,
    STATE_KEY,
    STRESS_PREFIX,
    PortfolioService,
    StressMetrics,
)
from engine.stress.library import load_library
from engine.stress.live import StressMonitor

from ..helpers.prices import bundled_with_walks

DAY = 86_400_000


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    partition: int
    offset: int


class FakeRedis:
    """The few Redis commands the service uses, applied at ``execute`` like MULTI/EXEC."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.streams: dict[str, list[dict[str, str]]] = {}
        self.published: list[tuple[str, bytes]] = []

    def get(self, key: str) -> bytes | None:
        return self.strings.get(key)

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis, self.ops = redis, []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.ops.append((name, args, kwargs))

    def execute(self) -> None:
        r = self.redis
        for name, args, kwargs in self.ops:
            if name == "set":
                r.strings[args[0]] = args[1]
            elif name == "delete":
                r.hashes.pop(args[0], None)
            elif name == "hset":
                r.hashes.setdefault(args[0], {}).update(kwargs["mapping"])
            elif name == "xadd":
                r.streams.setdefault(args[0], []).append(dict(args[1]))
            elif name == "publish":
                r.published.append(args)


class FakeProducer:
    def send(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("no dead letters expected")

    def flush(self, timeout: float) -> None:
        pass


def prices() -> pd.DataFrame:
    """400 days of real S&P 500 and NASDAQ closes (arch.data) and a synthetic stock."""
    return bundled_with_walks(580, 2, (("AAA", 40.0, 0.02),))


POSITIONS = [
    Position("index", "SPX", 100.0),
    Position("mixed", "NASDAQ", 50.0),
    Position("mixed", "AAA", -2000.0),
    Position("mixed", "SPX", 20.0),
]


def polls(frame: pd.DataFrame, size: int) -> list[dict[TP, list[Message]]]:
    """The frame as polls of ``size`` records from two price partitions (by symbol)."""
    offsets = {0: 0, 1: 0}
    out: list[dict[TP, list[Message]]] = []
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    for start in range(0, len(frame), size):
        batch: dict[TP, list[Message]] = {}
        for k in range(start, min(start + size, len(frame))):
            symbol = frame["symbol"].iloc[k]
            part = 0 if symbol == "SPX" else 1
            value = orjson.dumps(
                {"symbol": symbol, "ts": int(ms[k]), "price": float(frame["price"].iloc[k])}
            )
            batch.setdefault(TP("prices", part), []).append(
                Message(symbol.encode(), value, part, offsets[part])
            )
            offsets[part] += 1
        out.append(batch)
    return out


def service(
    redis: FakeRedis, limit: float, registry: CollectorRegistry | None = None
) -> PortfolioService:
    return PortfolioService(
        Settings(),
        redis=redis,
        book_factory=lambda: PortfolioBook(interval_ms=DAY),
        positions=POSITIONS,
        stress=StressMonitor(load_library().runnable(), every_ms=0, limit=limit),
        stress_metrics=StressMetrics(registry) if registry is not None else None,
    )


def offline_inputs(
    frame: pd.DataFrame, book: PortfolioBook, positions: list[Position], tmp_path: Path
) -> tuple[Path, Path]:
    """The offline command's price and position files for what the service has closed.

    Prices: the ticks of ``frame`` before the book's open bucket (its latest close and
    earlier), written to ``p.csv``; positions: ``positions`` as ``pos.csv``.
    """
    closed = frame[
        frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64) // DAY < book.bucket
    ]
    price_file, positions_file = tmp_path / "p.csv", tmp_path / "pos.csv"
    closed.assign(timestamp=closed["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        price_file, index=False
    )
    positions_file.write_text(
        "portfolio,symbol,quantity\n"
        + "".join(f"{p.portfolio},{p.symbol},{p.quantity}\n" for p in positions)
    )
    return price_file, positions_file


def assert_streamed_pnl_equals(redis: FakeRedis, offline: pd.DataFrame) -> None:
    """Each portfolio's ``pnl:<scenario>`` fields in Redis equal the offline ``stress run``
    rows: the same scenarios, each P&L to 1e-12 relative (1e-9 absolute)."""
    for name, rows in offline.groupby("portfolio"):
        fields = redis.hashes[STRESS_PREFIX + name]
        streamed = {
            k.removeprefix("pnl:"): float(v) for k, v in fields.items() if k.startswith("pnl:")
        }
        assert set(streamed) == set(rows["scenario"])
        for scenario, pnl in zip(rows["scenario"], rows["pnl"], strict=True):
            assert streamed[scenario] == pytest.approx(pnl, rel=1e-12, abs=1e-9), (name, scenario)


def test_streamed_stress_equals_the_offline_command_and_alerts_once_across_a_restart(
    tmp_path: Path,
):
    frame = prices()
    batches = polls(frame, 37)
    redis, registry = FakeRedis(), CollectorRegistry()
    first = service(redis, limit=20_000.0, registry=registry)
    for batch in batches[: len(batches) // 2]:
        first.step(batch, FakeProducer())
    second = service(redis, limit=20_000.0)  # a restart: resumes from the state in Redis
    assert second.stress is not None and second.stress.last_ms is not None
    for batch in batches[len(batches) // 2 :]:
        second.step(batch, FakeProducer())

    # offline: the same prices up to the service's latest close, the same positions
    price_file, positions_file = offline_inputs(frame, second.state.book, POSITIONS, tmp_path)
    out = tmp_path / "run.csv"
    result = CliRunner().invoke(
        app,
        [
            "stress",
            "run",
            "--prices",
            str(price_file),
            "--positions",
            str(positions_file),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    offline = pd.read_csv(out)
    assert_streamed_pnl_equals(redis, offline)

    # 'index' (100 x SPX ~ 130k) breaches a 20k limit in its worst scenario, once
    alerts = redis.streams[ALERTS_STREAM]
    assert sorted(a["subject"] for a in alerts) == sorted(
        n for n, rows in offline.groupby("portfolio") if -rows["pnl"].min() > 20_000.0
    )
    assert all(
        a["kind"] == "stress_limit" and float(a["value"]) > float(a["threshold"]) for a in alerts
    )
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    assert len(redis.published) == len(alerts)
    assert STATE_KEY in redis.strings


def test_prometheus_gauges_follow_the_worst_scenario():
    frame = prices().iloc[:900]
    redis, registry = FakeRedis(), CollectorRegistry()
    svc = service(redis, limit=1e12, registry=registry)
    for batch in polls(frame, 100):
        svc.step(batch, FakeProducer())
    worst = float(redis.hashes[STRESS_PREFIX + "index"]["worst_pnl"])
    gauge = registry.get_sample_value("riskstream_stress_worst_pnl", {"portfolio": "index"})
    assert gauge == worst < 0.0
    assert registry.get_sample_value("riskstream_stress_limit_alerts_total") == 0.0


def test_recomputation_is_throttled_in_event_time():
    monitor = StressMonitor(load_library().runnable(), every_ms=10 * DAY)
    assert monitor.due(0)
    monitor.last_ms = 0
    assert not monitor.due(9 * DAY) and monitor.due(10 * DAY)
    with pytest.raises(ValueError, match="limit must be a positive amount"):
        StressMonitor((), limit=-1.0)


def test_streamed_stress_of_an_option_book_equals_the_offline_command(tmp_path: Path):
    """Long SPX puts (European and American), a short call and a spot hedge: the service
    (with reference data, through its Greeks monitor) and ``stress run --instruments`` both
    reprice every option in every cell, on the same prices and at the same valuation time."""
    from engine.options.greeks import UnderlyingMarket
    from engine.options.live import GreeksMonitor
    from engine.options.reference import read_instrument_file

    frame = prices()
    last_day = frame["timestamp"].iloc[-1].date()
    expiry = (last_day + pd.Timedelta(days=120)).isoformat()
    spx = float(frame.loc[frame["symbol"] == "SPX", "price"].iloc[-1])
    instruments_file, market_file = tmp_path / "instruments.csv", tmp_path / "greeks_market.csv"
    instruments_file.write_text(
        "instrument,underlying,strike,expiry,right,style,multiplier,vol\n"
        f"P90,SPX,{0.9 * spx:.2f},{expiry},put,european,100,0.24\n"
        f"P100A,SPX,{spx:.2f},{expiry},put,american,100,\n"
        f"C110,SPX,{1.1 * spx:.2f},{expiry},call,european,100,0.16\n"
        f"NQP95,NASDAQ,1000,{expiry},put,european,100,\n"
    )
    market_file.write_text(
        "underlying,rate,dividend_yield,vol\nSPX,0.03,0.015,0.2\nNASDAQ,0.03,0.0,0.3\n"
    )
    option_positions = [
        Position("puts", "P90", 10.0),
        Position("puts", "P100A", 4.0),
        Position("puts", "C110", -3.0),
        Position("puts", "SPX", -50.0),
        Position("nasdaq", "NQP95", 2.0),
    ]
    greeks = GreeksMonitor({"SPX": UnderlyingMarket(0.03, 0.015, 0.2),
                            "NASDAQ": UnderlyingMarket(0.03, 0.0, 0.3)})  # fmt: skip
    greeks.apply(read_instrument_file(instruments_file))
    redis = FakeRedis()
    svc = PortfolioService(
        Settings(),
        redis=redis,
        book_factory=lambda: PortfolioBook(interval_ms=DAY),
        positions=[*POSITIONS, *option_positions],
        stress=StressMonitor(load_library().runnable(), every_ms=0),
        greeks=greeks,
    )
    for batch in polls(frame, 53):
        svc.step(batch, FakeProducer())

    holdings = [*POSITIONS, *option_positions]
    price_file, positions_file = offline_inputs(frame, svc.state.book, holdings, tmp_path)
    out = tmp_path / "run.csv"
    args = ["stress", "run", "--prices", str(price_file), "--positions", str(positions_file),
            "--out", str(out), "--instruments", str(instruments_file),
            "--greeks-market", str(market_file), "--detail", str(tmp_path / "detail.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    offline = pd.read_csv(out)
    # the detail's rows, options included (quantity x price per contract x move), add up
    detail = pd.read_csv(tmp_path / "detail.csv")
    assert {"P90", "P100A", "C110", "NQP95"} <= set(detail["symbol"])
    np.testing.assert_allclose(
        (detail["quantity"] * detail["price"] * detail["move"]).to_numpy(), detail["pnl"], rtol=1e-9
    )
    summed = detail.groupby(["portfolio", "scenario"])["pnl"].sum()
    indexed = offline.set_index(["portfolio", "scenario"])["pnl"]
    np.testing.assert_allclose(
        summed.loc[indexed.index].to_numpy(), indexed.to_numpy(), rtol=1e-9, atol=1e-6
    )
    assert set(offline["portfolio"]) == {"index", "mixed", "puts", "nasdaq"}
    assert_streamed_pnl_equals(redis, offline)
    assert redis.hashes[STRESS_PREFIX + "puts"]["options"] == "3"
    assert redis.hashes[STRESS_PREFIX + "nasdaq"]["options"] == "1"
    assert "options" not in redis.hashes[STRESS_PREFIX + "index"]
