"""The streaming portfolio service equals ``riskstream portfolio var``, across a restart.

Real Kafka (prices in 3 partitions, positions in 2) and real Redis. The service reads in
small polls, is stopped half-way and a new instance resumes from the state it saved in
Redis. Every allocation the two instances produced must equal the offline command's row
for the same close, bit for bit, none twice; refused positions go to ``positions.dlq``.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
import redis

from engine.boundary.timeutil import format_ts
from engine.config import Settings
from engine.core.portfolio import Allocation, PortfolioBook
from engine.faults.harness import produce, read_topic
from engine.portfolio.positions import Position, run_portfolio
from engine.portfolio.service import HASH_PREFIX, PortfolioService
from engine.services.kafka_admin import create_topic

from ..helpers.prices import bundled_with_walks
from ..helpers.streams import price_messages, run_service_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAY = 86_400_000
LEVELS = (0.95, 0.99)


def _prices() -> pd.DataFrame:
    """600 days of S&P 500 and NASDAQ closes plus a synthetic third symbol on the same days."""
    return bundled_with_walks(870, 9, (("GOLD", 300.0, 0.008),))


def _key(a: Allocation) -> tuple:
    return (a.ts_ms, a.portfolio, a.level)


def _numbers(a: Allocation) -> str:
    return repr((a.value, a.var, a.es, a.symbols, a.component.tolist(), a.marginal.tolist()))


def test_stream_equals_offline_and_a_restart_loses_and_repeats_nothing(fresh_kafka, redis_url):
    frame = _prices()
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    start = int(ms[0])
    initial = [Position("book", "SPX", 2.0), Position("book", "NASDAQ", -1.0)]
    streamed = [
        Position("book", "GOLD", 5.0, start + 300 * DAY),
        Position("hedge", "NASDAQ", 1.0, start),
        Position("hedge", "SPX", -1.5, start + 100 * DAY),
        Position("book", "NASDAQ", 0.0, start + 500 * DAY),  # closed later on
    ]
    bad = [
        (b"book", b'{"portfolio": "book", "symbol": "SPX", "quantity": "many", "ts": 1}'),
        (b"other", orjson.dumps({"portfolio": "book", "symbol": "SPX", "quantity": 1, "ts": 1})),
    ]

    broker = fresh_kafka()
    create_topic(broker.bootstrap, "prices", partitions=3)
    create_topic(broker.bootstrap, "positions", partitions=2)
    produce(
        broker.bootstrap,
        "positions",
        [(p.portfolio.encode(), p.to_json()) for p in streamed] + bad,
    )
    produce(broker.bootstrap, "prices", price_messages(frame))

    # offline: the same ticks and positions, end of file flushed
    totals, _ = run_portfolio(frame, initial + streamed, interval_ms=DAY, levels=LEVELS, min_obs=20)
    book = PortfolioBook(interval_ms=DAY, levels=LEVELS, min_obs=20)
    for p in initial + streamed:
        book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    expected = book.on_ticks(frame["symbol"].astype(str), ms, frame["price"].to_numpy(float))
    # the stream cannot close the last day's bucket (no later tick) nor the one before it
    # (the watermark holds back the last day): it ends two closes earlier than the file
    last_closes = sorted({a.ts_ms for a in expected})
    expected = [a for a in expected if a.ts_ms <= last_closes[-2]]
    assert len(expected) > 1000

    settings = Settings(kafka_bootstrap=broker.bootstrap)
    client = redis.Redis.from_url(redis_url)
    got: list[Allocation] = []

    def service() -> PortfolioService:
        return PortfolioService(
            settings,
            redis=client,
            book_factory=lambda: PortfolioBook(interval_ms=DAY, levels=LEVELS, min_obs=20),
            positions=initial,
            max_records=300,
            poll_ms=100,
        )

    def run(svc: PortfolioService, until) -> None:  # type: ignore[no-untyped-def]
        run_service_until(svc, until, seconds=120, join_seconds=150, on_output=got.extend)
        assert until(), (
            f"the service stopped at {len(got)} of {len(expected)} allocations; "
            f"offsets {svc.state.offsets}, buffered {len(svc.state.buffer)}, "
            f"watermark {svc.watermark.latest}"
        )

    first = service()
    run(first, lambda: len(got) >= len(expected) // 3)
    assert 0 < len(got) < len(expected)
    second = service()  # resumes from Redis: the initial positions are not applied again
    assert second.state.closes == first.state.closes
    run(second, lambda: bool(got) and got[-1].ts_ms >= last_closes[-2])

    assert len(got) == len({_key(a) for a in got}), "an allocation was produced twice"
    assert [_key(a) for a in got] == [_key(a) for a in expected]
    assert [_numbers(a) for a in got] == [_numbers(a) for a in expected]

    latest = {k.decode(): v.decode() for k, v in client.hgetall(HASH_PREFIX + "book").items()}
    last_book = [a for a in expected if a.portfolio == "book"][-2:]
    assert latest["ts"] == format_ts(last_book[-1].ts_ms)
    assert float(latest["var_99"]) == last_book[-1].var
    assert [c["symbol"] for c in orjson.loads(latest["components"])] != []

    dead = read_topic(broker.bootstrap, "positions.dlq")
    assert sorted(d.headers["riskstream.reason"] for d in dead) == [b"key_mismatch", b"wrong_type"]
    # and the offline command's table is that same book's output
    offline = totals.iloc[: len(expected)]
    assert offline["var"].tolist() == [a.var for a in expected]
    assert offline["portfolio"].tolist() == [a.portfolio for a in expected]
