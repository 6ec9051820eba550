"""``riskstream stress``: scenario P&L, reverse stress, stressed VaR and the scenario library.

``stress run`` and ``stress reverse`` hold exactly as DESIGN.md's "Stress testing"
contract states. Every option and input file is checked before any work starts; a
problem is one line on stderr and exit status 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from engine.cli.app import command_group
from engine.cli.params import PositionsFile, PricesFile, ScenariosPath
from engine.cli.risk import _write
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from engine.stress.moves import Market, ScenarioMoves
    from engine.stress.option_pnl import OptionHoldings
    from engine.stress.pnl import BookStress, Exposures
    from engine.stress.revalue import RevaluedBook
    from engine.stress.scenarios import Propagation, Scenario, Shock

stress_app = command_group(
    "stress", "Stress testing: scenario P&L, reverse stress, stressed VaR/ES, the scenario library."
)

CovInterval = Annotated[
    str,
    typer.Option(
        "--interval",
        help="Grid interval of the engine's EWMA covariance (betas, propagation): 1d, 4h, ...",
    ),
]
CovLambda = Annotated[
    float, typer.Option("--lambda", help="EWMA decay of the covariance (RiskMetrics).")
]
OptionInstruments = Annotated[
    Path | None,
    typer.Option(
        "--instruments",
        help="Instruments CSV (as for options greeks): positions in its option instruments are "
        "repriced in full in every scenario (engine/stress/revalue.py).",
    ),
]
GreeksMarket = Annotated[
    Path | None,
    typer.Option(
        "--greeks-market",
        help="CSV underlying,rate,dividend_yield,vol for the options (as for portfolio serve).",
    ),
]
CLASSES_HELP = "CSV symbol,asset_class for asset-class shocks."


def parse_shocks(texts: list[str] | None) -> tuple[Shock, ...]:
    """``SYMBOL=MOVE`` options (repeated or comma-separated) as relative symbol shocks.

    >>> [(s.name, s.value) for s in parse_shocks(["SPX=-0.10,NDX=-0.2", "AAA=0.05"])]
    [('SPX', -0.1), ('NDX', -0.2), ('AAA', 0.05)]
    """
    from engine.stress.scenarios import Shock

    shocks: dict[str, Shock] = {}
    for text in texts or []:
        for part in text.split(","):
            symbol, sep, move = part.partition("=")
            symbol = symbol.strip()
            try:
                value = float(move)
            except ValueError:
                value = math.nan
            if not sep or not symbol or not math.isfinite(value):
                raise InputError(
                    f"--shock {part.strip()}: expected SYMBOL=MOVE with MOVE a relative change, "
                    "e.g. SPX=-0.10 for a 10% fall"
                )
            if value <= -1.0:
                raise InputError(
                    f"--shock {part.strip()}: a move of {value} makes the price zero or negative"
                )
            if symbol in shocks:
                raise InputError(f"--shock {symbol}: shocked twice")
            shocks[symbol] = Shock("symbol", symbol, value)
    return tuple(shocks.values())


def _inputs(
    prices: Path,
    positions: Path,
    interval: str,
    lam: float,
    min_obs: int,
    asset_classes: Path | None = None,
    shocked: tuple[str, ...] = (),
    option_symbols: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, dict[str, dict[str, float]], Market]:
    """Read and check prices and positions; build today's market (the engine's covariance).

    Positions in ``option_symbols`` (option instruments) have no price series; they are
    left out of the returned holdings, which are the spot positions. Use
    :func:`_option_holdings` for them.
    """
    from engine.portfolio.positions import parse_interval, read_positions
    from engine.stress.market import market_from_prices, read_asset_classes
    from engine.stress.pnl import holdings_of
    from producers.sources import read_price_csv

    interval_ms = parse_interval(interval)
    if not 0.0 < lam < 1.0:
        raise InputError(f"--lambda {lam}: must be strictly between 0 and 1")
    classes = read_asset_classes(str(asset_classes)) if asset_classes is not None else None
    held = [p for p in read_positions(positions) if p.symbol not in option_symbols]
    frame = read_price_csv(prices)
    if frame.empty:
        raise InputError(f"{prices}: no prices")
    unknown = sorted({p.symbol for p in held} - set(frame["symbol"].astype(str)))
    if unknown:
        raise InputError(f"{positions}: no prices in {prices} for {', '.join(unknown)}")
    missing = sorted(set(shocked) - set(frame["symbol"].astype(str)))
    if missing:
        raise InputError(f"--shock: no prices in {prices} for {', '.join(missing)}")
    ordered = sorted(held, key=lambda p: p.ts)  # positions as of the end of the file
    holdings = holdings_of((p.portfolio, p.symbol, p.quantity) for p in ordered)
    if not holdings and not option_symbols:
        raise InputError(f"{positions}: every position is closed (all quantities are 0)")
    market = market_from_prices(
        frame, interval_ms=interval_ms, lam=lam, min_obs=min_obs, asset_classes=classes
    )
    return frame, holdings, market


def _option_holdings(
    positions: Path, instruments: Path, greeks_market: Path | None, frame: pd.DataFrame
) -> OptionHoldings:
    """The option positions of ``positions`` with their reference data, valued at the time of
    the price file's last row (the streaming service values at its newest released tick)."""
    from engine.options.greeks_table import read_underlying_markets
    from engine.options.reference import read_instrument_file
    from engine.portfolio.positions import read_positions
    from engine.stress.option_pnl import OptionHoldings
    from engine.stress.pnl import holdings_of

    listings = read_instrument_file(instruments)
    known = {x.key: x.instrument for x in listings if x.instrument is not None}
    vols = {x.key: x.vol for x in listings if x.vol is not None}
    ordered = sorted(read_positions(positions), key=lambda p: p.ts)
    options = holdings_of(
        (p.portfolio, p.symbol, p.quantity)
        for p in ordered
        if p.symbol in known and known[p.symbol].is_option
    )
    if options and greeks_market is None:
        raise InputError(
            f"{positions} holds options: --greeks-market (underlying,rate,dividend_yield,vol) "
            "is needed to price them"
        )
    markets = read_underlying_markets(greeks_market) if greeks_market is not None else {}
    ts_ms = int(frame["timestamp"].max().value // 1_000_000)
    return OptionHoldings(options, known, vols, markets, ts_ms)


def _option_symbols(instruments: Path | None) -> frozenset[str]:
    if instruments is None:
        return frozenset()
    from engine.options.reference import read_instrument_file

    return frozenset(
        x.key
        for x in read_instrument_file(instruments)
        if x.instrument is not None and x.instrument.is_option
    )


@stress_app.command("run")
def stress_run(
    prices: PricesFile,
    positions: PositionsFile,
    out: Path = typer.Option(
        ..., "--out", help="Output CSV portfolio,scenario,pnl (currency units, negative = loss)."
    ),
    scenarios: ScenariosPath = None,
    shock: list[str] = typer.Option(
        None,
        "--shock",
        help="SYMBOL=MOVE, a relative price change (SPX=-0.10 is a 10% fall); repeat or comma-separate. "
        "Adds the scenario 'adhoc'.",
    ),
    propagation: str = typer.Option(
        "correlation",
        "--propagation",
        help="How the adhoc shocks reach unshocked held symbols: none, beta (to the first shocked symbol) "
        "or correlation (Gaussian conditional mean).",
    ),
    include_draft: bool = typer.Option(
        False, "--include-draft", help="Also run draft scenarios (retired ones never run)."
    ),
    asset_classes: Path = typer.Option(None, "--asset-classes", help=CLASSES_HELP),
    detail: Path = typer.Option(
        None,
        "--detail",
        help="Also write portfolio,scenario,symbol,quantity,price,move,source,pnl per held position "
        "(source says whether the move was direct or proxied: beta, unit-beta, correlation).",
    ),
    report: Path = typer.Option(
        None,
        "--report",
        help="Directory for a report: P&L-by-scenario bars, spot x vol heatmap, contributions by position.",
    ),
    interval: CovInterval = "1d",
    lam: CovLambda = DEFAULT_LAMBDA,
    min_obs: int = typer.Option(
        20, "--min-obs", min=1, help="Grid returns a symbol needs for its beta to be estimated."
    ),
    instruments: OptionInstruments = None,
    greeks_market: GreeksMarket = None,
    base_currency: str = typer.Option(
        None,
        "--base-currency",
        help="Value and aggregate every P&L in this currency (needs --instruments: the symbols' "
        "currencies and FX pairs), at the FX pairs' last prices, as portfolio serve does.",
    ),
) -> None:
    """Each portfolio's P&L under every scenario, at each symbol's last price in the price file.

    Historical scenarios replay their window's index moves; held symbols the window does
    not cover follow its index by their beta under the engine's EWMA covariance (flagged
    in --detail). P&L is quantity x price x move summed over spot positions; option
    positions (with --instruments) are repriced at their underlying's shocked price and
    vol, time to expiry from the price file's last timestamp (engine/stress/option_pnl.py).
    With --base-currency, spot holdings are exposures per risk factor (FX pairs included)
    and option values are converted at the live rate, which the scenario's FX moves move;
    an option whose currency has no rate is left out and its currency named on stderr.
    """
    import numpy as np

    from engine.stress.library import load_library
    from engine.stress.moves import library_moves
    from engine.stress.pnl import book_stress
    from engine.stress.scenarios import PROPAGATIONS, HypotheticalScenario

    adhoc = parse_shocks(shock)
    if base_currency is not None:
        _check_base_currency(base_currency, instruments)
    if propagation not in PROPAGATIONS:
        raise InputError(f"--propagation {propagation}: choose from {', '.join(PROPAGATIONS)}")
    if report is not None and report.exists() and not report.is_dir():
        raise InputError(f"--report {report}: exists and is not a directory")
    chosen = list(load_library(scenarios).runnable(include_draft=include_draft))
    if adhoc:
        if any(s.id == "adhoc" for s in chosen):
            raise InputError("the scenario library already has a scenario named adhoc")
        chosen.append(
            HypotheticalScenario(
                "adhoc",
                1,
                "ad-hoc shocks from --shock",
                "approved",
                adhoc,
                cast("Propagation", propagation),
                adhoc[0].name if propagation == "beta" else None,
            )
        )
    if not chosen:
        raise InputError(
            "no scenario to run: the library has no approved scenario and no --shock was given"
        )
    option_symbols = _option_symbols(instruments)
    frame, holdings, market = _inputs(
        prices,
        positions,
        interval,
        lam,
        min_obs,
        asset_classes,
        tuple(s.name for s in adhoc),
        option_symbols,
    )
    options = None
    if instruments is not None:
        options = _option_holdings(positions, instruments, greeks_market, frame)
        if not holdings and not options.portfolios():
            raise InputError(f"{positions}: every position is closed (all quantities are 0)")
    if base_currency is None:
        moves = library_moves(chosen, market)
        stress = book_stress(holdings, options, market, moves)
    else:
        stress, moves, market = _base_currency_stress(
            frame, positions, instruments, base_currency, chosen, options,
            interval, lam, min_obs, asset_classes, option_symbols,
        )  # fmt: skip
    import pandas as pd

    table = pd.DataFrame(
        {
            "portfolio": np.repeat(stress.portfolios, len(moves.names)),
            "scenario": np.tile(moves.names, len(stress.portfolios)),
            "pnl": stress.pnl.ravel(),
        }
    )
    excluded = int(stress.options_excluded.sum())
    if excluded:
        typer.echo(
            f"riskstream: {excluded} option positions are left out (expired, or no price, market "
            "or Barone-Adesi-Whaley value for them)",
            err=True,
        )
    missing = sorted({c for currencies in stress.fx_missing for c in currencies})
    if missing:
        typer.echo(
            f"riskstream: no rate into {base_currency} for {', '.join(missing)}: option positions "
            "in these currencies are left out (fx_missing)",
            err=True,
        )
    rows = _detail(stress, moves, market, options, base_currency is not None)
    proxied = rows[rows["source"].isin(["beta", "unit-beta", "correlation"])]
    if len(proxied):
        kinds = proxied.groupby("source").size().to_dict()
        typer.echo(
            f"riskstream: {len(proxied)} position moves are proxied ({', '.join(f'{k} {v}' for k, v in kinds.items())}); "
            "see --detail",
            err=True,
        )
    _write(table, out)
    if detail is not None:
        _write(rows, detail)
    if report is not None:
        from engine.stress.report import write_report

        files = write_report(table, rows, moves, chosen, report)
        typer.echo(f"wrote {len(files)} report files to {report}", err=True)


def _check_base_currency(base_currency: str, instruments: Path | None) -> None:
    import re

    if instruments is None:
        raise InputError("--base-currency needs --instruments (the symbols' currencies)")
    if not re.fullmatch(r"[A-Z][A-Z0-9]{2,4}", base_currency):
        raise InputError(f"--base-currency {base_currency!r}: expected a currency code such as USD")


def _base_currency_stress(
    frame: pd.DataFrame,
    positions: Path,
    instruments: Path | None,
    base_currency: str,
    chosen: list[Scenario],
    options: OptionHoldings | None,
    interval: str,
    lam: float,
    min_obs: int,
    asset_classes: Path | None,
    option_symbols: frozenset[str],
) -> tuple[BookStress, ScenarioMoves, Market]:
    """``stress run --base-currency``: the streaming service's computation on a book fed the
    whole price file (:func:`engine.stress.live.stress_book`), so the numbers are the same."""
    from engine.core.portfolio import PortfolioBook
    from engine.options.reference import read_instrument_file
    from engine.portfolio.positions import apply_listings, parse_interval, read_positions
    from engine.stress.live import stress_book
    from engine.stress.market import market_from_book, read_asset_classes

    _check_base_currency(base_currency, instruments)
    book = PortfolioBook(
        interval_ms=parse_interval(interval), lam=lam, min_obs=min_obs, base_currency=base_currency
    )
    apply_listings(book, read_instrument_file(instruments))
    for p in read_positions(positions):
        if p.symbol not in option_symbols:
            book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64")
    book.on_ticks(frame["symbol"].astype(str), ts, frame["price"].to_numpy(float))
    book.flush()
    classes = read_asset_classes(str(asset_classes)) if asset_classes is not None else None
    market = market_from_book(book, classes)
    done = stress_book(book, chosen, market, options)
    if done is None:
        raise InputError(
            f"{positions}: no portfolio can be valued in {base_currency} (no FX rate for its "
            "currencies, or too little history for its exposures)"
        )
    stress, moves = done
    held = {p for p, h in book.positions.items() if h}
    dropped = sorted(held - set(stress.portfolios))
    if dropped:
        typer.echo(
            f"riskstream: portfolios left out (a price or an FX rate into {base_currency} is "
            f"missing at the last close): {', '.join(dropped)}",
            err=True,
        )
    return stress, moves, market


def _detail(
    stress: BookStress,
    moves: ScenarioMoves,
    market: Market,
    options: OptionHoldings | None,
    factors: bool = False,
) -> pd.DataFrame:
    """Per held position and scenario cell: quantity, price, move, its source and the P&L.

    For an option, ``price`` is per contract (unit price x multiplier, converted into the
    base currency with ``--base-currency``), ``move`` the relative change of the option's
    value and ``source`` that of its underlying's move, so quantity x price x move is its
    P&L as for a spot position. With ``factors`` (a base-currency book), the linear rows
    are risk factors (symbols and FX pairs) and ``quantity`` is the factor exposure in
    the base currency divided by the factor's price.
    """
    import numpy as np
    import pandas as pd

    from engine.stress.moves import Source

    labels = np.array([s.label for s in Source])
    cells = len(moves.names)
    parts = []
    x = stress.linear
    for row, name in enumerate(x.portfolios if x is not None else ()):
        assert x is not None
        held = x.held(row)
        quantity = x.matrix[row, held] / market.prices[held] if factors else x.quantity[row, held]
        parts.append(
            pd.DataFrame(
                {
                    "portfolio": name,
                    "scenario": np.repeat(moves.names, len(held)),
                    "symbol": np.tile(np.array(market.symbols, dtype=object)[held], cells),
                    "quantity": np.tile(quantity, cells),
                    "price": np.tile(market.prices[held], cells),
                    "move": moves.spot[:, held].ravel(),
                    "source": labels[moves.source[:, held].ravel()],
                    "pnl": (moves.spot[:, held] * x.matrix[row, held][None, :]).ravel(),
                }
            )
        )
    o = stress.option
    if o is not None and options is not None and o.positions:
        slot = {s: i for i, s in enumerate(market.symbols)}
        underlying = [slot[options.instruments[s].underlying] for _, s in o.positions]
        contracts = np.array([options.positions[p][s] for p, s in o.positions])
        per_contract = o.units / contracts  # the multiplier
        before = o.base * o.fx  # unit value in the base currency (fx is 1 without one)
        after = o.shocked * o.fx_shocked
        worth = np.broadcast_to(before[None, :] > 0.0, after.shape)
        relative = np.zeros_like(after)  # an option worth 0 before: move 0 (pnl still in pnl)
        np.divide(after, before[None, :], out=relative, where=worth)
        relative[worth] -= 1.0
        parts.append(
            pd.DataFrame(
                {
                    "portfolio": np.tile([p for p, _ in o.positions], cells),
                    "scenario": np.repeat(moves.names, len(o.positions)),
                    "symbol": np.tile([s for _, s in o.positions], cells),
                    "quantity": np.tile(contracts, cells),
                    "price": np.tile(before * per_contract, cells),
                    "move": relative.ravel(),
                    "source": labels[moves.source[:, underlying].ravel()],
                    "pnl": ((after - before[None, :]) * o.units[None, :]).ravel(),
                }
            )
        )
    detail = pd.concat(parts, ignore_index=True)
    order = np.argsort(detail["portfolio"].to_numpy(dtype=str), kind="stable")
    return detail.iloc[order].reset_index(drop=True)


def _revalued(
    name: str, x: Exposures, market: Market, options: OptionHoldings | None
) -> RevaluedBook:
    """Portfolio ``name``'s book for reverse stress and SVaR: its spot exposures in ``x``
    and its option positions, on the market's last prices."""
    from engine.stress.revalue import revalued_book

    spot: dict[str, float] = {}
    if name in x.portfolios:
        row = x.portfolios.index(name)
        spot = {market.symbols[i]: float(x.matrix[row, i]) for i in x.held(row)}
    return revalued_book(name, spot, options, market.symbols, market.prices)


def _warn_left_out(books: dict[str, RevaluedBook]) -> None:
    """One stderr line when option positions are left out (expired or unpriced)."""
    import numpy as np

    left = 0
    for book in books.values():
        if book.options is not None:
            _, o = book.pnl_detail(np.zeros((1, len(book.symbols))))
            assert o is not None
            left += int(o.expired.sum() + o.unpriced.sum())
    if left:
        typer.echo(
            f"riskstream: {left} option positions are left out (expired, or no price, market "
            "or Barone-Adesi-Whaley value for them)",
            err=True,
        )


@stress_app.command("reverse")
def stress_reverse(
    prices: PricesFile,
    positions: PositionsFile,
    loss: float = typer.Option(
        ...,
        "--loss",
        help="The loss to produce, a positive amount in currency units (P&L = -LOSS).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output CSV portfolio,symbol,move (relative price changes)."
    ),
    horizon: float = typer.Option(
        1.0,
        "--horizon",
        help="Grid intervals the moves happen over (the covariance is scaled by it).",
    ),
    summary: Path = typer.Option(
        None,
        "--summary",
        help="Also write portfolio,loss,horizon,sigma,mahalanobis,tail_probability,chi2_probability,feasible.",
    ),
    interval: CovInterval = "1d",
    lam: CovLambda = DEFAULT_LAMBDA,
    min_obs: int = typer.Option(
        20, "--min-obs", min=1, help="Grid returns each held symbol needs in the covariance."
    ),
    instruments: OptionInstruments = None,
    greeks_market: GreeksMarket = None,
) -> None:
    """The most plausible moves (smallest Mahalanobis norm under the engine's covariance) losing LOSS.

    For spot positions the sum of quantity x price x move is exactly -LOSS. Plausibility
    on stderr: the norm in standard deviations of the book's P&L and its normal tail
    probability. A book holding options (with --instruments) is revalued in full: the
    moves are the smallest shock along the delta book's most plausible direction whose
    revalued P&L is -LOSS (to 1e-9 of LOSS; the search is in engine/stress/reverse.py),
    and an underlying held only through options gets a move too.
    """
    import numpy as np
    import pandas as pd

    from engine.stress.pnl import exposures
    from engine.stress.revalue import book_delta
    from engine.stress.reverse import reverse_stress, reverse_stress_revalued

    if not math.isfinite(loss) or loss <= 0.0:
        raise InputError(f"--loss {loss}: expected a positive amount (the P&L will be minus it)")
    if not math.isfinite(horizon) or horizon <= 0.0:
        raise InputError(f"--horizon {horizon}: expected a positive number of grid intervals")
    option_symbols = _option_symbols(instruments)
    frame, holdings, market = _inputs(
        prices, positions, interval, lam, min_obs, option_symbols=option_symbols
    )
    options = (
        _option_holdings(positions, instruments, greeks_market, frame)
        if instruments is not None
        else None
    )
    x = exposures(holdings, market)
    names = sorted(set(x.portfolios) | set(options.portfolios() if options else ()))
    books = {name: _revalued(name, x, market, options) for name in names}
    slot = {s: i for i, s in enumerate(market.symbols)}
    thin = sorted(
        {s for book in books.values() for s in book.symbols if not market.history[slot[s]]}
    )
    if thin:
        raise InputError(
            f"{prices}: fewer than {min_obs} grid returns for {', '.join(thin)}: "
            "no covariance to stress (lower --min-obs or add history)"
        )
    _warn_left_out(books)
    rows, stats = [], []
    for name, book in books.items():
        held = [slot[s] for s in book.symbols]
        cov = market.cov[np.ix_(held, held)]
        if book.options is None:
            result = reverse_stress(name, book.symbols, book.exposure, cov, loss, horizon=horizon)
        else:
            result = reverse_stress_revalued(
                name, book.symbols, book_delta(book), book.pnl, cov, loss, horizon=horizon
            )
        rows.append(pd.DataFrame({"portfolio": name, "symbol": book.symbols, "move": result.move}))
        stat = {
            "portfolio": name,
            "loss": loss,
            "horizon": horizon,
            "sigma": result.sigma,
            "mahalanobis": result.mahalanobis,
            "tail_probability": result.tail_probability,
            "chi2_probability": result.chi2_probability,
            "feasible": result.feasible,
        }
        if options is not None:
            stat["scale"] = result.scale
            stat["revalued_pnl"] = result.pnl if result.pnl is not None else -loss
        stats.append(stat)
    table = pd.DataFrame(stats)
    for s in stats:
        typer.echo(
            f"{s['portfolio']}: a loss of {loss:,.2f} is {s['mahalanobis']:.2f} sigma "
            f"(P&L sigma {s['sigma']:,.2f} over {horizon:g} interval(s)); "
            f"normal tail probability {s['tail_probability']:.3g}"
            + ("" if s["feasible"] else "; NOT feasible: some move is -100% or worse"),
            err=True,
        )
    _write(pd.concat(rows, ignore_index=True), out)
    if summary is not None:
        _write(table, summary)


@stress_app.command("svar")
def stress_svar(
    prices: PricesFile,
    positions: PositionsFile,
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output CSV portfolio,start,end,days,var_level,var,es_level,es,var_1d,es_1d (currency, losses positive).",
    ),
    window: int = typer.Option(
        250, "--window", min=20, help="Days in the stress window (250: twelve months)."
    ),
    horizon: int = typer.Option(
        10, "--horizon", min=1, help="Days the 1-day figures are scaled to (sqrt of time)."
    ),
    instruments: OptionInstruments = None,
    greeks_market: GreeksMarket = None,
) -> None:
    """Stressed VaR 99% and ES 97.5% of today's positions on the worst window of the price history.

    Daily P&L: today's quantity x price revalued on every past day's returns (days on
    which every held symbol has a price). The stress window is the one with the largest
    1-day 99% VaR; figures are scaled by sqrt(horizon). A simplification of Basel 2.5 and
    FRTB, documented in engine.stress.stressed. Option positions (with --instruments) are
    repriced in full at their underlying's price moved by each day's return, time to
    expiry, vol and rates held at today's (engine/stress/revalue.py).
    """
    import numpy as np
    import pandas as pd

    from engine.stress.market import daily_log_returns
    from engine.stress.pnl import exposures
    from engine.stress.stressed import linear_pnl, stressed_risk

    option_symbols = _option_symbols(instruments)
    frame, holdings, market = _inputs(
        prices, positions, "1d", DEFAULT_LAMBDA, 1, option_symbols=option_symbols
    )
    options = (
        _option_holdings(positions, instruments, greeks_market, frame)
        if instruments is not None
        else None
    )
    x = exposures(holdings, market)
    names = sorted(set(x.portfolios) | set(options.portfolios() if options else ()))
    books = {name: _revalued(name, x, market, options) for name in names}
    _warn_left_out(books)
    rows = []
    for name, book in books.items():
        symbols = list(book.symbols)
        days, returns = daily_log_returns(frame, symbols)
        if len(days) < window:
            raise InputError(
                f"portfolio {name}: {len(days)} days of common history, fewer than --window {window}"
            )
        if book.options is None:
            pnl = linear_pnl(returns, book.exposure)
        else:
            pnl = book.pnl(np.expm1(returns))  # each day's relative moves, options repriced
        result = stressed_risk(pnl, window=window, horizon=horizon)
        rows.append(
            {
                "portfolio": name,
                "start": days[result.start].date().isoformat(),
                "end": days[result.end].date().isoformat(),
                "days": window,
                "var_level": result.var_level,
                "var": result.var,
                "es_level": result.es_level,
                "es": result.es,
                "var_1d": result.var_1d,
                "es_1d": result.es_1d,
            }
        )
    _write(pd.DataFrame(rows), out)


@stress_app.command("list")
def stress_list(
    scenarios: ScenariosPath = None,
) -> None:
    """The scenarios of the library: id, version, kind, status, P&L columns, summary."""
    from engine.stress.library import load_library

    library = load_library(scenarios)
    typer.echo(f"{'id':32} {'ver':>3} {'kind':12} {'status':8} {'cells':>5}  description")
    for s in library:
        first = s.description.strip().splitlines()[0] if s.description.strip() else ""
        typer.echo(
            f"{s.id:32} {s.version:>3} {s.kind:12} {s.status:8} {len(s.cells()):>5}  {first}"
        )


@stress_app.command("show")
def stress_show(
    scenario_id: str = typer.Argument(..., metavar="ID", help="A scenario id (see stress list)."),
    scenarios: ScenariosPath = None,
) -> None:
    """One scenario in full: its fields and moves, and the file it comes from."""
    from engine.stress.library import load_library
    from engine.stress.scenarios import HistoricalScenario, HypotheticalScenario, SpotVolGrid

    library = load_library(scenarios)
    s = library.get(scenario_id)
    lines = [
        f"id:          {s.id}",
        f"version:     {s.version}",
        f"kind:        {s.kind}",
        f"status:      {s.status}",
        f"file:        {library.files[s.id]}",
        "description: " + " ".join(s.description.split()),
    ]
    if isinstance(s, HistoricalScenario):
        lines += [
            f"window:      close {s.window.start.isoformat()} to close {s.window.end.isoformat()}",
            f"data:        {s.window.source}",
            f"proxy:       {s.proxy} (uncovered symbols follow it by their beta)",
            "moves:",
            *(f"  {k:12} {v:+.4%}" for k, v in s.moves.items()),
        ]
    elif isinstance(s, HypotheticalScenario):
        lines.append(f"propagation: {s.propagation}" + (f" (proxy {s.proxy})" if s.proxy else ""))
        lines.append("shocks:")
        lines += [
            f"  {sh.target:12} {sh.name:12} "
            + (f"{sh.value:+.4%}" if sh.type == "relative" else f"{sh.value:+g} (absolute)")
            for sh in s.shocks
        ]
    elif isinstance(s, SpotVolGrid):
        lines += [
            "spot:        " + ", ".join(f"{v:+.2%}" for v in s.spot),
            "vol:         " + ", ".join(f"{v:+.2f}" for v in s.vol),
            "symbols:     " + (", ".join(s.symbols) if s.symbols else "every symbol"),
        ]
    typer.echo("\n".join(lines))
