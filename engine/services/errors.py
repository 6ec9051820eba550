"""Errors of the local-services subsystem.

Both derive from :class:`~engine.errors.RiskstreamError`. A service that does not start is
also a :class:`~engine.errors.ServiceUnavailableError` (so the CLI exits with status 3 and
callers that only catch ``ConnectionError`` still see it); a missing tool or a failed
download is a :class:`ServiceInstallError`.
"""

from __future__ import annotations

from engine.errors import RiskstreamError, ServiceUnavailableError


class ServiceInstallError(RiskstreamError, RuntimeError):
    """A binary, jar or Debian package a local service needs is missing and cannot be installed."""


class ServiceStartError(ServiceUnavailableError):
    """A local service process exited or did not become ready; the message quotes its log tail."""
