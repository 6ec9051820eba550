"""``riskstream worker``: run one Faust stream worker."""

from __future__ import annotations

import typer

from engine.cli.app import app, load_settings


@app.command()
def worker(
    app_id: str = typer.Option(
        None, help="Consumer group and state prefix [env RISKSTREAM_APP_ID]."
    ),
    partitions: int = typer.Option(
        None, help="Partitions of the topics to create [env RISKSTREAM_PARTITIONS]."
    ),
    metrics_port: int = typer.Option(
        None, help="Prometheus port, 0 disables [env RISKSTREAM_METRICS_PORT]."
    ),
    loglevel: str = typer.Option("info", help="crit, error, warn, info or debug."),
) -> None:
    """Consume prices and transactions from Kafka, keep per-key risk state, write to Redis.

    Needs RISKSTREAM_KAFKA_BOOTSTRAP; RISKSTREAM_REDIS_URL is optional (without it,
    results go to the risk.updates topic only). A service that does not answer yet is
    asked again with backoff, one log line per attempt, for up to
    RISKSTREAM_STARTUP_TIMEOUT_S seconds (then exit status 3); /readyz on the metrics
    port answers 200 once the worker processes its input. Stop with Ctrl-C or SIGTERM: the batch
    in flight finishes, a checkpoint of everything processed is written, and its
    offsets are committed (a restart continues where it stopped).
    """
    from engine.logs import configure_logging
    from engine.metrics import Metrics, serve
    from engine.worker.app import RiskWorker
    from engine.worker.startup import wait_for_services

    settings = load_settings(app_id=app_id, partitions=partitions, metrics_port=metrics_port)
    configure_logging(settings)
    metrics = Metrics.from_settings(settings)
    serve(metrics, settings.operations.metrics_host, settings.operations.metrics_port)
    wait_for_services(settings, lambda service, up: metrics.service_up.labels(service).set(up))
    RiskWorker(settings, metrics).run(loglevel=loglevel)
