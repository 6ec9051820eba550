"""The worker's one start-up policy for the services it needs: Kafka and Redis alike.

Before a worker builds its app, it asks each configured service in turn whether it
answers (Kafka: the topics exist or are created; Redis: ``PING``):

* a service that does not answer is asked again with exponential backoff (1 s, 2 s,
  4 s ... at most 15 s apart), with one WARNING line per attempt naming the service, its
  address, the error and the next delay; no client library tracebacks;
* ``riskstream_service_up{service}`` is 0 meanwhile and ``/readyz`` answers 503 (the
  metrics endpoint is up from the first attempt on);
* when it answers, one INFO line says after how many attempts and seconds;
* after ``RISKSTREAM_STARTUP_TIMEOUT_S`` (default 60; 0 tries once) the worker gives up
  with one line, ``riskstream: error: ...``, and exit status 3;
* refused credentials are a configuration error at once (exit status 2): waiting
  cannot fix them.

Once running, the same gauge follows Redis (the sink retries every write until Redis
is back, and logs when it is; :mod:`engine.sinks.redis`), and Kafka's clients
reconnect by themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from engine.config import Settings, redact_url
from engine.errors import ConfigError, ServiceUnavailableError

log = logging.getLogger(__name__)

Probe = Callable[[], object]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between attempts: ``first_s``, then times ``factor``, at most ``max_s``."""

    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 15.0

    def delays(self) -> Iterator[float]:
        """The delay after each failed attempt, without end.

        >>> from itertools import islice
        >>> list(islice(Backoff(1.0, 2.0, 5.0).delays(), 5))
        [1.0, 2.0, 4.0, 5.0, 5.0]
        """
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


def wait_for(
    service: str,
    address: str,
    probe: Probe,
    *,
    timeout_s: float,
    backoff: Backoff = Backoff(),
    on_state: Callable[[bool], None] = lambda up: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``probe`` until it returns, as the module docstring says.

    ``probe`` raises :class:`ServiceUnavailableError` while the service is missing; any
    other exception (a :class:`ConfigError` for refused credentials) ends the wait at
    once. ``on_state(up)`` follows every attempt. Raises :class:`ServiceUnavailableError`
    after ``timeout_s`` seconds.
    """
    started = clock()
    for attempt, delay in enumerate(backoff.delays(), start=1):
        try:
            probe()
        except ServiceUnavailableError as exc:
            on_state(False)
            waited = clock() - started
            left = timeout_s - waited
            if left <= 0:
                raise ServiceUnavailableError(
                    f"{exc} (gave up after {attempt} attempt{'s' * (attempt > 1)} in "
                    f"{waited:.0f} s; RISKSTREAM_STARTUP_TIMEOUT_S={timeout_s:g})"
                ) from None
            pause = min(delay, left)
            log.warning(
                "%s at %s is not available (attempt %d): %s; next attempt in %.0f s",
                service,
                address,
                attempt,
                exc,
                pause,
            )
            sleep(pause)
        else:
            on_state(True)
            if attempt > 1:
                log.info(
                    "%s at %s is available after %d attempts (%.1f s)",
                    service,
                    address,
                    attempt,
                    clock() - started,
                )
            return


class _NoKafkaClientWarnings(logging.Filter):
    """Drops the Kafka client's own warnings and errors (each refused connection, at
    length); its INFO lines (e.g. which SASL user authenticated) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("kafka") and record.levelno >= logging.WARNING)


@contextmanager
def _quiet_kafka_clients() -> Iterator[None]:
    """kafka-python logs every refused connection: the attempt's one line says it instead."""
    handlers = list(logging.getLogger().handlers)
    quiet = _NoKafkaClientWarnings()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def kafka_probe(settings: Settings) -> Probe:
    """Kafka answers and the topics exist (created if missing: :func:`engine.kafka.topics.ensure_topics`)."""
    from engine.kafka.topics import ensure_topics

    def probe() -> object:
        with _quiet_kafka_clients():
            return ensure_topics(settings)

    return probe


def redis_probe(settings: Settings) -> Probe:
    """Redis answers ``PING`` with the configured URL, credentials and TLS options."""
    from redis.exceptions import AuthenticationError, AuthorizationError, RedisError

    from engine.sinks.redis import sync_client_from_settings

    def probe() -> object:
        client = sync_client_from_settings(settings)
        try:
            return client.ping()
        except (AuthenticationError, AuthorizationError) as exc:
            raise ConfigError(f"Redis refused the credentials: {exc}") from None
        except (RedisError, OSError) as exc:
            raise ServiceUnavailableError(f"Redis is unreachable: {exc}") from None
        finally:
            client.close()

    return probe


def wait_for_services(settings: Settings, on_state: Callable[[str, bool], None]) -> None:
    """Wait for Kafka, then for Redis when ``RISKSTREAM_REDIS_URL`` is set (module docstring)."""
    timeout = settings.topology.startup_timeout_s
    wait_for(
        "Kafka",
        settings.kafka.bootstrap or "",
        kafka_probe(settings),
        timeout_s=timeout,
        on_state=lambda up: on_state("kafka", up),
    )
    if settings.redis.dsn is not None:
        wait_for(
            "Redis",
            redact_url(settings.redis.dsn),
            redis_probe(settings),
            timeout_s=timeout,
            on_state=lambda up: on_state("redis", up),
        )
