"""The command line every row's process of ``riskstream bench compare`` takes.

:func:`engine.bench.peers.runner.start` starts each row (the peers and the naive Faust
agent) with these arguments; a row adds its own (a consumer group, a state directory).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def row_parser(description: str | None = None) -> argparse.ArgumentParser:
    """A parser of the shared arguments: the broker and Redis to use, the tick count that
    ends the run, the rate file (:class:`~engine.bench.peers.meter.Meter`), the topic, and
    whether to start at the end of it (latency runs) instead of its beginning."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--topic", default="prices")
    parser.add_argument(
        "--from-latest", action="store_true", help="Start at the end of the topic (latency runs)."
    )
    return parser
