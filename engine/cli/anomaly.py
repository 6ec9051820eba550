"""``riskstream anomaly score|train|evaluate``: anomaly detection offline (DESIGN.md, "Contracts").

``score`` is the contract: ``--input FILE`` with columns ``timestamp,value`` (others kept),
``--out FILE`` the same rows plus ``anomaly_score`` in [0, 1], causal. Exit status 0 on
success; on bad input one line on stderr and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.app import app

anomaly_app = typer.Typer(
    help="Anomaly detection: score any univariate series, train the served models, evaluate.",
    no_args_is_help=True,
)
app.add_typer(anomaly_app, name="anomaly")


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
    quiet: bool = typer.Option(False, "--quiet", help="No summary line on stderr."),
) -> None:
    """Add ``anomaly_score`` in [0, 1] to every row of a timestamp,value series, causally.

    Row i's score uses rows up to i only. The score is calibrated: 0.9999 means one
    normal row in 10,000 scores that high, on any stream (prices, volumes, latencies,
    counts). Missing values (empty, NaN) keep their row and get an empty score.
    """
    from engine.anomaly.series import score_file

    rows = score_file(input, out, detector=detector, sort=sort)
    if not quiet:
        typer.echo(f"scored {rows} rows with {detector} -> {out}", err=True)
