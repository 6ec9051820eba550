"""The checker of the fault tests is not vacuous: it sees lost, duplicate and invented
alerts, drifted state and missing dead letters (real Redis, no workers)."""

from __future__ import annotations

import pytest
import redis

from engine.faults.chaos import FaultConfig, fault_stream
from engine.faults.checker import RISK_PREFIX, expected_prices, observe
from engine.faults.harness import ConsumedRecord

pytestmark = [pytest.mark.integration]


def test_checker_reports_every_kind_of_divergence(redis_url: str) -> None:
    config = FaultConfig(events=3000, symbols=5)
    messages = fault_stream(config, 3, bad_fraction=0.02)
    records = [ConsumedRecord(0, i, m.key, m.value, {}) for i, m in enumerate(messages)]
    expected = expected_prices(records, config.settings())
    assert expected.alert_ids and expected.dead_letters
    letters = [
        ConsumedRecord(
            0,
            n,
            None,
            None,
            {
                "riskstream.source.partition": b"0",
                "riskstream.source.offset": str(offset).encode(),
                "riskstream.reason": reason.encode(),
            },
        )
        for n, ((_, offset), reason) in enumerate(sorted(expected.dead_letters.items()))
    ]
    client = redis.Redis.from_url(redis_url)
    try:
        # What a perfect run writes.
        for key, fields in expected.latest.items():
            client.hset(key, mapping=fields)
        ids = sorted(expected.alert_ids)
        for alert_id in ids:
            client.xadd("riskstream:alerts", {"alert_id": alert_id})
        clean = observe(client, expected, letters + letters[:1])
        assert clean.ok, clean.summary()
        assert clean.dead_letters_redelivered == 1  # at-least-once dead letters are allowed

        # Break each invariant once.
        first = client.xrange("riskstream:alerts", count=1)[0][0]
        client.xdel("riskstream:alerts", first)  # lost
        client.xadd("riskstream:alerts", {"alert_id": ids[1]})  # duplicate
        client.xadd("riskstream:alerts", {"alert_id": "var_breach-invented"})  # spurious
        keys = sorted(k for k in expected.latest if k.startswith(RISK_PREFIX))
        sigma = float(expected.latest[keys[0]]["sigma"])
        client.hset(keys[0], "sigma", repr(sigma * (1 + 1e-12)))  # within 1e-9
        client.hset(keys[1], "var_99", "0.5")  # drift
        client.hdel(keys[2], "n_ticks")  # missing field
        broken = observe(client, expected, letters[1:])
    finally:
        client.close()
    assert (broken.lost, broken.duplicates, broken.spurious, broken.state_diff) == (1, 1, 1, 2)
    assert broken.dead_letters_lost == 1
    assert not broken.ok
