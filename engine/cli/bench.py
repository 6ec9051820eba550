"""``riskstream bench``: measurements behind docs/benchmarks/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.app import command_group

bench_app = command_group("bench", "Benchmarks (they start their own local Kafka and Redis).")


JsonOut = Annotated[Path | None, typer.Option(help="Write the results as JSON here too.")]
"""``--out FILE``: a benchmark's results as JSON, besides the Markdown on stdout."""
Batch = Annotated[int, typer.Option(min=1, help="Records per micro-batch.")]
StreamSymbols = Annotated[int, typer.Option(min=1, help="Symbols in the synthetic stream.")]
BrokerScratch = Annotated[Path, typer.Option(help="Scratch directory for brokers and logs.")]


def _progress(message: str) -> None:
    """A benchmark's progress line, on stderr (stdout holds the results)."""
    typer.echo(message, err=True)


def _report(result: Any, out: Path | None) -> None:
    """Print a benchmark result's Markdown and save its ``to_dict()`` to ``--out``, if given."""
    typer.echo(result.markdown())
    _save(out, result.to_dict())


def _save(out: Path | None, result: object) -> None:
    """Write a benchmark's results as indented JSON to ``out`` (``--out``), if given."""
    if out is None:
        return
    import orjson

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


@bench_app.command("e2e")
def e2e(
    ticks: int = typer.Option(
        1_000_000, min=10_000, help="Ticks pre-produced for the throughput runs."
    ),
    symbols: StreamSymbols = 1000,
    partitions: int = typer.Option(8, min=1, help="Partitions of the prices topic."),
    latency_rate: float = typer.Option(
        5000.0, min=1.0, help="Ticks per second in the latency run."
    ),
    latency_seconds: float = typer.Option(20.0, min=5.0, help="Length of the latency run."),
    latency_warmup_seconds: float = typer.Option(
        15.0, min=0.0, help="Paced ticks sent first and reported apart (the processes warm up)."
    ),
    tick_interval_ms: int = typer.Option(
        1000,
        min=1,
        help="Milliseconds between a symbol's synthetic ticks in the throughput run; an "
        "intraday interval (3600000: hourly) spans many trading sessions, so every symbol "
        "is fitted and refitted on the session schedule.",
    ),
    workdir: BrokerScratch = Path(".run/bench-e2e"),
    out: JsonOut = None,
) -> None:
    """Raw aiokafka consume vs the worker's consumer path (no work, then decoding) vs the worker, and produce-to-Redis latency."""

    from engine.bench.e2e import run

    result = run(
        ticks=ticks,
        symbols=symbols,
        partitions=partitions,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        latency_warmup_seconds=latency_warmup_seconds,
        tick_interval_ms=tick_interval_ms,
        workdir=workdir,
        progress=_progress,
    )
    _report(result, out)


@bench_app.command("compare")
def compare(
    ticks: int = typer.Option(500_000, min=10_000, help="Ticks pre-produced for throughput."),
    symbols: StreamSymbols = 1000,
    partitions: int = typer.Option(8, min=2, help="Partitions of the prices topic."),
    latency_rates: str = typer.Option(
        "1000,5000", help="Fixed rates of the latency runs (ticks/s)."
    ),
    latency_seconds: float = typer.Option(15.0, min=5.0, help="Length of each latency run."),
    latency_warmup_seconds: float = typer.Option(
        15.0, min=0.0, help="Paced ticks sent first in each latency run and reported apart."
    ),
    memory_symbols: int = typer.Option(10_000, min=100, help="Symbols of the memory measurement."),
    naive_ticks: int = typer.Option(
        50_000, min=1000, help="Records the naive agent's rate is measured over (it is slow)."
    ),
    vol_models: str = typer.Option("ewma", help="RISKSTREAM_VOL_MODELS of the riskstream workers."),
    var_method: str = typer.Option("ewma-normal", help="RISKSTREAM_VAR_METHOD of the workers."),
    peers: str = typer.Option(
        "quix,bytewax",
        help="Peer rows doing the same work (quix, bytewax; needs pip install "
        "'riskstream[peers]'), comma-separated, or 'none'.",
    ),
    workdir: BrokerScratch = Path(".run/bench-compare"),
    out: JsonOut = None,
) -> None:
    """Raw aiokafka consume vs the worker's consumer path vs a naive per-event Faust agent vs Quix Streams and bytewax vs riskstream (1 and 2 workers): throughput, alerts checked equal, latency, memory per symbol."""

    from engine.bench.compare import run as run_compare
    from engine.bench.peers.runner import parse_peers

    result = run_compare(
        ticks=ticks,
        symbols=symbols,
        partitions=partitions,
        latency_rates=tuple(float(r) for r in latency_rates.split(",") if r.strip()),
        latency_seconds=latency_seconds,
        latency_warmup_seconds=latency_warmup_seconds,
        memory_symbols=memory_symbols,
        naive_ticks=naive_ticks,
        vol_models=vol_models,
        var_method=var_method,
        peers=parse_peers(peers),
        workdir=workdir,
        progress=_progress,
    )
    _report(result, out)


@bench_app.command("core")
def core(
    symbols: StreamSymbols = 1000,
    ticks: int = typer.Option(500_000, min=1000, help="Ticks timed (after the warm-up)."),
    batch: Batch = 20_000,
    warm: int = typer.Option(
        300,
        min=1,
        help="Untimed ticks per symbol first, so every model is fitted and every window full.",
    ),
    tick_interval_ms: int = typer.Option(
        1000,
        min=1,
        help="Milliseconds between a symbol's synthetic ticks; an intraday interval "
        "(3600000: hourly) spans many trading sessions, so the timed ticks include refits "
        "on the session schedule.",
    ),
    producer_rv: bool = typer.Option(
        True,
        "--producer-rv/--engine-rv",
        help="Ticks carry an rv field (HAR-RV gets one per tick), or none, as on a live "
        "feed (the engine computes each session's realised variance).",
    ),
) -> None:
    """CPU microseconds per tick of validation, the risk core and the whole pipeline; arch fit cost."""
    from engine.bench.core import run

    typer.echo(
        run(
            symbols=symbols,
            ticks=ticks,
            batch=batch,
            warm=warm,
            interval_ms=tick_interval_ms,
            producer_rv=producer_rv,
        ).markdown()
    )


@bench_app.command("memory")
def memory(
    symbols: int = typer.Option(10_000, min=1, help="Symbols admitted."),
    ticks: int = typer.Option(30, min=1, help="Ticks per symbol."),
    batch: Batch = 20_000,
    warm_symbols: int = typer.Option(
        4, min=0, help="Symbols stepped past the first model fits before measuring."
    ),
    warm_ticks: int = typer.Option(300, min=1, help="Ticks per warm-up symbol."),
    heap: bool = typer.Option(
        True, help="Trace the Python heap too (tracemalloc's bookkeeping then adds to RSS)."
    ),
    top: int = typer.Option(25, min=1, help="State columns listed (largest first)."),
    out: JsonOut = None,
) -> None:
    """Worker memory per symbol (RSS and Python heap) with the environment's settings, and
    the bytes per slot of every state column."""
    from engine.bench.memory import run

    result = run(
        symbols=symbols,
        ticks=ticks,
        batch=batch,
        warm_symbols=warm_symbols,
        warm_ticks=warm_ticks,
        heap=heap,
    )
    typer.echo(result.markdown(top=top))
    _save(out, result.to_dict())


@bench_app.command("anomaly")
def anomaly(
    symbols: int = typer.Option(200, min=1, help="Price symbols."),
    ticks: int = typer.Option(5000, min=2000, help="Ticks per symbol (the first 1,000 untimed)."),
    batch: Batch = 20_000,
    out: JsonOut = None,
) -> None:
    """Microseconds per event of the default anomaly detectors in the stream, features included."""

    from engine.bench.anomaly import run

    result = run(symbols=symbols, ticks=ticks, batch=batch, progress=_progress)
    _report(result, out)


@bench_app.command("credit")
def credit(
    passes: int = typer.Option(
        4, min=1, help="Replays of the 30,000 Taiwan reviews for the scoring run."
    ),
    batch: Batch = 20_000,
    customers: int = typer.Option(
        1000, min=1, help="Alerting customers in the explanation replay."
    ),
    repeats: int = typer.Option(5, min=1, help="Times each of them recurs in the replay."),
    worker_reviews: int = typer.Option(
        0,
        min=0,
        help="Also run a worker end to end over this many reviews through Kafka (0: skip).",
    ),
    workdir: Path = typer.Option(
        Path(".run/bench-credit"), help="Scratch directory for services and logs."
    ),
    out: JsonOut = None,
) -> None:
    """Credit scoring per event through ONNX batches; SHAP latency uncached and cached; cache hit ratio."""

    from engine.bench.credit import run

    result = run(
        passes=passes,
        batch=batch,
        customers=customers,
        repeats=repeats,
        worker_reviews=worker_reviews,
        workdir=workdir,
        progress=_progress,
    )
    _report(result, out)


@bench_app.command("deep")
def deep(
    models: str = typer.Option("lstm,transformer", help="Deep models to time."),
    symbols: int = typer.Option(1000, min=1, help="Symbols, one tick each per micro-batch."),
    batches: int = typer.Option(50, min=1, help="Micro-batches timed."),
    model_dir: Path = typer.Option(
        None,
        help="Root of the model directories [default: RISKSTREAM_DEEP_MODEL_DIR or onnx/deep].",
    ),
    out: JsonOut = None,
) -> None:
    """Deep volatility serving on one core: batched µs per tick (1,000 symbols) and single-tick latency."""

    from engine.bench.deep import markdown, run
    from engine.cli.app import load_settings

    root = model_dir or load_settings().risk.deep_model_dir
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    results = run(names, symbols=symbols, batches=batches, root=root)
    typer.echo(markdown(results))
    _save(out, [r.to_dict() for r in results])


@bench_app.command("recovery")
def recovery(
    runs: int = typer.Option(10, min=1, max=50, help="Seeded runs, each with its own services."),
    rate: int = typer.Option(1000, min=100, help="Ticks per second sent while the worker dies."),
    events: int = typer.Option(40_000, min=5_000, help="Ticks per run (the kill is midway)."),
    dynamic: bool = typer.Option(
        False, "--dynamic", help="Without RISKSTREAM_GROUP_INSTANCE_ID, for comparison."
    ),
    first_tick: bool = typer.Option(
        False,
        "--first-tick",
        help="Instead: time a worker's start, with an empty numba cache and a filled one.",
    ),
    workdir: BrokerScratch = Path(".run/bench-recovery"),
    out: JsonOut = None,
) -> None:
    """Seconds from kill -9 of a worker to the first alert of a tick produced after the kill, and the processes it left behind."""
    from engine.bench import recovery as bench

    if first_tick:
        for fresh in (True, False):
            typer.echo(bench.first_tick(workdir, fresh_cache=fresh).markdown())
        return
    result = bench.run(
        runs=runs,
        rate=rate,
        events=events,
        static=not dynamic,
        workdir=workdir,
        env={},
        progress=_progress,
    )
    typer.echo(result.markdown())
    _save(out, result.to_json())


@bench_app.command("stress")
def stress(
    portfolios: int = typer.Option(1000, min=1, help="Portfolios."),
    positions: int = typer.Option(100, min=1, help="Positions per portfolio."),
    symbols: int = typer.Option(2000, min=4, help="Symbols in the synthetic market."),
    repeat: int = typer.Option(20, min=1, help="Timed recomputations."),
    out: JsonOut = None,
) -> None:
    """CPU milliseconds to recompute the whole scenario library over every portfolio, one core."""
    from engine.bench.stress import run
    from engine.errors import InputError

    if positions > symbols:
        raise InputError(f"--positions {positions} exceeds --symbols {symbols}")
    result = run(portfolios=portfolios, positions=positions, symbols=symbols, repeat=repeat)
    _report(result, out)


@bench_app.command("option-stress")
def option_stress(
    options: int = typer.Option(1000, min=1, help="Option positions."),
    underlyings: int = typer.Option(50, min=4, help="Underlyings in the synthetic market."),
    repeat: int = typer.Option(10, min=1, help="Timed runs."),
    out: JsonOut = None,
) -> None:
    """CPU milliseconds of an option book under the library (own currency and GBP) and its reverse stress."""
    from engine.bench.option_stress import run

    _report(run(options=options, underlyings=underlyings, repeat=repeat), out)


@bench_app.command("breadth")
def breadth(
    out: Path = typer.Option(..., "--out", help="Directory for the tables, plots and CSVs."),
    series: str = typer.Option(
        "*", "--series", help="Series names to run (a glob, e.g. 'DJ30.*')."
    ),
    methods: str = typer.Option(
        "default,ewma-normal,hs",
        "--methods",
        help="'default' (var forecast without --method) and the comparators, comma-separated.",
    ),
    max_obs: int = typer.Option(3000, min=300, help="Most recent prices kept per series."),
    min_obs: int = typer.Option(800, min=300, help="Shorter series are listed as missing."),
    workers: int = typer.Option(1, min=1, help="Processes (each runs at the given niceness)."),
    nice: int = typer.Option(15, min=0, max=19, help="Niceness of the worker processes."),
    title: str = typer.Option("Breadth benchmark", help="Title of the Markdown tables."),
) -> None:
    """Every real price series the registry packages ship, through `riskstream var forecast`.

    Per series: 99% VaR violation rate, Kupiec and Christoffersen p-values, the longest
    constant VaR, pinball loss against RiskMetrics and 1,000-day historical simulation,
    and Acerbi-Szekely Z2 of the 97.5% ES; then the shares of series meeting the targets.
    Needs `pip install 'riskstream[bench]'` and, for the R series, Debian's r-cran-fbasics,
    r-cran-timeseries and r-cran-fportfolio; whatever is missing is listed in missing.csv.
    """
    from engine.bench.breadth.evaluate import DEFAULT
    from engine.bench.breadth.report import write
    from engine.bench.breadth.run import SweepConfig, sweep
    from engine.errors import InputError

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    if DEFAULT not in chosen or not {"ewma-normal", "hs"} <= set(chosen):
        raise InputError("--methods must include default, ewma-normal and hs (the comparators)")
    config = SweepConfig(out, series, chosen, max_obs, min_obs, workers, nice)
    table, missing = sweep(config)
    if table.empty:
        raise InputError(f"no series matched {series!r} (missing: {len(missing)})")
    for line in write(table, missing, out, title):
        typer.echo(line)
    typer.echo(f"{len(table)} series; tables and plots in {out}")


@bench_app.command("options")
def options(
    positions: int = typer.Option(10_000, min=100, help="Option positions in the timed book."),
    underlyings: int = typer.Option(50, min=1, help="Underlyings of both books."),
    scenarios: int = typer.Option(10_000, min=100, help="One-day scenarios of the VaR runs."),
    gap_positions: int = typer.Option(
        1_000, min=10, help="Options in the book whose VaR approximations are compared."
    ),
    repeats: int = typer.Option(200, min=10, help="Ticks timed for the Greeks refresh."),
    full_repeats: int = typer.Option(
        5, min=1, help="Timed full revaluations (the median is reported, with the range)."
    ),
    out: JsonOut = None,
) -> None:
    """Options risk core on one core: Greeks after a tick, full-revaluation VaR, delta-gamma's gap (no services)."""
    from engine.bench.options import run

    result = run(
        positions=positions,
        underlyings=underlyings,
        n_scenarios=scenarios,
        gap_positions=gap_positions,
        repeats=repeats,
        full_repeats=full_repeats,
    )
    _report(result, out)
