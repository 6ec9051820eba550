"""Choosing parameters on the development half of the breadth series (never the hold-out).

Two steps, both on the series :func:`~.split.half` puts in ``development``:

1. :func:`cache`: run the book once per series (every method of the EWMA and GJR models,
   with a given refit interval and zero-return rule) and keep each method's forecasts,
   before and after each return, in one ``.npz`` per series;
2. :func:`grid`: replay the :class:`~engine.core.champion.ChampionSelector` over the
   cached forecasts for each champion configuration (cheap: no model is refitted) and
   score the result as the benchmark does (:func:`~.evaluate.score`).

The objective, fixed before looking: the share of series passing Kupiec and
Christoffersen, plus the share beating both baselines' pinball loss, plus the share whose
ES passes Z2. The price files are the sweep's own (``<sweep>/series/<name>/prices.csv``)::

    nice -n 15 python -m engine.bench.breadth.develop cache .run/breadth .run/dev 20 keep
    nice -n 15 python -m engine.bench.breadth.develop grid .run/dev/every20_keep

3. :func:`combinations`: the equal-weight average of two cached methods' VaR and ES
   (the ``avg`` method, :mod:`engine.core.var.average`), alone and as the champion's
   first candidate, against today's champion, on the same cached forecasts::

    nice -n 15 python -m engine.bench.breadth.develop combine .run/dev/every20_keep
"""

from __future__ import annotations

import itertools
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from engine.bench.breadth.evaluate import Forecasts, passes, score
from engine.bench.breadth.split import half
from engine.core.champion import ChampionSelector
from engine.core.spec import CHAMPION_METHODS, RiskSpec
from engine.core.var.average import AVERAGE, AVERAGE_METHODS, mean_available
from engine.core.var.registry import distribution_names
from engine.core.volatility.fitting import RefitSchedule

#: Candidate sets tried: the a-priori one, and every EWMA/GJR method with ``hs``.
CANDIDATES = {
    "a_priori": CHAMPION_METHODS,
    "all": (
        "gjr-mix",
        *(
            f"{v}-{d}"
            for v in ("ewma", "gjr")
            for d in distribution_names()
            if f"{v}-{d}" != "gjr-mix"
        ),
        "hs",
    ),
}


def cache(sweep: Path, out: Path, every: int, zeros: str) -> Path:
    """Forecasts of every method on each development series; returns the cache directory."""
    from engine.offline.runs import run_prices
    from producers.sources import read_price_csv

    target = out / f"every{every}_{zeros}"
    target.mkdir(parents=True, exist_ok=True)
    schedule = RefitSchedule(first=250, every=every, delay=5)
    spec = replace(RiskSpec(), vol_models=("ewma", "gjr"), garch_refit=schedule,
                   har_refit=schedule, residual_zeros=zeros)  # type: ignore[arg-type]  # fmt: skip
    for prices in sorted(sweep.glob("series/*/prices.csv")):
        name = prices.parent.name
        if half(name) != "development" or (target / f"{name}.npz").exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = run_prices(read_price_csv(prices), spec)
        np.savez(target / f"{name}.npz", var=run.var, es=run.es, var_before=run.var_before,
                 es_before=run.es_before, logp=np.log(run.frame["price"].to_numpy(float)),
                 methods=np.array(run.methods), levels=np.array(run.levels))  # fmt: skip
    return target


def _flags(z: dict[str, np.ndarray], var: np.ndarray, es: np.ndarray) -> dict[str, float]:
    """The benchmark's per-series flags for forecasts ``var``/``es`` ``[row, level]``."""
    methods, levels = list(z["methods"]), [float(x) for x in z["levels"]]
    li = {lv: levels.index(lv) for lv in (0.975, 0.99)}
    returns = np.append(np.diff(z["logp"]), np.nan)
    vs = {"default": {lv: var[:, i] for lv, i in li.items()}}
    es_ = {"default": {lv: es[:, i] for lv, i in li.items()}}
    for m in ("ewma-normal", "hs"):
        j = methods.index(m)
        vs[m] = {lv: z["var"][:, j, i] for lv, i in li.items()}
        es_[m] = {lv: z["es"][:, j, i] for lv, i in li.items()}
    names = {m: m for m in vs}
    row = score(Forecasts(returns, vs, es_, names), ("default", "ewma-normal", "hs"))
    flags = passes(row)
    both = flags["beats_riskmetrics"] and flags["beats_hs"]
    ratio = float(row["pinball_default"]) / min(
        float(row["pinball_ewma-normal"]), float(row["pinball_hs"])
    )
    return {
        "tests": flags["tests_pass"],
        "beats": both,
        "es": flags["es_ok"],
        "pinball_ratio": ratio,
        "rate": float(row["rate"]),
        "constant_ok": flags["constant_ok"] and flags["rate_ok"],
    }


def replay(z: dict[str, np.ndarray], candidates: tuple[str, ...], loss: str, margin: float,
           patience: int, window: int = 250) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The champion's forecasts ``(var, es)`` after each row, from cached candidates'."""
    methods = list(z["methods"])
    idx = [methods.index(m) for m in candidates]
    returns = np.concatenate([[np.nan], np.diff(z["logp"])])
    levels = tuple(float(x) for x in z["levels"])
    sel = ChampionSelector(candidates, levels, 0.99, 0.975, loss, window, margin, patience)  # type: ignore[arg-type]
    sel.ensure(1)
    out = sel.update(np.zeros(returns.size, np.int64), returns, z["var_before"][:, idx],
                     z["es_before"][:, idx], z["var"][:, idx], z["es"][:, idx])  # fmt: skip
    return out.var_after, out.es_after


def with_average(z: dict[str, np.ndarray], parts: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The cached forecasts with one more method, ``avg``: the mean of ``parts``' VaR and ES."""
    methods = list(z["methods"])
    idx = [methods.index(m) for m in parts]
    out = dict(z, methods=np.array([*methods, AVERAGE]))
    for key in ("var", "es", "var_before", "es_before"):
        out[key] = np.concatenate([z[key], mean_available(z[key][:, idx])[:, None]], axis=1)
    return out


def combinations(directory: Path, parts: tuple[str, ...] = AVERAGE_METHODS) -> pd.DataFrame:
    """Today's champion, ``avg`` of ``parts`` alone, and the champion with ``avg`` first.

    The champion's rule is today's (pinball, margin 5%, patience 250). Besides the three
    shares and the objective, ``pinball_ratio`` is the mean over series of the method's
    mean 99% pinball loss over the better baseline's (below 1: better than both).
    """
    data = {f.stem: with_average(dict(np.load(f)), parts) for f in sorted(directory.glob("*.npz"))}
    configs: dict[str, tuple[str, ...] | str] = {
        "gjr-mix": "gjr-mix",
        "champion today": CHAMPION_METHODS,
        f"avg({','.join(parts)})": AVERAGE,
        "champion, avg first": (AVERAGE, *CHAMPION_METHODS),
    }
    rows = []
    for label, config in configs.items():
        flags = []
        for z in data.values():
            if isinstance(config, str):
                j = list(z["methods"]).index(config)
                var, es = z["var"][:, j], z["es"][:, j]
            else:
                var, es = replay(z, config, "pinball", 0.05, 250)
            flags.append(_flags(z, var, es))
        shares = pd.DataFrame(flags).mean()
        rows.append({"config": label, "series": len(data), **shares.to_dict(),
                     "objective": float(shares[["tests", "beats", "es"]].sum())})  # fmt: skip
    return pd.DataFrame(rows)


def grid(directory: Path) -> pd.DataFrame:
    """Every configuration's shares on the cached series, ``gjr-mix`` alone first."""
    data = {f.stem: dict(np.load(f)) for f in sorted(directory.glob("*.npz"))}
    margins = {"pinball": (0.0, 0.02, 0.05), "fz0": (0.0, 0.01, 0.03)}  # relative, absolute
    configs: list[tuple[str, str, float, int]] = [
        (c, loss, m, p)
        for c, loss in itertools.product(CANDIDATES, margins)
        for m, p in itertools.product(margins[loss], (1, 10, 20, 50, 250))
    ]
    rows = []
    for label, config in [("gjr-mix", None), *((f"{c}/{lo}/m{m}/p{p}", (c, lo, m, p))
                                                for c, lo, m, p in configs)]:  # fmt: skip
        flags = []
        for z in data.values():
            if config is None:
                j = list(z["methods"]).index("gjr-mix")
                var, es = z["var"][:, j], z["es"][:, j]
            else:
                c, lo, m, p = config
                var, es = replay(z, CANDIDATES[c], lo, m, p)
            flags.append(_flags(z, var, es))
        shares = pd.DataFrame(flags).mean()
        rows.append({"config": label, "series": len(data), **shares.to_dict(),
                     "objective": float(shares[["tests", "beats", "es"]].sum())})  # fmt: skip
    return pd.DataFrame(rows)


if __name__ == "__main__":
    if sys.argv[1] == "combine":
        print(combinations(Path(sys.argv[2])).to_string(index=False))
    elif sys.argv[1] == "cache":
        print(cache(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    else:
        table = grid(Path(sys.argv[2]))
        print(table.sort_values("objective", ascending=False).to_string(index=False))
