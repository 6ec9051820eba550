"""``riskstream run``: the embedded demo, with no Kafka and no Redis needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.cli.app import app, load_settings

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from engine.offline.embedded import RunReport


@app.command()
def run(
    prices: str = typer.Option(
        None,
        "--prices",
        help="Your prices instead of the bundled ones: a CSV (as for `var forecast`), "
        "JSON Lines of `prices` topic values (.jsonl), or - for JSON Lines on stdin.",
    ),
    transactions: str = typer.Option(
        None,
        "--transactions",
        help="Transactions to score too: a CSV (tx_id,ts,customer_id,amount and optional "
        "features), JSON Lines of `transactions` topic values (.jsonl), or - for stdin.",
    ),
    out: Path = typer.Option(
        Path("riskstream-out"), help="Directory for alerts.jsonl and dead_letters.jsonl."
    ),
    rate: float = typer.Option(2500.0, min=1.0, help="Records per second to replay at."),
    fast: bool = typer.Option(False, "--fast", help="Replay as fast as possible (ignores --rate)."),
    live: bool = typer.Option(
        True, help="Show the live progress and summary (off: print the report only)."
    ),
    metrics: bool = typer.Option(
        False,
        "--metrics",
        help="Serve Prometheus metrics on RISKSTREAM_METRICS_HOST:RISKSTREAM_METRICS_PORT while running.",
    ),
) -> None:
    """Run the risk engine in-process on prices (and transactions): no Kafka, no Redis.

    Without --prices and --transactions it replays the bundled S&P 500 and NASDAQ daily
    closes (1999-2018). It runs the same pipelines as the stream worker, with the same
    settings (RISKSTREAM_VOL_MODELS, RISKSTREAM_VAR_METHOD, ...): by default GARCH, GJR
    and HAR volatility and the gjr-mix VaR method, VaR 95%/99% and ES 97.5%, rolling
    backtests, breach and anomaly alerts; transactions get the worker's credit and
    anomaly stages. Bad records become dead letters with their reason, as on Kafka.
    Alerts go to OUT/alerts.jsonl, and to Redis as well when RISKSTREAM_REDIS_URL is set.
    """
    import asyncio

    from rich.console import Console

    from engine.errors import InputError
    from engine.gctune import tune_for_streaming
    from engine.kafka.topics import PRICES, TRANSACTIONS
    from engine.offline.embedded import EmbeddedRunner, tick_records
    from engine.offline.embedded_inputs import STDIN, price_records, transaction_records
    from producers.sources import bundled_prices, frame_to_ticks

    if prices == STDIN and transactions == STDIN:
        raise InputError("--prices and --transactions cannot both read standard input")
    settings = load_settings()
    console = Console(stderr=False)
    inputs: list[tuple[str, object, int | None, str]] = []
    if prices is None and transactions is None:
        frame = bundled_prices()
        names = ", ".join(sorted(frame["symbol"].unique()))
        inputs.append((PRICES, tick_records(frame_to_ticks(frame)), len(frame), names))
    if prices is not None:
        records, total = price_records(prices)
        inputs.append((PRICES, records, total, "stdin" if prices == STDIN else prices))
    if transactions is not None:
        records, total = transaction_records(transactions)
        where = "stdin" if transactions == STDIN else transactions
        inputs.append((TRANSACTIONS, records, total, where))
    runner = EmbeddedRunner(settings, out, rate=None if fast else rate)
    if metrics:
        from engine.metrics import serve

        serve(runner.metrics, settings.operations.metrics_host, settings.operations.metrics_port)
    tune_for_streaming()
    for topic, records, total, where in inputs:
        size = f"{total:,} " if total is not None else ""
        if topic == PRICES:
            levels = ", ".join(f"{a:.0%}" for a in settings.risk.alert_levels)
            console.print(
                f"[bold]riskstream[/bold] embedded run: {size}prices of {where}, "
                f"model {runner.pipeline.book.model_name}, alerts at VaR {levels}"
            )
        else:
            console.print(f"[bold]riskstream[/bold] embedded run: {size}transactions of {where}")
        if live and console.is_terminal:
            report = _run_live(console, runner, records, total, topic)
        else:
            report = asyncio.run(runner.run(records, topic=topic))  # type: ignore[arg-type]
        if topic == PRICES:
            _print_report(console, report, settings.risk.var_levels)
        else:
            _print_transactions(console, report)


def _run_live(
    console: Console, runner: object, records: object, total: int | None, topic: str
) -> RunReport:
    import asyncio

    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(topic, total=total, rate="")
    view: list[RenderableType] = [progress]

    with Live(Group(*view), console=console, refresh_per_second=8, transient=False) as screen:

        def on_batch(outcome: object, report: RunReport) -> None:
            progress.update(task, completed=report.received, rate=f"{report.alerts} alerts")
            if report.symbols:
                table = _symbol_table(report, runner.pipeline.book.var_levels)  # type: ignore[attr-defined]
                screen.update(Group(progress, table))

        return asyncio.run(runner.run(records, on_batch=on_batch, topic=topic))  # type: ignore[attr-defined]


def _print_transactions(console: Console, report: RunReport) -> None:
    from rich.table import Table

    summary = Table(title="report: transactions", title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("received / accepted", f"{report.received:,} / {report.accepted:,}")
    dead = sum(report.dead_letters.values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(report.dead_letters.items()))
    summary.add_row("dead letters", f"{dead}" + (f" ({detail})" if detail else ""))
    summary.add_row("alerts", f"{report.alerts} -> {report.alerts_path}")
    summary.add_row("elapsed", f"{report.seconds:.2f} s")
    console.print(summary)


def _symbol_table(report: RunReport, levels: tuple[float, ...]) -> RenderableType:
    from rich.table import Table

    table = Table(
        title="latest risk (forecasts for the next daily log return)", title_justify="left"
    )
    table.add_column("symbol")
    table.add_column("ticks", justify="right")
    table.add_column("price", justify="right")
    table.add_column("sigma", justify="right")
    for level in levels:
        table.add_column(f"VaR {level:.0%}", justify="right")
    for level in levels:
        table.add_column(f"breaches {level:.0%}", justify="right")
    for symbol, s in sorted(report.symbols.items()):
        cells = [symbol, f"{s.ticks:,}", f"{s.price:,.2f}", _pct(s.sigma)]
        cells += [_pct(s.var[level]) for level in levels]
        cells += [_rate(s.breaches[level], s.tested[level]) for level in levels]
        table.add_row(*cells)
    return table


def _pct(value: float) -> str:
    return "warming up" if value != value else f"{value:.2%}"


def _rate(breaches: int, tested: int) -> str:
    return f"{breaches} ({breaches / tested:.2%})" if tested else "-"


def _print_report(console: Console, report: RunReport, levels: tuple[float, ...]) -> None:
    from rich.table import Table

    console.print(_symbol_table(report, levels))
    summary = Table(title="report", title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("symbols", str(len(report.symbols)))
    summary.add_row("ticks received / accepted", f"{report.received:,} / {report.accepted:,}")
    dead = sum(report.dead_letters.values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(report.dead_letters.items()))
    summary.add_row("dead letters", f"{dead}" + (f" ({detail})" if detail else ""))
    for level in levels:
        breaches, tested, rate = report.violation_rate(level)
        summary.add_row(
            f"VaR {level:.0%} violations",
            f"{breaches} / {tested:,} = {rate:.2%} (expected {1 - level:.0%})",
        )
    summary.add_row("alerts", f"{report.alerts} -> {report.alerts_path}")
    summary.add_row(
        "elapsed",
        f"{report.seconds:.2f} s ({report.received / max(report.seconds, 1e-9):,.0f} ticks/s)",
    )
    console.print(summary)
