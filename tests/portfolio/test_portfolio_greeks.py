"""Streamed Greeks equal ``riskstream options greeks`` for the same input, across a restart.

Real Kafka (prices in 2 partitions, positions in 1, a compacted instruments topic) and
real Redis. Option positions arrive on ``positions``, the options on ``instruments`` (one
bad record, dead-lettered); the service is stopped half-way and a new instance resumes
from Redis. Every Greeks snapshot the two instances computed must equal, bit for bit, the
offline table's row for the same portfolio and timestamp; the hash holds the last one and
the ``greek_limit`` alerts are those of the same monitor run offline, none twice.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
import redis

from engine.boundary.records import RawRecord
from engine.config import Settings
from engine.core.portfolio import PortfolioBook
from engine.faults.harness import produce, read_topic
from engine.options.greeks import GREEK_NAMES, GreeksSnapshot, UnderlyingMarket
from engine.options.greeks_table import TOTAL, greeks_table
from engine.options.live import GreeksMonitor, greeks_fields
from engine.options.reference import decode_instruments
from engine.portfolio.positions import Position
from engine.portfolio.service import ALERTS_STREAM, GREEKS_PREFIX, PortfolioService
from engine.services.kafka_admin import create_topic
from producers.sources import bundled_prices

from ..helpers.streams import price_messages, run_service_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = 86_400_000
MARKETS = {
    "SPX": UnderlyingMarket(0.05, 0.012, 0.22),
    "NASDAQ": UnderlyingMarket(0.05, 0.0, 0.35),
}
INSTRUMENTS = [
    {"instrument": "SPX-C1250", "kind": "option", "underlying": "SPX", "multiplier": 100,
     "strike": 1250, "expiry": "1999-12-17", "right": "call", "style": "european"},
    {"instrument": "SPX-P1150A", "kind": "option", "underlying": "SPX", "multiplier": 100,
     "strike": 1150, "expiry": "1999-09-17", "right": "put", "style": "american", "vol": 0.3},
    {"instrument": "NDX-C2500", "kind": "option", "underlying": "NASDAQ", "multiplier": 10,
     "strike": 2500, "expiry": "1999-03-19", "right": "call", "style": "european"},
    {"instrument": "SPX", "kind": "index", "currency": "USD"},
]  # fmt: skip
BAD = (b"SWAP-1", orjson.dumps({"instrument": "SWAP-1", "kind": "swap"}))


class Recording(GreeksMonitor):
    """A monitor that keeps every snapshot it computed (the test's window on the stream)."""

    seen: list[GreeksSnapshot]

    def evaluate(self, spots, ts_ms, **market):  # type: ignore[no-untyped-def]
        snapshots, alerts = super().evaluate(spots, ts_ms, **market)
        self.seen.extend(snapshots)
        return snapshots, alerts


def test_streamed_greeks_equal_the_offline_command(fresh_kafka, redis_url) -> None:
    frame = bundled_prices()
    frame = frame[frame["timestamp"] < pd.Timestamp("1999-07-01", tz="UTC")].reset_index(drop=True)
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    start = int(ms[0])
    positions = [
        Position("opt", "SPX-C1250", 10.0, start),
        Position("opt", "SPX", -400.0, start),
        Position("opt", "NDX-C2500", 3.0, start),
        Position("opt", "SPX-P1150A", -8.0, start + 30 * DAY),
        Position("lin", "SPX", 1.0, start),
        Position("lin", "NASDAQ", 1.0, start),
    ]
    broker = fresh_kafka()
    create_topic(broker.bootstrap, "prices", partitions=2)
    create_topic(broker.bootstrap, "positions", partitions=1)
    create_topic(broker.bootstrap, "instruments", config={"cleanup.policy": "compact"})
    raw = [(d["instrument"].encode(), orjson.dumps(d)) for d in INSTRUMENTS]
    produce(broker.bootstrap, "instruments", [*raw, BAD])
    produce(broker.bootstrap, "positions", [(p.portfolio.encode(), p.to_json()) for p in positions])
    produce(broker.bootstrap, "prices", price_messages(frame))
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    client = redis.Redis.from_url(redis_url)
    seen: list[GreeksSnapshot] = []
    last_day = int(np.unique(ms)[-3])  # the stream stops two closes before the file's end

    def service() -> PortfolioService:
        monitor = Recording(
            MARKETS, every_ms=0, delta_limit=60_000.0, vega_limit=1e12, var_scenarios=500
        )
        monitor.seen = seen
        return PortfolioService(
            settings,
            redis=client,
            book_factory=lambda: PortfolioBook(interval_ms=DAY, levels=(0.99,), min_obs=20),
            max_records=6,  # many small polls: many recomputations
            poll_ms=100,
            stress=None,
            greeks=monitor,
        )

    def run(svc: PortfolioService, until) -> None:  # type: ignore[no-untyped-def]
        run_service_until(svc, until, seconds=90, join_seconds=120)
        assert until(), f"the service stopped at {len(seen)} snapshots"

    run(service(), lambda: len(seen) >= 10)
    run(service(), lambda: bool(seen) and seen[-1].ts_ms >= last_day)

    # offline: the same positions, the same instruments, a market row per tick
    market = pd.DataFrame(
        {
            "timestamp": frame["timestamp"],
            "underlying": frame["symbol"].astype(str),
            "spot": frame["price"].astype(float),
            "rate": [MARKETS[s].rate for s in frame["symbol"]],
            "dividend_yield": [MARKETS[s].dividend_yield for s in frame["symbol"]],
            "vol": [MARKETS[s].vol for s in frame["symbol"]],
        }
    )
    listings, dead = decode_instruments(RawRecord(k, v) for k, v in raw)
    assert dead == []
    table = greeks_table(positions, listings, market)
    stamps = pd.to_datetime(table["timestamp"], utc=True).dt.as_unit("ms").astype("int64")
    offline = {(int(t), p, u): row for t, p, u, row in zip(
        stamps, table["portfolio"], table["underlying"], table.itertuples(index=False), strict=True
    )}  # fmt: skip

    keys = [(s.ts_ms, s.portfolio) for s in seen]
    assert len(keys) == len(set(keys)) > 15, "a snapshot was computed twice"
    assert {s.portfolio for s in seen} == {"opt"}
    for snap in seen:
        total = offline[(snap.ts_ms, snap.portfolio, TOTAL)]
        for name in GREEK_NAMES:
            if name != "delta_units":
                assert snap.total(name) == getattr(total, name), (snap.ts_ms, name)
        assert (snap.options, snap.expired, snap.unpriced) == (
            total.options, total.expired, total.unpriced
        )  # fmt: skip
        for k, u in enumerate(snap.underlyings):
            row = offline[(snap.ts_ms, snap.portfolio, u)]
            for name in GREEK_NAMES:
                assert float(snap.by_underlying[name][k]) == getattr(row, name), (u, name)
    assert any(s.expired == 1 for s in seen) and any(s.options == 3 for s in seen)

    stored = {k.decode(): v.decode() for k, v in client.hgetall(GREEKS_PREFIX + "opt").items()}
    assert stored == greeks_fields(seen[-1])
    assert not client.exists(GREEKS_PREFIX + "lin")
    # the options VaR once the covariance has 20 daily returns: American put left out
    assert stored["var_method"] == "delta-gamma-mc" and stored["var_excluded"] == "1"
    assert float(stored["var_gap"]) == float(stored["var"]) - float(stored["var_full"])

    # the alerts: those of one monitor evaluated at the same times, each written once
    replay = GreeksMonitor(MARKETS, delta_limit=60_000.0, vega_limit=1e12)
    replay.apply(listings)
    for p in positions:
        replay.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    spots: dict[str, float] = {}
    expected = []
    for snap in seen:
        upto = frame[ms <= snap.ts_ms]
        spots = upto.groupby("symbol")["price"].last().astype(float).to_dict()
        expected += [a.alert_id for a in replay.evaluate(spots, snap.ts_ms)[1]]
    written = [
        f[b"alert_id"].decode()
        for _, f in client.xrange(ALERTS_STREAM)
        if f[b"kind"] == b"greek_limit"
    ]
    assert expected and written == expected

    letters = read_topic(broker.bootstrap, "instruments.dlq")
    assert letters and {d.headers["riskstream.reason"] for d in letters} == {b"wrong_type"}
