"""A paced producer, run as its own process by the latency benchmark.

``python -m engine.bench.paced_producer --bootstrap H:P --rate R --seconds S --symbols N
--start-at T --out FILE`` sends ``R * S`` ticks of symbols ``LAT0000..`` to ``prices``,
tick ``i`` due at ``T + i / R`` on the monotonic clock (``time.monotonic``, shared by every
process of the machine), and saves each tick's actual send time to ``FILE`` (``.npy``);
latencies are measured from those.

The benchmark shares two cores with what it measures, so the producer is kept cheap: it
wakes at most once a millisecond and sends every tick that has come due (so a tick leaves
up to about 1 ms after its due time, at an average rate of ``R``), through aiokafka on one
event loop. The first version slept before every tick and sent through kafka-python (a
sender thread sharing the GIL): at 5,000 ticks/s it used 55-56% of one of the two cores,
against 22-23% now (docs/benchmarks/history.md, runs 36-45). A tick that Kafka did not
acknowledge fails the run (the process exits non-zero) rather than going missing.

Two things once timed the producer instead of the path it measures (docs/benchmarks/history.md,
runs 58-61). It kept every tick's delivery future to check them at the
end: as that list grew, CPython's full collections (each time the long-lived objects had
grown by a quarter) paused it for about 100 ms at the same points of every run, and the
ticks handed to aiokafka just before waited with it; then ``asyncio.gather`` over all of
them (225,000 in a 45 s run) held its loop for about a second while the last ticks
waited for their acknowledgements. Deliveries are now counted by a callback, and the
process runs with the worker's garbage-collector settings.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import numpy as np

from engine.gctune import tune_for_streaming
from engine.kafka.topics import PRICES

#: Shortest sleep between sends (seconds): the producer wakes at most once per this.
TICK_S = 0.001


async def produce(args: argparse.Namespace) -> np.ndarray:
    """Send the ticks on schedule; returns each tick's send time (monotonic seconds)."""
    import aiokafka

    names = [f"{args.prefix}{i:04d}".encode() for i in range(args.symbols)]
    total = int(args.rate * args.seconds)
    steps = np.exp(np.random.default_rng(0).normal(0, 0.001, total))
    prices = np.full(args.symbols, 100.0)
    sent = np.empty(total)
    acknowledged = 0
    failures: list[BaseException] = []

    def delivered(future: asyncio.Future[object]) -> None:
        nonlocal acknowledged
        if future.cancelled():
            failures.append(asyncio.CancelledError("a tick's delivery was cancelled"))
        elif (error := future.exception()) is not None:
            failures.append(error)
        else:
            acknowledged += 1

    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=1)
    await producer.start()
    # Its own garbage must not pause it: the worker's settings (engine.gctune).
    tune_for_streaming()
    try:
        i = 0
        while i < total:
            now = time.monotonic()
            due = min(total, math.floor((now - args.start_at) * args.rate) + 1)
            if due <= i:
                await asyncio.sleep(max(TICK_S, args.start_at + i / args.rate - now))
                continue
            for k in range(i, due):
                j = k % args.symbols
                prices[j] *= steps[k]
                value = b'{"symbol":"%s","ts":%d,"price":%.6f}' % (
                    names[j],
                    time.time_ns() // 1_000_000,
                    prices[j],
                )
                sent[k] = time.monotonic()
                (await producer.send(PRICES, key=names[j], value=value)).add_done_callback(
                    delivered
                )
            i = due
        await producer.flush()
        deadline = time.monotonic() + 30
        while acknowledged + len(failures) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.001)  # the last delivery callbacks
        if failures:
            raise failures[0]
        if acknowledged < total:
            raise RuntimeError(f"{total - acknowledged:,} of {total:,} ticks not acknowledged")
    finally:
        await producer.stop()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--symbols", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--prefix", default="LAT", help="Symbols are <prefix>0000, <prefix>0001 ..."
    )
    args = parser.parse_args()
    np.save(args.out, asyncio.run(produce(args)))


if __name__ == "__main__":
    main()
