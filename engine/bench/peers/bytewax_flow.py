"""bytewax doing the naive agent's work, for ``riskstream bench compare``.

Written the way the bytewax documentation builds a stateful Kafka dataflow: the Kafka
input operator (``bytewax.connectors.kafka.operators.input``, confluent-kafka, batches
of 1,000 messages, its error stream raised), ``op.filter_map`` to decode and validate,
``op.key_on`` the symbol, ``op.stateful_map`` running
:func:`engine.bench.peers.work.step` on the per-key state, and a custom
``DynamicSink`` (the documented way to write an output) whose partition writes each
batch in one Redis pipeline: ``HSET riskstream:risk:<symbol>`` per tick and
``XADD riskstream:alerts`` per breach. It runs with one worker through ``cli_main``,
what ``python -m bytewax.run`` calls, and without recovery (bytewax's default;
snapshots are opt-in).

Run as ``python -m engine.bench.peers.bytewax_flow --bootstrap ... --redis-url ...
--expected N --out FILE``; see :class:`engine.bench.peers.meter.Meter` for what
``FILE`` receives.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.bench.peers.args import row_parser
from engine.bench.peers.meter import Meter
from engine.bench.peers.work import ALERTS_STREAM, RISK_KEY, Output, Tick, parse, step

if TYPE_CHECKING:  # the `peers` extra; imported when a run starts, not with the module
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink


def get_flow(
    bootstrap: str,
    redis_url: str,
    *,
    topic: str,
    meter: Meter,
    from_latest: bool = False,
    batch_size: int = 1000,
) -> Dataflow:
    """The dataflow, from the Kafka topic to Redis."""
    import bytewax.operators as op
    from bytewax.connectors.kafka import operators as kop
    from bytewax.dataflow import Dataflow
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    def decode(msg: Any) -> Tick | None:
        meter.started()
        return parse(json.loads(msg.value))

    flow = Dataflow("riskstream-peer")
    kinp = kop.input(
        "kafka_in",
        flow,
        brokers=[bootstrap],
        topics=[topic],
        starting_offset=OFFSET_END if from_latest else OFFSET_BEGINNING,
        batch_size=batch_size,
    )
    op.raises("kafka_errors", kinp.errs)
    ticks = op.filter_map("decode", kinp.oks, decode)
    keyed = op.key_on("symbol", ticks, _symbol)
    outputs = op.stateful_map("ewma", keyed, step)
    op.output("redis", outputs, redis_sink(redis_url, meter))
    return flow


def _symbol(tick: Tick) -> str:
    return tick.symbol


def redis_sink(redis_url: str, meter: Meter) -> DynamicSink[tuple[str, Output]]:
    """A ``DynamicSink`` whose partitions write each batch in one Redis pipeline."""
    import redis
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    class _Partition(StatelessSinkPartition[tuple[str, Output]]):
        def __init__(self) -> None:
            self._client = redis.Redis.from_url(redis_url)

        def write_batch(self, items: list[tuple[str, Output]]) -> None:
            with self._client.pipeline(transaction=False) as pipe:
                for symbol, out in items:
                    pipe.hset(RISK_KEY.format(symbol), mapping=out.risk)
                    if out.alert is not None:
                        pipe.xadd(ALERTS_STREAM, out.alert)  # type: ignore[arg-type]
                pipe.execute()
            meter.done(len(items))

        def close(self) -> None:
            self._client.close()

    class RiskRedisSink(DynamicSink[tuple[str, Output]]):
        def build(
            self, step_id: str, worker_index: int, worker_count: int
        ) -> StatelessSinkPartition[tuple[str, Output]]:
            return _Partition()

    return RiskRedisSink()


def main(argv: list[str] | None = None) -> None:
    parser = row_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)

    from bytewax.run import cli_main

    flow = get_flow(
        args.bootstrap,
        args.redis_url,
        topic=args.topic,
        meter=Meter(args.expected, args.out),
        from_latest=args.from_latest,
        batch_size=args.batch_size,
    )
    cli_main(flow, workers_per_process=1)


if __name__ == "__main__":
    main()
