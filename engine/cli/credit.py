"""``riskstream credit train|score``: the offline credit model (docs/contracts.md, "Offline CLI").

Exit status 0 on success; on bad input (missing file or column, non-binary or one-class
target, empty file, text in a numeric column) one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from engine.cli.app import command_group

credit_app = command_group(
    "credit", "Credit default models: train one on any CSV with a binary target, score a CSV."
)


@credit_app.command("train")
def train(
    data: Path = typer.Option(..., "--data", dir_okay=False, help="Training CSV (header row)."),
    target: str = typer.Option(..., "--target", help="The binary target column."),
    out: Path = typer.Option(
        ..., "--out", file_okay=False, help="Model directory to write (created if missing)."
    ),
    positive: str | None = typer.Option(
        None, help="Target value of the positive class (default: 1, true, yes, default, bad)."
    ),
    test_size: float = typer.Option(
        0.2, help="Share of rows held out as the untouched test split."
    ),
    folds: int = typer.Option(5, help="Stratified cross-validation folds on the training part."),
    seed: int = typer.Option(0, help="Seed of the split, the folds and the models."),
    models: str = typer.Option(
        "lightgbm,random_forest", help="Model kinds to compare (the best CV ROC AUC is served)."
    ),
    jobs: int = typer.Option(2, min=1, help="Threads for training."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="ROC, reliability, SHAP plots."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: when a terminal)."
    ),
) -> None:
    """Train LightGBM and a random forest with cross-validation, calibrate, test, export to ONNX.

    Writes DIR/model.onnx (calibrated PD), the native model for SHAP, card.json (inputs and
    their encoding, data hash, CV and test metrics, calibration evidence, ONNX parity,
    global SHAP importance) and plots.
    """
    from models.credit.train import TrainOptions
    from models.credit.train import train as run

    options = TrainOptions(
        test_size=test_size,
        folds=folds,
        seed=seed,
        kinds=tuple(k.strip() for k in models.split(",") if k.strip()),
        positive=positive,
        n_jobs=jobs,
        plots=plots,
    )
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        result = run(data, target, out, options)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("reading data", total=None)

            def step(what: str, done: int, total: int) -> None:
                bar.update(task, description=what, completed=done, total=total)

            result = run(data, target, out, options, step=step)
    typer.echo(f"riskstream: trained {result.summary()}", err=True)


@credit_app.command("score")
def score(
    model: Path = typer.Option(
        ..., "--model", file_okay=False, help="Model directory (credit train --out)."
    ),
    data: Path = typer.Option(..., "--data", dir_okay=False, help="CSV to score."),
    out: Path = typer.Option(
        ..., "--out", dir_okay=False, help="CSV to write (id column if any, pd)."
    ),
    explain: Path | None = typer.Option(
        None,
        "--explain",
        dir_okay=False,
        help="Also write each row's SHAP attributions to this CSV (no services needed).",
    ),
) -> None:
    """Write one row per input row, in order: the ID/id column if present, and pd.

    With --explain FILE, FILE gets the same rows with the attributions the stream's
    explanation service attaches to an alert: pd, base_pd (the PD at the model's base
    value), base and output (raw score; log-odds for LightGBM) and shap_FEATURE per
    feature, base + sum of shap_ = output. Plot one row with riskstream explain --row.
    """
    from engine.credit.model import CreditModel
    from engine.credit.offline import score_file
    from engine.errors import InputError

    if explain is not None and explain.resolve() == out.resolve():
        raise InputError(f"--explain {explain}: give a different file from --out")
    loaded = CreditModel(model)
    rows = score_file(loaded, data, out, explain=explain)
    also = f" and their SHAP attributions into {explain}" if explain is not None else ""
    typer.echo(
        f"riskstream: scored {rows:,} rows with {loaded.name} {loaded.version} into {out}{also}",
        err=True,
    )
