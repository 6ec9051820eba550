"""The breadth series in two named halves: development (parameters chosen on it) and hold-out.

A series belongs to the *development* half when the first byte of the BLAKE2b-64 digest of
its name is even, else to the *hold-out* half: a fixed rule, blind to the data, that
splits every asset class about evenly (of the 96 series: 46 development, 50 hold-out).
Parameters of the engine (the champion's loss, margin and patience; the refit interval;
the rule for zero returns) are chosen on the development half only; figures reported as
evidence are the hold-out half's.

``python -m engine.bench.breadth.split .run/breadth`` prints the verdict lines of each
half from a sweep's ``per_series.csv``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Literal

import pandas as pd

from engine.bench.breadth.report import aggregate, markdown, verdict

Half = Literal["development", "hold-out"]


def half(name: str) -> Half:
    """The half a series belongs to, from its name alone.

    >>> half("SP500.arch"), half("DJ30.GE")
    ('hold-out', 'development')
    """
    first = hashlib.blake2b(name.encode(), digest_size=8).digest()[0]
    return "development" if first % 2 == 0 else "hold-out"


def by_half(flagged: pd.DataFrame) -> dict[Half, pd.DataFrame]:
    """The aggregate table (:func:`~.report.aggregate`) of each half of a flagged sweep."""
    halves = flagged["series"].map(half)
    return {h: aggregate(flagged[halves == h]) for h in ("development", "hold-out")}


def main(out: Path) -> None:
    flagged = pd.read_csv(out / "per_series.csv")
    for name, agg in by_half(flagged).items():
        print(f"## {name} half: {int(agg.iloc[0]['series'])} series\n")
        print("\n".join(verdict(agg)) + "\n")
        print(markdown(agg.iloc[:1]) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".run/breadth"))
