"""The portfolio service scaled out: N instances of a consumer group share the portfolios.

``positions`` (key = portfolio) is consumed by a Kafka consumer group, so each instance
*owns* the portfolios of the ``positions`` partitions assigned to it. ``prices`` are needed
by every portfolio, so every instance reads every ``prices`` partition (its own
assignment) and keeps its own copy of the *market*: the grid, the EWMA covariance and the
last closes of :class:`~engine.core.portfolio.PortfolioBook`, released by the same
event-time watermark as the single-instance service (:mod:`engine.portfolio.service`). The
market is a function of the prices alone, so every instance's market is the same at the
same grid close; a portfolio's numbers depend only on that market and its own positions,
and are those of ``riskstream portfolio var`` / ``riskstream stress run``.

State in Redis, under ``riskstream:portfolio-group:<group>:``, written in one ``MULTI``
with the outputs after every poll:

- ``positions:<p>``, one per ``positions`` partition: the next offset to read, the grid
  close its portfolios are as of (the *stamp*) and, per portfolio, the book's state
  (held and pending positions, last exposures) and whether it is in stress breach.
- ``markets`` (hash) and ``markets:index`` (sorted set, score = close): market snapshots
  at grid closes, one every ``snapshot_every`` closes, the newest ``keep_snapshots`` kept.
  A snapshot holds the book without portfolios, the unreleased ticks, the next offset of
  every ``prices`` partition, the watermark and the stress throttle, so any instance can
  continue the market from any snapshot.
- ``epoch:<p>``: a fencing token. An instance assigned partition ``p`` increments it and
  writes only while it still holds the value it got (``WATCH``), so an instance that lost
  ``p`` (paused past its session timeout) can no longer write ``p``'s state or outputs.

What moves on a rebalance: every instance, on every new assignment, drops its portfolios,
claims its partitions and reloads their state from ``positions:<p>``. Its market must not
be past any partition's stamp (the closes after the stamp are the ones still to compute
for that partition): if it is, it goes back to the newest snapshot at or before the
smallest stamp (or to the start of ``prices`` when there is none), and a fresh instance
jumps forward to such a snapshot instead of replaying all prices. A partition waits
(*parked*) until the market reaches its stamp and is then put into the book, so each close
of each portfolio is computed once: by the instance that owned it then. Positions are
rebuilt from the checkpoint plus the partition from its saved offset on (from the start
when there is no checkpoint), not from a compacted topic: the key is the portfolio and a
message carries one holding, so compaction would keep only a portfolio's last holding.
After a new assignment the owned ``positions`` partitions are read to their end before
any price, as at start.

Stress is evaluated at grid closes (throttled to one every ``every_ms`` of event time,
counted from the first close), not at polls, so which closes are evaluated, the snapshots
and the ``stress_limit`` alert ids (portfolio, limit, close) do not depend on poll
boundaries, restarts or which instance computed them. With the Greeks monitor, the owned
portfolios' option positions effective at the close are revalued in every scenario cell
(in the base currency with one), valued at the close's time, as the single service does.

Greeks (optional, a :class:`~engine.options.live.GreeksMonitor`) follow the same rule: at
a grid close (throttled in event time, the throttle saved with the market snapshots),
every owned portfolio holding options gets its ``riskstream:greeks:<id>`` hash at the
newest released tick, on the market's latest prices, as the single-instance service
computes it; option positions stay out of the linear book, and each portfolio's option
holdings, pending positions and crossed ``greek_limit`` limits move with its partition
state. Reference data (with Greeks or a base currency): every instance reads the whole
compacted ``instruments`` topic (its own assignment) before anything else at start, then
follows it; listings go to the monitor and to the market's book (currencies, FX pairs,
calendars), and are applied again to a market loaded from a snapshot. Each instance
dead-letters a refused instrument record (at least once per instance). Nothing is lost or doubled across a
rebalance or a ``kill -9``: the outputs of a close are written with the state that
follows it, in one transaction, by the partition's current owner only.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from engine.alerts import Alert
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.core.portfolio import Allocation, PortfolioBook
from engine.kafka.topics import INSTRUMENTS, POSITIONS, PRICES
from engine.options.greeks import GreeksSnapshot
from engine.options.live import GreeksMonitor
from engine.options.reference import Listing, decode_instruments
from engine.portfolio.positions import START_MS, Position, apply_listings, decode_positions
from engine.portfolio.service import (
    GreeksMetrics,
    StressMetrics,
    Watermark,
    book_covariance,
    book_spots,
    buffer_prices,
    queue_outputs,
)
from engine.stress.live import StressMonitor, StressSnapshot
from engine.stress.option_pnl import OptionHoldings

log = logging.getLogger(__name__)

PREFIX = "riskstream:portfolio-group:"
CONFIG = ("version", "interval_ms", "lam", "levels", "min_obs", "nu")
"""Book settings a market snapshot must share with this instance's book to be used."""


class Fenced(Exception):
    """Another instance has claimed a partition this one was writing."""


def partition_of(portfolio: str, partitions: int) -> int:
    """The ``positions`` partition of a portfolio id under Kafka's default partitioner.

    >>> partition_of("main", 1)
    0
    """
    from kafka.partitioner.default import murmur2

    return (murmur2(portfolio.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class Part:
    """One owned ``positions`` partition: where it stands and, while parked, its portfolios.

    ``stamp`` is the grid close (epoch ms; ``START_MS`` before any) the portfolios' state
    is as of. ``parked`` holds ``{portfolio: {"book": ..., "breached": bool}}`` until the
    market reaches the stamp; ``None`` once the portfolios are in the book.
    """

    partition: int
    offset: int
    token: int
    stamp: int
    names: set[str] = field(default_factory=set)
    parked: dict[str, dict[str, Any]] | None = None


def _empty_portfolio() -> dict[str, Any]:
    return {
        "book": {"positions": {}, "pending": [], "exposures": None},
        "breached": False,
        "greeks": _empty_greeks(),
    }


def _empty_greeks() -> dict[str, Any]:
    """A portfolio without options: :meth:`GreeksMonitor.portfolio_state`'s form."""
    return {"positions": {}, "pending": [], "breached": []}


#: What one release produced: allocations, stress and Greeks snapshots, alerts.
Released = tuple[
    list[Allocation], dict[str, StressSnapshot], dict[str, GreeksSnapshot], list[Alert]
]


class PortfolioGroupService:
    """One instance of a scaled-out portfolio service (see the module docstring).

    Parameters
    ----------
    group
        Kafka consumer group id; also names the Redis state (``riskstream:portfolio-group:<group>:``).
    positions
        Initial positions (e.g. a file); each goes to the partition its portfolio id maps
        to, and is used only when that partition has no saved state yet.
    snapshot_every, keep_snapshots
        A market snapshot every ``snapshot_every`` grid closes; the newest
        ``keep_snapshots`` are kept. More often means shorter replays after a rebalance.
    session_timeout_ms
        Kafka group session timeout: how long a killed instance's partitions wait before
        they move.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        redis: Any,
        book_factory: Callable[[], PortfolioBook],
        group: str,
        positions: Sequence[Position] = (),
        idle_s: float = 30.0,
        poll_ms: int = 200,
        max_records: int = 20_000,
        stress: StressMonitor | None = None,
        stress_metrics: StressMetrics | None = None,
        snapshot_every: int = 10,
        keep_snapshots: int = 20,
        session_timeout_ms: int = 10_000,
        greeks: GreeksMonitor | None = None,
        greeks_metrics: GreeksMetrics | None = None,
        instruments: bool = False,
    ) -> None:
        if snapshot_every < 1 or keep_snapshots < 1:
            raise ValueError("snapshot_every and keep_snapshots must be at least 1")
        self.settings = settings
        self.redis = redis
        self.book_factory = book_factory
        self.group = group
        self.prefix = f"{PREFIX}{group}:"
        self.initial = list(positions)
        self.idle_s = idle_s
        self.poll_ms = poll_ms
        self.max_records = max_records
        self.stress = stress
        self.stress_metrics = stress_metrics
        self.greeks = greeks
        self.greeks_metrics = greeks_metrics
        self.read_instruments = instruments or greeks is not None
        self.listings: dict[str, Listing] = {}
        """The latest ``instruments`` record of each key (applied again to a loaded market)."""
        self.reference: Any = None
        """The ``instruments`` consumer (own assignment), when reading reference data."""
        self.snapshot_every = snapshot_every
        self.keep_snapshots = keep_snapshots
        self.session_timeout_ms = session_timeout_ms
        self.config = {k: book_factory().to_state()[k] for k in CONFIG}
        # the market
        self.book = book_factory()
        self.buffer: list[tuple[int, int, int, str, float]] = []
        self.price_offsets: dict[int, int] = {}
        self.watermark = Watermark()
        self.closes = 0
        self.snapshot_closes = -snapshot_every
        # the portfolios
        self.parts: dict[int, Part] = {}
        self.ready = False
        self.loading: dict[int, int] | None = None
        self.rebalanced = threading.Event()
        """Set by the client's I/O thread when partitions are assigned."""
        self.revoked = threading.Event()
        """Set when a rebalance starts: stop, poll the group until the assignment."""
        self.refused_prices = 0
        self.dead_letters = 0
        self.rebalances = 0

    # ---- keys --------------------------------------------------------------------------

    def _part_key(self, partition: int) -> str:
        return f"{self.prefix}positions:{partition}"

    def _epoch_key(self, partition: int) -> str:
        return f"{self.prefix}epoch:{partition}"

    @property
    def _markets(self) -> str:
        return f"{self.prefix}markets"

    @property
    def _index(self) -> str:
        return f"{self.prefix}markets:index"

    # ---- Kafka -------------------------------------------------------------------------

    def _clients(self) -> tuple[Any, Any, Any, Any]:
        from engine.kafka.clients import kafka_python_config

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import kafka
        config = kafka_python_config(self.settings)
        owner = self

        class Listener(kafka.ConsumerRebalanceListener):
            """Runs on the client's I/O thread: only flags the change for the loop."""

            def on_partitions_revoked(self, revoked: Any) -> None:
                owner.revoked.set()

            def on_partitions_assigned(self, assigned: Any) -> None:
                owner.rebalanced.set()

        members = kafka.KafkaConsumer(
            **config,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_records,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 6, 100),
        )
        members.subscribe([POSITIONS], listener=Listener())
        prices = kafka.KafkaConsumer(
            **config, group_id=None, enable_auto_commit=False, max_poll_records=self.max_records
        )
        producer = kafka.KafkaProducer(**config, linger_ms=5)
        return kafka, members, prices, producer

    def _seek_prices(self, kafka: Any, prices: Any, timeout_s: float = 60.0) -> None:
        """Every ``prices`` partition, from the market's offsets; the watermark to match."""
        deadline = time.monotonic() + timeout_s
        while not (parts := prices.partitions_for_topic(PRICES)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {PRICES!r} does not exist")
            time.sleep(0.5)
        tps = [kafka.TopicPartition(PRICES, p) for p in sorted(parts)]
        if set(prices.assignment()) != set(tps):
            prices.assign(tps)
        now = time.monotonic()
        latest = dict(self.watermark.latest)
        self.watermark = Watermark()
        for p, ts in latest.items():
            if ts is not None:
                self.watermark.advance(p, ts, now)
        for tp, end in prices.end_offsets(tps).items():
            if end > self.price_offsets.get(tp.partition, 0):
                self.watermark.expect(tp.partition, now)
        for tp in tps:
            offset = self.price_offsets.get(tp.partition)
            if offset is None:
                prices.seek_to_beginning(tp)
            else:
                prices.seek(tp, offset)

    # ---- the loop ----------------------------------------------------------------------

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        on_output: Callable[[list[Allocation]], None] | None = None,
    ) -> None:
        """Poll until ``stop()`` is true; every poll ends with outputs and state in Redis.

        Prices wait until the group has given this instance its first assignment (maybe
        empty: more instances than partitions) and its partitions are read to their end.
        """
        from engine.kafka.topics import ensure_topics

        extra = (INSTRUMENTS, f"{INSTRUMENTS}.dlq") if self.read_instruments else ()
        ensure_topics(self.settings, (f"{POSITIONS}.dlq", *extra))
        kafka, members, prices, producer = self._clients()
        try:
            if self.read_instruments:
                self._load_reference(kafka, producer)
            self._seek_prices(kafka, prices)
            while not stop():
                out = self._iterate(kafka, members, prices, producer)
                if out and on_output is not None:
                    on_output(out)
        finally:
            members.close()
            prices.close()
            producer.close()
            if self.reference is not None:
                self.reference.close()

    # ---- reference data ----------------------------------------------------------------

    def _load_reference(self, kafka: Any, producer: Any, timeout_s: float = 60.0) -> None:
        """Read the whole ``instruments`` topic before anything else (then follow it)."""
        from engine.kafka.clients import kafka_python_config

        self.reference = kafka.KafkaConsumer(
            **kafka_python_config(self.settings), group_id=None, enable_auto_commit=False
        )
        deadline = time.monotonic() + timeout_s
        while not (parts := self.reference.partitions_for_topic(INSTRUMENTS)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {INSTRUMENTS!r} does not exist")
            time.sleep(0.5)
        tps = [kafka.TopicPartition(INSTRUMENTS, p) for p in sorted(parts)]
        self.reference.assign(tps)
        self.reference.seek_to_beginning(*tps)
        ends = self.reference.end_offsets(tps)
        while any(self.reference.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"loading {INSTRUMENTS} took longer than {timeout_s}s")
            self._follow_reference(producer, self.poll_ms)

    def _follow_reference(self, producer: Any, timeout_ms: int = 0) -> None:
        """New ``instruments`` records to the Greeks monitor and the market's book."""
        polled = self.reference.poll(timeout_ms=timeout_ms)
        for _, messages in sorted(polled.items(), key=lambda kv: kv[0].partition):
            listings, dead = decode_instruments(
                messages, max_bytes=self.settings.validation.max_record_bytes
            )
            for listing in listings:
                self.listings[listing.key] = listing
            if self.greeks is not None:
                self.greeks.apply(listings)
            if self.book.base_currency is not None:
                apply_listings(self.book, listings)
            for letter in dead:
                producer.send(
                    letter.dlq_topic, key=letter.key, value=letter.value, headers=letter.headers()
                )
            self.dead_letters += len(dead)

    def _iterate(self, kafka: Any, members: Any, prices: Any, producer: Any) -> list[Allocation]:
        # while prices flow the group is only glanced at; a rebalance needs long polls (a
        # join left pending by short polls with work between them never completes)
        busy = self.ready and self.loading is None
        polled = members.poll(timeout_ms=10 if busy else self.poll_ms)
        if self.rebalanced.is_set():
            self.rebalanced.clear()  # what this poll returned is read again from the checkpoints
            self.revoked.clear()
            self._reassign(kafka, members, prices)
            return []
        if self.revoked.is_set():
            self.ready = False  # nothing processed or written until the new assignment
        if not self.ready:
            return []
        if self.reference is not None:
            self._follow_reference(producer)
        changed = self._positions(polled, producer)
        if self.loading is not None:
            try:
                done = all(
                    members.position(kafka.TopicPartition(POSITIONS, p)) >= end
                    for p, end in self.loading.items()
                )
            except kafka.errors.IllegalStateError:  # a partition went: a rebalance is under way
                return []
            if done:
                self.loading = None
            if changed:
                self._commit(producer, ([], {}, {}, []))
            return []
        ticks = prices.poll(timeout_ms=self.poll_ms)
        released = self._prices(ticks)
        if changed or ticks:
            self._commit(producer, released)
        return released[0]

    def _commit(self, producer: Any, released: Released) -> None:
        out, snapshots, greeks, alerts = released
        producer.flush(30)
        try:
            self._write(out, list(snapshots.values()), alerts, list(greeks.values()))
        except Fenced as exc:
            log.warning("portfolio group %s: %s; waiting for the rebalance", self.group, exc)
            self._drop_all()
            self.parts.clear()
            self.ready = False

    # ---- positions ---------------------------------------------------------------------

    def _positions(self, polled: dict[Any, list[Any]], producer: Any) -> bool:
        """Owned partitions' position messages into the book or their parked portfolios."""
        changed = False
        skew = int(self.settings.validation.max_future_skew_s * 1000)
        for tp, messages in sorted(polled.items(), key=lambda kv: kv[0].partition):
            part = self.parts.get(tp.partition)
            messages = [m for m in messages if part is not None and m.offset >= part.offset]
            if part is None or not messages:
                continue
            changed = True
            part.offset = messages[-1].offset + 1
            accepted, dead = decode_positions(
                messages,
                now_ms=now_ms(),
                max_future_skew_ms=skew,
                max_bytes=self.settings.validation.max_record_bytes,
            )
            for p in accepted:
                self._set_position(part, p)
            for letter in dead:
                producer.send(
                    letter.dlq_topic, key=letter.key, value=letter.value, headers=letter.headers()
                )
            self.dead_letters += len(dead)
        return changed

    def _set_position(self, part: Part, p: Position) -> None:
        """Every position to the Greeks monitor; to the linear book unless it is an option."""
        part.names.add(p.portfolio)
        option = self.greeks is not None and self.greeks.is_option(p.symbol)
        if part.parked is None:
            if self.greeks is not None:
                self.greeks.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
            if not option:
                self.book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
        else:
            held = part.parked.setdefault(p.portfolio, _empty_portfolio())
            if self.greeks is not None:
                pending = held.setdefault("greeks", _empty_greeks())["pending"]
                pending.append([p.ts, p.portfolio, p.symbol, p.quantity])
            if not option:
                held["book"]["pending"].append([p.ts, p.symbol, p.quantity])

    # ---- prices ------------------------------------------------------------------------

    def _prices(self, polled: dict[Any, list[Any]]) -> Released:
        now = time.monotonic()
        skew = int(self.settings.validation.max_future_skew_s * 1000)
        for tp, messages in sorted(polled.items(), key=lambda kv: kv[0].partition):
            if not messages:
                continue
            self.price_offsets[tp.partition] = messages[-1].offset + 1
            self.refused_prices += buffer_prices(
                messages,
                tp.partition,
                self.buffer,
                self.watermark,
                now,
                skew_ms=skew,
                max_bytes=self.settings.validation.max_record_bytes,
            )
        return self._release(self.watermark.value(now, self.idle_s))

    def _release(self, watermark: int | None) -> Released:
        """Ticks before the watermark's bucket to the book, one bucket at a time.

        After each grid close: the stress of the portfolios in the book and their Greeks
        at the bucket's newest tick (each when due), then the parked partitions whose
        stamp the market has reached join the book.
        """
        out: list[Allocation] = []
        snapshots: dict[str, StressSnapshot] = {}
        greeks: dict[str, GreeksSnapshot] = {}
        alerts: list[Alert] = []
        interval = self.book.interval_ms
        if watermark is None or not self.buffer:
            return out, snapshots, greeks, alerts
        edge = (watermark // interval) * interval
        ready = sorted(t for t in self.buffer if t[0] < edge)
        if not ready:
            return out, snapshots, greeks, alerts
        self.buffer = [t for t in self.buffer if t[0] >= edge]
        ts = np.array([t[0] for t in ready], np.int64)
        cuts = np.flatnonzero(np.diff(ts // interval)) + 1
        for chunk in np.split(np.arange(len(ready)), cuts):
            before = self.book.last_close_ms
            out += self.book.on_ticks(
                [ready[k][3] for k in chunk], ts[chunk], np.array([ready[k][4] for k in chunk])
            )
            close = self.book.last_close_ms
            if close is None or close == before:
                continue
            self.closes += 1
            if self.stress is not None and self.stress.due(close):
                start = time.perf_counter()
                options = None
                if self.greeks is not None:
                    # the option positions effective at the close, valued at its time (as
                    # the single service does)
                    g = self.greeks
                    options = OptionHoldings(g.held(close), g.instruments, g.vols, g.markets, close)
                snaps, fired = self.stress.evaluate(self.book, close, options)
                snapshots.update((s.portfolio, s) for s in snaps)
                alerts += fired
                if self.stress_metrics is not None:
                    self.stress_metrics.observe(snaps, fired, time.perf_counter() - start)
            newest = int(ts[chunk[-1]])
            if self.greeks is not None and self.greeks.due(newest):
                start = time.perf_counter()
                covariance = book_covariance(self.book) if self.greeks.var_scenarios else None
                found, fired = self.greeks.evaluate(
                    book_spots(self.book),
                    newest,
                    covariance=covariance,
                    horizon_ms=self.book.interval_ms,
                )
                greeks.update((g.portfolio, g) for g in found)
                alerts += fired
                if self.greeks_metrics is not None:
                    self.greeks_metrics.observe(found, fired, time.perf_counter() - start)
            for part in self.parts.values():
                if part.parked is not None and self._bucket(part.stamp) <= self._bucket(close):
                    self._install(part)
        return out, snapshots, greeks, alerts

    def _bucket(self, ts: int | None) -> int:
        return (START_MS if ts is None else ts) // self.book.interval_ms

    def _install(self, part: Part) -> None:
        """A parked partition's portfolios into the book (the market is at its stamp)."""
        assert part.parked is not None
        if self._bucket(self.book.last_close_ms) > self._bucket(part.stamp):
            log.warning(
                "positions partition %d joins at close %s, after its stamp %s",
                part.partition,
                self.book.last_close_ms,
                part.stamp,
            )
        for name, held in part.parked.items():
            self.book.put_portfolio(name, held["book"])
            if held["breached"] and self.stress is not None:
                self.stress.breached.add(name)
            if self.greeks is not None:
                self.greeks.put_portfolio(name, held.get("greeks") or _empty_greeks())
        part.parked = None

    # ---- rebalance ---------------------------------------------------------------------

    def _drop_all(self) -> None:
        names = set(self.book.positions) | set(self.book.exposures)
        names |= {p[1] for p in self.book.pending}
        for name in names:
            self.book.drop_portfolio(name)
            if self.stress_metrics is not None:
                self.stress_metrics.forget(name)
        if self.stress is not None:
            self.stress.breached.clear()
        if self.greeks is not None:
            for name in {*self.greeks.positions, *(p[1] for p in self.greeks.pending)}:
                self.greeks.drop_portfolio(name)

    def _reassign(self, kafka: Any, members: Any, prices: Any) -> None:
        """Drop every portfolio, claim the assigned partitions, reload them from Redis."""
        owned = sorted(tp.partition for tp in members.assignment() if tp.topic == POSITIONS)
        self.rebalances += 1
        self._drop_all()
        self.parts = {}
        count = len(members.partitions_for_topic(POSITIONS) or ()) or 1
        for p in owned:
            token = int(self.redis.incr(self._epoch_key(p)))
            saved = self.redis.get(self._part_key(p))
            if saved is not None:
                doc = orjson.loads(saved)
                part = Part(
                    p, doc["offset"], token, doc["stamp"], set(doc["portfolios"]), doc["portfolios"]
                )
            else:
                part = Part(p, 0, token, START_MS, parked={})
                for pos in self.initial:
                    if partition_of(pos.portfolio, count) == p:
                        self._set_position(part, pos)
            self.parts[p] = part
        needed = min((part.stamp for part in self.parts.values()), default=None)
        if self._choose_market(needed):
            self._seek_prices(kafka, prices)
        for part in self.parts.values():
            if self._bucket(part.stamp) <= self._bucket(self.book.last_close_ms):
                self._install(part)
        tps = [kafka.TopicPartition(POSITIONS, p) for p in owned]
        try:
            for tp in tps:
                members.seek(tp, self.parts[tp.partition].offset)
        except kafka.errors.IllegalStateError:  # the assignment changed again meanwhile
            self.rebalanced.set()
        ends = members.end_offsets(tps) if tps else {}
        self.loading = {tp.partition: end for tp, end in ends.items()}
        self.ready = True
        log.info(
            "portfolio group %s: own positions partitions %s, market at close %s",
            self.group,
            owned,
            self.book.last_close_ms,
        )

    def _choose_market(self, needed: int | None) -> bool:
        """Keep, rewind or fast-forward the market so it is not past ``needed``.

        Returns whether the market changed (the prices must be re-seeked).
        """
        current = self._bucket(self.book.last_close_ms)
        limit = float("inf") if needed is None else float(self._bucket(needed))
        for close in self.redis.zrevrangebyscore(
            self._index, "+inf" if needed is None else needed, "-inf"
        ):
            if self._bucket(int(close)) <= current <= limit:
                return False  # what we have is at least as far and not too far
            saved = self.redis.hget(self._markets, close)
            if saved is not None and self._load_market(orjson.loads(saved)):
                return True
        if current <= limit:
            return False
        log.info(
            "portfolio group %s: no market snapshot before %s, from the start", self.group, needed
        )
        self.book = self.book_factory()
        self.buffer, self.price_offsets, self.watermark, self.closes = [], {}, Watermark(), 0
        self.snapshot_closes = -self.snapshot_every
        if self.stress is not None:
            self.stress.last_ms = None
        if self.greeks is not None:
            self.greeks.last_ms = None
        self._reapply_listings()
        return True

    def _load_market(self, doc: dict[str, Any]) -> bool:
        if {k: doc["book"][k] for k in CONFIG} != self.config:
            log.warning(
                "market snapshot of other book settings ignored: %s", doc["book"]["interval_ms"]
            )
            return False
        self.book = PortfolioBook.from_state(doc["book"])
        self.buffer = [tuple(t) for t in doc["buffer"]]
        self.price_offsets = {int(p): o for p, o in doc["offsets"].items()}
        self.watermark = Watermark()
        self.watermark.latest = {int(p): ts for p, ts in doc["latest"].items()}
        self.closes = self.snapshot_closes = doc["closes"]
        if self.stress is not None:
            self.stress.last_ms = doc["stress_last_ms"]
        if self.greeks is not None:
            self.greeks.last_ms = doc.get("greeks_last_ms")
        self._reapply_listings()
        return True

    def _reapply_listings(self) -> None:
        """The reference data read so far into a market just loaded or started afresh."""
        if self.book.base_currency is not None and self.listings:
            apply_listings(self.book, self.listings.values())

    # ---- state -------------------------------------------------------------------------

    def _market_json(self) -> bytes:
        book = self.book.to_state()
        book.update(positions={}, pending=[], exposures={})
        return orjson.dumps(
            {
                "book": book,
                "buffer": self.buffer,
                "offsets": {str(p): o for p, o in self.price_offsets.items()},
                "latest": {str(p): ts for p, ts in self.watermark.latest.items()},
                "closes": self.closes,
                "stress_last_ms": None if self.stress is None else self.stress.last_ms,
                "greeks_last_ms": None if self.greeks is None else self.greeks.last_ms,
            }
        )

    def _part_json(self, part: Part) -> bytes:
        if part.parked is not None:
            portfolios, stamp = part.parked, part.stamp
        else:
            breached = self.stress.breached if self.stress is not None else set()
            portfolios = {
                name: {
                    "book": self.book.portfolio_state(name),
                    "breached": name in breached,
                    "greeks": _empty_greeks()
                    if self.greeks is None
                    else self.greeks.portfolio_state(name),
                }
                for name in sorted(part.names)
            }
            stamp = START_MS if self.book.last_close_ms is None else self.book.last_close_ms
        return orjson.dumps({"offset": part.offset, "stamp": stamp, "portfolios": portfolios})

    def _write(
        self,
        allocations: Sequence[Allocation],
        snapshots: Sequence[StressSnapshot],
        alerts: Sequence[Alert],
        greeks: Sequence[GreeksSnapshot] = (),
    ) -> None:
        """Outputs, the owned partitions' state and maybe a market snapshot, in one MULTI."""
        import redis

        owned = sorted(self.parts)
        epochs = [self._epoch_key(p) for p in owned]
        snapshot = (
            self.book.last_close_ms is not None
            and self.closes - self.snapshot_closes >= self.snapshot_every
        )
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                if epochs:
                    pipe.watch(*epochs)
                    tokens = [int(t or 0) for t in pipe.mget(epochs)]
                    if tokens != [self.parts[p].token for p in owned]:
                        raise Fenced(
                            f"positions partitions {owned} were claimed by another instance"
                        )
                pipe.multi()
                queue_outputs(
                    pipe, allocations, snapshots, alerts, self.settings.stream.alerts_maxlen, greeks
                )
                for p in owned:
                    pipe.set(self._part_key(p), self._part_json(self.parts[p]))
                if snapshot:
                    close = str(self.book.last_close_ms)
                    pipe.hset(self._markets, close, self._market_json())
                    pipe.zadd(self._index, {close: int(close)})
                pipe.execute()
            except redis.WatchError:
                raise Fenced(f"positions partitions {owned} were claimed while writing") from None
        if snapshot:
            self.snapshot_closes = self.closes
            old = self.redis.zrange(self._index, 0, -self.keep_snapshots - 1)
            if old:
                self.redis.hdel(self._markets, *old)
                self.redis.zrem(self._index, *old)
