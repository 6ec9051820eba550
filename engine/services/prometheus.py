"""A local Prometheus server on 127.0.0.1 for dashboards, alert-rule and metrics tests.

It runs the configuration file it is given (``deploy/prometheus/...`` or one a test
writes), keeps its TSDB in its state directory and is ready when ``GET /-/ready``
answers 200. The lifecycle API is on, so :meth:`PrometheusServer.reload` re-reads the
configuration without a restart.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ServiceUnavailableError
from engine.services.install import find_binary
from engine.services.ports import LOOPBACK, free_port, port_open
from engine.services.process import ManagedProcess


class PrometheusServer(ManagedProcess):
    """``prometheus`` with ``config_path`` on ``127.0.0.1:port``.

    Parameters
    ----------
    config_path
        The ``prometheus.yml`` to run (rule files it names are resolved by Prometheus
        relative to it).
    state_dir
        Holds ``tsdb/`` and ``prometheus.log``; a temporary directory, removed by
        :meth:`close`, when omitted.
    port
        A free port when omitted; kept across restarts.
    retention
        ``--storage.tsdb.retention.time``.
    extra_args
        More command-line flags.
    """

    def __init__(
        self,
        config_path: Path | str,
        state_dir: Path | None = None,
        *,
        port: int | None = None,
        retention: str = "1d",
        extra_args: Sequence[str] = (),
        binary: str = "prometheus",
        detach: bool = False,
        ready_timeout: float = 60.0,
    ) -> None:
        super().__init__("prometheus", state_dir, detach=detach, ready_timeout=ready_timeout)
        self.config_path = Path(config_path).resolve()
        self.port = port or free_port()
        self.retention = retention
        self.extra_args = tuple(extra_args)
        self.binary = binary

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.address}"

    def prepare(self) -> None:
        if not self.config_path.is_file():
            raise FileNotFoundError(f"Prometheus configuration not found: {self.config_path}")

    def command(self) -> list[str]:
        return [
            str(find_binary(self.binary)),
            f"--config.file={self.config_path}",
            f"--web.listen-address={self.address}",
            f"--storage.tsdb.path={self.state_dir / 'tsdb'}",
            f"--storage.tsdb.retention.time={self.retention}",
            "--web.enable-lifecycle",
            *self.extra_args,
        ]

    def _request(self, path: str, *, method: str = "GET", timeout: float = 5.0) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())

    def probe(self) -> bool:
        if not port_open(self.port):
            return False
        try:
            self._request("/-/ready", timeout=2.0)
        except urllib.error.HTTPError as exc:  # 503 while starting
            exc.close()
            return False
        except urllib.error.URLError:
            return False
        return True

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>?params``; returns ``data`` of a successful answer.

        Raises :class:`~engine.errors.ServiceUnavailableError` when Prometheus cannot be
        reached or answers with an error.
        """
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            body = json.loads(self._request(f"/api/v1/{path}{query}"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            exc.close()
            raise ServiceUnavailableError(f"Prometheus /api/v1/{path}: {exc}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceUnavailableError(f"Prometheus at {self.url}: {exc}") from None
        if body.get("status") != "success":
            raise ServiceUnavailableError(f"Prometheus /api/v1/{path}: {body}")
        return body["data"]

    def query(self, expr: str) -> Any:
        """Instant query; the answer's ``result``.

        For a vector, a list of ``{"metric": {...}, "value": [ts, "text"]}``; for a scalar,
        ``[ts, "text"]``.
        """
        return self.api("query", query=expr)["result"]

    def reload(self) -> None:
        """Re-read the configuration (``POST /-/reload``)."""
        try:
            self._request("/-/reload", method="POST", timeout=10.0)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            exc.close()
            raise ServiceUnavailableError(f"Prometheus reload failed: {detail}") from None
