"""Validation at the boundary: every record comes out accepted or dead-lettered with a reason."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from engine.boundary.records import RawRecord, Reason
from engine.boundary.validation import (
    PriceColumns,
    Refused,
    _decode_clean,
    _decode_each,
    check_price,
    decode_prices,
    decode_transactions,
    fast_price,
)

NOW = 1_700_000_000_000
SKEW = 300_000


def price(value: bytes, key: bytes | None = b"SPX") -> RawRecord:
    return RawRecord(key, value, 0, 0)


def one_price(value: bytes, key: bytes | None = b"SPX") -> tuple[int, Reason | None, str]:
    cols, dead = decode_prices([price(value, key)], now_ms=NOW, max_future_skew_ms=SKEW)
    if dead:
        return 0, dead[0].reason, dead[0].detail
    return len(cols), None, ""


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", Reason.MALFORMED_JSON),
        (b"\xff\xfe", Reason.MALFORMED_JSON),
        (b"", Reason.MALFORMED_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b'{"ts": "2019-11-05T09:30:00Z", "price": 1.0}', Reason.MISSING_FIELD),
        (b'{"symbol": "SPX", "price": 1.0}', Reason.MISSING_FIELD),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z"}', Reason.MISSING_FIELD),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": "3080"}', Reason.WRONG_TYPE),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": true}', Reason.WRONG_TYPE),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": NaN}', Reason.NON_FINITE),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": Infinity}', Reason.NON_FINITE),
        (
            b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": 1' + b"0" * 400 + b"}",
            Reason.NON_FINITE,
        ),
        (b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": 0}', Reason.NON_POSITIVE_PRICE),
        (
            b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": -3.5}',
            Reason.NON_POSITIVE_PRICE,
        ),
        (b'{"symbol": "SPX", "ts": "yesterday", "price": 1.0}', Reason.BAD_TIMESTAMP),
        (b'{"symbol": "SPX", "ts": -5, "price": 1.0}', Reason.BAD_TIMESTAMP),
        (b'{"symbol": "SPX", "ts": "2999-01-01T00:00:00Z", "price": 1.0}', Reason.FUTURE_TIMESTAMP),
        (b'{"symbol": "", "ts": "2019-11-05T09:30:00Z", "price": 1.0}', Reason.BAD_IDENTIFIER),
        (
            b'{"symbol": "SP\\u0000X", "ts": "2019-11-05T09:30:00Z", "price": 1.0}',
            Reason.BAD_IDENTIFIER,
        ),
        (
            b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": 1.0, "volume": -1}',
            Reason.NEGATIVE_VOLUME,
        ),
        (b'{"symbol": "NDX", "ts": "2019-11-05T09:30:00Z", "price": 1.0}', Reason.KEY_MISMATCH),
    ],
)
def test_bad_ticks_are_dead_lettered_with_their_reason(value: bytes, reason: Reason) -> None:
    accepted, got, detail = one_price(value)
    assert accepted == 0
    assert got is reason
    assert detail


def test_missing_key_is_refused_because_state_would_be_misplaced() -> None:
    _, reason, detail = one_price(b'{"symbol": "SPX", "ts": 1572946200000, "price": 1.0}', key=None)
    assert reason is Reason.KEY_MISMATCH and "keyed by its symbol" in detail


def test_good_tick_in_both_timestamp_forms() -> None:
    cols, dead = decode_prices(
        [
            price(
                b'{"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": 3080.49, "event_id": 7}'
            ),
            price(b'{"symbol": "SPX", "ts": 1572946260000, "price": 3081, "volume": 12}'),
        ],
        now_ms=NOW,
        max_future_skew_ms=SKEW,
    )
    assert not dead
    assert cols.ts.tolist() == [1572946200000, 1572946260000]
    assert cols.price.tolist() == [3080.49, 3081.0]
    assert cols.event_ids == ["7", None]
    assert math.isnan(cols.volume[0]) and cols.volume[1] == 12.0
    assert cols.event_hash[0] != 0 and cols.event_hash[1] == 0


def test_dead_letter_keeps_the_original_bytes() -> None:
    raw = b'{"symbol": "SPX", "price": -1, "ts": 1}'
    _, dead = decode_prices([RawRecord(b"SPX", raw, 3, 99)], now_ms=NOW, max_future_skew_ms=SKEW)
    letter = dead[0]
    assert (letter.value, letter.key, letter.partition, letter.offset) == (raw, b"SPX", 3, 99)
    headers = dict(letter.headers())
    assert headers["riskstream.reason"] == b"non_positive_price"
    assert headers["riskstream.source.offset"] == b"99"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (
            {"tx_id": "t1", "ts": 1_600_000_000_000, "customer_id": "c1", "amount": -5.0},
            Reason.NEGATIVE_AMOUNT,
        ),
        ({"tx_id": "t1", "ts": 1_600_000_000_000, "customer_id": "c1"}, Reason.MISSING_FIELD),
        (
            {"tx_id": "t1", "ts": 1_600_000_000_000, "customer_id": "c2", "amount": 5.0},
            Reason.KEY_MISMATCH,
        ),
        (
            {"tx_id": "t1", "ts": 1_600_000_000_000, "customer_id": "c1", "amount": 5.0, "x": [1]},
            Reason.WRONG_TYPE,
        ),
        ({"tx_id": "t1", "ts": "soon", "customer_id": "c1", "amount": 5.0}, Reason.BAD_TIMESTAMP),
    ],
)
def test_bad_transactions_are_dead_lettered(doc: dict, reason: Reason) -> None:
    cols, dead = decode_transactions(
        [RawRecord(b"c1", orjson.dumps(doc), 0, 0)], now_ms=NOW, max_future_skew_ms=SKEW
    )
    assert len(cols) == 0 and dead[0].reason is reason


@pytest.mark.parametrize(
    ("feature", "reason"),
    [
        (b"1" + b"0" * 400, Reason.NON_FINITE),  # beyond float range: refused, not a crash
        (b"1e400", Reason.NON_FINITE),
        (b"NaN", Reason.NON_FINITE),
        (b"-Infinity", Reason.NON_FINITE),
        (b'"' + b"x" * 1000 + b'"', Reason.WRONG_TYPE),
        (b'{"a": 1}', Reason.WRONG_TYPE),
    ],
)
def test_bad_extra_features_are_dead_lettered(feature: bytes, reason: Reason) -> None:
    raw = b'{"tx_id": "t1", "ts": 1600000000000, "customer_id": "c1", "amount": 5, "f": '
    cols, dead = decode_transactions(
        [RawRecord(b"c1", raw + feature + b"}", 0, 0)], now_ms=NOW, max_future_skew_ms=SKEW
    )
    assert len(cols) == 0 and dead[0].reason is reason
    assert dead[0].detail.startswith("feature 'f' ")


def test_extra_features_at_the_edge_of_float_range_are_kept() -> None:
    big = 2**1023  # representable; 2**1024 is not
    doc = (
        b'{"tx_id": "t1", "ts": 1600000000000, "customer_id": "c1", "amount": 5, "f": %d, "g": %d}'
    )
    raw = doc % (big, 2**1024)
    cols, dead = decode_transactions(
        [RawRecord(b"c1", raw, 0, 0)], now_ms=NOW, max_future_skew_ms=SKEW
    )
    assert len(cols) == 0 and dead[0].reason is Reason.NON_FINITE and "'g'" in dead[0].detail
    cols, dead = decode_transactions(
        [RawRecord(b"c1", raw.replace(b', "g": %d' % 2**1024, b""), 0, 0)],
        now_ms=NOW,
        max_future_skew_ms=SKEW,
    )
    assert not dead and cols.extras == [{"f": big}]


def test_transaction_extras_are_kept_as_features() -> None:
    doc = {
        "tx_id": 1,
        "ts": 1_600_000_000_000,
        "customer_id": 596,
        "amount": 57.16,
        "terminal_id": 3156,
        "mcc": "5411",
        "limit": 2000,
        "flag": True,
    }
    cols, dead = decode_transactions(
        [RawRecord(b"596", orjson.dumps(doc), 0, 0)], now_ms=NOW, max_future_skew_ms=SKEW
    )
    assert not dead
    assert (cols.tx_ids, cols.customers, cols.terminals) == (["1"], ["596"], ["3156"])
    assert cols.extras == [{"mcc": "5411", "limit": 2000, "flag": True}]


# --- properties --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tick_like = st.fixed_dictionaries(
    {},
    optional={
        "symbol": json_values | st.text(max_size=70) | st.just("SPX"),
        "ts": json_values
        | st.sampled_from(
            ["2019-11-05T09:30:00Z", "2019-13-45", "1572946200000", "2019-11-05 09:30:00+01:00"]
        ),
        "price": json_values,
        "volume": json_values,
        "event_id": json_values,
        "asset_class": json_values,
        "rv": json_values,
    },
)
raw_values = st.one_of(
    st.binary(max_size=60), json_values.map(orjson.dumps), tick_like.map(orjson.dumps)
)
keys = st.one_of(st.none(), st.binary(max_size=8), st.just(b"SPX"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(keys, raw_values), max_size=20))
def test_price_validation_never_crashes_and_never_loses_a_record(
    records: list[tuple[bytes | None, bytes]],
) -> None:
    raw = [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(records)]
    cols, dead = decode_prices(raw, now_ms=NOW, max_future_skew_ms=SKEW)
    assert len(cols) + len(dead) == len(raw)
    assert {r.offset for r in cols.source} | {d.offset for d in dead} == set(range(len(raw)))
    for letter in dead:
        assert isinstance(letter.reason, Reason) and letter.detail
    assert (cols.price > 0).all() and all(math.isfinite(p) for p in cols.price)


transaction_like = st.fixed_dictionaries(
    {},
    optional={
        "tx_id": json_values,
        "customer_id": json_values,
        "ts": json_values,
        "amount": json_values,
        "terminal_id": json_values,
        "extra": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(keys, st.one_of(raw_values, transaction_like.map(orjson.dumps))), max_size=20
    )
)
def test_transaction_validation_never_crashes_and_never_loses_a_record(records: list) -> None:
    raw = [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(records)]
    cols, dead = decode_transactions(raw, now_ms=NOW, max_future_skew_ms=SKEW)
    assert len(cols) + len(dead) == len(raw)
    assert all(letter.detail for letter in dead)
    assert (cols.amount >= 0).all()


@settings(max_examples=1000, deadline=None)
@given(tick_like, keys)
def test_fast_path_accepts_only_what_the_reference_checker_accepts(
    obj: dict, key: bytes | None
) -> None:
    latest = NOW + SKEW
    fast = fast_price(obj, key, latest)
    try:
        reference = check_price(obj, key, latest)
    except Refused:
        assert fast is None
        return
    if fast is not None:
        assert fast[:3] == reference[:3] and fast[5] == reference[5]
        for i in (3, 4):  # volume, rv: NaN when absent
            assert (math.isnan(fast[i]) and math.isnan(reference[i])) or fast[i] == reference[i]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["SPX", "A.B", "x" * 64]),
    st.floats(0.01, 1e6),
    st.integers(0, NOW),
    st.one_of(st.none(), st.integers(0, 10**9), st.text(min_size=1, max_size=10)),
)
def test_fast_path_takes_the_common_shape(
    symbol: str, price: float, ts: int, event_id: object
) -> None:
    obj = {"symbol": symbol, "price": price, "ts": ts, "event_id": event_id}
    if isinstance(event_id, str) and (not event_id.strip() or not event_id.isprintable()):
        return
    assert fast_price(obj, symbol.encode(), NOW) is not None


# --- the batch path --------------------------------------------------------------------------

ISO = ["2019-11-05T09:30:00Z", "2019-11-05T09:30:00.250+01:00"]
good_tick = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["SPX", "A.B", "\u00e9t\u00e9", "x" * 64]),
        "ts": st.integers(0, NOW) | st.sampled_from(ISO),
        "price": st.floats(1e-9, 1e9) | st.integers(1, 2**63 - 1),
    },
    optional={
        "volume": st.none() | st.floats(0.0, 1e9) | st.integers(0, 2**63 - 1),
        "rv": st.none() | st.floats(0.0, 1.0),
        "event_id": st.none()
        | st.text(min_size=1, max_size=8).filter(lambda t: t.strip() and t.isprintable())
        | st.integers(-(2**63), 2**63 - 1),
        "asset_class": st.none() | st.text(max_size=5),
    },
)
#: JSON numbers orjson cannot write: put into a tick's text after orjson wrote it.
BEYOND_64_BITS = {b'"__BIG__"': b"99999999999999999999", b'"__HUGE__"': b"1" + b"0" * 400}


def dumps_beyond_64_bits(tick: dict) -> bytes:
    value = orjson.dumps(tick)
    for marker, number in BEYOND_64_BITS.items():
        value = value.replace(marker, number)
    return value


#: One field of one tick replaced by something at or past the edge of what is valid.
odd_fields = st.tuples(
    st.sampled_from(["symbol", "ts", "price", "volume", "rv", "event_id", "asset_class"]),
    st.sampled_from(
        [
            None, True, 0, -1, 0.0, -0.0, 2**64 - 1, -(2**63), 1e308, 5e-324, "", " ",
            "x" * 64, "x" * 65, "x" * 128, "x" * 129, "a\tb", "1572946200000", "2019-13-45",
            "2019-11-05T09:30:00Z", [], {}, NOW + SKEW, NOW + SKEW + 1, 1.5,
            "__BIG__", "__HUGE__",
        ]
    ),
)  # fmt: skip


def _columns_equal(a: PriceColumns, b: PriceColumns) -> None:
    assert a.symbols == b.symbols and a.event_ids == b.event_ids
    for name in ("ts", "price", "volume", "rv", "event_hash", "partition", "offset"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert a.source == b.source


@settings(max_examples=1500, deadline=None)
@example([{"symbol": "SPX", "ts": 0, "price": 1.0}], [(0, ("event_id", "__BIG__"))], None)
@example([{"symbol": "SPX", "ts": 0, "price": 1.0}], [(0, ("volume", "__BIG__"))], None)
@given(
    st.lists(good_tick, min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), odd_fields), max_size=3),
    st.none() | st.integers(0, 4),
)
def test_the_batch_path_accepts_exactly_what_the_record_path_accepts(
    ticks: list[dict], odd: list[tuple], wrong_key: int | None
) -> None:
    """A batch the whole-batch path (msgspec, column checks) takes has no dead letter on the
    per-record path and the same columns; anything else it leaves to that path."""
    for row, (name, value) in odd:
        ticks[row % len(ticks)][name] = value
    raw = [
        RawRecord(
            b"other" if i == wrong_key else str(tick["symbol"]).encode(),
            dumps_beyond_64_bits(tick),
            0,
            i,
        )
        for i, tick in enumerate(ticks)
    ]
    latest = NOW + SKEW
    clean = _decode_clean(raw, latest)
    each, dead = _decode_each(raw, "prices", latest)
    event("batch path" if clean is not None else "record path")
    if clean is not None:
        assert dead == []
        _columns_equal(clean, each)
    elif not dead:
        event("record path, all accepted")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["SPX", "A.B", "x" * 64]),
            st.integers(0, NOW) | st.sampled_from(ISO[:2]),
            st.floats(1e-6, 1e6) | st.integers(1, 10**6),
            st.none()
            | st.text(min_size=1, max_size=10).filter(lambda t: t.strip() and t.isprintable()),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_batch_of_well_formed_ticks_takes_the_batch_path(ticks: list) -> None:
    raw = [
        RawRecord(
            sym.encode(), orjson.dumps({"symbol": sym, "ts": ts, "price": p, "event_id": e}), 1, i
        )
        for i, (sym, ts, p, e) in enumerate(ticks)
    ]
    clean = _decode_clean(raw, NOW + SKEW)
    assert clean is not None
    _columns_equal(clean, _decode_each(raw, "prices", NOW + SKEW)[0])


def test_a_valid_tick_padded_past_the_size_limit_is_refused_as_too_large() -> None:
    tick = {"symbol": "SPX", "ts": 1, "price": 1.0}
    small = orjson.dumps({**tick, "pad": "x" * 900})
    padded = orjson.dumps({**tick, "pad": "x" * 1_000_000})
    for batch in ([price(padded)], [price(small), price(padded)]):
        cols, dead = decode_prices(batch, now_ms=NOW, max_future_skew_ms=SKEW, max_bytes=1024)
        assert [d.reason for d in dead] == [Reason.TOO_LARGE]
        assert "1,000,04" in dead[0].detail and "RISKSTREAM_MAX_RECORD_BYTES" in dead[0].detail
        assert len(cols.symbols) == len(batch) - 1


def test_an_oversized_transaction_is_refused_as_too_large() -> None:
    doc = {"tx_id": "t1", "ts": 1, "customer_id": "c1", "amount": 5.0, "note": "x" * 5000}
    _, dead = decode_transactions(
        [RawRecord(b"c1", orjson.dumps(doc), 0, 0)],
        now_ms=NOW,
        max_future_skew_ms=SKEW,
        max_bytes=1024,
    )
    assert [d.reason for d in dead] == [Reason.TOO_LARGE]
