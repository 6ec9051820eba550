"""The Faust worker: ``prices`` and ``transactions`` in, Redis and ``risk.updates`` out.

One :class:`RiskWorker` is one faust app instance (one member of the consumer group
``RISKSTREAM_APP_ID``). Scale by running more workers: partitions of the input topics
are shared among them, and each key's state (a row in a Faust table whose changelog
is partitioned like the input) moves with its partition. Each topic has exactly one
processing task per worker (agent concurrency 1: faust-streaming 0.15 loses or
duplicates messages with concurrency > 1).

The web server of faust is disabled; the only listener is the Prometheus endpoint,
bound to ``RISKSTREAM_METRICS_HOST`` (127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import aclosing
from functools import partial
from pathlib import Path
from typing import Any

import faust
from faust.tables import TableManager

from engine.config import Settings
from engine.core.volatility.fitting import PoolFitter
from engine.errors import ConfigError, ServiceUnavailableError
from engine.explain.service import ExplanationService, explanation_service
from engine.gctune import tune_for_streaming
from engine.kafka.clients import faust_broker_options
from engine.kafka.topics import PRICES, TRANSACTIONS
from engine.metrics import Metrics, instrument_stages
from engine.pipeline import PricePipeline, TransactionPipeline
from engine.sinks.redis import RedisSink
from engine.worker.batching import BatchChannel, BatchingConsumer, BatchingTransport, Chunk
from engine.worker.processors import PriceProcessor, TopicProcessor, TransactionProcessor
from engine.worker.writer import OrderedWriter, OutputJob

log = logging.getLogger(__name__)

#: Seconds between refreshes of the consumer lag from the broker's end offsets.
LAG_INTERVAL_S = 5.0


class RiskTableManager(TableManager):
    """faust's table manager without its one-second pause before the tables start.

    faust sleeps a second at start so that agents defined later can still register
    tables. A :class:`RiskWorker` registers both of its tables in its constructor, before
    the app starts, so the pause only delayed every start and every restart (between
    "Waiting for tables to be registered" and "Table: prices-state: Starting").
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class RiskApp(faust.App):
    """A faust app whose consumer delivers whole fetches of batch topics (see :mod:`.batching`)."""

    batch_channels: dict[str, BatchChannel]
    batch_settle: Callable[[], Awaitable[None]]
    #: Kafka's ``fetch.max.wait.ms`` for the consumer (``RISKSTREAM_FETCH_MAX_WAIT_MS``).
    fetch_max_wait_ms: int | None = None
    #: Static group membership (``RISKSTREAM_GROUP_INSTANCE_ID``, :mod:`.membership`).
    group_instance_id: str | None = None

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> RiskApp:
    """The faust app with riskstream's settings: loopback only, at-least-once, memory tables."""
    datadir = Path(settings.operations.data_dir)
    datadir.mkdir(parents=True, exist_ok=True)
    app = RiskApp(
        settings.topology.app_id,
        **faust_broker_options(settings),
        store="memory://",
        TableManager=RiskTableManager,
        datadir=str(datadir),
        web_enabled=False,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        topic_partitions=settings.topology.partitions,
        topic_replication_factor=settings.topology.replication_factor,
        topic_allow_declare=True,
        # No standby replicas: the memory store drops a standby partition's rows at the end of
        # every recovery, so standbys only lengthen recovery, and faust 0.15.3 crashes when a
        # rebalance lands while it seeks them (``ValueError: Offset must be a positive integer``).
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.stream.batch_max,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka.session_timeout_s / 3),
        stream_wait_empty=True,
        producer_linger_ms=0,  # micro-batches are already batched (writer.py)
        # Outputs go out as one aiokafka batch per partition per micro-batch (writer.py).
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=1024 * 1024,
    )
    app.fetch_max_wait_ms = settings.stream.fetch_max_wait_ms
    app.group_instance_id = settings.topology.group_instance_id
    return app


class RiskWorker:
    """A riskstream worker process: faust app, state tables, one processing task per topic."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics.from_settings(settings)
        self.app = create_app(settings)
        # Keys are str (JSON on the changelog), rows are opaque bytes (raw on the changelog).
        table_options = {
            "partitions": settings.topology.partitions,
            "key_type": str,
            "value_type": bytes,
        }
        self.price_table = self.app.Table("prices-state", **table_options)
        self.customer_table = self.app.Table("transactions-state", **table_options)
        self.fitter = PoolFitter(
            settings.risk.fit_workers,
            timeout_s=settings.risk.fit_timeout_ms / 1000.0,
            defer=settings.risk.late_fits == "defer",
        )
        self.price_pipeline = PricePipeline.from_settings(settings, fitter=self.fitter)
        self.transaction_pipeline = TransactionPipeline.from_settings(settings)
        for stage in self.transaction_pipeline.stages:
            if hasattr(stage, "bind_metrics"):
                stage.bind_metrics(self.metrics.registry)
        for pipeline in (self.price_pipeline, self.transaction_pipeline):
            instrument_stages(pipeline, self.metrics)
        self.metrics.describe(self.price_pipeline, self.transaction_pipeline)
        self.explanations: ExplanationService | None = None
        #: The explainers being built beside the group join (:meth:`prepare`).
        self.explainers: Future[ExplanationService | None] | None = None
        self.app.batch_channels = {
            topic: BatchChannel(
                self.app,
                topic,
                fetched_latency=self.metrics.event_latency.labels(topic, "fetched"),
            )
            for topic in (PRICES, TRANSACTIONS)
        }
        for name in (PRICES, TRANSACTIONS):
            self.app.topics.add(self.app.topic(name, key_serializer="raw", value_serializer="raw"))
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.task(self._run)
        self.app.timer(LAG_INTERVAL_S)(self._refresh_lag)
        self.sink: RedisSink | None = None
        #: Per topic, its processor and the writer of its jobs (set when processing starts).
        self.stages: list[tuple[TopicProcessor, OrderedWriter]] = []
        self.app.batch_settle = self._settle
        self.metrics.build.info(
            {
                "version": _version(),
                "price_model": self.price_pipeline.book.model_name,
                "price_model_version": self.price_pipeline.book.model_version,
            }
        )

    @property
    def consumer(self) -> BatchingConsumer:
        return self.app.consumer  # type: ignore[return-value]

    async def _on_revoked(self, app: faust.App, revoked: Any, **kwargs: Any) -> None:
        """Partitions moved: drop queued chunks and in-memory state.

        Runs after the consumer waited for the batch in flight, checkpointed what was
        processed (:meth:`_settle`) and committed. Dropped chunks are re-read from
        committed offsets when the rebalance ends; state reloads lazily from the tables,
        which hold the checkpoint.
        """
        dropped = sum(channel.clear() for channel in self.app.batch_channels.values())
        self.price_pipeline.book.clear()
        self.transaction_pipeline.book.clear()
        for processor, _ in self.stages:
            processor.reset()
        self.metrics.forget_partitions(revoked)
        log.info(
            "partitions revoked (%d): %d queued chunks dropped, books cleared",
            len(revoked),
            dropped,
        )

    async def _refresh_lag(self, *_: Any) -> None:
        """``riskstream_consumer_lag_records`` from the broker's end offsets (also while stalled)."""
        try:
            lags = await self.consumer.lag((PRICES, TRANSACTIONS))
        except Exception as exc:  # monitoring must never stop the worker
            log.debug("consumer lag not refreshed: %s", exc)
            return
        for tp, lag in lags.items():
            self.metrics.record_lag(tp.topic, tp.partition, lag)

    async def _open_sink(self) -> RedisSink | None:
        if self.settings.redis.dsn is None:
            log.warning("RISKSTREAM_REDIS_URL is not set: results go to Kafka (risk.updates) only")
            return None
        sink = RedisSink.from_settings(self.settings, self.metrics)
        try:
            await sink.check()
        except ServiceUnavailableError as exc:
            log.warning("%s; writes will retry until it is back", exc)
        return sink

    async def _run(self) -> None:
        """Per topic: a processing loop and an ordered writer. An unexpected error crashes the worker."""
        try:
            self.prepare()  # done already when started through run()
            assert self.explainers is not None
            # Built in their thread while faust started and joined the group; no batch is
            # processed before they are there, so every alert is published explained.
            self.explanations = await asyncio.wrap_future(self.explainers)
            self.sink = await self._open_sink()
            if self.explanations is not None:
                await self.explanations.publish_importance()
            tune_for_streaming()
            writers = {
                topic: OrderedWriter(self.app, self.consumer, self.sink, self.metrics, topic)
                for topic in (PRICES, TRANSACTIONS)
            }
            dlq = {topic: await writers[topic].partitions(f"{topic}.dlq") for topic in writers}
            checkpoint_s = self.settings.stream.checkpoint_ms / 1000.0
            prices = PriceProcessor(
                self.price_pipeline,
                table=self.price_table,
                metrics=self.metrics,
                dlq_partitions=dlq[PRICES],
                checkpoint_s=checkpoint_s,
            )
            transactions = TransactionProcessor(
                self.transaction_pipeline,
                table=self.customer_table,
                metrics=self.metrics,
                dlq_partitions=dlq[TRANSACTIONS],
                checkpoint_s=checkpoint_s,
            )
            self.stages = [(prices, writers[PRICES]), (transactions, writers[TRANSACTIONS])]
            self.metrics.ready.set(1)
            await asyncio.gather(
                writers[PRICES].run(),
                writers[TRANSACTIONS].run(),
                self._loop(self.app.batch_channels[PRICES], prices, writers[PRICES]),
                self._loop(
                    self.app.batch_channels[TRANSACTIONS], transactions, writers[TRANSACTIONS]
                ),
            )
        except ConfigError as exc:
            log.error("%s", exc)
            await self.app.crash(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.stages and self.app.should_stop and not self.app.crashed:
                # A stop (SIGTERM) that came during start-up stops the producer and the
                # consumer under this task: nothing was processed, so it is a clean stop.
                log.info("stopped during start-up, before any batch was processed (%r)", exc)
                return
            log.exception("processing failed; stopping the worker so no batch is skipped")
            await self.app.crash(exc)
        finally:
            self.metrics.ready.set(0)

    async def _settle(self) -> None:
        """A stop or a rebalance is about to commit (``BatchingConsumer.wait_empty``):
        checkpoint everything processed, due or not, so nothing needs replaying after it,
        then wait until every job is written and acked.

        No checkpoint once the app crashed (a processing failure may leave half a batch
        in the books: the last checkpoint stays the truth, as after a kill) or for a
        writer that is not running.
        """
        for processor, writer in self.stages:
            if writer.running and not self.app.crashed:
                await writer.submit(processor.checkpoint_now)
        for _, writer in self.stages:
            await writer.drained()

    async def _loop(
        self, channel: BatchChannel, processor: TopicProcessor, writer: OrderedWriter
    ) -> None:
        settings = self.settings
        within = settings.stream.batch_within_ms / 1000.0
        # When the input goes quiet, the last checkpoint is written after at most about
        # two intervals (so offsets are committed and a restart replays nothing).
        quiet = max(settings.stream.checkpoint_ms / 1000.0, within)

        def build(batch: list[Chunk]) -> OutputJob | None:
            job = processor.handle(batch)
            if job is not None and self.explanations is not None and job.alerts:
                # SHAP starts now, in the background; only the writer waits for it.
                job.alerts_ready = self.explanations.start(job.alerts)
            return job

        # Closed on the way out, also when building a batch raises: until the generator
        # is closed the channel stays busy, and a crashed worker's stop (wait_empty)
        # would wait for it forever.
        async with aclosing(channel.take(settings.stream.batch_max, within, quiet)) as batches:
            async for batch in batches:
                await writer.submit(partial(build, batch))

    def prepare(self) -> None:
        """Start-up work, done once: compile the risk core's kernels before the worker joins
        its consumer group (:mod:`.warmup`), and start building the explainers.

        Compiled lazily, the kernels held the event loop for 30-50 s after partitions had
        been assigned on a fresh install, so they are ready before faust starts. The fit
        pool's process is started then too (:meth:`PoolFitter.start`), without waiting.

        Building the SHAP explainers (shap's import, every tree of the credit model) is
        about a second of CPU with no waiting in it. It runs in its own thread
        (:attr:`explainers`) while faust starts, joins the group and seeks, which is
        mostly waiting on the broker, and the processing task waits for it before its
        first batch: a restarted worker gets back to its partitions that second sooner.
        """
        if self.explainers is not None:
            return
        from engine.worker.warmup import warm_up

        warm_up(self.settings)
        self.fitter.start()
        stages = [*self.price_pipeline.stages, *self.transaction_pipeline.stages]
        self.explainers = _in_thread(
            "explainers", explanation_service, self.settings, stages, self.metrics.registry
        )

    def run(self, loglevel: str = "info") -> None:
        """Run until SIGTERM/SIGINT; finishes the batch in flight and commits before exiting."""
        from mode.utils.logging import level_number

        from engine.logs import worker_logging_config

        self.prepare()

        worker = faust.Worker(
            self.app,
            loglevel=loglevel,
            quiet=True,
            redirect_stdouts=False,
            logging_config=worker_logging_config(self.settings, level_number(loglevel)),
        )
        worker.execute_from_commandline()


def _in_thread(name: str, fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """``fn(*args)`` in a daemon thread; its result (or exception) in the returned future."""
    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever awaits the future
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _version() -> str:
    from engine import __version__

    return __version__
