"""Why the S&P 500's +11.6% on 2008-10-13 does not reach 0.9999: the figures.

The price stage scores a return against the book's EWMA forecast (lambda 0.94), which the
falls of September and October 2008 had raised, so the day is a 2.9-sigma move there. This
module measures what a return against a *longer* scale would give: for EWMA scales of
several ``lambda``, the day's standardised return and the surprisal the project's own
:class:`~engine.anomaly.calibration.TailCalibrator` gives it as a single channel (causal,
every earlier day learnt first), and the day's rank among all earlier absolute returns
(an empirical calibration can claim at most ``log10(n + 1)`` for a record after ``n`` days).

Run: ``python -m models.anomaly.record_day`` (Markdown on stdout; seconds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.anomaly.calibration import TailCalibrator

LAMBDAS = (0.94, 0.99, 0.997, 0.999)
DAY = "2008-10-13"


def figures(lambdas: tuple[float, ...] = LAMBDAS) -> str:
    """The Markdown table (see the module docstring) on ``arch.data.sp500`` closes."""
    from producers.sources import arch_daily

    daily = arch_daily("sp500")
    price = daily["price"].to_numpy(dtype=float)
    when = pd.DatetimeIndex(daily["timestamp"]).tz_convert("America/New_York").normalize()
    r = np.diff(np.log(price), prepend=np.nan)
    day = int(np.flatnonzero(when == pd.Timestamp(DAY, tz="America/New_York"))[0])
    before = np.abs(r[1:day])
    lines = [
        f"{DAY}: log return {r[day]:.4f}; largest earlier |log return| {before.max():.4f} "
        f"(a record after {before.size:,} returns: at most "
        f"{math.log10(before.size + 1):.2f} by rank)",
        "",
        "| EWMA lambda of the scale | standardised return | largest earlier | surprisal "
        "(one calibrated channel) |",
        "|---:|---:|---:|---:|",
    ]
    for lam in lambdas:
        var, z = np.nan, np.full(len(r), np.nan)
        for i in range(1, len(r)):
            if np.isfinite(var) and var > 0:
                z[i] = r[i] / math.sqrt(var)
            var = r[i] ** 2 if not np.isfinite(var) else lam * var + (1.0 - lam) * r[i] ** 2
        ok = np.isfinite(z)
        cal = TailCalibrator("record", ("z",))
        cal.ensure(1)
        s = np.full(len(r), np.nan)
        s[ok] = cal.update(np.zeros(int(ok.sum()), np.int64), np.abs(z[ok])[:, None])[:, 0]
        lines.append(f"| {lam} | {z[day]:.2f} | {np.nanmax(np.abs(z[:day])):.2f} | {s[day]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a report
    print(figures())
