"""How many fit verdicts a rounding of the data flips: a probe for knife-edge fit rules.

A fit rule that decides on the wrong side of a bound the optimiser stops on (an
integrated GJR fit at ``persistence = 1``, a fit at ``alpha + gamma = 0``) accepts or
rejects by the data's last digits, and the published VaR with it. This probe refits each
series' GARCH/GJR windows twice, on its decimal log returns and on the same returns
rounded to float32 (a change below one part in ten million), and counts the refits whose
verdict (accepted, or the rule that rejected it) differs::

    python -m engine.bench.breadth.rounding .run/breadth [--model gjr] [--workers 2]

The schedule is the stream's on daily data (:data:`~engine.core.spec.DEFAULT_REFIT`,
counted in returns here): first fit after ``first`` returns, then every ``every``, on the
last ``garch_window`` returns, each warm-started from the last accepted fit. Two chains
that part at a flip are compared as they go on (a flip can change later warm starts), so
a series' count is the number of refits judged differently, not of independent causes.
It writes ``<sweep>/rounding_<model>.csv`` (one row per series) and prints the totals.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.spec import DEFAULT_REFIT, RiskSpec


@dataclass(frozen=True)
class Flips:
    """One series' refits and how many of them a float32 rounding judged differently."""

    series: str
    refits: int
    flips: int
    accept_flips: int
    """Flips between accepted and rejected (the rest change only the rejecting rule)."""
    rejected: int
    """Refits rejected on the float64 returns."""
    first_flip: str
    """The first differing refit: ``"<return index>: <verdict> -> <verdict>"`` (``""`` if none)."""


def verdicts(
    returns: np.ndarray, asymmetric: bool, first: int, every: int, window: int
) -> list[str]:
    """The verdict of each refit of ``returns`` (``""``: accepted, else the rejecting rule)."""
    from engine.core.volatility.garch import fit_garch
    from engine.core.volatility.validation import REASONS

    out: list[str] = []
    warm = None
    for end in range(first, returns.size + 1, every):
        result = fit_garch(returns[max(0, end - window) : end], asymmetric, warm)
        if result.ok:
            warm = result.params
        out.append(REASONS[result.reason])
    return out


def probe(
    name: str,
    returns: np.ndarray,
    model: str = "gjr",
    first: int = DEFAULT_REFIT.first,
    every: int = DEFAULT_REFIT.every,
    window: int = RiskSpec.garch_window,
) -> Flips:
    """Refit ``returns`` (decimal log returns) as they are and rounded to float32; compare."""
    asymmetric = model == "gjr"
    exact = verdicts(returns, asymmetric, first, every, window)
    rounded = verdicts(
        returns.astype(np.float32).astype(np.float64), asymmetric, first, every, window
    )
    differ = [i for i, (a, b) in enumerate(zip(exact, rounded, strict=True)) if a != b]
    first_flip = ""
    if differ:
        i = differ[0]
        first_flip = f"{first + i * every}: {exact[i] or 'accepted'} -> {rounded[i] or 'accepted'}"
    accept_flips = sum((exact[i] == "") != (rounded[i] == "") for i in differ)
    return Flips(
        name, len(exact), len(differ), accept_flips, sum(v != "" for v in exact), first_flip
    )


def _probe_file(path: Path, model: str) -> Flips:
    from producers.sources import read_price_csv

    prices = read_price_csv(path)["price"].to_numpy(np.float64)  # validated, time-sorted
    return probe(path.parent.name, np.diff(np.log(prices)), model)


def run(sweep: Path, model: str = "gjr", workers: int = 2) -> pd.DataFrame:
    """Probe every series of a breadth sweep (``<sweep>/series/<name>/prices.csv``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    files = sorted(sweep.glob("series/*/prices.csv"))
    if not files:
        raise SystemExit(f"no series under {sweep}/series: run `riskstream bench breadth` first")
    rows: list[Flips] = []
    context = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool,
        Progress(
            TextColumn(f"rounding {model}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        ) as bar,
    ):  # fmt: skip
        task = bar.add_task("", total=len(files))
        for flips in pool.map(_probe_file, files, [model] * len(files)):
            rows.append(flips)
            bar.update(task, advance=1)
    table = pd.DataFrame([vars(r) for r in rows])
    table.to_csv(sweep / f"rounding_{model}.csv", index=False)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a `riskstream bench breadth --out` directory")
    parser.add_argument("--model", choices=("gjr", "garch"), default="gjr")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    table = run(args.sweep, args.model, args.workers)
    moved = table[table["flips"] > 0]
    print(
        f"{args.model}: {int(table['flips'].sum())} of {int(table['refits'].sum())} refits "
        f"judged differently on float32-rounded returns ({int(table['accept_flips'].sum())} "
        f"between accepted and rejected), in {len(moved)} of {len(table)} series"
    )
    if not moved.empty:
        print(moved.sort_values("flips", ascending=False).to_string(index=False))


if __name__ == "__main__":
    main()
