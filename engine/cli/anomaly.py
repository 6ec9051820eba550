"""``riskstream anomaly score|train|evaluate``: anomaly detection offline (docs/contracts.md).

``score`` is the contract: ``--input FILE`` with columns ``timestamp,value`` (others kept),
``--out FILE`` the same rows plus ``anomaly_score`` in [0, 1], causal. Exit status 0 on
success; on bad input one line on stderr and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.app import command_group

anomaly_app = command_group(
    "anomaly", "Anomaly detection: score any univariate series, train the served models, evaluate."
)


@anomaly_app.command("score")
def score(
    input: Path = typer.Option(
        ..., "--input", dir_okay=False, help="CSV with columns timestamp,value (others are kept)."
    ),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="CSV to write."),
    detector: str = typer.Option(
        "robust",
        "--detector",
        help="robust (default), iforest, lof, autoencoder, hst or ensemble.",
    ),
    sort: bool = typer.Option(False, "--sort", help="Sort rows by timestamp first (stable)."),
    calendar: str = typer.Option(
        "auto",
        "--calendar",
        help="Trading calendar of gaps: auto (XNYS until the series trades outside it, "
        "then 24/5 if on a weekday, 24/7 at a weekend), 24/5, 24/7, or an "
        "exchange-calendars code such as XNYS or XLON.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No summary line on stderr."),
) -> None:
    """Add ``anomaly_score`` in [0, 1] to every row of a timestamp,value series, causally.

    Row i's score uses rows up to i only. The score is calibrated: 0.9999 means one
    normal row in 10,000 scores that high, on any stream (prices, volumes, latencies,
    counts). Missing values (empty, NaN) keep their row and get an empty score.
    """
    from engine.anomaly.series import score_file

    rows = score_file(input, out, detector=detector, sort=sort, calendar=calendar)
    if rows == 0:
        from engine.errors import InputError

        out.unlink(missing_ok=True)
        raise InputError(f"{input}: no rows to score (the file has a header only)")
    if not quiet:
        typer.echo(f"scored {rows} rows with {detector} -> {out}", err=True)


@anomaly_app.command("degenerate")
def degenerate(
    labelled: bool = typer.Option(
        True, "--labelled/--no-labelled", help="Also measure jumps and flash crashes (about 1 min)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines on stderr."),
) -> None:
    """Calibration on degenerate streams: quiet rows scoring >= 0.9999, per stream (Markdown).

    Constant, stale, quantised, periodic and level-shift streams, session gaps (XNYS daily
    and one-minute, 24/7), arch's S&P 500 closes and the shared one-minute bars; the
    embedded demo through the price stage; recall of labelled jumps and flash crashes.
    """
    from models.anomaly.degenerate import report

    say = (lambda _: None) if quiet else (lambda m: typer.echo(m, err=True))
    typer.echo(report(labelled, progress=say))


@anomaly_app.command("train")
def train(
    out: Path = typer.Option(
        None,
        "--out",
        file_okay=False,
        help="Root of the model directories (default: onnx/anomaly).",
    ),
    streams: str = typer.Option("prices,transactions", help="Streams whose models to fit."),
    transactions: Path = typer.Option(
        None, "--transactions", dir_okay=False, help="Fraud-handbook CSV (default: ../shared/data)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines on stderr."),
) -> None:
    """Fit the served anomaly models and export them to ONNX with their model cards.

    Prices: Isolation Forest, LOF (novelty) and the autoencoder on seeded calm streams.
    Transactions: gradient-boosted trees on the baseline's training week (labels), the
    unsupervised models on its genuine transactions; frozen rank calibrations.
    """
    from engine.anomaly.artifacts import ARTIFACTS
    from models.anomaly.train import train as run

    chosen = tuple(s.strip() for s in streams.split(",") if s.strip())
    unknown = set(chosen) - {"prices", "transactions"}
    if unknown:
        from engine.errors import InputError

        raise InputError(f"unknown stream(s) {sorted(unknown)}; choose prices, transactions")
    written = run(
        out or ARTIFACTS,
        streams=chosen,
        transactions_file=transactions,
        progress=(lambda _: None) if quiet else (lambda m: typer.echo(m, err=True)),
    )
    for path in written:
        typer.echo(str(path))


@anomaly_app.command("evaluate")
def evaluate(
    out: Path = typer.Option(
        Path("riskstream-out/anomaly-eval"), "--out", file_okay=False, help="Report directory."
    ),
    section: str = typer.Option(
        "transactions,prices", help="Sections to run: transactions, prices (comma-separated)."
    ),
    symbols: int = typer.Option(20, min=1, help="Price symbols per run."),
    ticks: int = typer.Option(20_000, min=2000, help="Ticks per symbol."),
    seed: int = typer.Option(1, help="Seed of the labelled price run (calm run: seed + 1)."),
    detectors: str = typer.Option(
        "", help="Price detectors to compare (default: all; the first is the default's)."
    ),
    series: bool = typer.Option(
        True, "--series/--no-series", help="Also score prices as bare timestamp,value series."
    ),
    series_symbols: int = typer.Option(5, min=1, help="Symbols of the series section."),
    transactions: Path = typer.Option(
        None, "--transactions", dir_okay=False, help="Fraud-handbook CSV (default: ../shared/data)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines on stderr."),
) -> None:
    """Evaluate every detector and write a report (Markdown tables, JSON, plots).

    Transactions: the fraud-handbook file with the published baseline's split (train
    2018-07-25..31, 7-day delay, test 2018-08-08..14): ROC AUC, average precision, card
    precision@100. Prices: seeded streams with injected, labelled anomalies: recall and
    delay per kind, precision, false alarms per 10,000 calm ticks.
    """
    import tempfile

    from models.anomaly.evaluate_prices import PRICE_DETECTORS, PriceSetup, evaluate_prices
    from models.anomaly.evaluate_transactions import evaluate_transactions
    from models.anomaly.report import write_report

    say = (lambda _: None) if quiet else (lambda m: typer.echo(m, err=True))
    wanted = {s.strip() for s in section.split(",") if s.strip()}
    tx = prices = None
    if "transactions" in wanted:
        from models.anomaly.data import replay_transactions
        from models.anomaly.train import TEST_WEEK

        say("transactions: replaying 2018-06-15..2018-08-14 through the stream's stage")
        replay = replay_transactions(transactions, end=TEST_WEEK[1])
        tx = evaluate_transactions(replay, progress=say)
    if "prices" in wanted:
        from models.anomaly.train import train_prices, write

        names = tuple(d.strip() for d in detectors.split(",") if d.strip()) or PRICE_DETECTORS
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if set(names) & {"iforest", "lof", "autoencoder", "ensemble"}:
                for model in train_prices(say):
                    write(model, root)
            prices = evaluate_prices(
                PriceSetup(
                    symbols=symbols,
                    ticks=ticks,
                    seed=seed,
                    calm_seed=seed + 1,
                    series_symbols=series_symbols,
                ),
                detectors=names,
                series_detectors=names if series else (),
                root=root,
                progress=say,
            )
    report = write_report(out, tx, prices)
    typer.echo(str(report))
