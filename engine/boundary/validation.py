"""Validation at the boundary: raw records in, typed columns and dead letters out.

Nothing here raises on bad input. Every record in comes out either as a row of the
accepted columns or as a :class:`~engine.boundary.records.DeadLetter` with a :class:`Reason`
and a human-readable detail. Late and duplicate events are decided later, by the
sequencer in the risk core, because only the per-key state knows them.

The rules, in the order they are checked (the first failure is the reason):

prices, key = symbol
    value is UTF-8 JSON (``NaN``/``Infinity`` tokens are reported as ``non_finite``),
    an object, with ``symbol`` (printable text, 1-64 characters), ``ts`` (ISO 8601 or epoch
    milliseconds, not before 1970, at most ``max_future_skew_s`` ahead of now) and
    ``price`` (a finite number > 0); optional ``volume`` (finite, >= 0), ``rv`` (realized
    variance of the return ending at this tick, decimal^2: finite, >= 0), ``event_id``
    (text or integer, 1-128 characters), ``asset_class`` (text). The Kafka key must
    equal the symbol.
transactions, key = customer id
    ``tx_id`` and ``customer_id`` (printable text or integer), ``ts`` as above, ``amount`` (a
    finite number >= 0); optional ``terminal_id``, ``currency``, ``type``; any other
    field is kept as a feature if it is a finite number, text, boolean or null.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import orjson

from engine.boundary.records import DeadLetter, Reason, RecordLike
from engine.boundary.timeutil import parse_ts

MAX_ID_LEN = 128
#: Default largest record value accepted, in bytes (``RISKSTREAM_MAX_RECORD_BYTES``). A
#: tick is about 100 bytes and a transaction with features about 1 KB: anything near this
#: limit is a broken or hostile producer, and decoding it would cost the whole batch.
MAX_RECORD_BYTES = 65_536
MAX_SYMBOL_LEN = 64
MAX_TEXT_LEN = 256
TRANSACTION_FIELDS = frozenset(
    {"tx_id", "ts", "customer_id", "amount", "terminal_id", "currency", "type"}
)


class Refused(Exception):
    """Raised inside the checks; always caught here and turned into a dead letter."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def event_hash(event_id: str) -> int:
    """A stable, positive 63-bit hash of an event id (0 is reserved for "no id").

    Stable across processes, unlike :func:`hash`, because it is kept in persisted state.

    >>> event_hash("e-1") == event_hash("e-1") and event_hash("e-1") != event_hash("e-2")
    True
    """
    data = event_id.encode("utf-8")
    value = ((zlib.crc32(data) & 0x7FFFFFFF) << 32) | zlib.adler32(data)
    return value or 1


# --- decoding -----------------------------------------------------------------------------


def check_size(value: bytes | None, max_bytes: int) -> None:
    """Raise :class:`Refused` (``too_large``) for a value longer than ``max_bytes``."""
    if value is not None and len(value) > max_bytes:
        raise Refused(
            Reason.TOO_LARGE,
            f"value is {len(value):,} bytes, more than the limit of {max_bytes:,} "
            "(RISKSTREAM_MAX_RECORD_BYTES)",
        )


def load_object(value: bytes | None) -> dict[str, Any]:
    """Decode a message value into a JSON object, or raise :class:`Refused`."""
    if value is None:
        raise Refused(Reason.MALFORMED_JSON, "record has no value (tombstone)")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        obj = _load_nonstandard(value, exc)
    if not isinstance(obj, dict):
        raise Refused(
            Reason.NOT_AN_OBJECT, f"value is a JSON {type(obj).__name__}, expected an object"
        )
    return obj


def _load_nonstandard(value: bytes, exc: orjson.JSONDecodeError) -> Any:
    """Second chance for JSON carrying NaN/Infinity, so the reason names the real fault."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise Refused(Reason.MALFORMED_JSON, f"not valid UTF-8 JSON: {exc}") from None


def _number(obj: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Refused(Reason.MISSING_FIELD, f"field {name!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(
            Reason.WRONG_TYPE, f"field {name!r} is {type(value).__name__}, expected a number"
        )
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range (JSON allows any number of digits)
        number = math.inf
    if not math.isfinite(number):
        raise Refused(Reason.NON_FINITE, f"field {name!r} is {value!r}, expected a finite number")
    return number


def _identifier(obj: dict[str, Any], name: str, max_len: int, *, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Refused(Reason.MISSING_FIELD, f"field {name!r} is missing")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Refused(Reason.WRONG_TYPE, f"field {name!r} is {type(value).__name__}, expected text")
    if not value.strip() or len(value) > max_len or not value.isprintable():
        raise Refused(
            Reason.BAD_IDENTIFIER,
            f"field {name!r} must be 1-{max_len} printable, non-blank characters",
        )
    return value


def _timestamp(obj: dict[str, Any], latest_ms: int) -> int:
    if "ts" not in obj or obj["ts"] is None:
        raise Refused(Reason.MISSING_FIELD, "field 'ts' is missing")
    try:
        ts = parse_ts(obj["ts"])
    except ValueError as exc:
        raise Refused(Reason.BAD_TIMESTAMP, str(exc)) from None
    if ts > latest_ms:
        raise Refused(
            Reason.FUTURE_TIMESTAMP, f"ts {obj['ts']!r} is more than the allowed skew ahead of now"
        )
    return ts


def _check_key(key: bytes | None, expected: str, what: str) -> None:
    if key is None:
        raise Refused(Reason.KEY_MISMATCH, f"record has no key; it must be keyed by its {what}")
    if key != expected.encode("utf-8"):
        raise Refused(
            Reason.KEY_MISMATCH, f"key {key[:64]!r} is not the record's {what} {expected!r}"
        )


# --- prices -------------------------------------------------------------------------------


@dataclass(slots=True)
class PriceColumns:
    """Accepted price ticks of one micro-batch, in arrival order.

    ``ts`` is epoch milliseconds; ``event_hash`` is 0 where the tick has no event id.
    ``source`` keeps each tick's record so the sequencer's verdicts (late, duplicate)
    can still be dead-lettered with the original bytes.
    """

    symbols: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    price: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    volume: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    rv: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    """Realized variance supplied with the tick (decimal^2), NaN when absent."""
    event_ids: list[str | None] = field(default_factory=list)
    event_hash: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    partition: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    offset: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    source: list[RecordLike] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.symbols)


def check_price(
    obj: dict[str, Any], key: bytes | None, latest_ms: int
) -> tuple[str, int, float, float, float, str | None]:
    """Validate one decoded tick: ``(symbol, ts_ms, price, volume, rv, event_id)`` or :class:`Refused`."""
    symbol = _identifier(obj, "symbol", MAX_SYMBOL_LEN, required=True)
    assert symbol is not None
    ts = _timestamp(obj, latest_ms)
    price = _number(obj, "price", required=True)
    assert price is not None
    if price <= 0.0:
        raise Refused(Reason.NON_POSITIVE_PRICE, f"price {obj['price']!r} is not positive")
    volume = _number(obj, "volume", required=False)
    if volume is not None and volume < 0.0:
        raise Refused(Reason.NEGATIVE_VOLUME, f"volume {obj['volume']!r} is negative")
    rv = _number(obj, "rv", required=False)
    if rv is not None and rv < 0.0:
        raise Refused(Reason.WRONG_TYPE, f"rv {obj['rv']!r} is negative; realized variance is >= 0")
    event_id = _identifier(obj, "event_id", MAX_ID_LEN, required=False)
    asset_class = obj.get("asset_class")
    if asset_class is not None and (
        not isinstance(asset_class, str) or len(asset_class) > MAX_SYMBOL_LEN
    ):
        raise Refused(
            Reason.WRONG_TYPE, "field 'asset_class' must be text of at most 64 characters"
        )
    _check_key(key, symbol, "symbol")
    nan = math.nan
    return symbol, ts, price, nan if volume is None else volume, nan if rv is None else rv, event_id


_ISO_MS: dict[str, int] = {}
_ISO_CACHE_SIZE = 65_536
_MAX_PRICE = 1e300


def _iso_ms(text: str) -> int | None:
    """Epoch ms of ISO text, cached: the ticks of many symbols share a bar's timestamp."""
    ms = _ISO_MS.get(text)
    if ms is None:
        try:
            ms = parse_ts(text)
        except ValueError:
            return None
        if len(_ISO_MS) >= _ISO_CACHE_SIZE:
            _ISO_MS.clear()
        _ISO_MS[text] = ms
    return ms


def fast_price(
    obj: dict[str, Any], key: bytes | None, latest_ms: int
) -> tuple[str, int, float, float, float, str | None] | None:
    """The common, well-formed tick checked inline; ``None`` means "ask :func:`check_price`".

    Accepts exactly what :func:`check_price` accepts for the shapes it handles (a
    property test holds it to that), and hands anything unusual to it, which then
    names the fault.
    """
    symbol = obj.get("symbol")
    if type(symbol) is not str or not 0 < len(symbol) <= MAX_SYMBOL_LEN or key is None:
        return None
    if not symbol.isprintable() or not symbol.strip() or key != symbol.encode("utf-8"):
        return None
    price = obj.get("price")
    if type(price) is float:
        if not 0.0 < price < math.inf:
            return None
    elif type(price) is int:
        if not 0 < price < _MAX_PRICE:
            return None
        price = float(price)
    else:
        return None
    ts = obj.get("ts")
    if type(ts) is str:
        ms = _iso_ms(ts)
        if ms is None:
            return None
    elif type(ts) is int:
        ms = ts
        if ms < 0:
            return None
    else:
        return None
    if ms > latest_ms:
        return None
    volume = obj.get("volume")
    if volume is None:
        volume = math.nan
    elif type(volume) is float or type(volume) is int:
        volume = float(volume)
        if not 0.0 <= volume < math.inf:
            return None
    else:
        return None
    rv = obj.get("rv")
    if rv is None:
        rv = math.nan
    elif type(rv) is float or type(rv) is int:
        rv = float(rv)
        if not 0.0 <= rv < math.inf:
            return None
    else:
        return None
    event_id = obj.get("event_id")
    if event_id is not None:
        if type(event_id) is int:
            event_id = str(event_id)
        elif type(event_id) is not str:
            return None
        if (
            not 0 < len(event_id) <= MAX_ID_LEN
            or not event_id.isprintable()
            or not event_id.strip()
        ):
            return None
    asset_class = obj.get("asset_class")
    if asset_class is not None and (
        type(asset_class) is not str or len(asset_class) > MAX_SYMBOL_LEN
    ):
        return None
    return symbol, ms, price, volume, rv, event_id


class _Tick(msgspec.Struct):
    """The common shape of a tick, typed for msgspec (which rejects anything else, e.g. a
    boolean price, a NaN token or a lone surrogate: those records take the per-record path).

    Numbers stay ``int`` or ``float`` as sent, so that they are converted to float exactly
    as the reference checker converts them.
    """

    symbol: str
    ts: int | str
    price: int | float
    volume: int | float | None = None
    rv: int | float | None = None
    event_id: int | str | None = None
    asset_class: str | None = None


_TICK = msgspec.json.Decoder(_Tick)
#: orjson reads JSON integers in [-2**63, 2**64) as ``int`` and larger ones as ``float``
#: (msgspec keeps them ``int``): batches with such numbers take the per-record path.
_ORJSON_INT_MIN, _ORJSON_INT_END = -(2**63), 2**64


def _finite_at_least(values: list[Any], low: float, *, strict: bool) -> np.ndarray | None:
    """``values`` (numbers, or None for absent: NaN) as floats; None if any present one is
    not finite or not above ``low`` (``strict``) / at least ``low``."""
    try:
        column = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    except OverflowError:  # an integer beyond float range (JSON allows any number of digits)
        return None
    present = column[~np.isnan(column)]
    if not np.isfinite(present).all() or (np.abs(present) >= float(_ORJSON_INT_END)).any():
        return None
    if (present <= low).any() if strict else (present < low).any():
        return None
    return column


def _good_text(values: Sequence[str], max_len: int) -> bool:
    """Every value 1-``max_len`` printable characters, not all blank."""
    return (
        all(map(str.isprintable, values))
        and all(map(str.strip, values))
        and max(map(len, values), default=1) <= max_len
    )


def _decode_clean(
    records: Sequence[RecordLike], latest_ms: int, max_bytes: int = MAX_RECORD_BYTES
) -> PriceColumns | None:
    """The whole micro-batch at once, if every record is a valid tick of the common shape.

    ``None`` as soon as one is not: :func:`decode_prices` then takes every record of the
    batch through the per-record path, which names each fault. Accepts exactly what that
    path accepts, with the same values (a property test holds it to that). msgspec decodes
    into :class:`_Tick` about twice as fast as orjson builds a dict, and the checks run a
    column at a time instead of a record at a time.
    """
    decode = _TICK.decode
    ticks = []
    for record in records:
        if len(record.value or b"") > max_bytes:
            return None
        try:
            ticks.append(decode(record.value))
        except Exception:  # anything msgspec refuses (its errors vary): the per-record path
            return None
    symbols = [t.symbol for t in ticks]
    if [r.key for r in records] != [s.encode("utf-8") for s in symbols]:
        return None
    if not _good_text(list(set(symbols)), MAX_SYMBOL_LEN):
        return None
    price = _finite_at_least([t.price for t in ticks], 0.0, strict=True)
    volume = _finite_at_least([t.volume for t in ticks], 0.0, strict=False)
    rv = _finite_at_least([t.rv for t in ticks], 0.0, strict=False)
    if price is None or volume is None or rv is None:
        return None
    ms = [_iso_ms(x) if type(x) is str else x for x in (t.ts for t in ticks)]
    if None in ms:
        return None
    try:
        ts = np.array(ms, dtype=np.int64)
    except OverflowError:
        return None
    if (ts < 0).any() or (ts > latest_ms).any():
        return None
    event_ids = [t.event_id for t in ticks]
    numbered = [e for e in event_ids if type(e) is int]
    if numbered:
        if min(numbered) < _ORJSON_INT_MIN or max(numbered) >= _ORJSON_INT_END:
            return None
        event_ids = [str(e) if type(e) is int else e for e in event_ids]
    if not _good_text([e for e in event_ids if e is not None], MAX_ID_LEN):
        return None
    asset_classes = [t.asset_class for t in ticks if t.asset_class is not None]
    if max(map(len, asset_classes), default=0) > MAX_SYMBOL_LEN:
        return None
    return PriceColumns(
        symbols=symbols,
        ts=ts,
        price=price,
        volume=volume,
        rv=rv,
        event_ids=event_ids,
        event_hash=np.array([0 if e is None else event_hash(e) for e in event_ids], dtype=np.int64),
        partition=np.array([r.partition for r in records], dtype=np.int32),
        offset=np.array([r.offset for r in records], dtype=np.int64),
        source=list(records),
    )


def decode_prices(
    records: Sequence[RecordLike],
    *,
    topic: str = "prices",
    now_ms: int,
    max_future_skew_ms: int,
    max_bytes: int = MAX_RECORD_BYTES,
) -> tuple[PriceColumns, list[DeadLetter]]:
    """Split a micro-batch of raw price records into accepted columns and dead letters.

    Values longer than ``max_bytes`` are refused (``too_large``) before they are parsed.
    """
    latest = now_ms + max_future_skew_ms
    clean = _decode_clean(records, latest, max_bytes) if records else None
    if clean is not None:
        return clean, []
    return _decode_each(records, topic, latest, max_bytes)


def _decode_each(
    records: Sequence[RecordLike], topic: str, latest: int, max_bytes: int = MAX_RECORD_BYTES
) -> tuple[PriceColumns, list[DeadLetter]]:
    """Record by record: the common shape checked inline, anything else named by the checker."""
    symbols: list[str] = []
    ts: list[int] = []
    prices: list[float] = []
    volumes: list[float] = []
    rvs: list[float] = []
    event_ids: list[str | None] = []
    hashes: list[int] = []
    partitions: list[int] = []
    offsets: list[int] = []
    source: list[RecordLike] = []
    dead: list[DeadLetter] = []
    loads = orjson.loads
    decode_error = (orjson.JSONDecodeError, TypeError)
    for record in records:
        # Fast path: well-formed JSON object of the common shape. Anything else goes
        # through load_object/check_price, which name the fault.
        value, key = record.value, record.key
        if value is not None and len(value) > max_bytes:
            obj = None
        else:
            try:
                obj = loads(value)
            except decode_error:
                obj = None
        parsed = fast_price(obj, key, latest) if type(obj) is dict else None
        if parsed is None:
            try:
                check_size(value, max_bytes)
                parsed = check_price(load_object(value), key, latest)
            except Refused as refused:
                dead.append(DeadLetter.of(topic, record, refused.reason, refused.detail))
                continue
        symbol, t, price, volume, rv, event_id = parsed
        symbols.append(symbol)
        ts.append(t)
        prices.append(price)
        volumes.append(volume)
        rvs.append(rv)
        event_ids.append(event_id)
        hashes.append(0 if event_id is None else event_hash(event_id))
        partitions.append(record.partition)
        offsets.append(record.offset)
        source.append(record)
    columns = PriceColumns(
        symbols=symbols,
        ts=np.asarray(ts, dtype=np.int64),
        price=np.asarray(prices, dtype=np.float64),
        volume=np.asarray(volumes, dtype=np.float64),
        rv=np.asarray(rvs, dtype=np.float64),
        event_ids=event_ids,
        event_hash=np.asarray(hashes, dtype=np.int64),
        partition=np.asarray(partitions, dtype=np.int32),
        offset=np.asarray(offsets, dtype=np.int64),
        source=source,
    )
    return columns, dead


# --- transactions -------------------------------------------------------------------------


@dataclass(slots=True)
class TransactionColumns:
    """Accepted transactions of one micro-batch, in arrival order (amount in currency units)."""

    tx_ids: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    amount: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    terminals: list[str | None] = field(default_factory=list)
    currencies: list[str | None] = field(default_factory=list)
    types: list[str | None] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)
    tx_hash: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    partition: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    offset: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    source: list[RecordLike] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tx_ids)


def _extras(obj: dict[str, Any]) -> dict[str, Any]:
    # Dispatch on the exact type (a JSON decoder makes no subclasses): credit reviews carry
    # two dozen features, and this loop runs for every one of them.
    extras: dict[str, Any] = {}
    for name, value in obj.items():
        if name in TRANSACTION_FIELDS:
            continue
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or infinite
                raise Refused(
                    Reason.NON_FINITE, f"feature {name!r} is {value!r}, expected a finite number"
                )
        elif kind is int:
            if value.bit_length() > 1023 and not _fits_float(value):
                raise Refused(
                    Reason.NON_FINITE, f"feature {name!r} is an integer beyond the float range"
                )
        elif kind is str:
            if len(value) > MAX_TEXT_LEN:
                raise Refused(
                    Reason.WRONG_TYPE, f"feature {name!r} is longer than {MAX_TEXT_LEN} characters"
                )
        elif value is not None and kind is not bool:
            raise Refused(
                Reason.WRONG_TYPE,
                f"feature {name!r} is {kind.__name__}, expected a number, text, boolean or null",
            )
        extras[name] = value
    return extras


def _fits_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def check_transaction(obj: dict[str, Any], key: bytes | None, latest_ms: int) -> tuple[Any, ...]:
    """Validate one decoded transaction or raise :class:`Refused`."""
    tx_id = _identifier(obj, "tx_id", MAX_ID_LEN, required=True)
    customer = _identifier(obj, "customer_id", MAX_ID_LEN, required=True)
    assert customer is not None
    ts = _timestamp(obj, latest_ms)
    amount = _number(obj, "amount", required=True)
    assert amount is not None
    if amount < 0.0:
        raise Refused(Reason.NEGATIVE_AMOUNT, f"amount {obj['amount']!r} is negative")
    terminal = _identifier(obj, "terminal_id", MAX_ID_LEN, required=False)
    currency = _identifier(obj, "currency", 8, required=False)
    kind = _identifier(obj, "type", MAX_SYMBOL_LEN, required=False)
    extras = _extras(obj)
    _check_key(key, customer, "customer_id")
    return tx_id, customer, ts, amount, terminal, currency, kind, extras


def decode_transactions(
    records: Sequence[RecordLike],
    *,
    topic: str = "transactions",
    now_ms: int,
    max_future_skew_ms: int,
    max_bytes: int = MAX_RECORD_BYTES,
) -> tuple[TransactionColumns, list[DeadLetter]]:
    """Split a micro-batch of raw transaction records into accepted columns and dead letters
    (values longer than ``max_bytes`` refused as ``too_large`` before they are parsed)."""
    latest = now_ms + max_future_skew_ms
    out = TransactionColumns()
    ts: list[int] = []
    amounts: list[float] = []
    hashes: list[int] = []
    partitions: list[int] = []
    offsets: list[int] = []
    dead: list[DeadLetter] = []
    for record in records:
        try:
            check_size(record.value, max_bytes)
            tx_id, customer, t, amount, terminal, currency, kind, extras = check_transaction(
                load_object(record.value), record.key, latest
            )
        except Refused as refused:
            dead.append(DeadLetter.of(topic, record, refused.reason, refused.detail))
            continue
        out.tx_ids.append(tx_id)
        out.customers.append(customer)
        ts.append(t)
        amounts.append(amount)
        out.terminals.append(terminal)
        out.currencies.append(currency)
        out.types.append(kind)
        out.extras.append(extras)
        hashes.append(event_hash(tx_id))
        partitions.append(record.partition)
        offsets.append(record.offset)
        out.source.append(record)
    out.ts = np.asarray(ts, dtype=np.int64)
    out.amount = np.asarray(amounts, dtype=np.float64)
    out.tx_hash = np.asarray(hashes, dtype=np.int64)
    out.partition = np.asarray(partitions, dtype=np.int32)
    out.offset = np.asarray(offsets, dtype=np.int64)
    return out, dead
