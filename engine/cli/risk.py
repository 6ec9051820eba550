"""Offline risk commands: ``riskstream var forecast``, ``vol forecast``, ``backtest``, ``data``.

CSV in, CSV out, no services (docs/contracts.md, "Offline CLI"). The numbers are the stream's:
the same risk book, fed the file's rows in order.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.cli.app import app, command_group, load_settings
from engine.cli.params import PricesFile
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from engine.config import Settings
    from engine.core import RiskSpec
    from engine.offline.runs import OfflineRun

var_app = command_group("var", "Value-at-Risk and expected shortfall forecasts from a price file.")
vol_app = command_group("vol", "Volatility forecasts from a price file.")
data_app = command_group("data", "Export real data sets as price files for the offline commands.")


def _levels(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        levels = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(
            f"--levels {text!r}: expected comma-separated numbers like 0.95,0.99"
        ) from None
    if not levels or not all(0.5 < level < 1.0 for level in levels):
        raise InputError(f"--levels {text!r}: every level must be strictly between 0.5 and 1")
    return tuple(sorted(set(levels)))


def _spec(settings: Settings, *, vol_models: tuple[str, ...], method: str) -> RiskSpec:
    """The settings' spec, narrowed to the models the output needs (methods are independent)."""
    from dataclasses import replace

    return replace(settings.risk_spec(), vol_models=vol_models, method=method)


def _read_prices(prices: Path) -> pd.DataFrame:
    """The price file as long rows; :class:`InputError` when it has no price rows."""
    from producers.sources import read_price_csv

    frame = read_price_csv(prices)
    if frame.empty:
        raise InputError(f"{prices}: no price rows (the file has a header only)")
    return frame


def _run(
    prices: Path,
    spec: RiskSpec,
    quiet: bool,
    frame: pd.DataFrame | None = None,
    settings: Settings | None = None,
) -> OfflineRun:
    """Forecast every row of ``prices`` (or of ``frame``, already read from it), with the
    bars of ``settings`` (``RISKSTREAM_BARS``; default: the environment's)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.gctune import tune_for_streaming
    from engine.offline.runs import run_prices
    from engine.pipeline import session_bars, session_rv

    if frame is None:
        frame = _read_prices(prices)
    tune_for_streaming()
    settings = settings if settings is not None else load_settings()
    realised = session_rv(settings)  # realised variance from the rows, as the stream
    bars = session_bars(settings)
    if quiet:
        run = run_prices(frame, spec, realised=realised, bars=bars)
    else:
        with Progress(
            TextColumn("forecasting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=_stderr(),
        ) as bar:
            task = bar.add_task("rows", total=len(frame))
            run = run_prices(
                frame,
                spec,
                progress=lambda done, total: bar.update(task, completed=done),
                realised=realised,
                bars=bars,
            )
    if len(run.refused):
        reasons = run.refused["reason"].value_counts().to_dict()
        typer.echo(
            f"riskstream: {len(run.refused)} rows not forecast (out of order or repeated: {reasons}); "
            f"first at row {int(run.refused['row'].iloc[0]) + 2} of {prices}",
            err=True,
        )
    return run


BARS_HELP = (
    "tick (every row is one return) or session (models step on session close-to-close "
    "returns, sessions from RISKSTREAM_RV_CALENDAR) [default: RISKSTREAM_BARS]."
)
HORIZON_HELP = (
    "VaR/ES horizon in steps (sessions with --bars session), at least 1 "
    "[default: RISKSTREAM_VAR_HORIZON]."
)


def _bars_option(text: str | None) -> str | None:
    """``--bars``: ``tick`` or ``session``; :class:`InputError` for anything else."""
    if text is None or text in ("tick", "session"):
        return text
    raise InputError(f"--bars {text!r}: choose tick or session")


def _stderr():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


def _iso(frame: pd.DataFrame) -> pd.Series:
    return (
        frame["timestamp"]
        .dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        .str.replace(".000000Z", "Z", regex=False)
    )


@var_app.command("forecast")
def var_forecast(
    prices: PricesFile,
    out: Path = typer.Option(
        ..., "--out", help="Output CSV: timestamp,symbol,method,level,var,es."
    ),
    method: str = typer.Option(
        None, "--method", help="VaR method [default: RISKSTREAM_VAR_METHOD, the recommended one]."
    ),
    levels: str = typer.Option(
        None, "--levels", help="Confidence levels, e.g. 0.95,0.99 [default: RISKSTREAM_VAR_LEVELS]."
    ),
    bars: str = typer.Option(None, "--bars", help=BARS_HELP),
    horizon: int = typer.Option(None, "--horizon", help=HORIZON_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """At each row: VaR and ES of the log return from that row to the symbol's next one.

    Forecasts use the rows up to and including the one they are written on. VaR and ES
    are positive losses in log-return units (0.02 is a 2% loss); empty while a method
    warms up. With --bars session, one row per symbol and session close (at the
    session's last row), for the return to the next session's close; with --horizon h,
    for the log return over the next h steps (docs/models/horizon.md).
    """
    import numpy as np
    import pandas as pd

    from engine.core.var.horizon import horizon_factor

    chosen = _levels(levels)
    settings = load_settings(
        var_levels=chosen,
        alert_levels=chosen and (chosen[-1],),
        bars=_bars_option(bars),
        var_horizon=horizon,
    )
    name = method or settings.risk.var_method
    from engine.core.spec import AVERAGE, CHAMPION, method_names
    from engine.core.volatility.registry import vol_model, vol_model_names

    spec = settings.risk_spec()
    known = (*method_names(vol_model_names()), AVERAGE, CHAMPION)
    if name not in known:
        raise InputError(f"--method {name!r}: choose from {', '.join(known)}")
    vol = spec.vol_of(name)
    if name == CHAMPION:  # the stream's book, with the models its candidates need
        models = spec.champion_vol_models
    elif name == AVERAGE:
        models = spec.average_vol_models
    else:
        combining = vol is not None and vol_model(vol).needs == "forecasts"
        models = vol_model_names() if combining else (vol,) if vol else spec.vol_models[:1]
    frame = None
    rv_models = vol_model_names(needs=("rv", "returns+rv"))
    if name != CHAMPION and vol in rv_models and not _has_rv_column(prices):
        frame = _engine_rv(prices, settings, f"--method {name}")
    run = _run(prices, _spec(settings, vol_models=models, method=name), quiet, frame, settings)
    j = run.method_index(name)
    scale = horizon_factor(settings.risk.var_horizon)
    if not np.isfinite(run.var[:, j, :]).any():
        raise InputError(_warming_up(prices, run, f"--method {name}", vol, settings))
    stamps, symbols = _iso(run.frame), run.frame["symbol"]
    parts = []
    for level in settings.risk.var_levels:
        li = run.level_index(level)
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": stamps,
                    "symbol": symbols,
                    "method": name,
                    "level": level,
                    "var": run.var[:, j, li] * scale,
                    "es": run.es[:, j, li] * scale,
                    "_row": np.arange(len(stamps)),
                }
            )
        )
    table = pd.concat(parts).sort_values(["_row", "level"], kind="stable").drop(columns="_row")
    _write(table, out)


@vol_app.command("forecast")
def vol_forecast(
    prices: PricesFile,
    out: Path = typer.Option(..., "--out", help="Output CSV: timestamp,symbol,model,sigma."),
    model: str = typer.Option(
        None,
        "--model",
        help="ewma, garch, gjr, har, lstm, transformer, lstm_r or combo [default: the recommended method's].",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """At each row: the standard deviation of the log return from that row to the symbol's next one.

    HAR, LSTM and Transformer forecast from realized variance (decimal^2): the file's 'rv'
    column, or else the engine computes it per trading session from intraday rows
    (RISKSTREAM_RV_CALENDAR, RISKSTREAM_RV_MIN_RETURNS) and they forecast at session closes,
    one row per symbol and session, for the return to the next session's close. The deep
    models are the ONNX models in onnx/deep (RISKSTREAM_DEEP_MODEL_DIR); lstm_r is the
    returns-only LSTM (onnx/deep/lstm-returns): it forecasts from closes alone, on every
    row. combo is the equal-weight average of the variances of all the others.
    """
    import numpy as np
    import pandas as pd

    from engine.core.volatility.registry import vol_model, vol_model_names

    settings = load_settings()
    name = model or settings.risk_spec().vol_of(settings.risk.var_method) or "ewma"
    known = vol_model_names()
    if name not in known:
        raise InputError(f"--model {name!r}: choose from {', '.join(known)}")
    combining = vol_model(name).needs == "forecasts"
    models = known if combining else (name,)
    frame = None
    if not _has_rv_column(prices):
        rv_models = vol_model_names(needs=("rv", "returns+rv"))
        needy = [m for m in models if m in rv_models]
        if name in rv_models:
            frame = _engine_rv(prices, settings, f"--model {name}")
        elif needy:
            models = tuple(m for m in models if m not in rv_models)
            typer.echo(
                f"riskstream: warning: {prices} has no 'rv' column: {name} averages "
                f"{', '.join(m for m in models if m != name)} without "
                f"{', '.join(needy)}",
                err=True,
            )
    run = _run(prices, _spec(settings, vol_models=models, method=f"{name}-normal"), quiet, frame)
    if not np.isfinite(run.sigma[name]).any():
        raise InputError(_warming_up(prices, run, f"--model {name}", name, settings))
    table = pd.DataFrame(
        {
            "timestamp": _iso(run.frame),
            "symbol": run.frame["symbol"],
            "model": name,
            "sigma": run.sigma[name],
        }
    )
    _write(table, out)


def _engine_rv(prices: Path, settings: Settings, what: str) -> pd.DataFrame:
    """The session closes of an intraday file without ``rv``, with the engine's realised
    variance (engine/offline/intraday.py); :class:`InputError` when no session has one."""
    from engine.offline.intraday import session_closes

    frame = _read_prices(prices)
    try:
        closes = session_closes(
            frame, calendar=settings.risk.rv_calendar, min_returns=settings.risk.rv_min_returns
        )
    except ValueError as exc:
        raise InputError(f"RISKSTREAM_RV_CALENDAR={settings.risk.rv_calendar}: {exc}") from None
    if closes.with_rv == 0:
        raise InputError(
            f"{what} forecasts from realized variance, and {prices} has no 'rv' column (each "
            "row's realized variance, decimal^2) nor the intraday rows to compute it from "
            f"(at most {closes.most_ticks} rows in a session, and two sessions with "
            f"{settings.risk.rv_min_returns + 1} or more are needed, RISKSTREAM_RV_MIN_RETURNS); "
            "use ewma, garch or gjr, or add the column"
        )
    typer.echo(
        f"riskstream: {prices} has no 'rv' column: {closes.describe()}; {what} forecasts at "
        "session closes: one row per symbol and session, at its last row, for the log return "
        "to the next session's last row",
        err=True,
    )
    return closes.frame


def _warming_up(
    prices: Path, run: OfflineRun, what: str, vol: str | None, settings: Settings
) -> str:
    """Why a command has no forecast at any row: the model's warm-up against the file."""
    from engine.core.volatility.registry import vol_model

    counts = run.frame.groupby("symbol", sort=False).size()
    longest = int(counts.max()) if len(counts) else 0
    text = f"{what}: no forecast at any of the {len(run.frame)} rows of {prices}"
    if vol is None:
        return f"{text}: the longest symbol has {longest} rows; RISKSTREAM_VAR_MIN_OBS is {settings.risk.var_min_obs} returns"
    cls = vol_model(vol)
    if cls.needs in ("rv", "returns+rv") and "rv" in run.frame:
        have = int(run.frame.groupby("symbol", sort=False)["rv"].count().max())
        unit = f"observations with realized variance (the longest symbol has {have})"
    else:
        unit = f"returns (the longest symbol has {max(longest - 1, 0)})"
    if cls.fitted:
        need = settings.risk.refit_first + settings.risk.refit_delay
        why = f"{vol} first forecasts after RISKSTREAM_REFIT_FIRST + RISKSTREAM_REFIT_DELAY = {need} {unit}"
    elif cls.needs == "returns+rv":
        why = f"{vol} first forecasts once its window and burn-in are filled, in {unit}"
    else:
        why = f"{vol} is still warming up after {unit}"
    return f"{text}: {why}; give it a longer file"


def _has_rv_column(prices: Path) -> bool:
    """Whether the price file has a long-format ``rv`` column (read from its header only)."""
    import pandas as pd

    try:
        return "rv" in pd.read_csv(prices, nrows=0).columns
    except (OSError, ValueError):
        return True  # unreadable: the full read reports it with its reason


@app.command()
def backtest(
    prices: PricesFile,
    report: Path = typer.Option(
        ..., "--report", help="Directory for the report (Markdown, CSV, PNG)."
    ),
    start: str = typer.Option(
        None, help="First day evaluated (YYYY-MM-DD) [default: first forecast]."
    ),
    end: str = typer.Option(None, help="Last day evaluated (YYYY-MM-DD) [default: last row]."),
    rolling: int = typer.Option(
        250, help="Length of the rolling windows for the traffic-light share (at least 20)."
    ),
    learned_var: bool = typer.Option(
        False,
        "--learned-var/--no-learned-var",
        help="Add machine-learned quantile VaR (LightGBM refitted yearly, river online) to the VaR table.",
    ),
    bars: str = typer.Option(None, "--bars", help=BARS_HELP),
    horizon: int = typer.Option(None, "--horizon", help=HORIZON_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Compare every VaR method and volatility model on a price file: tests, zones, losses, plots.

    With --bars session the methods are judged on session close-to-close returns; with
    --horizon h each h-step forecast against the realised h-step return, on
    non-overlapping windows (docs/models/horizon.md).

    Writes report.md, var_backtest.csv, es_backtest.csv, vol_forecasts.csv (when the file
    has realized variance) and plots of returns with VaR bands and of volatility against
    realized.
    """
    from engine.offline.backtest_report import evaluate, write_report

    # Every option is checked before the forecasts run (minutes on a long file).
    first_day, last_day = _day_option("--start", start), _day_option("--end", end)
    if first_day and last_day and last_day < first_day:
        raise InputError(f"--end {last_day} is before --start {first_day}")
    if rolling < 20:
        raise InputError(f"--rolling {rolling}: the rolling windows need at least 20 observations")
    if report.exists() and not report.is_dir():
        raise InputError(f"--report {report}: exists and is not a directory")
    settings = load_settings(bars=_bars_option(bars), var_horizon=horizon)
    spec = settings.risk_spec()
    frame = _read_prices(prices)
    covers = _covers(prices, frame)
    stamps = frame["timestamp"]
    if first_day and _day_stamp(first_day) > stamps.iloc[-1]:
        raise InputError(f"--start {first_day} is after the last row: {covers}")
    if last_day and _day_stamp(last_day, end_of_day=True) < stamps.iloc[0]:
        raise InputError(f"--end {last_day} is before the first row: {covers}")
    run = _run(prices, spec, quiet, frame, settings)
    tables = evaluate(
        run, start=first_day, end=last_day, rolling=rolling, horizon=settings.risk.var_horizon
    )
    if learned_var and not tables.var.empty:
        import pandas as pd

        from engine.deep.quantile import learned_var_rows

        learned = learned_var_rows(run, start=first_day, end=last_day, rolling=rolling)
        tables.var = pd.concat([tables.var, learned], ignore_index=True)
    if tables.var.empty:
        raise InputError(_no_forecast(run, covers, first_day, last_day))
    files = write_report(run, tables, report, published=spec.method, rolling=rolling)
    typer.echo(
        f"wrote {len(files)} files to {report} (period {tables.period[0]} to {tables.period[1]})"
    )


def _day_option(name: str, text: str | None) -> str | None:
    """A ``YYYY-MM-DD`` option's day in that form; :class:`InputError` for anything else."""
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise InputError(
            f"{name} {text!r}: expected a day as YYYY-MM-DD, e.g. 2003-01-02"
        ) from None


def _day_stamp(day: str, *, end_of_day: bool = False) -> pd.Timestamp:
    """The UTC start of ``day`` (``YYYY-MM-DD``), or its last millisecond."""
    import pandas as pd

    stamp = pd.Timestamp(day, tz="UTC")
    return stamp + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1) if end_of_day else stamp


def _covers(prices: Path, frame: pd.DataFrame) -> str:
    """What a price file holds, for messages: ``FILE covers DAY to DAY (N rows)``."""
    first, last = (str(frame["timestamp"].iloc[i])[:10] for i in (0, -1))
    return f"{prices} covers {first} to {last} ({len(frame):,} rows)"


def _no_forecast(run: OfflineRun, covers: str, start: str | None, end: str | None) -> str:
    """Why the evaluation period has no forecast to judge: where the judged forecasts are."""
    import numpy as np

    from engine.offline.runs import log_returns

    asked = f"{start or 'the first row'} to {end or 'the last row'}"
    judged = np.isfinite(run.var_before).any(axis=(1, 2)) & np.isfinite(log_returns(run))
    if not judged.any():
        return (
            f"no VaR forecast to judge anywhere in the file: {covers}, too few returns per "
            "symbol for the methods to warm up (RISKSTREAM_VAR_MIN_OBS, RISKSTREAM_REFIT_FIRST)"
        )
    days = run.frame["timestamp"][judged]
    return (
        f"no VaR forecast to judge from {asked}: {covers}; forecasts can be judged from "
        f"{str(days.iloc[0])[:10]} to {str(days.iloc[-1])[:10]}"
    )


@data_app.command("export")
def data_export(
    name: str = typer.Argument(
        ..., help="sp500, nasdaq, bundled (both), sp500-rv (with realized variance), sp500-1min."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output CSV in the offline format (timestamp,symbol,price[,rv])."
    ),
) -> None:
    """Write a real data set as a long-format price CSV."""
    from producers import sources

    loaders = {
        "sp500": lambda: sources.arch_daily("sp500"),
        "nasdaq": lambda: sources.arch_daily("nasdaq"),
        "bundled": sources.bundled_prices,
        "sp500-rv": sources.sp500_realized,
        "sp500-1min": sources.sp500_1min,
    }
    if name not in loaders:
        raise InputError(f"unknown data set {name!r}; choose from {', '.join(loaders)}")
    frame = loaders[name]()
    frame = frame.assign(timestamp=_iso(frame))
    _write(frame[[c for c in ("timestamp", "symbol", "price", "rv", "volume") if c in frame]], out)


def _write(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)  # shortest exact repr: numbers round-trip to the bit
    typer.echo(f"wrote {len(table):,} rows to {out}", err=sys.stderr.isatty())
