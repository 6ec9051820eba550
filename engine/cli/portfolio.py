"""``riskstream portfolio var``: portfolio VaR/ES with component and marginal VaR from files.

The numbers are those of :class:`~engine.core.portfolio.PortfolioBook`, the same book the
streaming portfolio service runs (``riskstream portfolio serve``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.cli.app import command_group
from engine.cli.params import POSITIONS_HELP, PositionsFile, PricesFile
from engine.cli.risk import _day_option, _iso, _levels, _write
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.options.reference import Listing
    from engine.portfolio.positions import Position

portfolio_app = command_group(
    "portfolio", "Portfolio risk: EWMA covariance, VaR/ES, component and marginal VaR."
)

INSTRUMENTS_HELP = (
    "Instruments CSV (instrument,kind,currency,calendar[,...], the options instruments file "
    "format): value every position in the base currency through the FX pairs' prices "
    "(kind fx, named <foreign><currency>, e.g. EURUSD), and align 24/7 symbols on the "
    "session symbols' grid."
)


@portfolio_app.command("var")
def portfolio_var(
    prices: PricesFile,
    positions: PositionsFile,
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output CSV: timestamp,portfolio,level,value,var,es,pnl (currency units; pnl: the next interval's realised P&L).",
    ),
    components: Path = typer.Option(
        None,
        "--components",
        help="Also write timestamp,portfolio,level,symbol,exposure,marginal_var,component_var,component_es.",
    ),
    interval: str = typer.Option(
        "1d", "--interval", help="Grid interval of the covariance: 1d, 4h, 15m, 30s, ..."
    ),
    lam: float = typer.Option(
        DEFAULT_LAMBDA,
        "--lambda",
        min=0.5,
        max=0.9999,
        help="EWMA decay of the covariance (RiskMetrics).",
    ),
    levels: str = typer.Option("0.95,0.975,0.99", "--levels", help="Confidence levels."),
    min_obs: int = typer.Option(
        20, "--min-obs", min=1, help="Grid returns each held symbol needs before risk is reported."
    ),
    nu: float = typer.Option(
        None, "--nu", help="Student-t degrees of freedom (> 2) instead of the normal."
    ),
    plot: Path = typer.Option(
        None, "--plot", help="PNG: value and VaR over time, and the component VaR of each symbol."
    ),
    backtest_out: Path = typer.Option(
        None,
        "--backtest",
        help="Also write the VaR backtest (violations by the next P&L, Kupiec, Christoffersen) as CSV.",
    ),
    start: str = typer.Option(
        None, "--start", help="Backtest forecasts made from this date on (e.g. 2003-01-01)."
    ),
    instruments: Path = typer.Option(
        None,
        "--instruments",
        help=INSTRUMENTS_HELP + " Positions in its options are left out of the linear book, "
        "as the streaming service does.",
    ),
    base_currency: str = typer.Option(
        None,
        "--base-currency",
        help="With --instruments: the currency of every amount (default RISKSTREAM_BASE_CURRENCY, USD).",
    ),
) -> None:
    """Portfolio VaR and ES at each grid close, for the next interval's profit and loss.

    Exposures are quantity x price at the close; VaR, ES and components are in the price
    currency, losses positive. Component VaRs sum to the portfolio VaR (Euler allocation).
    With --instruments, amounts are in the base currency, FX pairs are risk factors
    (components), and the output has the columns currency and missing_fx.
    """
    from engine.offline.backtest_report import _markdown
    from engine.portfolio.positions import backtest, parse_interval, read_positions, run_portfolio
    from producers.sources import read_price_csv

    chosen = _levels(levels)
    assert chosen is not None
    start = _day_option("--start", start)
    if nu is not None and nu <= 2:
        raise InputError(f"--nu {nu}: Student-t needs more than 2 degrees of freedom")
    held = read_positions(positions)
    listings, base = _currency_reference(instruments, base_currency)
    held, options = _linear_positions(held, listings)
    if options:
        typer.echo(
            f"left out {len(options)} option position(s) ({', '.join(options)}): not price "
            "series of the linear book; `riskstream options greeks` and `riskstream stress "
            "run` value them",
            err=True,
        )
    frame = read_price_csv(prices)
    unknown = sorted({p.symbol for p in held} - set(frame["symbol"].astype(str)))
    if unknown:
        raise InputError(f"{positions}: no prices in {prices} for {', '.join(unknown)}")
    totals, parts = run_portfolio(
        frame,
        held,
        interval_ms=parse_interval(interval),
        lam=lam,
        levels=chosen,
        min_obs=min_obs,
        nu=nu,
        base_currency=base,
        listings=listings,
    )
    if plot is not None:
        _plot(totals, parts, plot)
    _write(totals.assign(timestamp=_iso(totals)), out)
    if components is not None:
        _write(parts.assign(timestamp=_iso(parts)), components)
    table = backtest(totals, start=start)
    typer.echo(_markdown(table), err=True)
    if backtest_out is not None:
        _write(table, backtest_out)


def _linear_positions(
    held: list[Position], listings: Sequence[Listing]
) -> tuple[list[Position], list[str]]:
    """The positions the linear book values, and the option symbols left out (sorted).

    A symbol the instruments file calls an option has no price series: the streaming
    service keeps it out of the book the same way (its Greeks monitor values it), so one
    positions file serves the offline commands and the service alike.
    """
    options = {x.key for x in listings if x.instrument is not None and x.instrument.is_option}
    kept = [p for p in held if p.symbol not in options]
    return kept, sorted({p.symbol for p in held} - {p.symbol for p in kept})


def _currency_reference(
    instruments: Path | None, base_currency: str | None
) -> tuple[list[Listing], str | None]:
    """The instruments file's listings and the base currency, or ``([], None)`` without one."""
    if instruments is None:
        if base_currency is not None:
            raise InputError("--base-currency needs --instruments (the symbols' currencies)")
        return [], None
    import re

    from engine.cli.app import load_settings
    from engine.options.reference import read_instrument_file

    base = base_currency if base_currency is not None else load_settings().portfolio.base_currency
    if not re.fullmatch(r"[A-Z][A-Z0-9]{2,4}", base):
        raise InputError(f"--base-currency {base!r}: expected a currency code such as USD")
    return read_instrument_file(instruments), base


def _plot(totals, parts, out: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level = totals["level"].max()
    portfolios = sorted(totals["portfolio"].unique())
    fig, axes = plt.subplots(
        2, len(portfolios), figsize=(7 * len(portfolios), 7), squeeze=False, sharex="col"
    )
    for k, name in enumerate(portfolios):
        t = totals[(totals["portfolio"] == name) & (totals["level"] == level)]
        top, bottom = axes[0, k], axes[1, k]
        top.plot(t["timestamp"], t["var"], label=f"VaR {level:.1%}")
        top.plot(t["timestamp"], t["es"], label=f"ES {level:.1%}", alpha=0.7)
        top.set_title(f"portfolio {name}")
        top.set_ylabel("currency")
        top.legend()
        c = parts[(parts["portfolio"] == name) & (parts["level"] == level)]
        wide = c.pivot_table(index="timestamp", columns="symbol", values="component_var")
        for symbol in wide.columns:
            bottom.plot(wide.index, wide[symbol], linewidth=0.8, label=symbol)
        bottom.plot(t["timestamp"], t["var"], color="black", linewidth=0.8, label="total")
        bottom.set_ylabel(f"component VaR {level:.1%}")
        bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


@portfolio_app.command("serve")
def portfolio_serve(
    positions: Path = typer.Option(
        None,
        "--positions",
        envvar="RISKSTREAM_PORTFOLIO_POSITIONS",
        help=POSITIONS_HELP + " Initial positions; the positions topic updates them.",
    ),
    interval: str = typer.Option("1d", "--interval", envvar="RISKSTREAM_PORTFOLIO_INTERVAL"),
    lam: float = typer.Option(DEFAULT_LAMBDA, "--lambda", envvar="RISKSTREAM_PORTFOLIO_LAMBDA"),
    levels: str = typer.Option("0.95,0.975,0.99", "--levels", envvar="RISKSTREAM_PORTFOLIO_LEVELS"),
    min_obs: int = typer.Option(20, "--min-obs", min=1, envvar="RISKSTREAM_PORTFOLIO_MIN_OBS"),
    nu: float = typer.Option(None, "--nu", envvar="RISKSTREAM_PORTFOLIO_NU"),
    idle: float = typer.Option(
        30.0, "--idle", help="Seconds after which a silent partition stops holding time back."
    ),
    stress: bool = typer.Option(
        True,
        "--stress/--no-stress",
        envvar="RISKSTREAM_PORTFOLIO_STRESS",
        help="Recompute every portfolio's scenario P&L into riskstream:stress:<id>.",
    ),
    stress_every: str = typer.Option(
        "1m",
        "--stress-every",
        envvar="RISKSTREAM_PORTFOLIO_STRESS_EVERY",
        help="Event time between stress recomputations: 1m, 1h, 1d, ...",
    ),
    stress_limit: float = typer.Option(
        None,
        "--stress-limit",
        envvar="RISKSTREAM_PORTFOLIO_STRESS_LIMIT",
        help="Loss (currency units, positive) beyond which a portfolio's worst scenario raises a stress_limit alert.",
    ),
    scenarios: Path = typer.Option(
        None,
        "--scenarios",
        envvar="RISKSTREAM_PORTFOLIO_SCENARIOS",
        help="Scenario TOML file or directory (default: the bundled library).",
    ),
    metrics_port: int = typer.Option(
        None,
        "--metrics-port",
        envvar="RISKSTREAM_PORTFOLIO_METRICS_PORT",
        help="Serve the stress gauges for Prometheus on this port (127.0.0.1; default: no metrics server).",
    ),
    group: str = typer.Option(
        None,
        "--group",
        envvar="RISKSTREAM_PORTFOLIO_GROUP",
        help="Scale out: share the portfolios with every instance started with the same group "
        "(a Kafka consumer group on positions). Default: one instance reads every partition.",
    ),
    session_timeout: float = typer.Option(
        10.0,
        "--session-timeout",
        envvar="RISKSTREAM_PORTFOLIO_SESSION_TIMEOUT",
        help="With --group: seconds before a dead instance's portfolios move to the others.",
    ),
    snapshot_every: int = typer.Option(
        10,
        "--snapshot-every",
        min=1,
        envvar="RISKSTREAM_PORTFOLIO_SNAPSHOT_EVERY",
        help="With --group: grid closes between market snapshots (shorter replays after a rebalance).",
    ),
    max_records: int = typer.Option(
        20_000, "--max-records", min=1, help="Records per Kafka poll (one Redis transaction each)."
    ),
    greeks_market: Path = typer.Option(
        None,
        "--greeks-market",
        envvar="RISKSTREAM_PORTFOLIO_GREEKS_MARKET",
        help="Turn on option Greeks: CSV underlying,rate,dividend_yield,vol (decimals; the "
        "options price market file works, its last row per underlying counts). Reads the "
        "instruments topic; writes riskstream:greeks:<id>.",
    ),
    instruments: Path = typer.Option(
        None,
        "--instruments",
        envvar="RISKSTREAM_PORTFOLIO_INSTRUMENTS",
        help=INSTRUMENTS_HELP + " Known at start; the instruments topic updates them "
        "(also the options of --greeks-market). Amounts, Greeks included, in "
        "RISKSTREAM_BASE_CURRENCY.",
    ),
    greeks_every: str = typer.Option(
        "1m",
        "--greeks-every",
        envvar="RISKSTREAM_PORTFOLIO_GREEKS_EVERY",
        help="Event time between Greeks recomputations: 0s (every release), 1m, 1h, ...",
    ),
    delta_limit: float = typer.Option(
        None,
        "--delta-limit",
        envvar="RISKSTREAM_PORTFOLIO_DELTA_LIMIT",
        help="|delta| (currency per 1.00 relative move) beyond which a greek_limit alert fires.",
    ),
    vega_limit: float = typer.Option(
        None,
        "--vega-limit",
        envvar="RISKSTREAM_PORTFOLIO_VEGA_LIMIT",
        help="|vega| (currency per 1.00 of vol) beyond which a greek_limit alert fires.",
    ),
    greeks_var_scenarios: int = typer.Option(
        2000,
        "--greeks-var-scenarios",
        min=0,
        envvar="RISKSTREAM_PORTFOLIO_GREEKS_VAR_SCENARIOS",
        help="Scenarios of the options VaR (delta-gamma vs full revaluation, one interval, "
        "at the highest --levels level) in riskstream:greeks:<id>; 0 turns it off.",
    ),
) -> None:
    """Portfolio risk from the prices and positions topics into Redis hashes riskstream:portfolio:<id>.

    Without --group, reads every partition (run one instance). With --group NAME, any
    number of instances share the portfolios by positions partition and take over each
    other's on a rebalance or a crash. State and offsets are saved in Redis with each
    output, so a restart resumes exactly. Needs RISKSTREAM_KAFKA_BOOTSTRAP and
    RISKSTREAM_REDIS_URL.
    """
    import signal
    import threading

    from engine.cli.app import load_settings
    from engine.core.portfolio import PortfolioBook
    from engine.errors import ConfigError
    from engine.portfolio.group import PortfolioGroupService
    from engine.portfolio.positions import apply_listings, parse_interval, read_positions
    from engine.portfolio.service import PortfolioService
    from engine.sinks.redis import sync_client_from_settings

    settings = load_settings()
    if settings.redis.dsn is None or not settings.kafka.bootstrap:
        raise ConfigError(
            "portfolio serve needs RISKSTREAM_KAFKA_BOOTSTRAP and RISKSTREAM_REDIS_URL"
        )
    from engine.logs import configure_logging

    configure_logging(settings)
    chosen = _levels(levels)
    assert chosen is not None
    interval_ms = parse_interval(interval)
    monitor = metrics = greeks_monitor = greeks_metrics = None
    registry = None
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
    listings, base = _currency_reference(
        instruments, settings.portfolio.base_currency if instruments else None
    )
    if greeks_market is not None:
        from engine.options.greeks_table import read_underlying_markets
        from engine.options.live import GreeksMonitor
        from engine.options.reference import read_instrument_file
        from engine.portfolio.service import GreeksMetrics

        every = 0 if greeks_every.strip() in ("0", "0s", "0ms") else parse_interval(greeks_every)
        try:
            greeks_monitor = GreeksMonitor(
                read_underlying_markets(greeks_market),
                every_ms=every,
                delta_limit=delta_limit,
                vega_limit=vega_limit,
                var_scenarios=greeks_var_scenarios,
                var_level=max(chosen),
                es_level=settings.risk.es_level,
                base_currency=base,
            )
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if instruments is not None:
            greeks_monitor.apply(read_instrument_file(instruments))
        if registry is not None:
            greeks_metrics = GreeksMetrics(registry)
    if stress:
        from engine.portfolio.service import StressMetrics
        from engine.stress.library import load_library
        from engine.stress.live import StressMonitor

        if stress_limit is not None and not stress_limit > 0:
            raise InputError(f"--stress-limit {stress_limit}: expected a positive loss amount")
        monitor = StressMonitor(
            load_library(scenarios).runnable(),
            every_ms=parse_interval(stress_every),
            limit=stress_limit,
        )
        if registry is not None:
            metrics = StressMetrics(registry)
    if registry is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    client = sync_client_from_settings(settings)

    def book() -> PortfolioBook:
        fresh = PortfolioBook(
            interval_ms=interval_ms,
            lam=lam,
            levels=chosen,
            min_obs=min_obs,
            nu=nu,
            base_currency=base,
        )
        apply_listings(fresh, listings)
        return fresh

    initial = read_positions(positions) if positions else ()
    service: PortfolioService | PortfolioGroupService
    if group:
        if not session_timeout > 0:
            raise InputError(f"--session-timeout {session_timeout}: expected a positive number")
        service = PortfolioGroupService(
            settings,
            redis=client,
            book_factory=book,
            group=group,
            positions=initial,
            idle_s=idle,
            max_records=max_records,
            stress=monitor,
            stress_metrics=metrics,
            snapshot_every=snapshot_every,
            session_timeout_ms=round(session_timeout * 1000),
            greeks=greeks_monitor,
            greeks_metrics=greeks_metrics,
            instruments=base is not None,
        )
    else:
        service = PortfolioService(
            settings,
            redis=client,
            book_factory=book,
            positions=initial,
            idle_s=idle,
            max_records=max_records,
            stress=monitor,
            stress_metrics=metrics,
            greeks=greeks_monitor,
            greeks_metrics=greeks_metrics,
            instruments=base is not None,
        )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    mode = f"instance of group {group!r}" if group else "single instance"
    typer.echo(f"portfolio service: running, {mode} (SIGTERM or Ctrl-C to stop)", err=True)
    service.run(stop=stopping.is_set)
