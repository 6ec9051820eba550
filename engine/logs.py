"""Logging: text or JSON lines, with secrets scrubbed from every record.

:func:`configure_logging` installs one handler on the root logger and a log-record
factory that replaces every configured secret (Kafka SASL password, Redis password,
the password inside ``RISKSTREAM_REDIS_URL``) with ``*****`` in the message and the
exception text *when the record is created*. Scrubbing at creation means no handler,
ours or one a library installs later (faust's worker configures its own), can see the
secret.
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlsplit

import orjson

from engine.config import Settings

REDACTED = "*****"


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold (never empty strings)."""
    found: list[str] = []
    for secret in (settings.kafka.sasl_password, settings.redis.password):
        if secret is not None:
            found.append(secret.get_secret_value())
    if settings.redis.url is not None:
        password = urlsplit(settings.redis.url.get_secret_value()).password
        if password:
            found.append(password)
    return [s for s in found if s]


class RedactingRecordFactory:
    """A log-record factory that scrubs known secret values from every record it creates."""

    def __init__(self, secrets: list[str], inner: object = None) -> None:
        self.secrets = sorted(set(secrets), key=len, reverse=True)
        self.inner = inner or logging.getLogRecordFactory()
        while isinstance(
            self.inner, RedactingRecordFactory
        ):  # re-configuring: wrap the original once
            self.inner = self.inner.inner

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __call__(self, *args: object, **kwargs: object) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)  # type: ignore[operator]
        if self.secrets:
            try:
                message = record.getMessage()
            except Exception:  # a malformed call still must not leak: keep the raw text
                message = f"{record.msg} {record.args}"
            record.msg = self.scrub(message)
            # (), not None: faust's formatter (mode's ExtensionFormatter) turns None into
            # (None,), and "%"-formatting the finished message with it fails.
            record.args = ()
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return record


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return orjson.dumps(doc).decode()


def json_formatter() -> JsonFormatter:
    """A :class:`JsonFormatter` with UTC timestamps (a ``logging.config`` factory)."""
    formatter = JsonFormatter()
    formatter.converter = __import__("time").gmtime
    return formatter


def worker_logging_config(settings: Settings, level: int | str) -> dict[str, Any] | None:
    """The ``logging.config`` dictionary for faust's worker, or ``None`` for its default.

    faust's worker replaces the root logger's handlers when it starts; with
    ``RISKSTREAM_LOG_FORMAT=json`` this configuration makes it install a JSON-lines
    handler instead of its coloured text one. Secrets stay scrubbed either way (the
    record factory of :func:`configure_logging` is not touched).
    """
    if settings.operations.log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "engine.logs.json_formatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def configure_logging(settings: Settings, stream: object = None) -> logging.Handler:
    """Route all logging through one scrubbing handler in the configured format."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    if settings.operations.log_format == "json":
        formatter: logging.Formatter = json_formatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    logging.setLogRecordFactory(RedactingRecordFactory(secrets_of(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.operations.log_level)
    return handler
