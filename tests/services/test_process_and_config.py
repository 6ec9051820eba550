"""Tests of the local-services machinery that need no Kafka, Redis or Prometheus:
process control, ports, listener rendering, backend choice, install errors."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.services import install
from engine.services.errors import ServiceInstallError, ServiceStartError
from engine.services.kafka import KafkaBroker, random_cluster_id
from engine.services.kafka_listeners import Listener, default_listeners, listener_properties
from engine.services.ports import free_port, free_ports, port_is_free, port_open
from engine.services.process import ManagedProcess, running_processes
from engine.services.testing import resolve_backend

SERVER = """
import signal, socket, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2] == "crash":
    print("fatal: configuration is broken", flush=True)
    sys.exit(3)
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
while True:
    time.sleep(0.1)
"""


class DummyServer(ManagedProcess):
    """A Python TCP listener standing in for a real server."""

    def __init__(self, state_dir: Path, mode: str = "normal", **kwargs: object) -> None:
        super().__init__("dummy", state_dir, **kwargs)  # type: ignore[arg-type]
        self.port = free_port()
        self.mode = mode

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-c", SERVER, str(self.port), self.mode]

    def probe(self) -> bool:
        return self.mode != "never-ready" and port_open(self.port)


@pytest.mark.timeout(60)
def test_process_lifecycle(tmp_path: Path) -> None:
    server = DummyServer(tmp_path).start(timeout=20)
    try:
        assert server.is_running and server in running_processes()
        assert os.getpgid(server.pid or 0) == server.pid  # own process group
        assert os.getsid(server.pid or 0) == server.pid  # own session
        first = server.pid

        server.pause()
        assert server.is_paused
        state = Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state in ("T", "t")  # pause() returns once the kernel has stopped it
        server.resume()
        assert not server.is_paused

        server.restart(timeout=20)
        assert server.pid != first and port_open(server.port)
        assert server.log_tail().splitlines().count("listening") == 2  # appended, not truncated
    finally:
        code = server.stop(timeout=5)
    assert code == -signal.SIGTERM
    assert not server.is_running and server not in running_processes()
    assert server.stop() == code  # idempotent


@pytest.mark.timeout(60)
def test_stop_escalates_to_sigkill_and_pause_does_not_block_stop(tmp_path: Path) -> None:
    server = DummyServer(tmp_path, mode="ignore-term").start(timeout=20)
    server.pause()
    started = time.monotonic()
    assert server.stop(timeout=1) == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_early_exit_reports_status_and_log_tail(tmp_path: Path) -> None:
    server = DummyServer(tmp_path, mode="crash")
    with pytest.raises(ServiceStartError, match="exited with status 3") as caught:
        server.start(timeout=20)
    assert "fatal: configuration is broken" in str(caught.value)
    assert server not in running_processes()


def test_ready_timeout_kills_the_process(tmp_path: Path) -> None:
    server = DummyServer(tmp_path, mode="never-ready")
    with pytest.raises(ServiceStartError, match=r"not ready .* within 1 s"):
        server.start(timeout=1)
    assert not server.is_running and server.returncode == -signal.SIGKILL


def test_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    class Missing(DummyServer):
        def command(self) -> list[str]:
            return ["/nonexistent/riskstream-server"]

    with pytest.raises(ServiceStartError, match="cannot run /nonexistent/riskstream-server"):
        Missing(tmp_path).start(timeout=5)


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(10_000 <= p < low for p in ports)
    assert all(port_is_free(p) for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        assert not port_is_free(busy)
        assert free_port(preferred=busy) != busy


def test_listener_properties_keep_all_listener_settings_together() -> None:
    scram = Listener(
        "SASL_SSL",
        19094,
        "SASL_SSL",
        settings={"sasl.enabled.mechanisms": "SCRAM-SHA-512"},
    )
    props = listener_properties((*default_listeners(19092, 19093), scram))
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:19094"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    )
    assert props["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    with pytest.raises(ValueError, match="exactly one controller"):
        listener_properties([Listener("PLAINTEXT", 1)])
    with pytest.raises(ValueError, match="upper-case"):
        Listener("plaintext", 1)


def test_broker_configuration(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, port=19092, controller_port=19093, properties={"x.y": True})
    props = broker.server_properties()
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["x.y"] == "true"
    assert props["log.dirs"] == str(tmp_path.resolve() / "data")
    assert broker.bootstrap == "127.0.0.1:19092"
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200 and all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_backend_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("native") == "native"
    assert resolve_backend(" Docker ") == "docker"
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker client: auto means native
    assert resolve_backend(None) == "native"
    assert resolve_backend("auto") == "native"
    with pytest.raises(ConfigError, match="native, docker or auto"):
        resolve_backend("podman")


def test_missing_tools_give_the_command_that_fixes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(install, "_which", lambda binary: None)
    with pytest.raises(ServiceInstallError, match="apt-get install maven"):
        install.find_binary("mvn")
    monkeypatch.setenv("RISKSTREAM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ServiceInstallError, match="'java' not found"):
        install.install_kafka("3.9.1")
    assert not install.kafka_libs_dir("3.9.1").exists()


def test_ensure_debian_package_returns_present_binaries() -> None:
    assert install.ensure_debian_package("sh", "dash") == Path(install._which("sh") or "")


@pytest.mark.timeout(300)
def test_install_kafka_is_idempotent() -> None:
    libs = install.install_kafka()
    started = time.monotonic()
    assert install.install_kafka() == libs
    assert time.monotonic() - started < 1.0
    assert (libs / "kafka_2.13-3.9.1.jar").is_file()
    assert (libs / "reload4j-1.2.25.jar").is_file()


def test_failed_admin_bootstrap_leaves_no_thread_or_socket() -> None:
    import threading

    from kafka.errors import KafkaError

    from engine.services import kafka_admin

    before = {t.ident for t in threading.enumerate()}
    with socket.socket() as silent:  # accepts connections, never answers: a JVM still starting
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        for bootstrap in (f"127.0.0.1:{silent.getsockname()[1]}", f"127.0.0.1:{free_port()}"):
            with pytest.raises(KafkaError):
                kafka_admin.broker_ids(bootstrap, timeout_ms=300)
    leaked = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leaked == []


def test_docker_backend_without_an_engine_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.services.testing import ServiceHub

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    hub = ServiceHub(tmp_path, "docker")
    try:
        with pytest.raises(ServiceStartError, match=r"Kafka container .* did not start"):
            hub.kafka()
        with pytest.raises(ServiceStartError, match=r"Redis container .* did not start"):
            hub.redis()
    finally:
        hub.close()
