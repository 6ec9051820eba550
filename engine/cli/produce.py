"""``riskstream produce``: send real or synthetic prices and transactions to Kafka.

Without a broker, ``--dry-run`` writes the messages to standard output as JSON Lines and
``--out FILE`` to a file (format: :mod:`producers.messages`). With ``--bad-fraction``
bad records are mixed in, each labelled with the dead-letter reason the engine must
give it (``expected_reason`` in the JSON Lines).

Exit status: 0 when every message was delivered; 2 on a bad option or input file;
3 when Kafka cannot be reached or a message was not delivered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from engine.cli.app import command_group, load_settings

if TYPE_CHECKING:
    from engine.boundary.schemas import PriceTick, Transaction
    from producers.messages import Message
    from producers.run import ProduceReport

produce_app = command_group(
    "produce", "Send real or seeded synthetic prices and transactions to Kafka (or to JSON Lines)."
)


class PriceSource(StrEnum):
    sp500 = "sp500"
    nasdaq = "nasdaq"
    bundled = "bundled"
    sp500_1min = "sp500-1min"
    synthetic = "synthetic"
    csv = "csv"


class TransactionSource(StrEnum):
    fraud_handbook = "fraud-handbook"
    synthetic = "synthetic"
    taiwan_credit = "taiwan-credit"


# --- options shared by both commands ------------------------------------------------------

SEED = typer.Option(0, help="Seed of the synthetic generator and of --bad-fraction's choices.")
LIMIT = typer.Option(None, min=1, help="Read at most this many events from the source.")
RATE = typer.Option(None, help="Send at most this many events per second.")
SPEED = typer.Option(
    None, help="Replay at this multiple of real time by event timestamps (1 = real time)."
)
BAD_FRACTION = typer.Option(
    0.0,
    help="Mix in bad records (malformed JSON, NaN price, late, duplicate, ...) making up this "
    "share of the messages, each labelled with its expected dead-letter reason.",
)
DRY_RUN = typer.Option(
    False, "--dry-run", help="Write the messages to stdout as JSON Lines instead of Kafka."
)
OUT = typer.Option(
    None, "--out", dir_okay=False, help="Write the messages to this JSON Lines file, not Kafka."
)
START = typer.Option(
    None,
    help="Synthetic: time of the first event (ISO 8601 or epoch ms). "
    "Default: the stream ends now (timestamps then differ between runs).",
)
BOOTSTRAP = typer.Option(
    None, help="Kafka bootstrap servers; overrides RISKSTREAM_KAFKA_BOOTSTRAP."
)
PROGRESS = typer.Option(
    None, "--progress/--no-progress", help="Progress bar on stderr (default: when a terminal)."
)


@produce_app.command("prices")
def prices(
    source: PriceSource = typer.Option(
        PriceSource.synthetic, case_sensitive=False, help="Where the prices come from."
    ),
    file: Path | None = typer.Option(
        None,
        "--file",
        dir_okay=False,
        help="csv: the price CSV (timestamp plus symbol,price or one column per symbol); "
        "sp500-1min: another copy of the one-minute file.",
    ),
    symbols: int | None = typer.Option(None, min=1, help="Synthetic: symbols (default 10)."),
    ticks: int | None = typer.Option(
        None, min=1, help="Synthetic: ticks over all symbols (default 100000)."
    ),
    interval_ms: int | None = typer.Option(
        None, min=1, help="Synthetic: milliseconds between steps (default 1000)."
    ),
    start: str | None = START,
    seed: int = SEED,
    limit: int | None = LIMIT,
    rate: float | None = RATE,
    speed: float | None = SPEED,
    bad_fraction: float = BAD_FRACTION,
    topic: str = typer.Option("prices", help="Topic to send to (key = symbol)."),
    dry_run: bool = DRY_RUN,
    out: Path | None = OUT,
    bootstrap: str | None = BOOTSTRAP,
    progress: bool | None = PROGRESS,
) -> None:
    """Send price ticks (key = symbol): index history, one-minute S&P 500 bars, a CSV, or synthetic.

    sp500, nasdaq: daily closes 1999-2018 (bundled with arch); bundled: both, merged.

    sp500-1min: S&P 500 one-minute bars, 2019-11-05 to 2019-11-08, stamped in UTC.

    csv: --file in the offline CLI's format (timestamp + symbol,price, or wide).

    synthetic: seeded GARCH(1,1)-t prices with jumps and a common market factor.
    """
    _check_pacing(rate, speed, bad_fraction)
    if source is not PriceSource.synthetic:
        _only_for(
            {
                "--symbols": symbols,
                "--ticks": ticks,
                "--interval-ms": interval_ms,
                "--start": start,
            },
            "--source synthetic",
        )
    if file is not None and source not in (PriceSource.csv, PriceSource.sp500_1min):
        raise typer.BadParameter(
            "--file applies to --source csv and sp500-1min", param_hint="--file"
        )
    if source is PriceSource.csv and file is None:
        raise typer.BadParameter("--source csv needs --file PATH", param_hint="--file")

    events, total = _price_events(source, file, symbols, ticks, interval_ms, start, seed)
    from producers.messages import price_messages

    _produce(
        price_messages(_limited(events, limit)),
        "prices",
        topic=topic,
        total=_min(total, limit),
        seed=seed,
        rate=rate,
        speed=speed,
        bad_fraction=bad_fraction,
        dry_run=dry_run,
        out=out,
        bootstrap=bootstrap,
        progress=progress,
    )


@produce_app.command("transactions")
def transactions(
    source: TransactionSource = typer.Option(
        TransactionSource.synthetic, case_sensitive=False, help="Where the transactions come from."
    ),
    file: Path | None = typer.Option(
        None,
        "--file",
        dir_okay=False,
        help="fraud-handbook, taiwan-credit: another copy of the file.",
    ),
    labels: bool = typer.Option(
        False,
        "--labels",
        help="fraud-handbook: add the ground truth as features tx_fraud, tx_fraud_scenario; "
        "taiwan-credit: as default_next_month.",
    ),
    passes: int | None = typer.Option(
        None, min=1, help="taiwan-credit: replay the file this many times (customers recur)."
    ),
    customers: int | None = typer.Option(None, min=1, help="Synthetic: customers (default 1000)."),
    terminals: int | None = typer.Option(None, min=1, help="Synthetic: terminals (default 2000)."),
    count: int | None = typer.Option(None, min=1, help="Synthetic: transactions (default 100000)."),
    start: str | None = START,
    seed: int = SEED,
    limit: int | None = LIMIT,
    rate: float | None = RATE,
    speed: float | None = SPEED,
    bad_fraction: float = BAD_FRACTION,
    topic: str = typer.Option("transactions", help="Topic to send to (key = customer id)."),
    dry_run: bool = DRY_RUN,
    out: Path | None = OUT,
    bootstrap: str | None = BOOTSTRAP,
    progress: bool | None = PROGRESS,
) -> None:
    """Send card transactions (key = customer id): the fraud-handbook simulation, or synthetic.

    fraud-handbook: 1.75 million simulated transactions, 2018-04-01 to 2018-09-30, in order.

    synthetic: seeded customers with their own amounts, hours of day and terminals.

    taiwan-credit: the 30,000 Taiwan credit-card clients as credit_review events (customer
    tw<ID>, the 23 model features, exposure = LIMIT_BAL), one second apart, ending now.
    """
    _check_pacing(rate, speed, bad_fraction)
    if source is not TransactionSource.taiwan_credit:
        _only_for({"--passes": passes}, "--source taiwan-credit")
    events: Iterable[Transaction]
    total: int | None
    if source is TransactionSource.taiwan_credit:
        _only_for(
            {"--customers": customers, "--terminals": terminals, "--count": count},
            "--source synthetic",
        )
        from producers.credit_reviews import taiwan_credit, taiwan_rows

        events = taiwan_credit(file, start_ms=_start_ms(start), passes=passes or 1, labels=labels)
        total = taiwan_rows(file) * (passes or 1)
    elif source is TransactionSource.synthetic:
        if labels:
            raise typer.BadParameter(
                "--labels applies to --source fraud-handbook", param_hint="--labels"
            )
        if file is not None:
            raise typer.BadParameter(
                "--file applies to --source fraud-handbook", param_hint="--file"
            )
        from producers.synthetic import SyntheticTransactions

        n = count or 100_000
        events = SyntheticTransactions(
            customers or 1000,
            terminals or 2000,
            count=n,
            seed=seed,
            start_ms=_start_ms(start),
        )
        total = n
    else:
        _only_for(
            {
                "--customers": customers,
                "--terminals": terminals,
                "--count": count,
                "--start": start,
            },
            "--source synthetic",
        )
        from producers.sources import fraud_handbook

        events = fraud_handbook(file, labels=labels)
        total = None
    from producers.messages import transaction_messages

    _produce(
        transaction_messages(_limited(events, limit)),
        "transactions",
        topic=topic,
        total=_min(total, limit),
        seed=seed,
        rate=rate,
        speed=speed,
        bad_fraction=bad_fraction,
        dry_run=dry_run,
        out=out,
        bootstrap=bootstrap,
        progress=progress,
    )


# --- helpers ------------------------------------------------------------------------------


def _price_events(
    source: PriceSource,
    file: Path | None,
    symbols: int | None,
    ticks: int | None,
    interval_ms: int | None,
    start: str | None,
    seed: int,
) -> tuple[Iterable[PriceTick], int | None]:
    if source is PriceSource.synthetic:
        from producers.synthetic import SyntheticPrices

        n = ticks or 100_000
        generator = SyntheticPrices(
            symbols or 10,
            ticks=n,
            interval_ms=interval_ms or 1000,
            seed=seed,
            start_ms=_start_ms(start),
        )
        return generator, n
    from producers import sources

    if source is PriceSource.sp500_1min:
        frame = sources.sp500_1min(file)
    elif source is PriceSource.csv:
        assert file is not None
        frame = sources.read_price_csv(file)
    elif source is PriceSource.bundled:
        frame = sources.bundled_prices()
    else:
        frame = sources.arch_daily(source.value)
    return sources.ticks_from_frame(frame), len(frame)


def _produce(
    messages: Iterator[Message],
    stream: str,
    *,
    topic: str,
    total: int | None,
    seed: int,
    rate: float | None,
    speed: float | None,
    bad_fraction: float,
    dry_run: bool,
    out: Path | None,
    bootstrap: str | None,
    progress: bool | None,
) -> None:
    from engine.errors import ServiceUnavailableError

    if bad_fraction > 0:
        from producers.faults import inject_bad

        messages = inject_bad(messages, bad_fraction, seed, stream=stream)  # type: ignore[arg-type]
        total = None
    show = sys.stderr.isatty() if progress is None else progress
    if dry_run or out is not None:
        from producers.run import JsonlSink, send_all

        report = send_all(
            messages,
            JsonlSink(out, topic),
            rate=rate,
            speed=speed,
            total=total,
            progress=show and out is not None,
        )
        _print_report(report, "wrote")
        return
    from producers.kafka import publish

    settings = load_settings(kafka_bootstrap=bootstrap)
    report = publish(messages, settings, topic, rate=rate, speed=speed, total=total, progress=show)
    _print_report(report, None)
    if report.failed:
        raise ServiceUnavailableError(
            f"{report.failed:,} message(s) to {topic} were not delivered: {report.first_error}"
        )


def _print_report(report: ProduceReport, verb: str | None) -> None:
    text = report.summary()
    if verb:
        text = verb + text.removeprefix("sent")
    print(f"riskstream: {text}", file=sys.stderr)


def _check_pacing(rate: float | None, speed: float | None, bad_fraction: float) -> None:
    if rate is not None and speed is not None:
        raise typer.BadParameter("give --rate or --speed, not both", param_hint="--rate/--speed")
    if rate is not None and not rate > 0:
        raise typer.BadParameter(f"must be positive, got {rate}", param_hint="--rate")
    if speed is not None and not speed > 0:
        raise typer.BadParameter(f"must be positive, got {speed}", param_hint="--speed")
    if not 0.0 <= bad_fraction < 1.0:
        raise typer.BadParameter(
            f"must be at least 0 and below 1, got {bad_fraction}", param_hint="--bad-fraction"
        )


def _only_for(options: dict[str, Any], where: str) -> None:
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise typer.BadParameter(f"applies to {where} only", param_hint="/".join(given))


def _start_ms(start: str | None) -> int | None:
    if start is None:
        return None
    from engine.boundary.timeutil import parse_ts

    text = start.strip()
    try:
        return parse_ts(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start") from None


def _limited(events: Iterable[Any], limit: int | None) -> Iterator[Any]:
    return iter(events) if limit is None else islice(events, limit)


def _min(total: int | None, limit: int | None) -> int | None:
    if total is None:
        return limit
    return total if limit is None else min(total, limit)
