"""The per-tick work every row of ``riskstream bench compare`` does, as one plain function.

The naive Faust agent (:mod:`engine.bench.naive_faust`) and the peers
(:mod:`engine.bench.peers.quix`, :mod:`engine.bench.peers.bytewax_flow`) call
:func:`step` once per tick, in their framework's own state mechanism, so the
frameworks differ and the work does not. The rule is riskstream's
``RISKSTREAM_VOL_MODELS=ewma``, ``RISKSTREAM_VAR_METHOD=ewma-normal`` with the default
``alert_levels=(0.99,)``, operation for operation, so the alert ids of every row can be
compared with riskstream's own:

* return :math:`r_n = \\log(p_n / p_{n-1})` (decimal log returns);
* RiskMetrics EWMA variance, :math:`\\lambda = 0.94`, after a warm-up of 20 returns
  averaged as a plain mean of squares: the core's own recursion
  (:func:`engine.core.volatility.ewma.ewma_step`, as in
  :class:`~engine.core.volatility.ewma.EWMAVolatility`);
* normal VaR at 95% and 99% and ES at 97.5% of the next return, ``z * sigma``,
  published once 20 returns are in;
* a breach when the loss exceeds the 99% VaR forecast made *before* the return was known,
  :math:`-r_n > \\mathrm{VaR}_{0.99,\\,n|n-1}`: a ``var_breach`` alert with riskstream's id
  (:func:`engine.alerts.alert_id`) and fields (:meth:`engine.alerts.Alert.fields`),
  ``critical`` when the loss also exceeds the prior 97.5% ES.

The state is a three-item list ``[price, variance, returns seen]`` so that every
framework's serializer (Faust's and Quix Streams' JSON, bytewax's pickle) stores it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.alerts import Alert, alert_id
from engine.boundary.timeutil import parse_ts
from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP
from engine.core.volatility.ewma import ewma_step

LAMBDA = DEFAULT_LAMBDA
WARMUP = DEFAULT_WARMUP
Z_95 = 1.6448536269514722
Z_99 = 2.3263478740408408
ES_Z_975 = 2.3378027922014133
ALERT_LEVEL = 0.99
MODEL = "ewma-normal"
MODEL_VERSION = f"ewma-lambda{LAMBDA:g}-warmup{WARMUP}"
RISK_KEY = "riskstream:risk:{}"
ALERTS_STREAM = "riskstream:alerts"

State = list[Any]
"""``[last price, EWMA variance (decimal^2), returns seen]``."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One validated price tick (``ts`` in epoch milliseconds)."""

    symbol: str
    ts: int
    price: float
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Output:
    """What a tick writes to Redis: the latest risk hash and, on a breach, one alert.

    ``risk`` is the mapping of ``HSET riskstream:risk:<symbol>`` (``n_ticks`` included, so
    the latency observer of :mod:`engine.bench.e2e` works unchanged); ``alert`` is the
    alert's stream fields (:meth:`engine.alerts.Alert.fields`) or ``None``.
    """

    symbol: str
    risk: dict[Any, float | int]
    alert: dict[str, str] | None


def parse(doc: Any) -> Tick | None:
    """A decoded JSON tick as a :class:`Tick`, or ``None`` when it is not a valid one.

    Examples
    --------
    >>> parse({"symbol": "A", "ts": 1000, "price": 10.0, "event_id": "A-0"})
    Tick(symbol='A', ts=1000, price=10.0, event_id='A-0')
    >>> parse({"symbol": "A", "ts": 1000, "price": -1}) is None
    True
    """
    try:
        symbol = str(doc["symbol"])
        price = float(doc["price"])
        ts = parse_ts(doc["ts"])
    except (ValueError, KeyError, TypeError):
        return None
    if not math.isfinite(price) or price <= 0:
        return None
    event_id = doc.get("event_id")
    return Tick(symbol, ts, price, None if event_id is None else str(event_id))


def step(state: State | None, tick: Tick) -> tuple[State, Output]:
    """Advance a symbol's state by one tick; uses data up to and including this tick.

    Parameters
    ----------
    state : list or None
        The symbol's state after its previous tick (``None`` for its first tick). It is
        not mutated.
    tick : Tick
        The tick.

    Returns
    -------
    (list, Output)
        The new state, and the risk hash and optional alert to write.

    Examples
    --------
    >>> state, out = step(None, Tick("A", 0, 100.0, "A-0"))
    >>> state, out.risk["n_ticks"], out.alert
    ([100.0, 0.0, 0], 1, None)
    >>> for i in range(1, 22):
    ...     state, out = step(state, Tick("A", i, 100.0 * (1.001 if i % 2 else 1.0), f"A-{i}"))
    >>> state, out = step(state, Tick("A", 22, 90.0, "A-22"))
    >>> out.alert["kind"], out.alert["severity"], out.risk["n_ticks"]
    ('var_breach', 'critical', 23)
    """
    if state is None:
        new: State = [tick.price, 0.0, 0]
        return new, _output(tick, new, math.nan)
    price, var, n = state
    r = math.log(tick.price / price)
    sigma_before = math.sqrt(var) if n >= WARMUP else math.nan
    var, n = ewma_step(var, n, r, LAMBDA, WARMUP)
    new = [tick.price, var, n]
    return new, _output(tick, new, sigma_before, -r)


def _output(tick: Tick, state: State, sigma_before: float, loss: float = math.nan) -> Output:
    _, var, n = state
    sigma = math.sqrt(var) if n >= WARMUP else math.nan
    risk = {
        "ts": tick.ts,
        "price": tick.price,
        "sigma": sigma,
        "var_95": sigma * Z_95,
        "var_99": sigma * Z_99,
        "es_975": sigma * ES_Z_975,
        "n_ticks": n + 1,
    }
    var_before = sigma_before * Z_99
    if not loss > var_before:  # NaN (warm-up, first tick) is never a breach
        return Output(tick.symbol, risk, None)
    es_before = sigma_before * ES_Z_975
    event = tick.event_id or str(tick.ts)
    alert = Alert(
        alert_id=alert_id("var_breach", tick.symbol, f"{MODEL}@{ALERT_LEVEL:g}", event),
        kind="var_breach",
        subject=tick.symbol,
        ts=tick.ts,
        severity="critical" if loss > es_before else "warning",
        value=loss,
        threshold=var_before,
        model=MODEL,
        model_version=MODEL_VERSION,
        details={
            "level": ALERT_LEVEL,
            "event_id": tick.event_id,
            "price": tick.price,
            "sigma": sigma_before,
            "es": es_before,
        },
    )
    return Output(tick.symbol, risk, alert.fields())


def reference_alert_ids(docs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Alert ids of :func:`step` over ticks in order, in-process (a check on the rows).

    Only the order within each symbol matters, as in any keyed stream.
    """
    states: dict[str, State] = {}
    ids: set[str] = set()
    for doc in docs:
        tick = parse(doc)
        if tick is None:
            continue
        states[tick.symbol], out = step(states.get(tick.symbol), tick)
        if out.alert is not None:
            ids.add(out.alert["alert_id"])
    return ids
