"""The streaming portfolio service: ``prices`` and ``positions`` from Kafka, risk to Redis.

Portfolio risk needs every symbol, while the workers shard symbols across partitions, so
one service instance reads *all* partitions of ``prices`` and ``positions`` (its own
assignment, no consumer-group rebalancing) and runs the same
:class:`~engine.core.portfolio.PortfolioBook` as ``riskstream portfolio var``.

Event time, not arrival order, decides the grid. Partitions advance at different speeds,
so ticks wait in a buffer until the *watermark* (the smallest latest timestamp over the
price partitions that have data) has moved past their bucket; they are then released to
the book sorted by timestamp. The book therefore sees what the offline command sees for
the same ticks (a file sorted by time), whatever the partitioning and the fetch sizes,
and produces the same numbers (a test proves it). A partition silent for ``idle_s``
seconds stops holding the watermark back.

Exactly-once effects: after each poll, one Redis ``MULTI`` writes the outputs (hash
``riskstream:portfolio:<id>``) together with the service's whole state: the book, the
buffer and the next offset of every partition. A restarted service loads that state and
seeks to those offsets, so nothing is applied twice and nothing is skipped.

``positions`` is a table: at start the service reads it to its end before any price, so
positions known at start take effect at their timestamps; a position arriving later takes
effect from the first close after it arrives (at or after its timestamp). Refused
``positions`` messages go to ``positions.dlq`` (flushed before the state is written, so
at least once). Refused ``prices`` are skipped here and counted: the workers already
dead-letter them.

Stress (optional, a :class:`~engine.stress.live.StressMonitor`): after a poll that
released ticks, every portfolio's scenario P&L is recomputed (throttled in event time)
on the book's latest close and written in the same ``MULTI`` as hash
``riskstream:stress:<id>``, with ``stress_limit`` alerts appended to
``riskstream:alerts`` (and published on ``riskstream:alerts:live``) and the monitor's
state saved with the rest: an alert is written exactly once, across restarts.
Prometheus gauges (:class:`StressMetrics`) follow the worst P&L of each portfolio. With
the Greeks monitor (below), option positions are in the stress too, each option repriced
in every scenario cell (:mod:`engine.stress.option_pnl`); without it the service has no
reference data, treats every symbol as a spot position and so cannot see options.

Greeks (optional, a :class:`~engine.options.live.GreeksMonitor`): the service also reads
the compacted ``instruments`` topic (from its beginning at every start, before
``positions``; refused records go to ``instruments.dlq``). A position whose symbol is an
option instrument is valued by the monitor and kept out of the linear book (it has no
price series); every position also reaches the monitor, so spot hedges count in delta.
After a poll that released ticks, when due (throttled in event time), each option
portfolio's Greeks at the newest released tick, on the book's latest prices, are written
in the same ``MULTI`` as hash ``riskstream:greeks:<id>`` (replaced whole), with
``greek_limit`` alerts and the monitor's state; :class:`GreeksMetrics` follows them.

Currencies (a book with a ``base_currency``, ``instruments=True``): the service reads the
``instruments`` topic the same way (with or without Greeks) and gives every listing to
the book (:func:`~engine.portfolio.positions.apply_listings`, as the offline command does): the
symbols' currencies, the FX pairs and the 24/7 calendars. The hash then also holds
``currency`` and ``fx_missing`` (see :func:`portfolio_fields`).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from engine.alerts import Alert
from engine.boundary.timeutil import format_ts, now_ms
from engine.boundary.validation import decode_prices
from engine.config import Settings, level_label
from engine.core.portfolio import Allocation, PortfolioBook
from engine.kafka.topics import INSTRUMENTS, POSITIONS, PRICES
from engine.options.greeks import GreeksSnapshot
from engine.options.live import GreeksMonitor, greeks_fields
from engine.options.reference import decode_instruments
from engine.portfolio.positions import Position, apply_listings, decode_positions
from engine.stress.live import StressMonitor, StressSnapshot, snapshot_fields
from engine.stress.option_pnl import OptionHoldings

log = logging.getLogger(__name__)

STATE_KEY = "riskstream:portfolio-service:state"
HASH_PREFIX = "riskstream:portfolio:"
STRESS_PREFIX = "riskstream:stress:"
GREEKS_PREFIX = "riskstream:greeks:"
ALERTS_STREAM = "riskstream:alerts"
ALERTS_CHANNEL = "riskstream:alerts:live"


@dataclass
class Watermark:
    """Event-time progress of each price partition (epoch ms) and when it last moved.

    A partition known to hold unread ticks but not heard from yet (``latest`` None)
    holds time back until it delivers or has been silent for ``idle_s``.
    """

    latest: dict[int, int | None] = field(default_factory=dict)
    seen_at: dict[int, float] = field(default_factory=dict)

    def expect(self, partition: int, now: float) -> None:
        self.latest.setdefault(partition, None)
        self.seen_at[partition] = now

    def advance(self, partition: int, ts: int, now: float) -> None:
        previous = self.latest.get(partition)
        self.latest[partition] = ts if previous is None else max(previous, ts)
        self.seen_at[partition] = now

    def value(self, now: float, idle_s: float) -> int | None:
        """The smallest latest timestamp over partitions heard from within ``idle_s``."""
        active = [ts for p, ts in self.latest.items() if now - self.seen_at[p] <= idle_s]
        if not active or any(ts is None for ts in active):
            return None
        return min(ts for ts in active if ts is not None)


def buffer_prices(
    messages: Sequence[Any],
    partition: int,
    buffer: list[tuple[int, int, int, str, float]],
    watermark: Watermark,
    now: float,
    *,
    skew_ms: int,
    max_bytes: int,
) -> int:
    """Decode one price partition's polled records into ``buffer`` and move the watermark.

    Each valid tick is appended as ``(ts, partition, offset, symbol, price)`` (epoch ms,
    Kafka offset) and advances ``watermark`` for ``partition`` (``now``: monotonic
    seconds). Returns the number of records refused by validation: skipped and counted
    here, since the workers already dead-letter them.
    """
    cols, dead = decode_prices(
        messages, now_ms=now_ms(), max_future_skew_ms=skew_ms, max_bytes=max_bytes
    )
    for ts, offset, symbol, price in zip(
        cols.ts.tolist(), cols.offset.tolist(), cols.symbols, cols.price.tolist(), strict=True
    ):
        buffer.append((ts, partition, offset, symbol, price))
        watermark.advance(partition, ts, now)
    return len(dead)


@dataclass
class ServiceState:
    """What survives a restart: the book, ticks waiting for the watermark, next offsets."""

    book: PortfolioBook
    buffer: list[tuple[int, int, int, str, float]] = field(default_factory=list)
    """``(ts, partition, offset, symbol, price)`` of ticks not yet released."""
    offsets: dict[str, int] = field(default_factory=dict)
    """``"<topic>:<partition>"`` -> next offset to read."""
    closes: int = 0
    latest: dict[str, int | None] = field(default_factory=dict)
    """The watermark's latest timestamp per price partition (``"<partition>"`` keys)."""
    stress: dict[str, Any] | None = None
    """The stress monitor's state (:meth:`StressMonitor.to_state`), when there is one."""
    greeks: dict[str, Any] | None = None
    """The Greeks monitor's state (:meth:`GreeksMonitor.to_state`), when there is one."""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "book": self.book.to_state(),
                "buffer": self.buffer,
                "offsets": self.offsets,
                "closes": self.closes,
                "latest": self.latest,
                "stress": self.stress,
                "greeks": self.greeks,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> ServiceState:
        doc = orjson.loads(data)
        return cls(
            PortfolioBook.from_state(doc["book"]),
            [tuple(t) for t in doc["buffer"]],  # type: ignore[misc]
            doc["offsets"],
            doc["closes"],
            doc["latest"],
            doc.get("stress"),
            doc.get("greeks"),
        )


def portfolio_fields(allocations: Sequence[Allocation]) -> dict[str, dict[str, str]]:
    """Redis hash fields per portfolio from one close's allocations (all levels).

    ``var_<level>``/``es_<level>`` per level, ``value``, ``ts`` (ISO) and ``components``:
    JSON ``[{"symbol", "exposure", "marginal_var", "component_var"}]`` at the highest
    level, largest contribution first. In a book with a base currency, ``symbols`` are the
    risk factors (FX pairs included), and two more fields: ``currency`` (the base
    currency of every amount) and ``fx_missing`` (the currencies without a rate,
    ``;``-separated; empty when every rate is known; otherwise value, VaR and ES are
    ``nan`` and ``components`` is empty).
    """
    out: dict[str, dict[str, str]] = {}
    for a in allocations:
        fields = out.setdefault(
            a.portfolio, {"ts": format_ts(a.ts_ms), "ts_ms": str(a.ts_ms), "value": repr(a.value)}
        )
        if a.currency is not None:
            fields["currency"] = a.currency
            fields["fx_missing"] = ";".join(a.missing_fx)
        label = level_label(a.level)
        fields[f"var_{label}"] = repr(a.var)
        fields[f"es_{label}"] = repr(a.es)
        fields["components"] = orjson.dumps(
            sorted(
                (
                    {
                        "symbol": s,
                        "exposure": float(x),
                        "marginal_var": float(m),
                        "component_var": float(c),
                    }
                    for s, x, m, c in zip(
                        a.symbols, a.exposure, a.marginal, a.component, strict=True
                    )
                ),
                key=lambda d: -abs(d["component_var"]),
            )
        ).decode()
    return out


class PortfolioService:
    """Consume, release by watermark, run the book, write outputs and state atomically."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: Any,
        book_factory: Callable[[], PortfolioBook],
        positions: Sequence[Position] = (),
        idle_s: float = 30.0,
        poll_ms: int = 200,
        max_records: int = 20_000,
        stress: StressMonitor | None = None,
        stress_metrics: StressMetrics | None = None,
        greeks: GreeksMonitor | None = None,
        greeks_metrics: GreeksMetrics | None = None,
        instruments: bool = False,
    ) -> None:
        self.settings = settings
        self.read_instruments = instruments or greeks is not None
        self.stress = stress
        self.greeks = greeks
        self.greeks_metrics = greeks_metrics
        self.stress_metrics = stress_metrics
        self.released_ms: int | None = None
        self.redis = redis
        self.idle_s = idle_s
        self.poll_ms = poll_ms
        self.max_records = max_records
        self.watermark = Watermark()
        self.refused_prices = 0
        self.dead_letters = 0
        saved = redis.get(STATE_KEY)
        if saved is not None:
            self.state = ServiceState.from_json(saved)
            log.info("portfolio service: resumed after %d closes", self.state.closes)
        else:
            self.state = ServiceState(book_factory())
            for p in positions:
                self._set_position(p)
        if stress is not None:
            stress.restore(self.state.stress)
        if greeks is not None:
            greeks.restore(self.state.greeks)
            self.state.greeks = greeks.to_state()

    # ---- Kafka -------------------------------------------------------------------------

    def _clients(self) -> tuple[Any, Any, Any]:
        from engine.kafka.clients import kafka_python_config

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import kafka
        config = kafka_python_config(self.settings)
        consumer = kafka.KafkaConsumer(
            **config,
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=self.max_records,
        )
        producer = kafka.KafkaProducer(**config, linger_ms=5)
        return kafka, consumer, producer

    def _assign(self, kafka: Any, consumer: Any, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        tps = []
        for topic in self._topics():
            while not (parts := consumer.partitions_for_topic(topic)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {topic!r} does not exist")
                time.sleep(0.5)
            tps += [kafka.TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        now = time.monotonic()
        for p, ts in self.state.latest.items():
            self.watermark.advance(int(p), ts, now) if ts is not None else None
        ends = consumer.end_offsets([tp for tp in tps if tp.topic == PRICES])
        for tp, end in ends.items():
            if end > self.state.offsets.get(f"{PRICES}:{tp.partition}", 0):
                self.watermark.expect(tp.partition, now)
        for tp in tps:
            offset = self.state.offsets.get(f"{tp.topic}:{tp.partition}")
            if offset is None or tp.topic == INSTRUMENTS:  # a table: re-read whole at start
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)

    def _topics(self) -> tuple[str, ...]:
        return (PRICES, POSITIONS, INSTRUMENTS) if self.read_instruments else (PRICES, POSITIONS)

    def _load_positions(self, consumer: Any, producer: Any, timeout_s: float = 60.0) -> None:
        """Read the tables to their ends before any price: ``instruments`` (with Greeks
        or currencies) first, then ``positions``, each loaded whole at start."""
        tables = [INSTRUMENTS, POSITIONS] if self.read_instruments else [POSITIONS]
        for table in tables:
            tps = [tp for tp in consumer.assignment() if tp.topic == table]
            others = [tp for tp in consumer.assignment() if tp.topic != table]
            ends = consumer.end_offsets(tps)
            consumer.pause(*others)
            deadline = time.monotonic() + timeout_s
            try:
                while any(consumer.position(tp) < end for tp, end in ends.items()):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"loading {table} took longer than {timeout_s}s")
                    self.step(consumer.poll(timeout_ms=self.poll_ms), producer)
            finally:
                consumer.resume(*others)

    # ---- the loop ----------------------------------------------------------------------

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        on_output: Callable[[list[Allocation]], None] | None = None,
    ) -> None:
        """Poll until ``stop()`` is true; every poll ends with outputs and state in Redis."""
        from engine.kafka.topics import ensure_topics

        extra = (INSTRUMENTS, f"{INSTRUMENTS}.dlq") if self.read_instruments else ()
        ensure_topics(self.settings, (f"{POSITIONS}.dlq", *extra))
        kafka, consumer, producer = self._clients()
        try:
            self._assign(kafka, consumer)
            self._load_positions(consumer, producer)
            while not stop():
                out = self.step(consumer.poll(timeout_ms=self.poll_ms), producer)
                if out and on_output is not None:
                    on_output(out)
        finally:
            consumer.close()
            producer.close()

    def step(self, polled: dict[Any, list[Any]], producer: Any) -> list[Allocation]:
        """One poll's records through the book; returns the allocations it produced."""
        now = time.monotonic()
        skew = int(self.settings.validation.max_future_skew_s * 1000)
        max_bytes = self.settings.validation.max_record_bytes
        positions: list[Position] = []
        for tp, messages in sorted(polled.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
            if not messages:
                continue
            self.state.offsets[f"{tp.topic}:{tp.partition}"] = messages[-1].offset + 1
            if tp.topic == INSTRUMENTS:
                listings, dead_listings = decode_instruments(messages, max_bytes=max_bytes)
                if self.greeks is not None:
                    self.greeks.apply(listings)
                if self.state.book.base_currency is not None:
                    apply_listings(self.state.book, listings)
                for letter in dead_listings:
                    producer.send(
                        letter.dlq_topic,
                        key=letter.key,
                        value=letter.value,
                        headers=letter.headers(),
                    )
                self.dead_letters += len(dead_listings)
            elif tp.topic == POSITIONS:
                accepted, dead = decode_positions(
                    messages, now_ms=now_ms(), max_future_skew_ms=skew, max_bytes=max_bytes
                )
                positions += accepted
                for letter in dead:
                    producer.send(
                        letter.dlq_topic,
                        key=letter.key,
                        value=letter.value,
                        headers=letter.headers(),
                    )
                self.dead_letters += len(dead)
            else:
                self.refused_prices += buffer_prices(
                    messages,
                    tp.partition,
                    self.state.buffer,
                    self.watermark,
                    now,
                    skew_ms=skew,
                    max_bytes=max_bytes,
                )
        for p in positions:
            self._set_position(p)
        self.state.latest = {str(p): ts for p, ts in self.watermark.latest.items()}
        self.released_ms = None
        out = self._release(self.watermark.value(now, self.idle_s))
        snapshots, alerts = self._stress()
        greeks, greek_alerts = self._greeks()
        if polled:
            producer.flush(30)
            self._write(out, snapshots, [*alerts, *greek_alerts], greeks)
        return out

    def _set_position(self, p: Position) -> None:
        """Every position to the Greeks monitor; to the linear book unless it is an option."""
        if self.greeks is not None:
            self.greeks.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
            self.state.greeks = self.greeks.to_state()
            if self.greeks.is_option(p.symbol):
                return
        self.state.book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)

    def _greeks(self) -> tuple[list[GreeksSnapshot], list[Alert]]:
        """Option portfolios' Greeks when ticks were released and a recomputation is due."""
        if self.greeks is None or self.released_ms is None:
            return [], []
        if not self.greeks.due(self.released_ms):
            return [], []
        start = time.perf_counter()
        book = self.state.book
        covariance = book_covariance(book) if self.greeks.var_scenarios else None
        snapshots, alerts = self.greeks.evaluate(
            book_spots(book), self.released_ms, covariance=covariance, horizon_ms=book.interval_ms
        )
        self.state.greeks = self.greeks.to_state()
        if self.greeks_metrics is not None:
            self.greeks_metrics.observe(snapshots, alerts, time.perf_counter() - start)
        return snapshots, alerts

    def _stress(self) -> tuple[list[StressSnapshot], list[Alert]]:
        """Scenario P&L of every portfolio when ticks were released and a recomputation is due."""
        if self.stress is None or self.released_ms is None:
            return [], []
        if not self.stress.due(self.released_ms):
            return [], []
        start = time.perf_counter()
        options = None
        close_ms = self.state.book.last_close_ms
        if self.greeks is not None and close_ms is not None:
            # the option positions and their reference data, valued at the latest close (the
            # newest tick in it), the time of the prices the stress moves
            held = self.greeks.held(close_ms)
            self.state.greeks = self.greeks.to_state()
            g = self.greeks
            options = OptionHoldings(held, g.instruments, g.vols, g.markets, close_ms)
        snapshots, alerts = self.stress.evaluate(self.state.book, self.released_ms, options)
        self.state.stress = self.stress.to_state()
        if self.stress_metrics is not None:
            self.stress_metrics.observe(snapshots, alerts, time.perf_counter() - start)
        return snapshots, alerts

    def _release(self, watermark: int | None) -> list[Allocation]:
        if watermark is None or not self.state.buffer:
            return []
        edge = (watermark // self.state.book.interval_ms) * self.state.book.interval_ms
        ready = sorted(t for t in self.state.buffer if t[0] < edge)
        if not ready:
            return []
        self.state.buffer = [t for t in self.state.buffer if t[0] >= edge]
        self.released_ms = ready[-1][0]
        out = self.state.book.on_ticks(
            [t[3] for t in ready],
            np.array([t[0] for t in ready], np.int64),
            np.array([t[4] for t in ready]),
        )
        self.state.closes += len({a.ts_ms for a in out})
        return out

    def _write(
        self,
        allocations: Sequence[Allocation],
        snapshots: Sequence[StressSnapshot] = (),
        alerts: Sequence[Alert] = (),
        greeks: Sequence[GreeksSnapshot] = (),
    ) -> None:
        pipe = self.redis.pipeline(transaction=True)
        queue_outputs(
            pipe, allocations, snapshots, alerts, self.settings.stream.alerts_maxlen, greeks
        )
        pipe.set(STATE_KEY, self.state.to_json())
        pipe.execute()


def queue_outputs(
    pipe: Any,
    allocations: Sequence[Allocation],
    snapshots: Sequence[StressSnapshot],
    alerts: Sequence[Alert],
    alerts_maxlen: int,
    greeks: Sequence[GreeksSnapshot] = (),
) -> None:
    """Queue one poll's outputs on a Redis pipeline (the caller adds its state and executes).

    Hash ``riskstream:greeks:<id>`` per Greeks snapshot (replaced whole,
    :func:`~engine.options.live.greeks_fields`), hash ``riskstream:stress:<id>`` per
    stress snapshot (replaced whole), each alert on the
    ``riskstream:alerts`` stream and channel, and hash ``riskstream:portfolio:<id>`` with
    each portfolio's latest close among ``allocations``.
    """
    for g in greeks:
        pipe.delete(GREEKS_PREFIX + g.portfolio)  # an underlying may have gone: no stale fields
        pipe.hset(GREEKS_PREFIX + g.portfolio, mapping=greeks_fields(g))
    for snap in snapshots:
        key = STRESS_PREFIX + snap.portfolio
        pipe.delete(key)  # the library may have changed: no stale scenario fields
        pipe.hset(key, mapping=snapshot_fields(snap))
    for alert in alerts:
        pipe.xadd(ALERTS_STREAM, alert.fields(), maxlen=alerts_maxlen, approximate=True)
        pipe.publish(ALERTS_CHANNEL, orjson.dumps(alert.to_json()))
    # a poll may close several buckets: the hash keeps the latest close per portfolio
    latest: dict[str, list[Allocation]] = {}
    for a in allocations:
        kept = latest.setdefault(a.portfolio, [])
        if kept and kept[0].ts_ms != a.ts_ms:
            kept.clear()
        kept.append(a)
    for portfolio, fields in portfolio_fields(
        [a for kept in latest.values() for a in kept]
    ).items():
        pipe.hset(HASH_PREFIX + portfolio, mapping=fields)


class StressMetrics:
    """Prometheus metrics of the streaming stress: worst P&L per portfolio, alerts, time.

    ``riskstream_stress_worst_pnl{portfolio}`` (currency, negative = loss) and
    ``riskstream_stress_pnl{portfolio,scenario}`` for the scenarios that are not grid
    cells (grids would multiply the series), ``riskstream_stress_limit_alerts_total`` and
    ``riskstream_stress_recompute_seconds``.
    """

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.worst = Gauge(
            "riskstream_stress_worst_pnl",
            "Worst scenario P&L of the portfolio (currency units, negative is a loss).",
            ["portfolio"],
            registry=registry,
        )
        self.pnl = Gauge(
            "riskstream_stress_pnl",
            "Scenario P&L of the portfolio (currency units; grid cells left out).",
            ["portfolio", "scenario"],
            registry=registry,
        )
        self.alerts = Counter(
            "riskstream_stress_limit_alerts",
            "stress_limit alerts raised (a portfolio's worst scenario loss crossed the limit).",
            registry=registry,
        )
        self.seconds = Histogram(
            "riskstream_stress_recompute_seconds",
            "Wall-clock time of one recomputation of every portfolio's scenario P&L.",
            registry=registry,
        )
        self._labels: dict[str, set[str]] = {}

    def observe(
        self, snapshots: Sequence[StressSnapshot], alerts: Sequence[Alert], seconds: float
    ) -> None:
        for snap in snapshots:
            self.worst.labels(snap.portfolio).set(snap.worst[1])
            names = self._labels.setdefault(snap.portfolio, set())
            for name, value in zip(snap.names, snap.pnl, strict=True):
                if ":" not in name:
                    self.pnl.labels(snap.portfolio, name).set(float(value))
                    names.add(name)
        self.alerts.inc(len(alerts))
        self.seconds.observe(seconds)

    def forget(self, portfolio: str) -> None:
        """Drop a portfolio's series (it moved to another instance, which reports it now)."""
        names = self._labels.pop(portfolio, None)
        if names is None:
            return
        self.worst.remove(portfolio)
        for name in names:
            self.pnl.remove(portfolio, name)


def book_spots(book: PortfolioBook) -> dict[str, float]:
    """The latest price of every symbol the book has seen (its last released tick)."""
    return {
        symbol: float(book.last_price[i])
        for symbol, i in book.index.items()
        if np.isfinite(book.last_price[i])
    }


def book_covariance(book: PortfolioBook) -> tuple[list[str], np.ndarray] | None:
    """The book's EWMA covariance of grid log returns over the symbols with ``min_obs`` returns."""
    n = len(book.cov.count)
    ready = [
        s
        for s in book.symbols
        if book.index[s] < n and book.cov.count[book.index[s]] >= book.min_obs
    ]
    if not ready:
        return None
    slots = [book.index[s] for s in ready]
    return ready, book.cov.matrix()[np.ix_(slots, slots)]


class GreeksMetrics:
    """Prometheus metrics of the streamed Greeks.

        ``riskstream_portfolio_greek{portfolio,greek}`` (currency: delta per 1.00 relative
        move, gamma per (1.00 relative move)^2, vega and rho per 1.00, theta per year, and
        ``value``), ``riskstream_portfolio_underlying_delta{portfolio,underlying}`` (currency),
        ``riskstream_portfolio_options_var_gap{portfolio}`` (delta-gamma minus full-revaluation
    VaR of the options, currency), ``riskstream_greek_limit_alerts_total`` and
    ``riskstream_greeks_recompute_seconds``.
    """

    GREEKS = ("value", "delta", "gamma", "vega", "theta", "rho")

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.greek = Gauge(
            "riskstream_portfolio_greek",
            "Portfolio Greek in currency (delta per 1.00 relative move, vega/rho per 1.00, theta per year).",
            ["portfolio", "greek"],
            registry=registry,
        )
        self.delta = Gauge(
            "riskstream_portfolio_underlying_delta",
            "Delta of the portfolio to one underlying, currency per 1.00 relative move.",
            ["portfolio", "underlying"],
            registry=registry,
        )
        self.var_gap = Gauge(
            "riskstream_portfolio_options_var_gap",
            "Delta-gamma minus full-revaluation VaR of the portfolio's options (currency).",
            ["portfolio"],
            registry=registry,
        )
        self.alerts = Counter(
            "riskstream_greek_limit_alerts",
            "greek_limit alerts raised (|delta| or |vega| of a portfolio crossed its limit).",
            registry=registry,
        )
        self.seconds = Histogram(
            "riskstream_greeks_recompute_seconds",
            "Wall-clock time of one recomputation of every option portfolio's Greeks.",
            registry=registry,
        )

    def observe(
        self, snapshots: Sequence[GreeksSnapshot], alerts: Sequence[Alert], seconds: float
    ) -> None:
        for snap in snapshots:
            for name in self.GREEKS:
                self.greek.labels(snap.portfolio, name).set(snap.total(name))
            for u, v in zip(snap.underlyings, snap.by_underlying["delta"], strict=True):
                self.delta.labels(snap.portfolio, u).set(float(v))
            if snap.var is not None:
                self.var_gap.labels(snap.portfolio).set(snap.var.var_gap)
        self.alerts.inc(len(alerts))
        self.seconds.observe(seconds)
