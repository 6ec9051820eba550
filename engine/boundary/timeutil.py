"""Timestamps at the boundary: ISO 8601 or epoch milliseconds in, epoch milliseconds inside.

Inside riskstream every event time is an ``int`` of milliseconds since the Unix epoch,
UTC. Text leaves as ISO 8601 with a ``Z`` suffix.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def parse_ts(value: object) -> int:
    """Parse an event timestamp into epoch milliseconds.

    Accepts an ``int`` or ``float`` of epoch milliseconds, or an ISO 8601 string (a
    string without an offset is taken as UTC). Raises :class:`ValueError` with a
    message fit for a dead letter otherwise.

    >>> parse_ts("2019-11-05T09:30:00Z")
    1572946200000
    >>> parse_ts(1572946200000)
    1572946200000
    >>> parse_ts("2019-11-05 09:30:00.250+01:00")
    1572942600250
    """
    if isinstance(value, bool):
        raise ValueError("ts is a boolean, expected ISO 8601 text or epoch milliseconds")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"ts {value!r} is not finite")
        ms = round(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ts {value[:64]!r} is not ISO 8601 or epoch milliseconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        ms = (parsed - _EPOCH) // _MS
    else:
        raise ValueError(
            f"ts has type {type(value).__name__}, expected ISO 8601 text or epoch milliseconds"
        )
    if ms < 0:
        raise ValueError(f"ts {value!r} is before 1970")
    return ms


_FORMATTED: dict[int, str] = {}


def format_ts(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC text; milliseconds shown only when non-zero.

    Memoised per second: snapshots of many symbols share a bar's timestamp.

    >>> format_ts(1572946200000)
    '2019-11-05T09:30:00Z'
    >>> format_ts(1572946200250)
    '2019-11-05T09:30:00.250Z'
    """
    seconds, millis = divmod(int(ms), 1000)
    text = _FORMATTED.get(seconds)
    if text is None:
        if len(_FORMATTED) >= 65_536:
            _FORMATTED.clear()
        text = _FORMATTED[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
