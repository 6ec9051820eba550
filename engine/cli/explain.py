"""``riskstream explain``: plot the SHAP explanation of an alert, or a model's global summary.

``riskstream explain ALERT_ID --plot waterfall|force --out FILE`` reads the explanation the
worker stored for the alert (``riskstream:shap:alert:<alert_id>``, kept for
``RISKSTREAM_SHAP_CACHE_TTL_S``) and renders shap's waterfall plot (PNG) or force plot
(self-contained HTML). Without ``--out`` it prints the attributions as a table.

The waterfall reads in probability of default (from the PD at the model's base value to the
alert's PD) when the model the alert names is at hand: ``--model DIR``, else
``RISKSTREAM_CREDIT_MODEL_DIR`` or the committed ``onnx/credit``; otherwise it stays in the
explanation's units (log-odds), and a line on stderr says so.

``riskstream explain --model DIR --data CSV --row N`` explains one row of a CSV offline
(no Redis, no worker): the same attributions, computed on the spot.

``riskstream explain --summary --model DIR --out FILE`` renders the model's global
importance (mean |SHAP| per feature, from its card) as a bar chart, or, with ``--data CSV``,
shap's beeswarm summary over up to 2,000 rows of that file.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.cli.app import app, load_settings
from engine.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from engine.explain.cache import Explanation


class Plot(StrEnum):
    waterfall = "waterfall"
    force = "force"


@app.command("explain")
def explain(
    alert_id: str | None = typer.Argument(None, help="The alert's id (alert_id field)."),
    plot: Plot = typer.Option(
        Plot.waterfall, case_sensitive=False, help="waterfall (PNG) or force (HTML)."
    ),
    out: Path | None = typer.Option(None, dir_okay=False, help="File to write the plot to."),
    max_display: int = typer.Option(12, min=2, help="Features shown in the waterfall plot."),
    summary: bool = typer.Option(False, "--summary", help="A model's global SHAP summary instead."),
    model: Path | None = typer.Option(
        None,
        file_okay=False,
        help="The model directory (default for an alert: RISKSTREAM_CREDIT_MODEL_DIR, onnx/credit).",
    ),
    data: Path | None = typer.Option(
        None, dir_okay=False, help="--summary: rows for a beeswarm plot; --row: the scored CSV."
    ),
    row: int | None = typer.Option(
        None, "--row", help="Explain row N (1-based, header excluded) of --data, offline."
    ),
) -> None:
    """Render an alert's SHAP waterfall (PNG) or force plot (HTML) from the cached explanation.

    The waterfall reads in probability of default, from the PD at the model's base value to
    the alert's PD, when the model the alert names is at hand (--model). With --model DIR
    --data FILE --row N, explain one row of a CSV with no services, as credit score
    --explain does for every row.
    """
    if summary:
        _summary(model, data, out)
        return
    if row is not None:
        explanation, calibrate = _offline(model, data, row)
        _render(explanation, calibrate, plot, out, f"row {row}", max_display)
        return
    if alert_id is None:
        raise InputError(
            "give an ALERT_ID, --model DIR --data FILE --row N, or --summary --model DIR"
        )
    import redis

    from engine.explain.cache import ALERT_KEY, Explanation
    from engine.sinks.redis import sync_client_from_settings

    settings = load_settings()
    client = sync_client_from_settings(settings)
    try:
        stored = client.get(ALERT_KEY.format(alert_id=alert_id))
    except redis.exceptions.ConnectionError as exc:
        from engine.errors import ServiceUnavailableError

        raise ServiceUnavailableError(f"Redis is unreachable: {exc}") from None
    finally:
        client.close()
    if stored is None:
        raise InputError(
            f"no explanation stored for alert {alert_id!r} (not an explained alert, or expired "
            "after RISKSTREAM_SHAP_CACHE_TTL_S)"
        )
    explanation = Explanation.from_json(stored)
    to_pd = None
    if out is not None and plot is Plot.waterfall:
        to_pd = _calibration_of(explanation, model or settings.credit.model_dir)
    _render(explanation, to_pd, plot, out, alert_id, max_display)


def _render(
    explanation: Explanation,
    calibrate: Callable[[np.ndarray], np.ndarray] | None,
    plot: Plot,
    out: Path | None,
    subject: str,
    max_display: int,
) -> None:
    """Print the attributions (no ``out``) or write the plot."""
    if out is None:
        _print(explanation, subject)
        return
    from engine.explain import plots

    out.parent.mkdir(parents=True, exist_ok=True)
    if plot is Plot.waterfall:
        plots.waterfall(
            explanation, out, alert_id=subject, max_display=max_display, to_probability=calibrate
        )
    else:
        plots.force(explanation, out, alert_id=subject)
    typer.echo(f"riskstream: wrote the {plot.value} plot of {subject} to {out}", err=True)


def _calibration_of(
    explanation: Explanation, directory: Path | None
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The calibration of the model that made the explanation, if ``directory`` holds it.

    Otherwise ``None`` (the waterfall stays in the explanation's units) and a line on
    stderr says why.
    """
    import numpy as np

    from engine.credit.model import DEFAULT_MODEL_DIR, CreditModel
    from engine.errors import RiskstreamError

    directory = directory or DEFAULT_MODEL_DIR
    try:
        loaded = CreditModel(directory)
        same = (loaded.name, loaded.version) == (explanation.model, explanation.model_version)
        if same and loaded.card.output == explanation.units:
            loaded.calibrate(np.zeros(1))  # a card without a calibration fails here
            return loaded.calibrate
        why = f"{directory} holds {loaded.name} {loaded.version}"
    except RiskstreamError as exc:
        why = str(exc)
    typer.echo(
        f"riskstream: the waterfall is in {explanation.units}, not probability: the model "
        f"{explanation.model} {explanation.model_version} is not at hand ({why}; give --model DIR)",
        err=True,
    )
    return None


def _offline(
    model: Path | None, data: Path | None, row: int
) -> tuple[Explanation, Callable[[np.ndarray], np.ndarray]]:
    """The explanation of row ``row`` (1-based) of ``data`` under ``model``, computed here."""
    if model is None or data is None:
        raise InputError("--row needs --model DIR and --data FILE")
    if row < 1:
        raise InputError(f"--row {row}: rows are numbered from 1 (header excluded)")
    import pandas as pd

    from engine.credit.model import CreditModel
    from engine.explain.cache import Explanation

    loaded = CreditModel(model)
    card = loaded.card
    if not data.is_file():
        raise InputError(f"file not found: {data}")
    text_columns = {f.name: str for f in card.inputs if f.kind == "categorical"}
    try:
        frame = pd.read_csv(data, nrows=row, dtype=text_columns, low_memory=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{data}: not a readable CSV file ({exc})".replace("\n", " ")) from None
    if len(frame) < row:
        raise InputError(f"--row {row}: {data} has {len(frame):,} rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    X = card.encode_frame(frame.iloc[row - 1 : row], f"{data} (row {row})")
    found = loaded.explainer().explain(X)
    explanation = Explanation(
        model=card.name,
        model_version=card.version,
        features=tuple(card.feature_names),
        values=tuple(card.display(X[0])),
        shap=tuple(found.values[0].tolist()),
        base=float(found.base[0]),
        output=float(found.output[0]),
        units=loaded.explainer().units,
    )
    return explanation, loaded.calibrate


def _print(explanation: object, alert_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from engine.explain.cache import Explanation

    assert isinstance(explanation, Explanation)
    table = Table(
        title=f"{alert_id}: {explanation.model} {explanation.model_version} ({explanation.units})"
    )
    table.add_column("feature")
    table.add_column("value", justify="right")
    table.add_column("SHAP", justify="right")
    for a in explanation.top(len(explanation.shap)):
        table.add_row(a.feature, "missing" if a.value is None else str(a.value), f"{a.shap:+.6f}")
    table.add_row("base value", "", f"{explanation.base:+.6f}")
    table.add_row("model output", "", f"{explanation.output:+.6f}")
    Console().print(table)


def _summary(model: Path | None, data: Path | None, out: Path | None) -> None:
    if model is None or out is None:
        raise InputError("--summary needs --model DIR and --out FILE")
    from engine.credit.model import CreditModel
    from engine.explain import plots

    loaded = CreditModel(model)
    card = loaded.card
    title = f"{card.name} {card.version}: global SHAP importance ({card.output})"
    out.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        importance = card.extra.get("global_importance")
        if not importance:
            raise InputError(f"{model}: the model card has no global importance; give --data")
        plots.importance_bar(importance, out, title=title)
    else:
        import numpy as np
        import pandas as pd

        if not data.is_file():
            raise InputError(f"file not found: {data}")
        try:
            frame = pd.read_csv(data, low_memory=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{data}: not a readable CSV file ({exc})".replace("\n", " ")
            ) from None
        X = card.encode_frame(frame, str(data))
        rows = np.random.default_rng(0).permutation(len(X))[:2000]
        attributions = loaded.explainer().explain(X[rows])
        plots.beeswarm(attributions.values, X[rows], card.feature_names, out, title=title)
    typer.echo(
        f"riskstream: wrote the SHAP summary of {card.name} {card.version} to {out}", err=True
    )
