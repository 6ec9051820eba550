"""The getting-started page's offline commands run as written.

The page marks each block a reader can run without Kafka or Redis with the comment
``<!-- docs-test: offline -->`` on the line before its fence. This test runs those blocks
with bash in an empty directory, ``riskstream`` being this checkout's CLI, and checks the
files the page tells the reader to look at.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import DOCS, ROOT

PAGE = DOCS / "getting-started.md"
_BLOCK = re.compile(r"<!-- docs-test: offline -->\s*\n```(?:bash|sh)\n(.*?)\n```", re.S)


def offline_blocks() -> list[str]:
    return _BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_page_marks_its_offline_commands() -> None:
    blocks = offline_blocks()
    assert blocks, f"no '<!-- docs-test: offline -->' block in {PAGE.name}"
    assert any("riskstream var forecast" in block for block in blocks)


@pytest.mark.slow
def test_the_offline_commands_run_as_written(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "riskstream"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m engine.cli "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKSTREAM_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "100"
    script = "set -euo pipefail\n" + "\n".join(offline_blocks()) + "\n"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def rows(name: str) -> list[dict[str, str]]:
        with (work / name).open(newline="") as handle:
            return list(csv.DictReader(handle))

    var = rows("var.csv")
    assert list(var[0]) == ["timestamp", "symbol", "method", "level", "var", "es"]
    last = [row for row in var if row["var"]][-1]
    assert last["method"] == "champion" and 0 < float(last["var"]) < float(last["es"]) < 1
    assert list(rows("vol.csv")[0]) == ["timestamp", "symbol", "model", "sigma"]
    scores = [float(r["anomaly_score"]) for r in rows("scored.csv") if r["anomaly_score"]]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    assert {r["portfolio"] for r in rows("pbt.csv")} == {"main", "long"}
    assert (work / "riskstream-out" / "alerts.jsonl").stat().st_size > 0
