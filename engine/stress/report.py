"""The stress report: P&L by scenario, the spot x vol heatmap, contributions by position.

Charts (matplotlib, Agg) and a short Markdown summary that states the numbers the
charts show: each portfolio's worst scenario and its loss, and which position drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.stress.moves import ScenarioMoves
from engine.stress.scenarios import Scenario, SpotVolGrid

MAX_PORTFOLIOS = 8
"""Portfolios drawn per chart (the worst first); the CSV has them all."""


def write_report(
    table: pd.DataFrame,
    detail: pd.DataFrame,
    moves: ScenarioMoves,
    scenarios: Sequence[Scenario],
    out: Path,
) -> list[Path]:
    """Write ``pnl_by_scenario.png``, ``spot_vol_<grid>.png``, ``contributions.png``, ``report.md``.

    ``table`` is ``portfolio,scenario,pnl``; ``detail`` the per-position rows of
    ``riskstream stress run --detail``.
    """
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    grids = {s.id: s for s in scenarios if isinstance(s, SpotVolGrid)}
    in_grid = np.isin(np.array(moves.scenario, dtype=object), list(grids))
    plain = set(np.array(moves.names, dtype=object)[~in_grid]) or set(moves.names)
    worst = table[table["scenario"].isin(plain)].groupby("portfolio")["pnl"].min().sort_values()
    portfolios = list(worst.index[:MAX_PORTFOLIOS])
    files = [_bars(table[table["scenario"].isin(plain)], portfolios, out / "pnl_by_scenario.png")]
    for grid in grids.values():
        files.append(_heatmap(table, grid, portfolios[0], out / f"spot_vol_{grid.id}.png"))
    files.append(_contributions(table, detail, plain, portfolios, out / "contributions.png"))
    files.append(_markdown(table, detail, plain, out / "report.md"))
    return files


def _bars(table: pd.DataFrame, portfolios: list[str], path: Path) -> Path:
    import matplotlib.pyplot as plt

    wide = table.pivot(index="scenario", columns="portfolio", values="pnl")[portfolios]
    wide = wide.loc[wide.min(axis=1).sort_values(ascending=False).index]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(wide) * max(1, len(portfolios) / 3) + 1.5))
    height = 0.8 / len(portfolios)
    y = np.arange(len(wide))
    for k, name in enumerate(portfolios):
        ax.barh(y + k * height, wide[name].to_numpy(), height=height, label=name)
    ax.set_yticks(y + 0.4 - height / 2, wide.index)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("P&L (currency units; negative is a loss)")
    ax.set_title("P&L by scenario")
    ax.legend(title="portfolio", fontsize="small")
    return _save(fig, path)


def _heatmap(table: pd.DataFrame, grid: SpotVolGrid, portfolio: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    pnl = table[(table["portfolio"] == portfolio)].set_index("scenario")["pnl"]
    values = np.array([[pnl[c] for c in grid.cells()[i * len(grid.vol) : (i + 1) * len(grid.vol)]]
                       for i in range(len(grid.spot))])  # fmt: skip
    fig, ax = plt.subplots(figsize=(1.3 * len(grid.vol) + 3, 0.6 * len(grid.spot) + 2))
    limit = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(grid.vol)), [f"{v:+.2f}" for v in grid.vol])
    ax.set_yticks(range(len(grid.spot)), [f"{s:+.0%}" for s in grid.spot])
    ax.set_xlabel("vol move (absolute, annualised)")
    ax.set_ylabel("spot move (relative)")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:,.0f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="P&L")
    ax.set_title(f"{grid.id}: portfolio {portfolio}")
    return _save(fig, path)


def _contributions(
    table: pd.DataFrame, detail: pd.DataFrame, plain: set[str], portfolios: list[str], path: Path
) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(portfolios), figsize=(5 * len(portfolios), 4.5), squeeze=False)
    for ax, name in zip(axes[0], portfolios, strict=True):
        scenario = _worst(table, plain, name)
        rows = detail[(detail["portfolio"] == name) & (detail["scenario"] == scenario)]
        rows = rows.sort_values("pnl")
        colours = [
            "tab:orange" if s not in ("direct", "none") else "tab:blue" for s in rows["source"]
        ]
        ax.barh(rows["symbol"], rows["pnl"], color=colours)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(f"{name}: {scenario}\n(orange: proxied move)", fontsize="small")
        ax.set_xlabel("P&L by position")
    return _save(fig, path)


def _markdown(table: pd.DataFrame, detail: pd.DataFrame, plain: set[str], path: Path) -> Path:
    lines = ["# Stress report", "", "| portfolio | worst scenario | P&L | largest loss from | proxied moves |",
             "|---|---|---:|---|---:|"]  # fmt: skip
    for name in sorted(table["portfolio"].unique()):
        scenario = _worst(table, plain, name)
        pnl = float(
            table[(table["portfolio"] == name) & (table["scenario"] == scenario)]["pnl"].iloc[0]
        )
        rows = detail[(detail["portfolio"] == name) & (detail["scenario"] == scenario)]
        top = rows.sort_values("pnl").iloc[0]
        proxied = int((~rows["source"].isin(["direct", "none"])).sum())
        lines.append(
            f"| {name} | {scenario} | {pnl:,.2f} | {top['symbol']} ({top['pnl']:,.2f}) | {proxied} |"
        )
    lines += [
        "",
        "P&L in currency units, negative is a loss; spot x vol grids are in their heatmaps.",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _worst(table: pd.DataFrame, plain: set[str], portfolio: str) -> str:
    rows = table[(table["portfolio"] == portfolio) & table["scenario"].isin(plain)]
    return str(rows.loc[rows["pnl"].idxmin(), "scenario"])


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
