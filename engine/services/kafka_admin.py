"""Small kafka-python admin helpers for local brokers: readiness, topics, partition leaders.

These talk PLAINTEXT to ``bootstrap`` (the local services' client listener) and always
close their client. Leadership is read from fresh metadata on every call, so after a
broker is killed the answer changes as soon as the controller has moved leadership.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from engine.errors import ServiceUnavailableError

T = TypeVar("T")


def _admin_class() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    return KafkaAdminClient


def _release_partial(admin: Any) -> None:
    """Undo what a ``KafkaAdminClient.__init__`` that raised had already started."""
    for owner, method in (("_metrics", "close"), ("_client", "close"), ("_net", "stop")):
        part = getattr(admin, owner, None)
        if part is not None:
            with contextlib.suppress(Exception):
                getattr(part, method)()


@contextlib.contextmanager
def admin_client(
    bootstrap: str,
    *,
    timeout_ms: int = 5_000,
    client_id: str = "riskstream-services",
    **config: Any,
) -> Iterator[Any]:
    """A connected ``kafka.KafkaAdminClient``, closed on exit; ``config`` adds client settings (security).

    ``kafka.errors.KafkaError`` (e.g. ``KafkaTimeoutError: Unable to bootstrap``)
    propagates when nothing answers within ``timeout_ms``. Also in that case nothing is
    left behind: kafka-python 3.0 starts its IO thread and connections before it
    bootstraps and, when bootstrapping fails in the constructor, never stops them (one
    leaked thread and socket per failed readiness probe); they are stopped here.
    """
    cls = _admin_class()
    admin = cls.__new__(cls)
    try:
        admin.__init__(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 3_000),
            **config,
        )
    except BaseException:
        _release_partial(admin)
        raise
    try:
        yield admin
    finally:
        admin.close()


def broker_ids(bootstrap: str, *, timeout_ms: int = 5_000) -> set[int]:
    """Node ids of the live, unfenced brokers in the cluster's current metadata."""
    with admin_client(bootstrap, timeout_ms=timeout_ms) as admin:
        admin.list_topics()
        cluster = admin.describe_cluster()
    return {int(b["broker_id"]) for b in cluster["brokers"]}


def transient_topic_error(exc: BaseException) -> bool:
    """Whether a topic-creation error may go away by itself while a cluster starts or fails over.

    The controller moved, the client does not know a broker yet, or fewer brokers have
    registered than the replication factor asks for (a node still starting; a registered
    node that is fenced still gets replicas): retry these. Others (invalid config,
    authorization) will not change by waiting.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.errors import InvalidReplicationFactorError, KafkaError, UnknownBrokerIdError

    if isinstance(exc, UnknownBrokerIdError | InvalidReplicationFactorError):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


def retry_transient(
    attempt: Callable[[], T],
    *,
    timeout: float,
    on_retry: Callable[[BaseException], None] = lambda exc: None,
) -> T:
    """``attempt()``, asked again every 0.25 s while it fails with a
    :func:`transient_topic_error`, for up to ``timeout`` seconds; then its last error is
    raised. Any other error is raised at once. ``on_retry`` sees each error retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not transient_topic_error(exc) or time.monotonic() >= deadline:
                raise
            on_retry(exc)
        time.sleep(0.25)


def create_topic(
    bootstrap: str,
    name: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create ``name`` (an existing topic is fine) and wait until every partition has a leader.

    Errors that are transient while a cluster starts or fails over (the controller moved,
    a broker is not yet in the client's metadata or not yet registered) are retried until
    ``timeout``; the last one is raised then. Other errors are raised at once.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

    topic = NewTopic(name, partitions, replication_factor, topic_configs=dict(config or {}))
    deadline = time.monotonic() + timeout

    def attempt() -> None:
        with admin_client(bootstrap) as admin, contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([topic], timeout_ms=int(timeout * 1000))

    retry_transient(attempt, timeout=timeout)
    for partition in range(partitions):
        wait_for_leader(bootstrap, name, partition, timeout=max(1.0, deadline - time.monotonic()))


class SingleBrokerTopics:
    """:meth:`create_topic` for a handle of one Kafka broker reached at its ``bootstrap``.

    The native broker (:class:`engine.services.kafka.KafkaBroker`) and the container
    (:class:`engine.services.containers.DockerKafka`) both inherit it; each defines
    ``bootstrap`` itself.
    """

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the broker's client listener (defined by the handle)."""
        raise NotImplementedError

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Create a topic (existing is fine) and wait until all its partitions have leaders."""
        create_topic(
            self.bootstrap,
            name,
            partitions=partitions,
            replication_factor=replication_factor,
            config=config,
            timeout=timeout,
        )


def partition_state(bootstrap: str, topic: str, partition: int = 0) -> dict[str, Any] | None:
    """Metadata of one partition, ``None`` if unknown.

    Keys as kafka-python 3 reports them: ``partition_index``, ``leader_id`` (-1: none),
    ``leader_epoch``, ``replica_nodes``, ``isr_nodes``, ``offline_replicas``, ``error_code``.
    """
    with admin_client(bootstrap) as admin:
        topics = admin.describe_topics([topic])
    for meta in topics:
        if meta.get("name") != topic:
            continue
        for part in meta.get("partitions", []):
            if int(part["partition_index"]) == partition:
                return dict(part)
    return None


def wait_for_partition(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    *,
    until: Callable[[dict[str, Any]], bool] = lambda state: True,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Poll :func:`partition_state` until it is known and ``until(state)`` holds; return it.

    Metadata reaches the brokers of a cluster asynchronously, so right after a change one
    broker may not know yet what another already reports. Raises
    :class:`~engine.errors.ServiceUnavailableError` after ``timeout`` seconds.
    """
    state = _poll(
        lambda: partition_state(bootstrap, topic, partition),
        lambda state: state is not None and until(state),
        timeout=timeout,
        failure=f"{topic}-{partition} did not reach the expected state within {timeout:.0f} s",
    )
    assert state is not None
    return state


def partition_leader(bootstrap: str, topic: str, partition: int = 0) -> int | None:
    """Node id of the partition's leader now, or ``None`` when it has none (or is unknown)."""
    state = partition_state(bootstrap, topic, partition)
    if state is None:
        return None
    leader = int(state["leader_id"])
    return leader if leader >= 0 else None


def wait_for_leader(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    *,
    exclude: set[int] | frozenset[int] = frozenset(),
    timeout: float = 30.0,
) -> int:
    """Poll until the partition has a leader not in ``exclude``; return its node id.

    Raises :class:`~engine.errors.ServiceUnavailableError` after ``timeout`` seconds.
    """
    leader = _poll(
        lambda: partition_leader(bootstrap, topic, partition),
        lambda leader: leader is not None and leader not in exclude,
        timeout=timeout,
        failure=f"{topic}-{partition} has no leader outside {sorted(exclude)} after "
        f"{timeout:.0f} s",
    )
    assert leader is not None
    return leader


def _poll(read: Callable[[], T], done: Callable[[T], bool], *, timeout: float, failure: str) -> T:
    """Call ``read`` every 0.25 s until ``done`` holds for its answer; return that answer.

    An exception from ``read`` (a broker going away mid-request) is an answer that is not
    done. After ``timeout`` seconds: :class:`~engine.errors.ServiceUnavailableError`
    with ``failure`` and the last answer.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            answer = read()
            last = answer
            if done(answer):
                return answer
        except Exception as exc:  # brokers going away mid-request: keep polling
            last = exc
        if time.monotonic() >= deadline:
            raise ServiceUnavailableError(f"{failure} (last answer: {last!r})")
        time.sleep(0.25)
