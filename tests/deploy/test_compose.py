"""deploy/docker-compose.yml, checked as far as a machine without a Docker engine allows.

The file is parsed (YAML with compose's merge keys and ``${VAR:-default}`` defaults) and
its wiring checked against the rest of the repository: every ``RISKSTREAM_*`` variable
is a setting the engine accepts, the workers are the targets of the shipped Prometheus
job, Grafana mounts the provisioning and dashboards that point at the provisioned
datasource, the producers' commands are valid CLI invocations, and host ports are bound
to 127.0.0.1. (This machine's Docker client has no compose plugin, so ``docker compose
config`` is not run here; docs/operations/deployment.md gives the command.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config import FLAT_NAMES, Settings

from .grafana import DEPLOY, dashboards

COMPOSE = DEPLOY / "docker-compose.yml"
_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with every variable unset (the defaults)."""
    if isinstance(value, str):
        if "$" in _DEFAULT.sub("", value):
            raise AssertionError(f"variable without a default: {value!r}")
        return _DEFAULT.sub(lambda m: m.group(2), value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()))


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "kafka",
        "redis",
        "worker-1",
        "worker-2",
        "producer-prices",
        "producer-transactions",
        "prometheus",
        "grafana",
    }


def test_kafka_runs_kraft_and_workers_reach_it(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in json.dumps(compose).lower()
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in ("worker-1", "worker-2", "producer-prices", "producer-transactions"):
        env = compose["services"][name]["environment"]
        assert f"PLAINTEXT://{env['RISKSTREAM_KAFKA_BOOTSTRAP']}" in advertised
        assert env["RISKSTREAM_REDIS_URL"].startswith("redis://redis:")
        for needed in ("kafka", "redis") if name.startswith("worker") else ("worker-1",):
            assert needed in compose["services"][name]["depends_on"]


def test_every_riskstream_variable_is_a_valid_setting(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {f"RISKSTREAM_{field.upper()}" for field in FLAT_NAMES}
    for service in compose["services"].values():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        riskstream = {k: v for k, v in env.items() if k.startswith("RISKSTREAM_")}
        if not riskstream or "RISKSTREAM_KAFKA_BOOTSTRAP" not in riskstream:
            continue
        assert set(riskstream) <= names, set(riskstream) - names
        for key in list(os.environ):
            if key.startswith("RISKSTREAM_"):
                monkeypatch.delenv(key)
        for key, value in riskstream.items():
            monkeypatch.setenv(key, value)
        Settings()  # raises on any invalid value


def test_prometheus_scrapes_both_workers(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "riskstream")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = set()
    for name in ("worker-1", "worker-2"):
        service = compose["services"][name]
        env = service["environment"]
        assert env["RISKSTREAM_METRICS_HOST"] == "0.0.0.0"
        assert "ports" not in service  # metrics stay inside the compose network
        expected.add(f"{service['hostname']}:{env['RISKSTREAM_METRICS_PORT']}")
    assert targets == expected
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts
    assert (
        "--config.file=/etc/prometheus/prometheus.yml"
        in compose["services"]["prometheus"]["command"]
    )


def test_grafana_is_provisioned(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(m.split(":")[:2] for m in grafana["volumes"])
    for source in mounts:
        if source.startswith("./"):
            assert (DEPLOY / source).is_dir(), source
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "riskstream.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    url = source["url"]
    assert url == "${RISKSTREAM_PROMETHEUS_URL}"
    assert grafana["environment"]["RISKSTREAM_PROMETHEUS_URL"] == "http://prometheus:9090"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(mounts["./grafana/dashboards"] + "/")
    assert (DEPLOY / "grafana" / "dashboards" / Path(home).name).is_file()
    # Every panel and target uses the provisioned datasource, by uid.
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for holder in (panel, *panel.get("targets", [])):
                if "datasource" in holder:
                    assert holder["datasource"]["uid"] == source["uid"], (name, panel["title"])


def test_dashboards_are_well_formed() -> None:
    boards = dashboards()
    assert set(boards) == {"operations", "portfolio", "risk"}
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    for board in boards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["targets"], panel["title"]
                assert all(t["expr"].strip() for t in panel["targets"])


def test_host_ports_are_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_image_is_built_from_the_repository(compose: dict[str, Any]) -> None:
    build = compose["services"]["worker-1"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file()
    image = compose["services"]["worker-1"]["image"]
    for name, service in compose["services"].items():
        if name.startswith(("worker", "producer")):
            assert service["image"] == image
            assert service["build"] == build
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), source


def test_producer_commands_are_valid(compose: dict[str, Any], tmp_path: Path) -> None:
    """Each producer's command, limited to a few messages and written to stdout."""
    for name in ("producer-prices", "producer-transactions"):
        command = compose["services"][name]["command"]
        result = subprocess.run(
            [sys.executable, "-m", "engine.cli", *command, "--dry-run", "--limit", "3"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 3
