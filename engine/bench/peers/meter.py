"""How every row of ``riskstream bench compare`` reports its throughput.

Records per second from the first record processed to the last one written to Redis:
a row calls :meth:`Meter.started` when it processes a record and :meth:`Meter.done`
once that many records' Redis writes have returned. When ``expected`` records are
done the meter writes ``{"count", "seconds", "rate"}`` to its file (the row keeps
running until it is terminated, as a production consumer would).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class Meter:
    """Counts records written by one process and reports the rate once, at ``expected``.

    Parameters
    ----------
    expected : int
        Records after which the rate is written.
    out : Path
        The JSON file written then.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "rate.json"
    >>> meter = Meter(3, out)
    >>> meter.started(); meter.done(2); out.exists()
    False
    >>> meter.done(1); sorted(json.loads(out.read_text()))
    ['count', 'rate', 'seconds']
    """

    def __init__(self, expected: int, out: Path) -> None:
        self.expected = expected
        self.out = out
        self.count = 0
        self.first: float | None = None

    def started(self) -> None:
        """Note the time of the first record processed (later calls are cheap no-ops)."""
        if self.first is None:
            self.first = time.perf_counter()

    def done(self, n: int) -> None:
        """``n`` more records have been written to Redis."""
        before = self.count
        self.count += n
        if before < self.expected <= self.count and self.first is not None:
            seconds = time.perf_counter() - self.first
            doc = {"count": self.count, "seconds": seconds, "rate": self.count / seconds}
            tmp = self.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(self.out)
