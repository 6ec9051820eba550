"""The obvious alternative, for ``riskstream bench compare``: a Faust agent, one event at a time.

What a first Faust implementation of the same job looks like: an agent iterates
``stream.items()``; for each tick it decodes the JSON, checks the fields, updates the
symbol's EWMA variance (RiskMetrics, lambda 0.94), computes normal VaR at 95% and 99%
and ES at 97.5% for the next return, stores the state in a Faust table (changelogged),
and writes the latest risk to Redis (``HSET riskstream:risk:<symbol>``, with
``n_ticks``, so the latency observer of :mod:`engine.bench.e2e` works unchanged). It
does not sequence, backtest, dead-letter or alert: it does *less* than riskstream.

Run as ``python -m engine.bench.naive_faust --bootstrap ... --redis-url ... --expected N
--out FILE``: once ``N`` records are processed it writes ``{"count", "seconds", "rate"}``
(first record to last) to ``FILE`` and keeps running until it is terminated.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

Z = {0.95: 1.6448536269514722, 0.99: 2.3263478740408408}
ES_Z_975 = 2.3378027922289  # phi(z_0.975) / 0.025
LAMBDA = 0.94


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--app-id", default="naive-faust")
    parser.add_argument(
        "--from-latest", action="store_true", help="Start at the end of the topic (latency runs)."
    )
    args = parser.parse_args(argv)

    import faust
    import redis.asyncio as aioredis

    from engine.timeutil import parse_ts

    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="latest" if args.from_latest else "earliest",
        datadir=f"/tmp/{args.app_id}-data",
    )
    topic = app.topic("prices", key_type=bytes, value_type=bytes, value_serializer="raw")
    table = app.Table("naive-state", default=None, partitions=args.partitions)
    client = aioredis.from_url(args.redis_url)
    state: dict[str, Any] = {"count": 0, "first": None}

    @app.agent(topic)
    async def prices(stream: Any) -> None:
        async for _key, value in stream.items():
            now = time.perf_counter()
            if state["first"] is None:
                state["first"] = now
            try:
                doc = json.loads(value)
                symbol = str(doc["symbol"])
                price = float(doc["price"])
                ts = parse_ts(doc["ts"])
            except (ValueError, KeyError, TypeError):
                continue
            if not math.isfinite(price) or price <= 0:
                continue
            prev = table.get(symbol)
            if prev is None:
                row = {"ts": ts, "price": price, "var": None, "n": 1}
            else:
                r = math.log(price / prev["price"])
                var = r * r if prev["var"] is None else LAMBDA * prev["var"] + (1 - LAMBDA) * r * r
                row = {"ts": ts, "price": price, "var": var, "n": prev["n"] + 1}
            table[symbol] = row
            sigma = math.sqrt(row["var"]) if row["var"] is not None else float("nan")
            await client.hset(
                f"riskstream:risk:{symbol}",
                mapping={
                    "ts": ts,
                    "price": price,
                    "sigma": sigma,
                    "var_95": Z[0.95] * sigma,
                    "var_99": Z[0.99] * sigma,
                    "es_975": ES_Z_975 * sigma,
                    "n_ticks": row["n"],
                },
            )
            state["count"] += 1
            if state["count"] == args.expected:
                seconds = time.perf_counter() - state["first"]
                with open(args.out, "w") as fh:
                    json.dump(
                        {
                            "count": state["count"],
                            "seconds": seconds,
                            "rate": state["count"] / seconds,
                        },
                        fh,
                    )

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
