"""Injected bad records are dead-lettered by the real pipeline with exactly the labelled reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import islice

import pytest

from engine.boundary.records import Reason
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.errors import InputError
from engine.pipeline import PricePipeline, TransactionPipeline
from producers.faults import PRICE_FAULTS, TRANSACTION_FAULTS, inject_bad
from producers.messages import Message, price_messages, transaction_messages
from producers.sources import fraud_handbook, sp500_1min, ticks_from_frame
from producers.synthetic import SyntheticPrices, SyntheticTransactions

START = 1_700_000_000_000


def _settings() -> Settings:
    return Settings()


def _run(pipeline: PricePipeline | TransactionPipeline, messages: Sequence[Message], batch: int):
    """Feed the messages in order (offsets 0..n-1, one partition) in micro-batches."""
    records = [m.to_record(offset) for offset, m in enumerate(messages)]
    dead: dict[int, Reason] = {}
    accepted = 0
    for first in range(0, len(records), batch):
        outcome = pipeline.process(records[first : first + batch], now_ms=now_ms())
        accepted += outcome.accepted
        for letter in outcome.dead_letters:
            assert letter.offset not in dead
            dead[letter.offset] = letter.reason
    return dead, accepted


def _check(pipeline, messages: list[Message], batch: int = 500) -> Counter[str]:
    expected = {i: m.expected for i, m in enumerate(messages) if m.expected is not None}
    dead, accepted = _run(pipeline, messages, batch)
    assert dead == expected  # every injected record, with its reason; no good one
    assert accepted == len(messages) - len(expected)
    return Counter(m.fault for m in messages if m.fault)


def test_price_faults_on_synthetic_prices() -> None:
    good = price_messages(SyntheticPrices(5, ticks=20_000, seed=3, start_ms=START))
    messages = list(inject_bad(good, 0.1, seed=11))
    faults = _check(PricePipeline.from_settings(_settings()), messages)
    assert set(faults) == set(PRICE_FAULTS)  # every kind occurred
    assert 0.08 < sum(faults.values()) / len(messages) < 0.12


def test_price_faults_on_real_one_minute_bars_without_event_ids() -> None:
    # No event ids: duplicates are recognised by timestamp and price alone.
    good = price_messages(ticks_from_frame(sp500_1min()))
    messages = list(inject_bad(good, 0.25, seed=5))
    faults = _check(PricePipeline.from_settings(_settings()), messages, batch=97)
    assert faults["duplicate"] > 10 and faults["late"] > 10


def test_transaction_faults_on_synthetic_transactions() -> None:
    good = transaction_messages(SyntheticTransactions(50, 80, count=20_000, seed=3, start_ms=START))
    messages = list(inject_bad(good, 0.1, seed=11))
    faults = _check(TransactionPipeline.from_settings(_settings()), messages)
    assert set(faults) == set(TRANSACTION_FAULTS)


def test_transaction_faults_on_fraud_handbook_rows() -> None:
    good = transaction_messages(islice(fraud_handbook(labels=True), 5000))
    messages = list(inject_bad(good, 0.2, seed=1, stream="transactions"))
    faults = _check(TransactionPipeline.from_settings(_settings()), messages, batch=1000)
    assert faults["duplicate"] > 20


@pytest.mark.parametrize("fault", sorted(PRICE_FAULTS))
def test_each_price_fault_alone(fault: str) -> None:
    good = price_messages(SyntheticPrices(3, ticks=300, seed=1, start_ms=START))
    messages = list(inject_bad(good, 0.3, seed=2, faults=[fault]))
    faults = _check(PricePipeline.from_settings(_settings()), messages, batch=64)
    assert set(faults) == {fault} and faults[fault] > 20
    assert all(m.expected is PRICE_FAULTS[fault] for m in messages if m.fault)


def test_values_are_what_the_fault_says() -> None:
    good = list(price_messages(SyntheticPrices(2, ticks=400, seed=1, start_ms=START)))
    messages = list(inject_bad(good, 0.5, seed=3))
    by_fault = {m.fault: m for m in messages if m.fault}
    assert b'"price":NaN' in by_fault["nan_price"].value
    assert b"Infinity" in by_fault["infinite_price"].value
    assert b'"price":0.0' in by_fault["zero_price"].value
    assert by_fault["wrong_key"].key.startswith(b"not-")
    dup = by_fault["duplicate"]
    assert any((m.key, m.value) == (dup.key, dup.value) for m in good)  # an exact repeat
    assert by_fault["future_timestamp"].value.find(b'"ts":"2100-') > 0


def test_injection_is_deterministic_and_keeps_good_messages() -> None:
    good = list(price_messages(SyntheticPrices(4, ticks=2000, seed=1, start_ms=START)))
    first = list(inject_bad(good, 0.2, seed=7))
    assert first == list(inject_bad(good, 0.2, seed=7))
    assert first != list(inject_bad(good, 0.2, seed=8))
    assert [m for m in first if m.expected is None] == good
    assert list(inject_bad(good, 0.0, seed=7)) == good


def test_bad_arguments() -> None:
    good = list(price_messages(SyntheticPrices(1, ticks=3, seed=1, start_ms=START)))
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        list(inject_bad(good, 1.0, seed=1))
    with pytest.raises(InputError, match="unknown prices fault"):
        list(inject_bad(good, 0.5, seed=1, faults=["negative_amount"]))
    with pytest.raises(InputError, match="prices from transactions"):
        list(inject_bad([Message(b"k", b"[1]")], 0.5, seed=1))


def test_history_faults_wait_for_history() -> None:
    # Only duplicates asked for: nothing can be injected before the first good message.
    good = list(price_messages(SyntheticPrices(1, ticks=50, seed=1, start_ms=START)))
    messages = list(inject_bad(good, 0.9, seed=1, faults=["duplicate"]))
    assert messages[0] == good[0]
    assert {m.fault for m in messages[1:] if m.fault} == {"duplicate"}
    _check(PricePipeline.from_settings(_settings()), messages)
