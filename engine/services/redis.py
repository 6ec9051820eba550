"""A local ``redis-server`` on 127.0.0.1 for development and tests.

The server reads a generated ``redis.conf`` (mode 0600, so an optional ``requirepass``
never shows on a command line), binds 127.0.0.1 only, keeps protected mode on and, by
default, persists nothing: a restart starts empty. With ``persistence=True`` it writes an
append-only file in its state directory, fsynced before every reply (``appendfsync
always``), and a restart brings back every acknowledged write, also after
:meth:`~engine.services.process.ManagedProcess.kill`. ``everysec`` is not enough for that:
while the previous second's fsync is still running Redis postpones writing its AOF buffer
for up to two seconds but keeps replying, so a SIGKILL then loses writes it acknowledged
(the fault suite lost two alerts that way in CI).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from engine.services.install import find_binary
from engine.services.ports import LOOPBACK, free_port, port_open
from engine.services.process import ManagedProcess


class RedisByUrl:
    """``url``, :meth:`client` and :meth:`flush` for a handle of one Redis server.

    The native server (:class:`RedisServer`) and the container
    (:class:`engine.services.containers.DockerRedis`) inherit them; each defines
    :meth:`url_for` itself.
    """

    def url_for(self, db: int = 0) -> str:
        """``redis://...`` of database ``db`` (defined by the handle)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """URL of database 0, for ``RISKSTREAM_REDIS_URL``."""
        return self.url_for(0)

    def client(self, db: int = 0, **kwargs: Any) -> Any:
        """A ``redis.Redis`` client of database ``db`` (the caller closes it)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import redis

        return redis.Redis.from_url(self.url_for(db), **kwargs)

    def flush(self) -> None:
        """Delete every key in every database (``FLUSHALL``)."""
        client = self.client(socket_timeout=5.0)
        try:
            client.flushall()
        finally:
            client.close()


class RedisServer(ManagedProcess, RedisByUrl):
    """``redis-server`` on ``127.0.0.1:port``.

    Parameters
    ----------
    state_dir
        Holds ``redis.conf``, ``redis.log`` and, with persistence, the append-only file.
        A temporary directory, removed by :meth:`close`, when omitted.
    port
        A free port when omitted; kept across restarts.
    password
        ``requirepass``; :attr:`url` then carries it.
    persistence
        Append-only persistence (``appendonly yes``, ``appendfsync always``).
    binary
        The server executable, found on PATH.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        port: int | None = None,
        password: str | None = None,
        persistence: bool = False,
        binary: str = "redis-server",
        detach: bool = False,
        ready_timeout: float = 30.0,
    ) -> None:
        super().__init__("redis", state_dir, detach=detach, ready_timeout=ready_timeout)
        if password is not None and (not password or any(c in password for c in '"\\\n\r')):
            raise ValueError("password must be non-empty, without quotes, backslashes or newlines")
        self.port = port or free_port()
        self.password = password
        self.persistence = persistence
        self.binary = binary

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def url_for(self, db: int = 0) -> str:
        """``redis://[:password@]127.0.0.1:<port>/<db>`` (contains the password: do not log)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/{db}"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "redis.conf"

    def config(self) -> str:
        """The ``redis.conf`` text this server runs with."""
        lines = [
            f"port {self.port}",
            f"bind {LOOPBACK}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',  # stdout, i.e. redis.log
            f"dir {self.state_dir}",
            'save ""',
            f"appendonly {'yes' if self.persistence else 'no'}",
            "appendfsync always",
        ]
        if self.password:
            lines.append(f'requirepass "{self.password}"')
        return "\n".join(lines) + "\n"

    def prepare(self) -> None:
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.config())

    def command(self) -> list[str]:
        return [str(find_binary(self.binary)), str(self.config_path)]

    def probe(self) -> bool:
        if not port_open(self.port):
            return False
        client = self.client(socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
