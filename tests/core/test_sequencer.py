"""The ordering rules: late, duplicate and replayed ticks; log returns."""

from __future__ import annotations

import numpy as np

from engine.core.sequencer import PriceSequencer, Status


def run(
    seq: PriceSequencer, ticks: list[tuple[int, int, float, int, int]]
) -> tuple[list[Status], np.ndarray]:
    """ticks: (slot, ts, price, event_hash, offset)."""
    cols = list(zip(*ticks, strict=True))
    status, ret = seq.update(
        np.array(cols[0], np.int64),
        np.array(cols[1], np.int64),
        np.array(cols[2], np.float64),
        np.array(cols[3], np.int64),
        np.array(cols[4], np.int64),
    )
    return [Status(int(s)) for s in status], ret


def fresh(n: int = 2) -> PriceSequencer:
    seq = PriceSequencer()
    seq.ensure(n)
    return seq


def test_returns_are_log_price_ratios_per_symbol() -> None:
    status, ret = run(
        fresh(), [(0, 1, 100.0, 0, 0), (1, 1, 50.0, 0, 1), (0, 2, 110.0, 0, 2), (1, 3, 45.0, 0, 3)]
    )
    assert status == [Status.ACCEPTED] * 4
    assert np.isnan(ret[0]) and np.isnan(ret[1])
    assert ret[2] == np.log(110 / 100) and ret[3] == np.log(45 / 50)


def test_a_tick_older_than_the_last_accepted_one_is_late() -> None:
    status, ret = run(fresh(), [(0, 10, 100.0, 0, 0), (0, 5, 99.0, 0, 1), (0, 11, 101.0, 0, 2)])
    assert status == [Status.ACCEPTED, Status.LATE, Status.ACCEPTED]
    assert ret[2] == np.log(101 / 100)  # the late tick did not move the reference price


def test_equal_timestamps_are_in_order() -> None:
    status, _ = run(fresh(), [(0, 10, 100.0, 0, 0), (0, 10, 100.5, 0, 1)])
    assert status == [Status.ACCEPTED, Status.ACCEPTED]


def test_same_event_id_and_timestamp_is_a_duplicate() -> None:
    status, _ = run(fresh(), [(0, 10, 100.0, 77, 0), (0, 10, 100.0, 78, 1), (0, 10, 100.0, 77, 2)])
    assert status == [Status.ACCEPTED, Status.ACCEPTED, Status.DUPLICATE]


def test_without_event_id_same_timestamp_and_price_is_a_duplicate() -> None:
    status, _ = run(fresh(), [(0, 10, 100.0, 0, 0), (0, 10, 100.0, 0, 1), (0, 11, 100.0, 0, 2)])
    assert status == [Status.ACCEPTED, Status.DUPLICATE, Status.ACCEPTED]


def test_offsets_already_applied_are_replays_and_change_nothing() -> None:
    seq = fresh()
    run(seq, [(0, 10, 100.0, 0, 5), (0, 11, 101.0, 0, 6)])
    state = seq.export(0)
    status, _ = run(seq, [(0, 10, 100.0, 0, 5), (0, 11, 101.0, 0, 6)])
    assert status == [Status.REPLAY, Status.REPLAY]
    assert seq.export(0) == state


def test_late_and_duplicate_verdicts_are_remembered_as_applied_offsets() -> None:
    seq = fresh()
    run(seq, [(0, 10, 100.0, 0, 0), (0, 5, 99.0, 0, 1)])
    status, _ = run(seq, [(0, 5, 99.0, 0, 1)])  # the late tick, redelivered after a restart
    assert status == [Status.REPLAY]


def test_a_foreign_partition_tick_is_refused_and_changes_nothing() -> None:
    seq = fresh()
    run(seq, [(0, 10, 100.0, 0, 5031)])
    before = seq.state.pack(np.array([0]))
    slots, ts, price, ehash, offset = (np.array([v]) for v in (0, 11, 101.0, 0, 5031))
    status, ret = seq.update(slots, ts, price, ehash, offset, np.array([True]))
    assert Status(int(status[0])) is Status.WRONG_PARTITION and np.isnan(ret[0])
    assert np.array_equal(seq.state.pack(np.array([0])), before)
