"""Instruments as reference data: what a symbol is, before anything is priced.

An :class:`Instrument` says what kind of thing a position holds (``equity``, ``index``,
``fx``, ``crypto``, ``future`` or ``option``), which risk factor moves it (its
``underlying``), the currency its price is quoted in, the contract ``multiplier`` (units
of underlying per contract: 100 for a US equity option, 1 for a share) and the
``calendar`` it trades on. Options carry :class:`OptionTerms`: strike, expiry, right and
exercise style; futures carry an expiry.

Conventions:

- ``expiry`` is a calendar date; the contract expires at 00:00 UTC that day (as the
  ``riskstream options price`` contract states), see :func:`expiry_timestamp`.
- ``strike`` is in the price currency per unit of underlying, strictly positive.
- Spot instruments (``equity``, ``index``, ``fx``, ``crypto``) are their own risk factor:
  their ``underlying`` is absent or their own name, and they have no expiry or option terms.
- ``calendar`` is an exchange-calendars name (``XNYS``, ``XLON``...) or ``24/5`` (FX) or
  ``24/7`` (crypto); only its form is checked here.

Every constructor validates and raises :class:`~engine.options.errors.InstrumentError`
naming the field and the valid values, so a bad record can be dead-lettered with a reason.

>>> terms = option_terms(strike=105, expiry="2024-06-21", right="call", style="european")
>>> spx = Instrument("SPX 2024-06-21 C105", kind="option", underlying="SPX", currency="USD",
...                  multiplier=100, calendar="XNYS", option=terms)
>>> spx.option.expiry, spx.is_option
(datetime.date(2024, 6, 21), True)
>>> instrument_from_mapping({"instrument": "BTCUSD", "kind": "crypto", "currency": "USD",
...                          "calendar": "24/7"}).underlying
'BTCUSD'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, get_args

from engine.options.errors import InstrumentError

InstrumentKind = Literal["equity", "index", "fx", "crypto", "future", "option"]
OptionRight = Literal["call", "put"]
ExerciseStyle = Literal["european", "american"]

KINDS: tuple[str, ...] = get_args(InstrumentKind)
RIGHTS: tuple[str, ...] = get_args(OptionRight)
STYLES: tuple[str, ...] = get_args(ExerciseStyle)
SPOT_KINDS: frozenset[str] = frozenset({"equity", "index", "fx", "crypto"})

_CURRENCY = re.compile(r"[A-Z][A-Z0-9]{2,4}")  # ISO 4217 (USD) and crypto codes (USDT)
_CALENDAR = re.compile(r"(24/5|24/7|[A-Z0-9][A-Z0-9_-]{1,15})")


@dataclass(frozen=True, slots=True)
class OptionTerms:
    """The terms of a listed vanilla option.

    Attributes
    ----------
    strike : float
        Strike in the price currency per unit of underlying, > 0.
    expiry : datetime.date
        Expiry date; the option expires at 00:00 UTC that day.
    right : {"call", "put"}
    style : {"european", "american"}
        Exercise style: at expiry only, or at any time up to expiry.
    """

    strike: float
    expiry: date
    right: OptionRight
    style: ExerciseStyle

    @property
    def is_call(self) -> bool:
        """True for a call."""
        return self.right == "call"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One instrument of the reference data; validated on construction.

    Attributes
    ----------
    instrument : str
        Identifier, unique in the reference data (the position's symbol).
    kind : {"equity", "index", "fx", "crypto", "future", "option"}
    underlying : str
        The risk factor whose price moves the instrument; for a spot kind, itself (the
        default when omitted).
    currency : str
        Currency of the instrument's price (ISO 4217 code or a crypto code such as USDT).
    multiplier : float
        Units of underlying per contract, > 0 (1 for spot instruments, often 100 for
        equity options).
    calendar : str
        Trading calendar: an exchange-calendars name, ``24/5`` or ``24/7``.
    option : OptionTerms or None
        Present exactly when ``kind == "option"``.
    expiry : datetime.date or None
        A future's expiry; for an option, its terms' expiry.
    """

    instrument: str
    kind: InstrumentKind
    underlying: str = ""
    currency: str = "USD"
    multiplier: float = 1.0
    calendar: str = "XNYS"
    option: OptionTerms | None = None
    expiry: date | None = None

    def __post_init__(self) -> None:
        name = _identifier(self.instrument, "instrument")
        if self.kind not in KINDS:
            raise InstrumentError(f"{name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise InstrumentError(
                f"{name}: currency {self.currency!r} must be an upper-case code such as USD or USDT"
            )
        if not isinstance(self.calendar, str) or not _CALENDAR.fullmatch(self.calendar):
            raise InstrumentError(
                f"{name}: calendar {self.calendar!r} must be an exchange-calendars name "
                "(XNYS, XLON...), 24/5 or 24/7"
            )
        multiplier = _positive(self.multiplier, f"{name}: multiplier")
        object.__setattr__(self, "multiplier", multiplier)
        if self.kind in SPOT_KINDS:
            self._check_spot(name)
        elif self.kind == "future":
            self._check_derivative(name)
            if self.option is not None:
                raise InstrumentError(f"{name}: a future has no option terms")
            if self.expiry is None:
                raise InstrumentError(f"{name}: a future needs an expiry")
        else:
            self._check_derivative(name)
            if self.option is None:
                raise InstrumentError(f"{name}: an option needs strike, expiry, right and style")
            if self.expiry not in (None, self.option.expiry):
                raise InstrumentError(f"{name}: expiry differs from the option's expiry")
            object.__setattr__(self, "expiry", self.option.expiry)

    def _check_spot(self, name: str) -> None:
        if self.underlying in ("", self.instrument):
            object.__setattr__(self, "underlying", self.instrument)
        else:
            raise InstrumentError(
                f"{name}: a {self.kind} instrument is its own underlying, got {self.underlying!r}"
            )
        if self.option is not None or self.expiry is not None:
            raise InstrumentError(f"{name}: a {self.kind} instrument has no expiry or option terms")

    def _check_derivative(self, name: str) -> None:
        underlying = _identifier(self.underlying, f"{name}: underlying")
        if underlying == self.instrument:
            raise InstrumentError(f"{name}: a {self.kind} cannot be its own underlying")

    @property
    def is_option(self) -> bool:
        """True for an option."""
        return self.option is not None


def option_terms(*, strike: object, expiry: object, right: object, style: object) -> OptionTerms:
    """Validated :class:`OptionTerms` from loosely typed values (strings from a file or a message).

    Raises
    ------
    InstrumentError
        Naming the field: a strike that is not a finite positive number, an expiry that is
        not an ISO date, a right other than call/put, a style other than european/american.

    >>> option_terms(strike="95.5", expiry="2025-01-17", right="put", style="american")
    OptionTerms(strike=95.5, expiry=datetime.date(2025, 1, 17), right='put', style='american')
    >>> option_terms(strike=95, expiry="2025-01-17", right="straddle", style="european")
    Traceback (most recent call last):
    ...
    engine.options.errors.InstrumentError: right 'straddle' is not one of call, put
    """
    checked_right = _choice(right, "right", RIGHTS)
    checked_style = _choice(style, "style", STYLES)
    return OptionTerms(
        strike=_positive(strike, "strike"),
        expiry=parse_expiry(expiry),
        right=checked_right,  # type: ignore[arg-type]
        style=checked_style,  # type: ignore[arg-type]
    )


def instrument_from_mapping(record: Mapping[str, object]) -> Instrument:
    """An :class:`Instrument` from a mapping (a decoded ``instruments`` message or CSV row).

    Keys: ``instrument``, ``kind`` (required); ``underlying``, ``currency`` (default USD),
    ``multiplier`` (default 1), ``calendar`` (default XNYS); ``expiry`` for futures and
    options; ``strike``, ``right``, ``style`` for options. Empty strings count as absent.
    """

    def get(key: str) -> object:
        value = record.get(key)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        return value.strip() if isinstance(value, str) else value

    name = _identifier(get("instrument"), "instrument")
    kind = _choice(get("kind"), f"{name}: kind", KINDS)
    option = None
    expiry = None
    try:
        if kind == "option":
            option = option_terms(
                strike=get("strike"), expiry=get("expiry"), right=get("right"), style=get("style")
            )
        else:
            extra = [k for k in ("strike", "right", "style") if get(k) is not None]
            if extra:
                raise InstrumentError(f"{kind} instruments have no {', '.join(extra)}")
            if get("expiry") is not None:
                expiry = parse_expiry(get("expiry"))
    except InstrumentError as exc:
        raise InstrumentError(f"{name}: {exc}") from None
    multiplier = get("multiplier")
    return Instrument(
        instrument=name,
        kind=kind,  # type: ignore[arg-type]
        underlying=str(get("underlying") or ""),
        currency=str(get("currency") or "USD"),
        multiplier=1.0 if multiplier is None else _positive(multiplier, f"{name}: multiplier"),
        calendar=str(get("calendar") or "XNYS"),
        option=option,
        expiry=expiry,
    )


def parse_expiry(value: object) -> date:
    """An expiry date from a :class:`~datetime.date` or an ISO ``YYYY-MM-DD`` string.

    >>> parse_expiry("2024-12-20")
    datetime.date(2024, 12, 20)
    """
    if isinstance(value, datetime):
        raise InstrumentError(f"expiry {value.isoformat()!r} must be a date, not a timestamp")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    shown = "missing" if value is None else repr(value)
    raise InstrumentError(f"expiry {shown} must be an ISO date like 2024-12-20")


def expiry_timestamp(expiry: date) -> datetime:
    """The instant an expiry date stands for: 00:00 UTC that day.

    >>> expiry_timestamp(date(2024, 12, 20)).isoformat()
    '2024-12-20T00:00:00+00:00'
    """
    return datetime(expiry.year, expiry.month, expiry.day, tzinfo=UTC)


def _identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or value.strip() == "":
        raise InstrumentError(f"{what} is missing: a non-empty name is required")
    if value != value.strip():
        raise InstrumentError(f"{what} {value!r} has leading or trailing spaces")
    return value


def _choice(value: object, what: str, valid: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in valid:
        return value
    shown = "missing" if value is None else repr(value)
    raise InstrumentError(f"{what} {shown} is not one of {', '.join(valid)}")


def _positive(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0.0):
        shown = "missing" if value is None else repr(value)
        raise InstrumentError(f"{what} {shown} must be a finite number > 0")
    return number
