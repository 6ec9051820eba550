"""Write the figures of the model pages (docs/models/img/) with the riskstream commands.

    python docs/gen_figures.py           # needs RISKSTREAM_SHARED_DATA (or ../shared/data)

Every figure is what a user's own command writes, copied: the backtest report's VaR and
volatility plots of the S&P 500 (2004-2012 closes with realised variance, judged from
2007, all seven volatility models) and the probability waterfall of one credit applicant
(the first row of the Taiwan file, committed model). A minute or two on a loaded 2-core
machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "models" / "img"
#: The windows of the documented backtests (docs/models/backtests.md), all seven models.
BACKTEST_ENV = {
    "RISKSTREAM_VOL_MODELS": "ewma,garch,gjr,har,lstm,transformer,combo",
    "RISKSTREAM_VAR_WINDOW": "1000",
    "RISKSTREAM_VAR_MIN_OBS": "250",
    "RISKSTREAM_GARCH_WINDOW": "1000",
    "RISKSTREAM_HAR_WINDOW": "1000",
    "RISKSTREAM_REFIT_FIRST": "250",
    "RISKSTREAM_REFIT_EVERY": "20",
}


def riskstream(*args: str, env: dict[str, str] | None = None, cwd: Path) -> None:
    """Run ``riskstream ARGS`` from this checkout; stop on failure."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    print("riskstream", *args, file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], check=True, cwd=cwd, env=environment
    )


def main() -> None:
    from engine.paths import shared_file

    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        riskstream("data", "export", "sp500-rv", "--out", "sp500rv.csv", cwd=work)
        frame = pd.read_csv(work / "sp500rv.csv")
        day = frame["timestamp"].str[:10]
        frame[(day >= "2004-01-01") & (day <= "2012-12-31")].to_csv(
            work / "sp500rv-2004-2012.csv", index=False
        )
        riskstream(
            "backtest",
            "--prices",
            "sp500rv-2004-2012.csv",
            "--report",
            "report",
            "--start",
            "2007-01-01",
            "--quiet",
            env=BACKTEST_ENV,
            cwd=work,
        )
        for name in ("var_SPX.png", "vol_SPX.png"):
            shutil.copyfile(work / "report" / name, IMG / f"backtest_{name}")
    riskstream(
        "explain",
        "--model",
        str(ROOT / "onnx" / "credit"),
        "--data",
        str(shared_file("credit/taiwan_default_of_credit_card_clients.csv")),
        "--row",
        "1",
        "--out",
        str(IMG / "credit_waterfall.png"),
        cwd=ROOT,
    )


if __name__ == "__main__":
    main()
