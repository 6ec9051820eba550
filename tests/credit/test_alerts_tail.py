"""``riskstream alerts tail`` on a real Redis: consumer group, XACK, resume, redelivery, claims."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
import redis

from engine.alerts import Alert, Attribution
from engine.cli.alerts import ALERTS_STREAM, Follower

from .helpers import run_cli

pytestmark = pytest.mark.integration


def make_alert(n: int, kind: str = "credit_pd") -> Alert:
    return Alert(
        f"{kind}-{n:04d}",
        kind,
        f"tw{n}",
        1_700_000_000_000 + n,
        "critical" if n % 2 else "warning",
        0.5 + n / 1000,
        0.5,
        "credit_lightgbm",
        "v1",
        {"tx_id": f"t{n}"},
        (Attribution("PAY_0", 2.0, 1.25), Attribution("EDUCATION", "4", -0.5)),
    )


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def add(client: redis.Redis, alerts: list[Alert]) -> list[str]:
    return [client.xadd(ALERTS_STREAM, a.fields()).decode() for a in alerts]


def collect(shown: list[str]):  # type: ignore[no-untyped-def]
    def handle(entry_id: str, fields: dict[str, str]) -> bool:
        shown.append(Alert.from_fields(fields).alert_id)
        return True

    return handle


def pending(client: redis.Redis, group: str) -> int:
    return int(client.xpending(ALERTS_STREAM, group)["pending"])


def test_resumes_after_a_restart_with_nothing_lost_or_repeated(client: redis.Redis) -> None:
    add(client, [make_alert(n) for n in range(10)])
    shown: list[str] = []
    Follower(client, "g", "c1", from_start=True).follow(collect(shown), count=4)
    assert shown == [f"credit_pd-{n:04d}" for n in range(4)]
    assert pending(client, "g") == 0  # acknowledged as printed
    add(client, [make_alert(n) for n in range(10, 12)])
    Follower(client, "g", "c1").follow(collect(shown), idle_timeout_s=0.3, block_ms=100)  # restart
    assert shown == [f"credit_pd-{n:04d}" for n in range(12)]
    assert pending(client, "g") == 0


def test_a_crash_before_the_ack_redelivers_to_the_same_consumer(client: redis.Redis) -> None:
    add(client, [make_alert(n) for n in range(3)])
    shown: list[str] = []

    def crash_on_second(entry_id: str, fields: dict[str, str]) -> bool:
        if len(shown) == 1:
            raise RuntimeError("terminal closed")
        shown.append(Alert.from_fields(fields).alert_id)
        return True

    with pytest.raises(RuntimeError):
        Follower(client, "g", "c1", from_start=True).follow(crash_on_second, count=3)
    assert shown == ["credit_pd-0000"] and pending(client, "g") == 2
    Follower(client, "g", "c1").follow(collect(shown), idle_timeout_s=0.3, block_ms=100)
    assert shown == ["credit_pd-0000", "credit_pd-0001", "credit_pd-0002"]
    assert pending(client, "g") == 0


def test_alerts_left_by_a_dead_consumer_are_claimed(client: redis.Redis) -> None:
    add(client, [make_alert(n) for n in range(2)])
    client.xgroup_create(ALERTS_STREAM, "g", id="0")
    client.xreadgroup("g", "dead", {ALERTS_STREAM: ">"}, count=10)  # delivered, never acked
    time.sleep(0.15)
    shown: list[str] = []
    Follower(client, "g", "alive", claim_idle_ms=100).follow(
        collect(shown), idle_timeout_s=0.3, block_ms=100
    )
    assert shown == ["credit_pd-0000", "credit_pd-0001"] and pending(client, "g") == 0


def test_a_new_group_starts_at_the_end_unless_from_start(client: redis.Redis) -> None:
    add(client, [make_alert(0)])
    shown: list[str] = []
    Follower(client, "late", "c").follow(collect(shown), idle_timeout_s=0.2, block_ms=100)
    assert shown == []
    Follower(client, "early", "c", from_start=True).follow(
        collect(shown), idle_timeout_s=0.2, block_ms=100
    )
    assert shown == ["credit_pd-0000"]


def test_cli_json_kinds_and_text(
    redis_url: str,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RISKSTREAM_REDIS_URL", redis_url)
    ids = add(
        client,
        [make_alert(0, "var_breach"), make_alert(1), make_alert(2, "credit_el"), make_alert(3)],
    )
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "alerts",
        "tail",
        "--from-start",
        "--json",
        "--kinds",
        "credit_pd,credit_el",
        "--count",
        "3",
        "--group",
        "j",
    )
    assert code == 0, err
    docs = [orjson.loads(line) for line in out.splitlines()]
    assert [d["alert_id"] for d in docs] == ["credit_pd-0001", "credit_el-0002", "credit_pd-0003"]
    assert docs[0]["stream_id"] == ids[1] and docs[0]["attributions"][0] == {
        "feature": "PAY_0",
        "value": 2.0,
        "shap": 1.25,
    }
    assert pending(client, "j") == 0  # the filtered-out var_breach was acknowledged too
    code, out, _ = run_cli(
        monkeypatch, capsys, "alerts", "tail", "--from-start", "--count", "1", "--group", "t"
    )
    assert code == 0
    for text in ("WARNING", "var_breach", "tw0", "PAY_0", "+1.2500", "EDUCATION", "= 4"):
        assert text in out


def test_cli_without_redis_url_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RISKSTREAM_REDIS_URL", raising=False)
    code, _, err = run_cli(monkeypatch, capsys, "alerts", "tail", "--count", "1")
    assert code == 2 and "RISKSTREAM_REDIS_URL is not set" in err
