"""``riskstream services``: a local Kafka and Redis (and Prometheus install) for development.

Services started here bind 127.0.0.1 only, outlive the command, keep their data and logs
under ``--state-dir`` (``.run/services`` by default, ``RISKSTREAM_SERVICES_DIR``) and are
recorded there, so ``stop``, ``status`` and ``env`` find them from any shell started in the
same directory. ``start`` prints ``export`` lines on stdout (progress goes to stderr), so
``eval "$(riskstream services start)"`` configures the current shell.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.cli.app import command_group

if TYPE_CHECKING:
    from engine.services.process import ManagedProcess

services_app = command_group(
    "services", "Local Kafka, Redis and Prometheus for development and tests (127.0.0.1 only)."
)

KAFKA_ENV = "RISKSTREAM_KAFKA_BOOTSTRAP"
REDIS_ENV = "RISKSTREAM_REDIS_URL"
SERVICES = ("kafka", "redis")


class InstallTarget(StrEnum):
    kafka = "kafka"
    redis = "redis"
    prometheus = "prometheus"
    all = "all"


class StartTarget(StrEnum):
    kafka = "kafka"
    redis = "redis"
    all = "all"


STATE_DIR_OPTION = typer.Option(
    Path(".run/services"),
    "--state-dir",
    envvar="RISKSTREAM_SERVICES_DIR",
    help="Where services keep data, logs, pid files and services.env.",
)


def _targets(target: StartTarget) -> tuple[str, ...]:
    return SERVICES if target is StartTarget.all else (target.value,)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"riskstream: error: {message}", err=True)
    return typer.Exit(code)


def _exports(env: dict[str, str]) -> list[str]:
    import shlex

    order = {KAFKA_ENV: 0, REDIS_ENV: 1}
    keys = sorted(env, key=lambda k: (order.get(k, 2), k))
    return [f"export {key}={shlex.quote(env[key])}" for key in keys]


@services_app.command("install")
def install_command(
    target: InstallTarget = typer.Argument(
        InstallTarget.all,
        help="What to install: kafka (jars, Java, Maven), redis, prometheus, all.",
    ),
) -> None:
    """Install what local services need (idempotent; apt-get as root or via sudo -n)."""
    from engine.services.errors import ServiceInstallError
    from engine.services.install import install

    try:
        for line in install(target.value):
            typer.echo(line)
    except ServiceInstallError as exc:
        raise _fail(str(exc), 1) from None


def _start_kafka(state_dir: Path, port: int | None) -> tuple[ManagedProcess, dict[str, str]]:
    from engine.services.kafka import KafkaBroker
    from engine.services.ports import free_port

    client = port or free_port(preferred=9092)
    broker = KafkaBroker(
        state_dir / "kafka",
        port=client,
        controller_port=free_port(preferred=client + 1),
        detach=True,
    )
    broker.start()
    return broker, {KAFKA_ENV: broker.bootstrap}


def _start_redis(state_dir: Path, port: int | None) -> tuple[ManagedProcess, dict[str, str]]:
    from engine.services.ports import free_port
    from engine.services.redis import RedisServer

    server = RedisServer(
        state_dir / "redis", port=port or free_port(preferred=6379), detach=True, persistence=True
    )
    server.start()
    return server, {REDIS_ENV: server.url}


@services_app.command("start")
def start_command(
    target: StartTarget = typer.Argument(StartTarget.all, help="kafka, redis or all."),
    kafka_port: int | None = typer.Option(
        None,
        "--kafka-port",
        min=1,
        max=65535,
        help="Kafka client port (default: 9092 if free, else any free port).",
    ),
    redis_port: int | None = typer.Option(
        None,
        "--redis-port",
        min=1,
        max=65535,
        help="Redis port (default: 6379 if free, else any free port).",
    ),
    state_dir: Path = STATE_DIR_OPTION,
) -> None:
    """Start services in the background and print `export` lines for their addresses.

    A service that is already running is left as it is. Kafka keeps its topics across stop and start; Redis starts empty.
    """
    from engine.services.ports import port_is_free
    from engine.services.registry import Registry

    registry = Registry(state_dir)
    starters = {"kafka": (_start_kafka, kafka_port), "redis": (_start_redis, redis_port)}
    for name in _targets(target):
        record = registry.get(name)
        if record is not None and record.is_alive:
            _say(f"{name}: already running at {record.address} (pid {record.pid})")
            continue
        starter, port = starters[name]
        if port is not None and not port_is_free(port):
            raise _fail(f"{name}: port {port} on 127.0.0.1 is in use", 2)
        _say(f"{name}: starting ...")
        process, env = starter(registry.root, port)
        saved = registry.add(name, process, env)
        _say(f"{name}: running at {saved.address} (pid {saved.pid}); log: {saved.log_path}")
    _say(f"# environment, also in {registry.env_path}:")
    for line in _exports(registry.env()):
        typer.echo(line)


@services_app.command("stop")
def stop_command(
    target: StartTarget = typer.Argument(StartTarget.all, help="kafka, redis or all."),
    state_dir: Path = STATE_DIR_OPTION,
    timeout: float = typer.Option(20.0, "--timeout", min=0, help="Seconds before SIGKILL."),
) -> None:
    """Stop services started by `riskstream services start` (data is kept)."""
    from engine.services.registry import Registry

    registry = Registry(state_dir)
    for name in _targets(target):
        record = registry.get(name)
        if record is None:
            _say(f"{name}: not started from {registry.root}")
        elif registry.stop(name, timeout):
            _say(f"{name}: stopped (pid {record.pid})")
        else:
            _say(f"{name}: was not running")


@services_app.command("status")
def status_command(state_dir: Path = STATE_DIR_OPTION) -> None:
    """Show which services run, their pids, addresses and logs.

    Exit status 0 when every recorded service is running, 3 when one has died.
    """
    from engine.services.registry import Registry

    registry = Registry(state_dir)
    dead = False
    for name in SERVICES:
        record = registry.get(name)
        if record is None:
            typer.echo(f"{name:6} not started")
        elif record.is_alive:
            typer.echo(
                f"{name:6} running  {record.address}  pid {record.pid}  log {record.log_path}"
            )
        else:
            dead = True
            typer.echo(
                f"{name:6} DEAD     {record.address}  pid {record.pid}  log {record.log_path}"
            )
    if dead:
        raise typer.Exit(3)


@services_app.command("env")
def env_command(state_dir: Path = STATE_DIR_OPTION) -> None:
    """Print `export` lines for the running services: eval "$(riskstream services env)"."""
    from engine.services.registry import Registry

    env = Registry(state_dir).env()
    if not env:
        raise _fail("no services running; start them with `riskstream services start`", 3)
    for line in _exports(env):
        typer.echo(line)
