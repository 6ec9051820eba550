"""The backtest report's plots read at a glance: the VaR line drawn over its breaches, one
volatility model per panel (shared axes) over the realised volatility."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from .test_risk_cli import invoke


@pytest.fixture(scope="module")
def prices_with_rv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One symbol, 500 daily prices with realised variance, a volatility regime change."""
    rng = np.random.default_rng(11)
    days = pd.date_range("2020-01-01", periods=500, freq="D", tz="UTC")
    sigma = np.where(np.arange(500) < 300, 0.01, 0.025)
    returns = sigma * rng.standard_t(5, 500) / np.sqrt(5 / 3)
    rv = sigma**2 * rng.chisquare(20, 500) / 20
    path = tmp_path_factory.mktemp("rv") / "prices.csv"
    pd.DataFrame(
        {
            "timestamp": days.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbol": "AAA",
            "price": 100.0 * np.exp(np.cumsum(returns)),
            "rv": rv,
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def figures(prices_with_rv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Figure]:
    """The figures ``riskstream backtest`` saves, by file name (captured as they are saved)."""
    saved: dict[str, Figure] = {}
    original = Figure.savefig

    def capture(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        saved[Path(fname).name] = self
        original(self, fname, *args, **kwargs)

    report = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", capture)
        result = invoke(
            "backtest",
            "--prices",
            str(prices_with_rv),
            "--report",
            str(report),
            "--rolling",
            "50",
            env={"RISKSTREAM_VOL_MODELS": "ewma,garch,gjr,har,combo"},
        )
    assert result.exit_code == 0, result.output
    return saved


def test_the_var_lines_are_drawn_over_the_breaches_which_are_hollow(
    figures: dict[str, Figure],
) -> None:
    (ax,) = figures["var_AAA.png"].axes
    var_lines = [line for line in ax.get_lines() if line.get_label().startswith("-VaR")]
    returns = next(line for line in ax.get_lines() if line.get_label() == "log return")
    breaches = [c for c in ax.collections if str(c.get_label()).startswith("breach")]
    assert len(var_lines) == 2 and len(breaches) == 2
    for line, dots in zip(var_lines, breaches, strict=True):
        assert line.get_zorder() > dots.get_zorder() > returns.get_zorder()
        assert dots.get_facecolor().size == 0 or dots.get_facecolor()[:, 3].max() == 0  # hollow
        assert to_rgba(line.get_color()) == tuple(dots.get_edgecolor()[0])  # same colour
        assert to_rgba(line.get_color()) != to_rgba(returns.get_color())


def test_one_volatility_model_per_panel_on_shared_axes_over_the_realised(
    figures: dict[str, Figure],
) -> None:
    panels = [ax for ax in figures["vol_AAA.png"].axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in panels] == ["ewma", "garch", "gjr", "har", "combo"]
    for ax in panels:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["realised (sqrt rv)", "forecast"]  # one model, and the reference
        assert ax.get_ylim() == panels[0].get_ylim() and ax.get_xlim() == panels[0].get_xlim()
