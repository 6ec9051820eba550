"""promtool on the shipped Prometheus configuration: config and rules check, rule unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .grafana import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:  # installed with prometheus (deploy/services.sh install)
        pytest.fail("promtool not found: install prometheus (deploy/services.sh install)")
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_config_is_valid() -> None:
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_are_valid() -> None:
    rules = sorted((PROMETHEUS / "rules").glob("*.yml"))
    assert rules
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", PROMETHEUS / "tests" / "riskstream.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "rules" / "riskstream.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS / "tests" / "riskstream.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == tested, f"alerts without a firing test case: {sorted(alerts - tested)}"
    assert {
        "RiskstreamWorkerDown",
        "RiskstreamConsumerLagGrowing",
        "RiskstreamDeadLetterRate",
        "RiskstreamLatencySLOFastBurn",
        "RiskstreamBacktestZoneRed",
        "RiskstreamNoDataFromFeed",
    } <= alerts


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests have teeth: a dead-letter threshold of 5% misses the 2% case."""
    rules = (PROMETHEUS / "rules" / "riskstream.yml").read_text()
    assert rules.count("> 0.01\n") == 1
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "riskstream.yml").write_text(rules.replace("> 0.01\n", "> 0.05\n"))
    (tmp_path / "tests").mkdir()
    shutil.copy(PROMETHEUS / "tests" / "riskstream.test.yml", tmp_path / "tests")
    result = promtool("test", "rules", tmp_path / "tests" / "riskstream.test.yml")
    assert result.returncode != 0
    assert "RiskstreamDeadLetterRate" in result.stdout + result.stderr
