"""An independent checker for fault runs: what the stream *should* have produced, and what it did.

:func:`expected_prices` replays the ``prices`` topic exactly as Kafka holds it (every
partition from its first offset, in offset order) through the pure pipeline
(:class:`~engine.pipeline.PricePipeline`) in one process, with no worker, no Faust and no
Redis involved. The result is the ground truth: each symbol's latest risk, the set of
alert ids, and the dead letters (source partition and offset, reason).

:func:`check_prices` compares the ground truth with what the workers wrote to Redis and
to the dead-letter topic and returns a :class:`CheckReport`:

``lost``
    expected alert ids missing from ``riskstream:alerts``;
``duplicates``
    entries of ``riskstream:alerts`` beyond the first with the same alert id;
``spurious``
    alert ids in the stream that the replay did not produce;
``state_diff``
    latest-state hashes (each symbol's ``riskstream:risk:<symbol>``, and those of the
    pipeline's stages) that differ from the replay's (a numeric field by more than
    ``1e-9``, relative to ``max(1, |expected|)``; any other field if not equal; a missing
    hash counts);
``dead_letters_lost`` / ``dead_letters_spurious``
    source coordinates expected on ``prices.dlq`` and missing, or present and not
    expected (a dead letter written twice by a replayed batch is counted in
    ``dead_letters_redelivered``: dead letters are at-least-once by design);
``sequence_gaps``
    symbols whose accepted ``event_id`` s (``SYMBOL-<n>``, :class:`producers.synthetic.SyntheticPrices`)
    are not exactly ``0, 1, ..., n-1`` in order: the input itself lost or reordered events.

A run passes (:attr:`CheckReport.ok`) when all of these are zero.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.boundary.records import RawRecord
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.core import Status
from engine.faults.harness import ConsumedRecord, alert_entries, read_topic
from engine.pipeline import PricePipeline

TOLERANCE = 1e-9
RISK_PREFIX = "riskstream:risk:"
RISK_KEY = RISK_PREFIX + "{}"
CHUNK = 5_000


@dataclass(slots=True)
class Expected:
    """The replay's ground truth for one ``prices`` topic."""

    records: int
    latest: dict[str, dict[str, str]]
    """Per Redis key, the fields of the latest-state hash: ``riskstream:risk:<symbol>``
    and the hashes of the pipeline's stages (anomaly state ...)."""
    alert_ids: set[str]
    dead_letters: dict[tuple[int, int], str]
    """``(source partition, source offset) -> reason``."""
    accepted_ids: dict[str, list[str]] = field(default_factory=dict)
    """Per symbol, the ``event_id`` s of its accepted ticks, in order."""


def expected_prices(
    records: Sequence[ConsumedRecord], settings: Settings, *, now: int | None = None
) -> Expected:
    """Replay ``records`` (as :func:`~engine.faults.harness.read_topic` returns them) through the pipeline.

    Each partition is replayed in offset order; a key lives in one partition, so the
    per-key order is Kafka's, whatever the micro-batch boundaries were in the stream.
    """
    pipeline = PricePipeline.from_settings(settings)
    clock = now_ms() if now is None else now
    by_partition: dict[int, list[RawRecord]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(RawRecord(r.key, r.value, r.partition, r.offset))
    latest: dict[str, dict[str, str]] = {}
    alert_ids: set[str] = set()
    dead: dict[tuple[int, int], str] = {}
    accepted: dict[str, list[str]] = defaultdict(list)
    for partition in sorted(by_partition):
        raw = by_partition[partition]
        for start in range(0, len(raw), CHUNK):
            outcome = pipeline.process(raw[start : start + CHUNK], now_ms=clock)
            for snap in outcome.snapshots:
                latest[RISK_KEY.format(snap.symbol)] = snap.fields()
            for state in outcome.latest:
                latest[state.key] = dict(state.fields)
            alert_ids.update(a.alert_id for a in outcome.alerts)
            for letter in outcome.dead_letters:
                dead[(letter.partition, letter.offset)] = letter.reason.value
            cols = outcome.ticks
            ok = np.flatnonzero(outcome.status == Status.ACCEPTED)
            for i in ok.tolist():
                source = cols.source[i]
                accepted[source.key.decode("utf-8")].append(_event_id(source.value))
    return Expected(len(records), latest, alert_ids, dead, dict(accepted))


def _event_id(value: bytes | None) -> str:
    import orjson

    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return ""
    return str(doc.get("event_id", "")) if isinstance(doc, dict) else ""


def sequence_gaps(accepted_ids: dict[str, list[str]]) -> int:
    """Symbols whose accepted event ids are not ``SYMBOL-0 .. SYMBOL-(n-1)`` in order."""
    gaps = 0
    for symbol, ids in accepted_ids.items():
        if ids != [f"{symbol}-{n}" for n in range(len(ids))]:
            gaps += 1
    return gaps


def _differs(observed: dict[str, str] | None, expected: dict[str, str], exact: bool) -> bool:
    """Whether a hash differs; ``exact``: also no field beyond the expected ones."""
    if observed is None or not set(expected) <= set(observed):
        return True
    if exact and set(observed) != set(expected):
        return True
    for name, want in expected.items():
        got = observed[name]
        if got == want:
            continue
        try:
            a, b = float(got), float(want)
        except ValueError:
            return True
        if math.isnan(a) and math.isnan(b):
            continue
        if not abs(a - b) <= TOLERANCE * max(1.0, abs(b)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Ground truth against observation for one run (see the module docstring)."""

    records: int
    symbols: int
    expected_alerts: int
    observed_alert_entries: int
    lost: int
    duplicates: int
    spurious: int
    state_diff: int
    expected_dead_letters: int
    observed_dead_letters: int
    dead_letters_lost: int
    dead_letters_spurious: int
    dead_letters_redelivered: int
    sequence_gaps: int
    dead_letter_reasons: dict[str, int]
    state_diff_keys: list[str] = field(default_factory=list)
    """The first 20 differing keys, with expected and observed ``n_ticks`` (diagnostics)."""

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicates
            or self.spurious
            or self.state_diff
            or self.dead_letters_lost
            or self.dead_letters_spurious
            or self.sequence_gaps
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        return (
            f"records={self.records} symbols={self.symbols} alerts={self.expected_alerts} "
            f"lost={self.lost} duplicates={self.duplicates} spurious={self.spurious} "
            f"state_diff={self.state_diff} dead_letters={self.observed_dead_letters}/"
            f"{self.expected_dead_letters} (lost {self.dead_letters_lost}, spurious "
            f"{self.dead_letters_spurious}, redelivered {self.dead_letters_redelivered}) "
            f"sequence_gaps={self.sequence_gaps}"
        )


def state_differences(client: Any, latest: dict[str, dict[str, str]]) -> int:
    """Latest-state hashes in Redis that differ from ``latest`` (keyed by Redis key)."""
    return len(differing_keys(client, latest))


def differing_keys(client: Any, latest: dict[str, dict[str, str]]) -> list[str]:
    """The Redis keys of :func:`state_differences`, sorted.

    A symbol's risk hash must hold exactly the expected fields; a stage's hash at least them.
    """
    pipe = client.pipeline(transaction=False)
    keys = sorted(latest)
    for key in keys:
        pipe.hgetall(key)
    hashes = [{k.decode(): v.decode() for k, v in h.items()} or None for h in pipe.execute()]
    return [
        key
        for key, h in zip(keys, hashes, strict=True)
        if _differs(h, latest[key], key.startswith(RISK_PREFIX))
    ]


def _describe(client: Any, key: str, want: dict[str, str]) -> str:
    """``key: field expected/observed, ...`` for the fields that differ."""
    got = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    parts = [
        f"{name} {value}/{got.get(name)}" for name, value in want.items() if got.get(name) != value
    ]
    return f"{key} (n_ticks {want.get('n_ticks')}/{got.get('n_ticks')}): " + ", ".join(parts[:6])


def observe(client: Any, expected: Expected, dead_letters: Sequence[ConsumedRecord]) -> CheckReport:
    """Compare Redis and the dead letters with ``expected``."""
    entries = alert_entries(client)
    ids = [e.get("alert_id", "") for e in entries]
    seen = set(ids)
    symbols = [key for key in expected.latest if key.startswith(RISK_PREFIX)]
    diff_keys = differing_keys(client, expected.latest)
    coords = [
        (
            int(letter.headers["riskstream.source.partition"]),
            int(letter.headers["riskstream.source.offset"]),
        )
        for letter in dead_letters
    ]
    distinct = {
        c: letter.headers["riskstream.reason"].decode()
        for c, letter in zip(coords, dead_letters, strict=True)
    }
    wrong_reason = sum(
        1
        for c, reason in distinct.items()
        if c in expected.dead_letters and expected.dead_letters[c] != reason
    )
    return CheckReport(
        records=expected.records,
        symbols=len(symbols),
        expected_alerts=len(expected.alert_ids),
        observed_alert_entries=len(ids),
        lost=len(expected.alert_ids - seen),
        duplicates=len(ids) - len(seen),
        spurious=len(seen - expected.alert_ids),
        state_diff=len(diff_keys),
        state_diff_keys=[_describe(client, key, expected.latest[key]) for key in diff_keys[:20]],
        expected_dead_letters=len(expected.dead_letters),
        observed_dead_letters=len(distinct),
        dead_letters_lost=len(expected.dead_letters.keys() - distinct.keys()),
        dead_letters_spurious=len(distinct.keys() - expected.dead_letters.keys()) + wrong_reason,
        dead_letters_redelivered=len(coords) - len(distinct),
        sequence_gaps=sequence_gaps(expected.accepted_ids),
        dead_letter_reasons=dict(Counter(distinct.values())),
    )


def check_prices(
    bootstrap: str,
    client: Any,
    settings: Settings,
    *,
    timeout_s: float = 120.0,
    settle_s: float = 2.0,
    kafka_config: dict[str, Any] | None = None,
) -> CheckReport:
    """Replay ``prices``, wait until the stream has caught up (or ``timeout_s``), compare.

    Caught up means every symbol's ``n_ticks`` in Redis equals the replay's, the alert
    stream holds at least the expected number of distinct ids and ``prices.dlq`` at least
    the expected dead letters. The comparison runs after ``settle_s`` more seconds, so a
    late duplicate has time to show; on timeout it runs anyway and reports what is missing.
    ``kafka_config`` adds consumer settings (security) for reading the topics.
    """
    extra = kafka_config or {}
    expected = expected_prices(read_topic(bootstrap, "prices", **extra), settings)
    risk_keys = sorted(key for key in expected.latest if key.startswith(RISK_PREFIX))
    want_ticks = [expected.latest[key]["n_ticks"] for key in risk_keys]

    def caught_up() -> bool:
        pipe = client.pipeline(transaction=False)
        for key in risk_keys:
            pipe.hget(key, "n_ticks")
        got = [v.decode() if v is not None else None for v in pipe.execute()]
        if got != want_ticks:
            return False
        ids = {e.get("alert_id") for e in alert_entries(client)}
        return expected.alert_ids <= ids

    deadline = time.monotonic() + timeout_s
    while not caught_up() and time.monotonic() < deadline:
        time.sleep(0.5)
    dead: list[ConsumedRecord] = []
    while True:
        dead = read_topic(bootstrap, "prices.dlq", **extra)
        got = {
            (r.headers["riskstream.source.partition"], r.headers["riskstream.source.offset"])
            for r in dead
        }
        if len(got) >= len(expected.dead_letters) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    time.sleep(settle_s)
    return observe(client, expected, read_topic(bootstrap, "prices.dlq", **extra))
