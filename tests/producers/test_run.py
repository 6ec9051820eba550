"""The send loop without Kafka: pacing, the JSON Lines sink and its round trip, the report."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from engine.boundary.records import Reason
from engine.errors import InputError
from producers.messages import Message, message_line, read_jsonl
from producers.run import JsonlSink, ProduceReport, paced, send_all


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _messages(event_ms: list[int | None]) -> list[Message]:
    return [Message(b"k", b"{}", ms) for ms in event_ms]


def _send_times(messages: list[Message], **pacing: float) -> list[float]:
    clock = FakeClock()
    return [clock.now - 100.0 for _ in paced(messages, clock=clock, sleep=clock.sleep, **pacing)]


def test_rate_spaces_messages_evenly() -> None:
    times = _send_times(_messages([0] * 5), rate=10.0)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_speed_follows_event_time() -> None:
    # Events at 0 s, 2 s, 2 s, 10 s (and one without a time) replayed at 4x.
    times = _send_times(_messages([0, 2000, 2000, None, 10_000]), speed=4.0)
    assert times == pytest.approx([0.0, 0.5, 0.5, 0.5, 2.5])


def test_speed_does_not_wait_for_events_out_of_order() -> None:
    times = _send_times(_messages([5000, 1000, 9000]), speed=1.0)
    assert times == pytest.approx([0.0, 0.0, 4.0])


def test_no_pacing_never_sleeps() -> None:
    clock = FakeClock()
    assert len(list(paced(_messages([0, 10**9]), clock=clock, sleep=clock.sleep))) == 2
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("pacing", "match"),
    [
        ({"rate": 1.0, "speed": 1.0}, "not both"),
        ({"rate": 0.0}, "positive"),
        ({"speed": -1.0}, "positive"),
    ],
)
def test_bad_pacing(pacing: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        list(paced(_messages([0]), **pacing))


def test_jsonl_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    messages = [
        Message(b"SPX", b'{"symbol":"SPX","ts":0,"price":1.5}', 0),
        Message(b"SPX", b'{"price":NaN}', 0, "nan_price", Reason.NON_FINITE),
        Message(b"SPX", b'{"\xc3(', 0, "malformed_json", Reason.MALFORMED_JSON),
        Message(None, b"[]", 0, "wrong_key", Reason.KEY_MISMATCH),
        Message(b"\xff", b"{}", 0),
    ]
    path = tmp_path / "out" / "m.jsonl"
    report = send_all(messages, JsonlSink(path, "prices"))
    assert (report.sent, report.failed, report.bad) == (5, 0, 3)
    back = list(read_jsonl(path))
    assert [topic for topic, _ in back] == ["prices"] * 5
    assert [(m.key, m.value, m.fault, m.expected) for _, m in back] == [
        (m.key, m.value, m.fault, m.expected) for m in messages
    ]
    lines = path.read_bytes().splitlines()
    assert orjson.loads(lines[0])["value"] == '{"symbol":"SPX","ts":0,"price":1.5}'
    assert orjson.loads(lines[1])["expected_reason"] == "non_finite"
    assert "value_b64" in orjson.loads(lines[2])


def test_read_jsonl_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        list(read_jsonl(tmp_path / "none.jsonl"))
    path = tmp_path / "bad.jsonl"
    path.write_bytes(message_line(Message(b"k", b"{}"), "t") + b'{"topic": "t"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: not a message line"):
        list(read_jsonl(path))


def test_jsonl_sink_to_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot write"):
        JsonlSink(blocker / "sub" / "m.jsonl", "prices")


def test_sink_is_closed_when_the_stream_fails(tmp_path: Path) -> None:
    def broken():
        yield Message(b"k", b"{}")
        raise RuntimeError("source died")

    sink = JsonlSink(tmp_path / "m.jsonl", "prices")
    with pytest.raises(RuntimeError, match="source died"):
        send_all(broken(), sink)
    assert sink._file.closed
    assert len((tmp_path / "m.jsonl").read_bytes().splitlines()) == 1


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = send_all(
        [Message(b"k", b"{}")] * 3,
        JsonlSink(tmp_path / "m.jsonl", "prices"),
        total=3,
        progress=True,
    )
    assert report.sent == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "prices" in captured.err and "delivered 3" in captured.err


def test_report_summary() -> None:
    report = ProduceReport("prices", sent=1000, failed=0, seconds=0.5, bad=10)
    assert report.rate == 2000.0
    assert report.summary() == (
        "sent 1,000 messages to prices in 0.50 s (2,000 events/s), 10 of them injected bad records"
    )
    failed = ProduceReport("prices", 1, 2, 1.0, first_error="KafkaTimeoutError: boom")
    assert "2 FAILED (first error: KafkaTimeoutError: boom)" in failed.summary()


def test_jsonl_sink_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()

    class Out:
        pass

    out = Out()
    out.buffer = buffer  # type: ignore[attr-defined]
    monkeypatch.setattr("sys.stdout", out)
    send_all([Message(b"k", b'{"a":1}')], JsonlSink(None, "t"))
    assert orjson.loads(buffer.getvalue()) == {"topic": "t", "key": "k", "value": '{"a":1}'}
