"""Instruments as reference data at the boundary: the ``instruments`` topic and its file form.

The ``instruments`` topic is compacted: key = instrument id, value = one JSON object per
:func:`~engine.options.instruments.instrument_from_mapping` (``instrument``, ``kind``;
``underlying``, ``currency``, ``multiplier``, ``calendar``; ``expiry`` for futures and
options; ``strike``, ``right``, ``style`` for options), plus an optional ``vol``: the
option's annualised implied volatility (decimal, > 0), which overrides the underlying's
configured vol when the option is valued. The latest value of a key is the instrument; a
tombstone (a record without a value) deletes it.

Like every input, a record is validated here and never raises: it is either accepted or
becomes a :class:`~engine.boundary.records.DeadLetter` for ``instruments.dlq`` with a reason.
Reasons are :class:`~engine.boundary.records.Reason`'s closed set: ``too_large``,
``malformed_json``, ``not_an_object``, ``missing_field`` (also an option without its
terms, a future without an expiry), ``wrong_type`` (also a value
outside its field's set, such as ``kind: "swap"``, or a number outside its domain, such
as a multiplier of 0), ``non_finite``, ``bad_identifier``, ``non_positive_price`` (a
strike <= 0), ``bad_timestamp`` (an expiry that is not an ISO date) and ``key_mismatch``
(the key is not the instrument id).

The file form, for the offline commands, is a CSV: the ``riskstream options price``
instruments file (``instrument,underlying,strike,expiry,right,style``) with optional
columns ``kind`` (default ``option``), ``currency``, ``multiplier``, ``calendar`` and
``vol``; empty cells count as absent, so spot instruments leave the option columns empty.

>>> from engine.boundary.records import RawRecord
>>> ok = RawRecord(b"SPY", b'{"instrument": "SPY", "kind": "equity"}')
>>> bad = RawRecord(b"X", b'{"instrument": "X", "kind": "swap"}', offset=1)
>>> entries, dead = decode_instruments([ok, bad])
>>> entries[0].instrument.underlying, dead[0].reason.value
('SPY', 'wrong_type')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.boundary.records import DeadLetter, Reason, RecordLike
from engine.boundary.validation import (
    MAX_RECORD_BYTES,
    MAX_SYMBOL_LEN,
    Refused,
    _check_key,
    _identifier,
    _number,
    check_size,
    load_object,
)
from engine.errors import InputError
from engine.options.errors import InstrumentError
from engine.options.instruments import Instrument, instrument_from_mapping

INSTRUMENTS = "instruments"
_TEXT_FIELDS = ("kind", "underlying", "currency", "calendar", "expiry", "right", "style")
_NUMBER_FIELDS = ("strike", "multiplier", "vol")


@dataclass(frozen=True, slots=True)
class Listing:
    """One entry of the reference data: the instrument, or ``None`` when it was deleted.

    Attributes
    ----------
    key : str
        The instrument id.
    instrument : Instrument or None
        ``None`` for a tombstone (the instrument is withdrawn).
    vol : float or None
        The option's own implied vol (annualised decimal), if the record carries one.
    """

    key: str
    instrument: Instrument | None
    vol: float | None = None


def check_instrument(obj: dict[str, Any], key: bytes | None) -> Listing:
    """A decoded ``instruments`` message as a :class:`Listing`, or :class:`Refused`."""
    name = _identifier(obj, "instrument", MAX_SYMBOL_LEN, required=True)
    assert name is not None
    for field in _TEXT_FIELDS:
        _identifier(obj, field, MAX_SYMBOL_LEN, required=False)
    numbers = {field: _number(obj, field, required=False) for field in _NUMBER_FIELDS}
    for field, value in numbers.items():
        if value is not None and value <= 0.0:
            reason = Reason.NON_POSITIVE_PRICE if field == "strike" else Reason.WRONG_TYPE
            raise Refused(reason, f"field {field!r} is {value!r}, expected a number > 0")
    _check_key(key, name, "instrument id")
    try:
        instrument = instrument_from_mapping(obj)
    except InstrumentError as exc:
        text = str(exc)
        if "expiry" in text:
            reason = Reason.BAD_TIMESTAMP
        elif " missing" in text:
            reason = Reason.MISSING_FIELD
        else:
            reason = Reason.WRONG_TYPE
        raise Refused(reason, str(exc)) from None
    vol = numbers["vol"]
    if vol is not None and not instrument.is_option:
        raise Refused(Reason.WRONG_TYPE, f"{name}: only an option carries a vol")
    return Listing(name, instrument, vol)


def decode_instruments(
    records: Iterable[RecordLike], *, max_bytes: int = MAX_RECORD_BYTES
) -> tuple[list[Listing], list[DeadLetter]]:
    """Accepted listings in arrival order (tombstones included), and a dead letter per refusal.

    A tombstone needs a key that is a valid identifier; its listing has ``instrument``
    None.
    """
    accepted: list[Listing] = []
    dead: list[DeadLetter] = []
    for record in records:
        try:
            if record.value is None:
                key = _tombstone_key(record.key)
                accepted.append(Listing(key, None))
                continue
            check_size(record.value, max_bytes)
            accepted.append(check_instrument(load_object(record.value), record.key))
        except Refused as exc:
            dead.append(DeadLetter.of(INSTRUMENTS, record, exc.reason, exc.detail))
    return accepted, dead


def _tombstone_key(key: bytes | None) -> str:
    try:
        text = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise Refused(Reason.KEY_MISMATCH, "a tombstone needs the instrument id as its key")
    name = _identifier({"instrument": text}, "instrument", MAX_SYMBOL_LEN, required=True)
    assert name is not None
    return name


def read_instrument_file(path: Path | str) -> list[Listing]:
    """The instruments of a CSV file (see the module docstring), validated, in file order.

    Raises
    ------
    InputError
        Naming the file, the row (the header is row 1) and what is wrong; also for an
        instrument id that appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such instruments file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the instruments file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV instruments file ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "instrument" not in table.columns:
        raise InputError(f"{path}: missing column instrument")
    if table.empty:
        raise InputError(f"{path}: the instruments file has a header but no rows")
    listings: list[Listing] = []
    seen: set[str] = set()
    for row, record in enumerate(table.to_dict("records"), start=2):
        fields = {k: v.strip() for k, v in record.items() if isinstance(v, str) and v.strip()}
        fields.setdefault("kind", "option")
        name = fields.get("instrument", "")
        try:
            instrument = instrument_from_mapping(fields)
            vol = _file_vol(fields.get("vol"), instrument)
        except InstrumentError as exc:
            raise InputError(f"{path}, row {row}: {exc}") from None
        if name in seen:
            raise InputError(f"{path}, row {row}: instrument {name!r} appears more than once")
        seen.add(name)
        listings.append(Listing(name, instrument, vol))
    return listings


def _file_vol(text: str | None, instrument: Instrument) -> float | None:
    if text is None:
        return None
    try:
        vol = float(text)
    except ValueError:
        vol = math.nan
    if not (math.isfinite(vol) and vol > 0.0):
        raise InstrumentError(f"{instrument.instrument}: vol {text!r} must be a finite number > 0")
    if not instrument.is_option:
        raise InstrumentError(f"{instrument.instrument}: only an option carries a vol")
    return vol
