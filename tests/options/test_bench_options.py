"""``riskstream bench options`` runs end to end on a small book and reports every figure."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from engine.cli import app


def test_bench_options_reports_greeks_time_full_var_time_and_every_methods_gap(tmp_path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "options", "--positions", "200", "--underlyings", "5", "--scenarios", "500",
            "--gap-positions", "50", "--repeats", "10", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "GENERATED option books" in result.output and "real S&P 500" in result.output
    report = json.loads(out.read_text())
    assert report["greeks_p50_ms"] > 0 and report["full_var_seconds"] > 0
    methods = [row["method"] for row in report["gap_table"]]
    assert methods == ["delta-normal", "delta-gamma-cf", "delta-gamma-mc", "full"]
