"""The instrument schema: what a valid instrument is, and the error each invalid one gets."""

from __future__ import annotations

from datetime import date

import pytest

from engine.errors import InputError
from engine.options.errors import InstrumentError
from engine.options.instruments import (
    Instrument,
    expiry_timestamp,
    instrument_from_mapping,
    option_terms,
    parse_expiry,
)


def option_record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "instrument": "SPX-C4000",
        "kind": "option",
        "underlying": "SPX",
        "currency": "USD",
        "multiplier": "100",
        "calendar": "XNYS",
        "strike": "4000",
        "expiry": "2024-06-21",
        "right": "call",
        "style": "european",
    }
    record.update(changes)
    return record


def test_an_option_record_becomes_an_instrument_with_its_terms() -> None:
    spx = instrument_from_mapping(option_record())
    assert spx.kind == "option" and spx.underlying == "SPX" and spx.multiplier == 100.0
    assert spx.option is not None
    assert (spx.option.strike, spx.option.right, spx.option.style) == (4000.0, "call", "european")
    assert spx.expiry == spx.option.expiry == date(2024, 6, 21)


@pytest.mark.parametrize(
    ("kind", "calendar", "currency"),
    [
        ("equity", "XNYS", "USD"),
        ("index", "XNYS", "USD"),
        ("fx", "24/5", "USD"),
        ("crypto", "24/7", "USDT"),
    ],
)
def test_spot_instruments_are_their_own_underlying(kind: str, calendar: str, currency: str) -> None:
    spot = instrument_from_mapping(
        {"instrument": "X1", "kind": kind, "calendar": calendar, "currency": currency}
    )
    assert spot.underlying == "X1" and spot.option is None and spot.expiry is None


def test_a_future_has_an_underlying_and_an_expiry_but_no_option_terms() -> None:
    future = instrument_from_mapping(
        {
            "instrument": "ESM4",
            "kind": "future",
            "underlying": "SPX",
            "expiry": "2024-06-21",
            "multiplier": 50,
        }
    )
    assert (future.underlying, future.expiry, future.multiplier) == ("SPX", date(2024, 6, 21), 50.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"kind": "swap"},
            r"SPX-C4000: kind 'swap' is not one of equity, index, fx, crypto, future, option",
        ),
        ({"strike": "-5"}, r"SPX-C4000: strike '-5' must be a finite number > 0"),
        ({"strike": "nan"}, r"strike 'nan' must be a finite number > 0"),
        ({"strike": None}, r"strike missing must be a finite number > 0"),
        ({"expiry": "21/06/2024"}, r"expiry '21/06/2024' must be an ISO date like 2024-12-20"),
        ({"right": "CALL"}, r"right 'CALL' is not one of call, put"),
        ({"style": "bermudan"}, r"style 'bermudan' is not one of european, american"),
        ({"underlying": ""}, r"SPX-C4000: underlying is missing"),
        ({"underlying": "SPX-C4000"}, r"cannot be its own underlying"),
        ({"multiplier": "0"}, r"multiplier '0' must be a finite number > 0"),
        ({"currency": "usd"}, r"currency 'usd' must be an upper-case code"),
        ({"calendar": "new york"}, r"calendar 'new york' must be an exchange-calendars name"),
        ({"instrument": " "}, r"instrument is missing"),
    ],
)
def test_each_bad_field_is_named_in_the_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InstrumentError, match=message):
        instrument_from_mapping(option_record(**changes))


def test_instrument_errors_are_input_errors_so_the_cli_exits_with_2() -> None:
    assert issubclass(InstrumentError, InputError) and issubclass(InstrumentError, ValueError)


def test_a_spot_instrument_with_option_fields_is_rejected() -> None:
    with pytest.raises(InstrumentError, match="AAPL: equity instruments have no strike, right"):
        instrument_from_mapping(
            {"instrument": "AAPL", "kind": "equity", "strike": 1, "right": "put"}
        )
    with pytest.raises(InstrumentError, match="is its own underlying, got 'SPX'"):
        Instrument("AAPL", kind="equity", underlying="SPX")


def test_an_option_without_terms_and_a_future_without_expiry_are_rejected() -> None:
    with pytest.raises(InstrumentError, match="an option needs strike, expiry, right and style"):
        Instrument("O", kind="option", underlying="SPX")
    with pytest.raises(InstrumentError, match="a future needs an expiry"):
        Instrument("F", kind="future", underlying="SPX")


def test_expiry_is_a_date_that_stands_for_midnight_utc() -> None:
    assert parse_expiry(date(2024, 1, 2)) == date(2024, 1, 2)
    assert expiry_timestamp(date(2024, 1, 2)).isoformat() == "2024-01-02T00:00:00+00:00"
    with pytest.raises(InstrumentError, match="must be an ISO date"):
        option_terms(strike=1, expiry=20240102, right="call", style="european")


def test_instruments_are_immutable() -> None:
    spot = Instrument("AAPL", kind="equity")
    with pytest.raises(AttributeError):
        spot.multiplier = 2.0  # type: ignore[misc]
