"""Where riskstream finds the shared real data and keeps its caches.

The shared data directory is ``RISKSTREAM_SHARED_DATA`` when set, else ``../shared/data``
beside the repository (how tests and CI see it), else ``../shared/data`` from the
current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data directory; :class:`InputError` naming the places looked at if absent."""
    candidates = []
    if os.environ.get("RISKSTREAM_SHARED_DATA"):
        candidates.append(Path(os.environ["RISKSTREAM_SHARED_DATA"]))
    candidates += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise InputError(
        f"shared data directory not found (looked in {looked}); set RISKSTREAM_SHARED_DATA"
    )


def shared_file(relative: str) -> Path:
    """A file under the shared data directory, e.g. ``market/sp500_1min_2019-11-05_08.csv``."""
    path = shared_data_dir() / relative
    if not path.is_file():
        raise InputError(f"shared data file not found: {path}")
    return path


def cache_dir() -> Path:
    """Download cache (Kafka jars and the like): ``RISKSTREAM_CACHE`` or ``~/.cache/riskstream``."""
    path = Path(os.environ.get("RISKSTREAM_CACHE", Path.home() / ".cache" / "riskstream"))
    path.mkdir(parents=True, exist_ok=True)
    return path
