"""``--bars`` and ``--horizon`` of ``riskstream var forecast`` and ``backtest``
(docs/models/horizon.md): checked at the boundary, and an h-step VaR file is the one-step
file scaled by sqrt(h)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .test_cli_edges import cli, prices, refused

__all__ = ["prices"]  # the fixture, shared with the edge tests


def test_an_unknown_bars_value_is_refused_before_any_forecast(prices: Path, tmp_path: Path) -> None:
    proc = cli(
        "var", "forecast", "--prices", str(prices), "--out", "o.csv", "--bars", "weekly",
        cwd=tmp_path,
    )  # fmt: skip
    assert refused(proc, "--bars 'weekly': choose tick or session")
    proc = cli(
        "backtest", "--prices", str(prices), "--report", "rep", "--bars", "minute", cwd=tmp_path
    )
    assert refused(proc, "--bars 'minute': choose tick or session")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "rep").exists()


def test_a_horizon_below_one_step_is_refused_naming_its_variable(
    prices: Path, tmp_path: Path
) -> None:
    proc = cli(
        "var", "forecast", "--prices", str(prices), "--out", "o.csv", "--horizon", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "RISKSTREAM_VAR_HORIZON" in proc.stderr and "greater than or equal to 1" in proc.stderr


def test_a_ten_step_var_file_is_the_one_step_file_times_sqrt_10(
    prices: Path, tmp_path: Path
) -> None:
    for h in ("1", "10"):
        proc = cli(
            "var", "forecast", "--prices", str(prices), "--out", f"h{h}.csv",
            "--method", "ewma-normal", "--horizon", h, "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    one, ten = (pd.read_csv(tmp_path / f"h{h}.csv") for h in ("1", "10"))
    pd.testing.assert_frame_equal(one[["timestamp", "level"]], ten[["timestamp", "level"]])
    assert np.isfinite(one["var"]).sum() > 500
    np.testing.assert_allclose(ten["var"], np.sqrt(10) * one["var"], rtol=1e-15)
    np.testing.assert_allclose(ten["es"], np.sqrt(10) * one["es"], rtol=1e-15)
