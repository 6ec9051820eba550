"""A paced producer, run as its own process by the latency benchmark.

``python -m engine.bench.paced_producer --bootstrap H:P --rate R --seconds S --symbols N
--start-at T --out FILE`` sends ``R * S`` ticks of symbols ``LAT0000..`` to ``prices``,
tick ``i`` at ``T + i / R`` on the monotonic clock (``time.monotonic``, shared by every
process of the machine), and saves each tick's actual send time to ``FILE`` (``.npy``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from engine.topics import PRICES


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka

    names = [f"{args.prefix}{i:04d}".encode() for i in range(args.symbols)]
    producer = kafka.KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=1)
    total = int(args.rate * args.seconds)
    steps = np.exp(np.random.default_rng(0).normal(0, 0.001, total))
    prices = np.full(args.symbols, 100.0)
    sent = np.empty(total)
    while time.monotonic() < args.start_at:
        time.sleep(0.001)
    for i in range(total):
        delay = args.start_at + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        j = i % args.symbols
        prices[j] *= steps[i]
        value = b'{"symbol":"%s","ts":%d,"price":%.6f}' % (
            names[j],
            time.time_ns() // 1_000_000,
            prices[j],
        )
        sent[i] = time.monotonic()
        producer.send(PRICES, key=names[j], value=value)
    producer.flush(60)
    producer.close()
    np.save(args.out, sent)


if __name__ == "__main__":
    main()
