"""``riskstream deep train|compare``: the deep volatility models (LSTM, Transformer).

``train`` needs the ``train`` extra (torch, onnxscript); ``compare`` only onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.app import command_group
from engine.errors import InputError

deep_app = command_group(
    "deep", "Deep volatility models: train and export (LSTM, Transformer), compare with GARCH."
)


def _names(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise InputError(f"{option} {text!r}: choose from {', '.join(allowed)}")
    return names


@deep_app.command("train")
def train(
    out: Path = typer.Option(
        Path("onnx/deep"),
        "--out",
        file_okay=False,
        help="Directory for <model>/model.onnx, cards, report.",
    ),
    models: str = typer.Option("lstm,transformer", help="Networks to train."),
    seed: int = typer.Option(7, help="Seed of the initialisation and the batch order."),
    epochs: int = typer.Option(
        60, min=1, help="Epochs per walk-forward fold (the served count is chosen by validation)."
    ),
    loss: str = typer.Option("qlike", help="qlike (default) or mse-log."),
    target: str = typer.Option(
        "rv",
        help="rv (realized variance) or returns: the returns-only variant (squared returns "
        "in place of RV, the file's rv unused), written as <model>-returns.",
    ),
    threads: int = typer.Option(1, min=1, max=8, help="torch threads."),
    data: Path | None = typer.Option(
        None, "--data", dir_okay=False, help="S&P 500 returns/RV CSV [default: the shared file]."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress bars on stderr."
    ),
) -> None:
    """Walk-forward training on the S&P 500 realized variance, test 2015-2018, ONNX export with cards.

    Reproducible: the same command, seed and versions write the same models.
    """
    try:
        from models.deep.train import TrainOptions
        from models.deep.train import train as run
    except ImportError as exc:
        raise InputError(
            f"training needs the 'train' extra (pip install -e '.[train]'): {exc}"
        ) from None
    if loss not in ("qlike", "mse-log"):
        raise InputError(f"--loss {loss!r}: choose qlike or mse-log")
    if target not in ("rv", "returns"):
        raise InputError(f"--target {target!r}: choose rv or returns")
    options = TrainOptions(
        models=_names(models, ("lstm", "transformer"), "--models"),
        seed=seed,
        epochs=epochs,
        loss=loss,  # type: ignore[arg-type]
        target=target,  # type: ignore[arg-type]
        threads=threads,
        data=data,
        progress=progress,
    )
    result = run(options, out, echo=lambda line: typer.echo(line, err=True))
    typer.echo(f"wrote {len(result.files)} files to {out}")


@deep_app.command("compare")
def compare(
    prices: Path = typer.Option(
        ...,
        "--prices",
        help="Price CSV with realized variance ('rv'), e.g. `riskstream data export sp500-rv`.",
    ),
    report: Path = typer.Option(..., "--report", file_okay=False, help="Directory for the report."),
    start: str = typer.Option("2015-01-01", help="First day evaluated (the models' test period)."),
    end: str = typer.Option("2018-04-30", help="Last day evaluated."),
    models: str = typer.Option(
        "ewma,garch,gjr,har,lstm,transformer,combo", help="Volatility models compared."
    ),
    learned_var: bool = typer.Option(
        True, "--learned-var/--no-learned-var", help="Add LightGBM and river quantile VaR."
    ),
    rolling: int = typer.Option(250, min=20, help="Rolling window of the traffic-light share."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """EWMA, GARCH(1,1), GJR, HAR-RV, LSTM, Transformer and their combination on one period.

    QLIKE and MSE against realized variance, Diebold-Mariano against GARCH(1,1), and the
    backtests of the VaR each model implies (plus machine-learned quantile VaR). Writes
    comparison.md (the section also closes report.md), the CSV tables and the plots.
    """
    from engine.cli.app import load_settings
    from engine.cli.risk import _run
    from engine.core.volatility.registry import vol_model_names
    from engine.deep.compare import compare as evaluate
    from engine.deep.compare import comparison_spec, verdict, write

    chosen = _names(models, vol_model_names(), "--models")
    spec = comparison_spec(load_settings().risk_spec(), chosen)
    run = _run(prices, spec, quiet)
    result = evaluate(run, start=start, end=end, rolling=rolling)
    if learned_var:
        from engine.deep.quantile import learned_var_rows

        result.learned_var = learned_var_rows(run, start=start, end=end, rolling=rolling)
    files = write(result, report, rolling=rolling)
    for line in verdict(result):
        typer.echo(line)
    typer.echo(f"wrote {len(files)} files to {report}")
