"""``riskstream explain``: plot the SHAP explanation of an alert, or a model's global summary.

``riskstream explain ALERT_ID --plot waterfall|force --out FILE`` reads the explanation the
worker stored for the alert (``riskstream:shap:alert:<alert_id>``, kept for
``RISKSTREAM_SHAP_CACHE_TTL_S``) and renders shap's waterfall plot (PNG) or force plot
(self-contained HTML). Without ``--out`` it prints the attributions as a table.

``riskstream explain --summary --model DIR --out FILE`` renders the model's global
importance (mean |SHAP| per feature, from its card) as a bar chart, or, with ``--data CSV``,
shap's beeswarm summary over up to 2,000 rows of that file.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from engine.cli.app import app, load_settings
from engine.errors import InputError


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
        None, file_okay=False, help="--summary: the model directory."
    ),
    data: Path | None = typer.Option(
        None, dir_okay=False, help="--summary: rows for a beeswarm plot."
    ),
) -> None:
    """Render an alert's SHAP waterfall (PNG) or force plot (HTML) from the cached explanation."""
    if summary:
        _summary(model, data, out)
        return
    if alert_id is None:
        raise InputError("give an ALERT_ID, or --summary --model DIR")
    import redis

    from engine.explain.cache import ALERT_KEY, Explanation
    from engine.sinks.redis import sync_client_from_settings

    client = sync_client_from_settings(load_settings())
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
    if out is None:
        _print(explanation, alert_id)
        return
    from engine.explain import plots

    out.parent.mkdir(parents=True, exist_ok=True)
    if plot is Plot.waterfall:
        plots.waterfall(explanation, out, alert_id=alert_id, max_display=max_display)
    else:
        plots.force(explanation, out, alert_id=alert_id)
    typer.echo(f"riskstream: wrote the {plot.value} plot of {alert_id} to {out}", err=True)


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
