"""Helpers for tests that feed real Kafka and run a service in a thread.

- :func:`price_messages`: a long price frame as ``prices`` topic messages.
- :func:`run_service_until`: run a service's blocking ``run`` loop in a thread until a
  condition holds or a deadline passes (the caller asserts the condition afterwards, with
  its own message).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from engine.boundary.schemas import PriceTick


class Runnable(Protocol):
    def run(self, *, stop: Callable[[], bool], **kwargs: Any) -> Any: ...


def tick_stamps(frame: pd.DataFrame) -> np.ndarray:
    """``frame``'s ``timestamp`` column (UTC datetimes) as int64 epoch milliseconds."""
    return frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)


def price_messages(frame: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """Rows ``timestamp, symbol, price`` as ``prices`` messages ``(symbol, PriceTick JSON)``.

    One message per row, in the frame's order; the key is the symbol, as the producers key.
    """
    return [
        (s.encode(), PriceTick(s, int(t), float(p)).to_json())
        for t, s, p in zip(tick_stamps(frame), frame["symbol"], frame["price"], strict=True)
    ]


def run_service_until(
    service: Runnable,
    until: Callable[[], bool],
    *,
    seconds: float,
    join_seconds: float,
    **run_kwargs: Any,
) -> None:
    """Run ``service.run(stop=..., **run_kwargs)`` in a thread until ``until()`` holds.

    The stop condition is polled by the service between polls of Kafka; it also stops
    after ``seconds`` of wall time. Blocks until the thread ends or ``join_seconds`` pass.
    Does not assert: the caller checks ``until()`` and says what it expected.
    """
    deadline = time.monotonic() + seconds
    thread = threading.Thread(
        target=service.run,
        kwargs={"stop": lambda: until() or time.monotonic() > deadline, **run_kwargs},
    )
    thread.start()
    thread.join(join_seconds)
