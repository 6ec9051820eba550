"""How fast riskstream's consumer path is with no risk work behind it: where the gap to raw goes.

``riskstream bench e2e`` and ``bench compare`` put the worker next to a raw aiokafka
``getmany`` loop. Between the two sits more than the risk core: faust (group membership,
its consumer thread and the hand-over to the app's loop), riskstream's micro-batching
(:mod:`engine.worker.batching`), decoding, and the outputs. This process runs the first
parts exactly as the worker does and nothing after them, so the benchmarks can say how
much of the raw rate is left before any risk work starts.

A faust app of the worker's own class (:func:`engine.worker.app.create_app`: the same
``BatchingConsumer``, ``BusyAwareFetcher`` and ``BatchChannel``) takes micro-batches of
``prices`` with the worker's batch size and wait, acks their offsets as the worker's
writer does, and counts records. Stages:

``transport``
    nothing else: the ceiling of any faust-based worker built this way;
``decode``
    plus the worker's first stage, :func:`engine.boundary.validation.decode_prices` (JSON to
    checked columns), on every micro-batch.

Run as ``python -m engine.bench.transport --bootstrap ... --expected N --out FILE``: once
``N`` records were taken it writes ``{"count", "seconds", "rate"}`` to ``FILE``, the rate
counted as the worker's is (records after the first batch, from that batch to the last),
and stops itself (SIGTERM, faust's graceful stop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson

#: The stages, as the benchmarks' progress lines name them.
STAGE_LABELS = {
    "transport": "the worker's consumer path with no work behind it",
    "decode": "the same plus decoding",
}
STAGES = tuple(STAGE_LABELS)


def transport_rate(
    bootstrap: str,
    *,
    partitions: int,
    expected: int,
    workdir: Path,
    stage: str = "transport",
    timeout: float = 600.0,
) -> float:
    """Run this module as its own process (a fresh consumer group) over ``expected`` records
    of ``prices`` from the beginning; its rate, records per second."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    app_id = f"bench-{stage}-{time.time_ns()}"
    out = workdir / f"{app_id}.json"
    log_path = workdir / f"{app_id}.log"
    argv = [
        sys.executable, "-m", "engine.bench.transport",
        "--bootstrap", bootstrap, "--expected", str(expected), "--out", str(out),
        "--partitions", str(partitions), "--app-id", app_id,
        "--data-dir", str(workdir / app_id), "--stage", stage,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not out.exists():
            if child.poll() is not None:
                raise RuntimeError(
                    f"the {stage} benchmark exited {child.returncode}; see {log_path}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the {stage} benchmark took more than {timeout:.0f}s; see {log_path}"
                )
            time.sleep(0.1)
        child.wait(60)  # it stops itself once the result is written
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return float(orjson.loads(out.read_bytes())["rate"])


def stage_rates(
    bootstrap: str,
    *,
    partitions: int,
    expected: int,
    workdir: Path,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    """Every stage in turn (:func:`transport_rate`), with progress lines; rates by stage."""
    rates = {}
    for stage, label in STAGE_LABELS.items():
        progress(label)
        rates[stage] = transport_rate(
            bootstrap, partitions=partitions, expected=expected, workdir=workdir, stage=stage
        )
        progress(f"  {rates[stage]:,.0f} records/s")
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--expected", type=int, required=True, help="records to take")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--app-id", default="bench-transport")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--stage", choices=STAGES, default="transport")
    args = parser.parse_args(argv)

    import faust

    from engine.boundary.validation import decode_prices
    from engine.config import Settings
    from engine.gctune import tune_for_streaming
    from engine.kafka.topics import PRICES
    from engine.worker.app import create_app
    from engine.worker.batching import BatchChannel

    settings = Settings(
        kafka_bootstrap=args.bootstrap,
        partitions=args.partitions,
        app_id=args.app_id,
        data_dir=args.data_dir or Path(f"/tmp/{args.app_id}-data"),
    )
    app = create_app(settings)
    channel = BatchChannel(app, PRICES)
    app.batch_channels = {PRICES: channel}
    app.topics.add(app.topic(PRICES, key_serializer="raw", value_serializer="raw"))
    decode = args.stage == "decode"
    skew_ms = int(settings.validation.max_future_skew_s * 1000)

    async def take() -> None:
        tune_for_streaming()  # as the worker does once started
        consumer: Any = app.consumer
        count, first, first_count = 0, 0.0, 0
        within = settings.stream.batch_within_ms / 1000.0
        async with aclosing(channel.take(settings.stream.batch_max, within)) as batches:
            async for batch in batches:
                following: dict[Any, int] = {}
                records: list[Any] = []
                for chunk in batch:
                    records.extend(chunk.records)
                    following[chunk.tp] = chunk.last_offset + 1
                if decode:
                    columns, letters = decode_prices(
                        records, now_ms=int(time.time() * 1000), max_future_skew_ms=skew_ms
                    )
                    if letters or len(columns) != len(records):
                        raise RuntimeError(f"{len(letters)} records of the input were refused")
                consumer.ack(following)
                count += len(records)
                if not first_count:
                    first, first_count = time.perf_counter(), count
                if count >= args.expected:
                    seconds = time.perf_counter() - first
                    taken = count - first_count
                    result = {"count": count, "seconds": seconds, "rate": taken / seconds}
                    partial = args.out.with_suffix(".partial")
                    partial.write_bytes(orjson.dumps(result))
                    partial.replace(args.out)  # the parent never reads half a file
                    break
        # Out of the loop, the channel is idle again: faust's stop waits for that.
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(3600)  # until faust stops this task

    app.task(take)
    faust.Worker(
        app, loglevel="warning", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
