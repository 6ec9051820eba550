"""The Redis sink against a real Redis: alerts exactly once, latest state never goes back."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis

from engine.alerts import Alert, alert_id
from engine.config import Settings
from engine.errors import ConfigError
from engine.metrics import Metrics
from engine.sinks.redis import ALERTS_CHANNEL, ALERTS_STREAM, RedisSink
from engine.snapshots import RiskSnapshot

pytestmark = pytest.mark.integration


def an_alert(n: int) -> Alert:
    return Alert(
        alert_id("var_breach", "SPX", "ewma_normal@0.99", str(n)),
        "var_breach",
        "SPX",
        1_600_000_000_000 + n,
        "warning",
        0.05,
        0.03,
        "ewma_normal",
        "v1",
        {"level": 0.99},
    )


def a_snapshot(n_ticks: int, price: float) -> RiskSnapshot:
    return RiskSnapshot(
        "SPX",
        1_600_000_000_000 + n_ticks,
        price,
        0.01,
        {0.95: 0.016, 0.99: 0.023},
        0.975,
        0.024,
        n_ticks,
        "ewma_normal",
        "v1",
        {0.99: (n_ticks, 0)},
    )


def test_alerts_are_appended_and_published_exactly_once(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(ALERTS_CHANNEL)
    metrics = Metrics()

    async def scenario() -> list[int]:
        sink = RedisSink.from_settings(Settings(redis_url=redis_url), metrics)
        first = await sink.write(alerts=[an_alert(1), an_alert(2)])
        replay = await sink.write(alerts=[an_alert(2), an_alert(3), an_alert(1)])
        await sink.close()
        return [first.alerts_written, replay.alerts_written, replay.alerts_duplicate]

    assert asyncio.run(scenario()) == [2, 1, 2]
    entries = client.xrange(ALERTS_STREAM)
    assert [e[1][b"alert_id"].decode() for e in entries] == [
        an_alert(i).alert_id for i in (1, 2, 3)
    ]
    assert Alert.from_fields(entries[0][1]) == an_alert(1)
    published = []
    deadline = time.monotonic() + 5
    while len(published) < 3 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message:
            published.append(orjson.loads(message["data"])["alert_id"])
    time.sleep(0.3)
    assert pubsub.get_message(timeout=0.2) is None  # nothing published for the replays
    assert published == [an_alert(i).alert_id for i in (1, 2, 3)]
    assert metrics.alerts_deduplicated._value.get() == 2
    client.close()


def test_latest_risk_never_goes_back_to_an_older_state(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    async def scenario() -> None:
        sink = RedisSink.from_settings(Settings(redis_url=redis_url))
        await sink.write(latest=[a_snapshot(10, 101.0).latest()])
        await sink.write(latest=[a_snapshot(7, 99.0).latest()])  # a replay after a rebalance
        await sink.write(latest=[a_snapshot(11, 102.0).latest()])
        await sink.close()

    asyncio.run(scenario())
    stored = {k.decode(): v.decode() for k, v in client.hgetall("riskstream:risk:SPX").items()}
    assert stored == a_snapshot(11, 102.0).fields()
    client.close()


def test_wrong_credentials_fail_fast_with_a_clear_error(redis_server) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_server.url)
    client.execute_command(
        "ACL", "SETUSER", "riskstream-test", "on", ">right-password", "~*", "+@all"
    )
    url = redis_server.url.replace("redis://", "redis://riskstream-test:wrong-password@")

    async def scenario() -> None:
        sink = RedisSink.from_settings(Settings(redis_url=url))
        try:
            await sink.check()
        finally:
            await sink.close()

    with pytest.raises(ConfigError, match="Redis refused the credentials"):
        asyncio.run(scenario())
    client.execute_command("ACL", "DELUSER", "riskstream-test")
    client.close()


def test_a_redis_that_can_lose_acknowledged_writes_is_named_at_startup(
    redis_url: str,
    tmp_path,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    """The session's Redis persists nothing: the worker warns; ``appendfsync always`` passes."""
    from engine.services.redis import RedisServer

    async def durability(url: str) -> bool | None:
        sink = RedisSink.from_settings(Settings(redis_url=url))
        try:
            await sink.check()
            return await sink.durability()
        finally:
            await sink.close()

    with caplog.at_level("WARNING", logger="engine.sinks.redis"):
        assert asyncio.run(durability(redis_url)) is False
    assert "alerts it acknowledged can be lost" in caplog.text
    caplog.clear()
    with (
        RedisServer(tmp_path / "durable", persistence=True) as durable,
        caplog.at_level("WARNING", logger="engine.sinks.redis"),
    ):
        assert asyncio.run(durability(durable.url)) is True
    assert caplog.text == ""
