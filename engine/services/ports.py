"""Free TCP ports on 127.0.0.1 for local services.

Ports are picked at random *below* the kernel's ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``), so a port handed out here is not taken a
moment later as the source port of some outgoing connection. A port is handed out at most
once per Python process, so several brokers started by the same test session never
collide with each other. Nothing can stop another program from binding the port between
the check and the server's own ``bind``; servers started by :mod:`engine.services` fail
fast with the log line that says so when that happens.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"

_LOW = 10_000
_issued: set[int] = set()
_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``host:port`` can be bound right now (TCP, without ``SO_REUSEADDR``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, *, preferred: int | None = None) -> int:
    """A TCP port on ``host`` that is bindable now and was not handed out before.

    Parameters
    ----------
    host
        Interface to check, loopback by default (local services never bind elsewhere).
    preferred
        Returned when it is free and not handed out yet (e.g. 9092 for a developer's
        broker); otherwise a random free port is chosen.
    """
    high = max(_ephemeral_low() - 1, _LOW + 1000)
    with _lock:
        if preferred and preferred not in _issued and port_is_free(preferred, host):
            _issued.add(preferred)
            return preferred
        for _ in range(1000):
            port = random.randint(_LOW, high)
            if port not in _issued and port_is_free(port, host):
                _issued.add(port)
                return port
    raise OSError(f"no free TCP port found on {host} between {_LOW} and {high}")


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports (see :func:`free_port`)."""
    return [free_port(host) for _ in range(count)]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_port_closed(port: int, host: str = LOOPBACK, timeout: float = 10.0) -> bool:
    """Wait until nothing listens on ``host:port``; ``False`` if still open after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(port, host, timeout=0.2):
            return True
        time.sleep(0.1)
    return False
