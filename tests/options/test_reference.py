"""The ``instruments`` topic and file at the boundary: accepted listings, dead letters, reasons."""

from __future__ import annotations

import orjson
import pytest

from engine.boundary.records import RawRecord
from engine.errors import InputError
from engine.kafka.topics import COMPACTED_TOPICS
from engine.kafka.topics import INSTRUMENTS as TOPIC
from engine.options.reference import INSTRUMENTS, decode_instruments, read_instrument_file

OPTION = {
    "instrument": "SPX-C100",
    "kind": "option",
    "underlying": "SPX",
    "multiplier": 100,
    "strike": 100,
    "expiry": "2024-06-21",
    "right": "call",
    "style": "european",
    "vol": 0.2,
}


def record(obj: object, key: bytes | None = b"SPX-C100", offset: int = 0) -> RawRecord:
    return RawRecord(key, orjson.dumps(obj), 0, offset)


def test_the_topic_is_compacted_and_named_alike() -> None:
    assert TOPIC == INSTRUMENTS == "instruments"
    assert TOPIC in COMPACTED_TOPICS


def test_a_valid_option_and_a_tombstone_are_accepted() -> None:
    listings, dead = decode_instruments([record(OPTION), RawRecord(b"SPX-C100", None, 0, 1)])
    assert dead == []
    first, gone = listings
    assert first.instrument is not None and first.instrument.option is not None
    assert first.instrument.multiplier == 100.0 and first.vol == 0.2
    assert first.instrument.option.strike == 100.0
    assert gone.key == "SPX-C100" and gone.instrument is None


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"kind": "swap"}, b"SPX-C100", "wrong_type"),
        ({"strike": -1}, b"SPX-C100", "non_positive_price"),
        ({"strike": "many"}, b"SPX-C100", "wrong_type"),
        ({"multiplier": 0}, b"SPX-C100", "wrong_type"),
        ({"expiry": "next friday"}, b"SPX-C100", "bad_timestamp"),
        ({"right": "straddle"}, b"SPX-C100", "wrong_type"),
        ({"currency": "usd"}, b"SPX-C100", "wrong_type"),
        ({"underlying": None}, b"SPX-C100", "missing_field"),
        ({"underlying": " "}, b"SPX-C100", "bad_identifier"),
        ({"instrument": None}, b"SPX-C100", "missing_field"),
        ({}, b"OTHER", "key_mismatch"),
        ({}, None, "key_mismatch"),
    ],
)
def test_bad_records_become_dead_letters_with_a_reason(
    change: dict[str, object], key: bytes | None, reason: str
) -> None:
    obj = {k: v for k, v in {**OPTION, **change}.items() if v is not None}
    listings, dead = decode_instruments([record(obj, key)])
    assert listings == []
    assert [d.reason.value for d in dead] == [reason]
    assert dead[0].dlq_topic == "instruments.dlq" and dead[0].detail


def test_size_json_and_vol_on_a_spot_instrument_are_refused() -> None:
    big = RawRecord(b"X", b"{" + b" " * 200 + b"}")
    nan = RawRecord(b"X", b'{"instrument": "X", "kind": "option", "strike": NaN}')
    spot_vol = record({"instrument": "SPY", "kind": "equity", "vol": 0.2}, b"SPY")
    _, dead = decode_instruments([big, RawRecord(b"X", b"[1]"), nan, spot_vol], max_bytes=100)
    assert [d.reason.value for d in dead] == [
        "too_large",
        "not_an_object",
        "non_finite",
        "wrong_type",
    ]


def test_the_file_form_extends_the_options_price_file(tmp_path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text(
        "instrument,underlying,strike,expiry,right,style,kind,currency,multiplier,vol\n"
        "SPX-C100,SPX,100,2024-06-21,call,european,,,100,0.25\n"
        "SPX,,,,,,index,USD,,\n"
        "BTCUSD,,,,,,crypto,USD,,\n"
    )
    listings = read_instrument_file(path)
    assert [x.key for x in listings] == ["SPX-C100", "SPX", "BTCUSD"]
    assert listings[0].instrument is not None and listings[0].instrument.kind == "option"
    assert listings[0].vol == 0.25 and listings[0].instrument.multiplier == 100.0
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "instrument,underlying,strike,expiry,right,style\nA,SPX,1,2024-01-01,put,american\n"
    )
    assert read_instrument_file(plain)[0].instrument.option.style == "american"  # type: ignore[union-attr]


def test_file_errors_name_the_row(tmp_path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text(
        "instrument,underlying,strike,expiry,right,style\nA,SPX,1,2024-01-01,put,european\nA,SPX,-1,2024-01-01,put,european\n"
    )
    with pytest.raises(InputError, match=r"row 3: A: strike"):
        read_instrument_file(path)
    path.write_text(
        "instrument,underlying,strike,expiry,right,style\nA,SPX,1,2024-01-01,put,european\nA,SPX,2,2024-01-01,put,european\n"
    )
    with pytest.raises(InputError, match=r"row 3: instrument 'A' appears more than once"):
        read_instrument_file(path)
