"""Listener configuration of a local Kafka node, kept in one place.

A node has one controller listener (KRaft quorum traffic) and one or more client
listeners. Everything Kafka needs to know about them (``listeners``,
``advertised.listeners``, ``listener.security.protocol.map``, ``controller.listener.names``,
``inter.broker.listener.name`` and per-listener settings such as a SASL JAAS config) is
rendered from a tuple of :class:`Listener` by :func:`listener_properties`, so adding a
``SASL_SSL`` listener with SCRAM later is one more :class:`Listener` with its ``settings``
(``sasl.enabled.mechanisms``, ``ssl.keystore.location`` ...), not edits in several places.

Every listener binds 127.0.0.1: local services are never reachable from another host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.services.ports import LOOPBACK

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]

CONTROLLER = "CONTROLLER"
CLIENT = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class Listener:
    """One named Kafka listener on ``host:port``.

    Parameters
    ----------
    name
        Listener name, upper case (``PLAINTEXT``, ``CONTROLLER``, ``SASL_SSL`` ...).
    port
        TCP port on ``host``.
    protocol
        Security protocol spoken on it.
    controller
        Whether this is the KRaft controller listener (not advertised to clients).
    settings
        Extra broker settings for this listener, written as
        ``listener.name.<name lower case>.<key>=<value>`` (e.g. ``sasl.enabled.mechanisms``,
        ``scram-sha-512.sasl.jaas.config``).
    host
        Bind and advertised address; loopback only by design.
    """

    name: str
    port: int
    protocol: SecurityProtocol = "PLAINTEXT"
    controller: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)
    host: str = LOOPBACK

    def __post_init__(self) -> None:
        if self.name != self.name.upper() or not self.name.replace("_", "").isalnum():
            raise ValueError(f"listener name {self.name!r} must be upper-case letters, digits, _")
        if not 0 < self.port < 65536:
            raise ValueError(f"listener port {self.port} must be between 1 and 65535")

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


def default_listeners(client_port: int, controller_port: int) -> tuple[Listener, Listener]:
    """A PLAINTEXT client listener and a PLAINTEXT controller listener."""
    return (
        Listener(CLIENT, client_port, "PLAINTEXT"),
        Listener(CONTROLLER, controller_port, "PLAINTEXT", controller=True),
    )


def controller_listener(listeners: Sequence[Listener]) -> Listener:
    """The single controller listener; :class:`ValueError` unless there is exactly one."""
    found = [item for item in listeners if item.controller]
    if len(found) != 1:
        raise ValueError(f"exactly one controller listener is needed, got {len(found)}")
    return found[0]


def client_listener(listeners: Sequence[Listener], name: str | None = None) -> Listener:
    """The client listener called ``name``, or the first client listener."""
    for item in listeners:
        if not item.controller and (name is None or item.name == name):
            return item
    raise ValueError(f"no client listener {name or ''} among {[i.name for i in listeners]}")


def listener_properties(
    listeners: Sequence[Listener], *, inter_broker: str | None = None
) -> dict[str, str]:
    """Broker settings describing ``listeners``.

    ``inter_broker`` names the listener brokers replicate over (default: the first client
    listener).

    >>> props = listener_properties(default_listeners(9092, 9093))
    >>> props["listeners"]
    'PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093'
    >>> props["advertised.listeners"], props["controller.listener.names"]
    ('PLAINTEXT://127.0.0.1:9092', 'CONTROLLER')
    """
    names = [item.name for item in listeners]
    if len(set(names)) != len(names):
        raise ValueError(f"listener names must be unique: {names}")
    controller = controller_listener(listeners)
    inter = client_listener(listeners, inter_broker)
    props = {
        "listeners": ",".join(f"{i.name}://{i.address}" for i in listeners),
        "advertised.listeners": ",".join(
            f"{i.name}://{i.address}" for i in listeners if not i.controller
        ),
        "listener.security.protocol.map": ",".join(f"{i.name}:{i.protocol}" for i in listeners),
        "controller.listener.names": controller.name,
        "inter.broker.listener.name": inter.name,
    }
    for item in listeners:
        for key, value in item.settings.items():
            props[f"listener.name.{item.name.lower()}.{key}"] = value
    return props
