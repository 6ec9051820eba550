"""Quix Streams doing the naive agent's work, for ``riskstream bench compare``.

Written the way the Quix Streams documentation builds a stateful pipeline: an
``Application`` (a consumer group, ``auto_offset_reset="earliest"``), the topic with
the ``json`` value deserializer, a ``StreamingDataFrame`` that parses and filters the
ticks and runs :func:`engine.bench.peers.work.step` with the State API
(``sdf.apply(..., stateful=True)``: per-key state in RocksDB, backed by a changelog
topic, the defaults), and a custom ``BatchingSink`` (the documented way to write a
sink; like Quix's own ``RedisSink``, it writes each checkpoint's batch in one Redis
pipeline): ``HSET riskstream:risk:<symbol>`` per tick and ``XADD riskstream:alerts``
per breach. The checkpoint interval is 1 s (the default is 5 s), so the last batch of
a timed run is not held back longer than riskstream's own flushes.

Run as ``python -m engine.bench.peers.quix --bootstrap ... --redis-url ... --expected N
--out FILE``; see :class:`engine.bench.peers.meter.Meter` for what ``FILE`` receives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.bench.peers.args import row_parser
from engine.bench.peers.meter import Meter
from engine.bench.peers.work import ALERTS_STREAM, RISK_KEY, Output, Tick, parse, step

if TYPE_CHECKING:  # the `peers` extra; imported when a run starts, not with the module
    from quixstreams import Application
    from quixstreams.sinks import BatchingSink
    from quixstreams.state import State


def build(
    bootstrap: str,
    redis_url: str,
    *,
    topic: str,
    group: str,
    state_dir: Path,
    meter: Meter,
    from_latest: bool = False,
) -> Application:
    """The application, its dataframe and sink wired (``app.run()`` starts it)."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="latest" if from_latest else "earliest",
        commit_interval=1.0,
        state_dir=state_dir,
        loglevel="WARNING",
    )
    prices = app.topic(topic, key_deserializer="str", value_deserializer="json")

    def risk(tick: Tick, state: State) -> Output:
        meter.started()
        new, out = step(state.get("ewma"), tick)
        state.set("ewma", new)
        return out

    sdf = app.dataframe(prices)
    sdf = sdf.apply(parse).filter(_is_tick)
    sdf = sdf.apply(risk, stateful=True)
    sdf.sink(redis_sink(redis_url, meter))
    return app


def redis_sink(redis_url: str, meter: Meter) -> BatchingSink:
    """A ``BatchingSink``: each checkpoint's risk hashes and alerts in one Redis pipeline."""
    import redis
    from quixstreams.sinks import BatchingSink, SinkBatch

    class RiskRedisSink(BatchingSink):
        def __init__(self) -> None:
            super().__init__()
            self._client: redis.Redis | None = None

        def setup(self) -> None:
            self._client = redis.Redis.from_url(redis_url)
            self._client.ping()

        def write(self, batch: SinkBatch) -> None:
            assert self._client is not None, "setup() runs before the first write"
            with self._client.pipeline(transaction=False) as pipe:
                for item in batch:
                    out: Output = item.value
                    pipe.hset(RISK_KEY.format(out.symbol), mapping=out.risk)
                    if out.alert is not None:
                        pipe.xadd(ALERTS_STREAM, out.alert)  # type: ignore[arg-type]
                pipe.execute()
            meter.done(batch.size)

    return RiskRedisSink()


def _is_tick(value: Any) -> bool:
    return value is not None


def main(argv: list[str] | None = None) -> None:
    parser = row_parser(__doc__.splitlines()[0])
    parser.add_argument("--group", default="quix-peer")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    app = build(
        args.bootstrap,
        args.redis_url,
        topic=args.topic,
        group=args.group,
        state_dir=args.state_dir,
        meter=Meter(args.expected, args.out),
        from_latest=args.from_latest,
    )
    app.run()


if __name__ == "__main__":
    main()
