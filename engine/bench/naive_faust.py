"""The obvious alternative, for ``riskstream bench compare``: a Faust agent, one event at a time.

What a first Faust implementation of the same job looks like: an agent iterates
``stream.items()``; for each tick it decodes the JSON, checks the fields, and runs
:func:`engine.bench.peers.work.step` (the work every row of the comparison does:
RiskMetrics EWMA variance with riskstream's warm-up, normal VaR at 95% and 99% and ES
at 97.5% of the next return, the 99% breach check) on the symbol's state, kept in a
Faust table (changelogged); it writes the latest risk to Redis (``HSET
riskstream:risk:<symbol>``, with ``n_ticks``, so the latency observer of
:mod:`engine.bench.e2e` works unchanged) and each breach to ``riskstream:alerts`` with
riskstream's alert id and fields. It does not sequence, backtest or dead-letter: it
does *less* than riskstream.

Run as ``python -m engine.bench.naive_faust --bootstrap ... --redis-url ... --expected N
--out FILE``: once ``N`` records are processed it writes ``{"count", "seconds", "rate"}``
(first record to last) to ``FILE`` and keeps running until it is terminated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.bench.peers.args import row_parser


def main(argv: list[str] | None = None) -> None:
    parser = row_parser()
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--app-id", default="naive-faust")
    args = parser.parse_args(argv)

    import faust
    import redis.asyncio as aioredis

    from engine.bench.peers.meter import Meter
    from engine.bench.peers.work import ALERTS_STREAM, RISK_KEY, parse, step

    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="latest" if args.from_latest else "earliest",
        datadir=f"/tmp/{args.app_id}-data",
    )
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    table = app.Table("naive-state", default=None, partitions=args.partitions)
    client = aioredis.from_url(args.redis_url)
    meter = Meter(args.expected, Path(args.out))

    @app.agent(topic)
    async def prices(stream: Any) -> None:
        async for _key, value in stream.items():
            meter.started()
            try:
                tick = parse(json.loads(value))
            except ValueError:
                tick = None
            if tick is None:
                continue
            state, out = step(table.get(tick.symbol), tick)
            table[tick.symbol] = state
            await client.hset(RISK_KEY.format(tick.symbol), mapping=out.risk)
            if out.alert is not None:
                await client.xadd(ALERTS_STREAM, out.alert)  # type: ignore[arg-type]
            meter.done(1)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
