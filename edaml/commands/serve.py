"""`edaml serve`: run the streaming scorer (see streaming/serving/)."""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from types import FrameType

# mlflow, confluent-kafka and the scorer are imported inside `serve`: every other `edaml`
# command would otherwise pay their import time (10+ s) just to start.

log = logging.getLogger(__name__)


def serve(
    mode: Annotated[
        str, typer.Option(help="exactly-once (transactions) or at-least-once")
    ] = "exactly-once",
    group: Annotated[
        str, typer.Option(help="Consumer group; instances in one group share partitions")
    ] = "edaml-scorer",
    models: Annotated[
        str, typer.Option(help="Comma-separated registered model names")
    ] = "iot-anomaly,iot-failure-risk",
    shadow: Annotated[
        bool, typer.Option("--shadow/--no-shadow", help="Also score the challenger")
    ] = True,
    metrics_port: Annotated[
        int,
        typer.Option(
            help="Port of /metrics, /healthz, /readyz, /status (0: any free port, -1: off)"
        ),
    ] = 8000,
    batch_size: Annotated[int, typer.Option(help="Most records per micro-batch")] = 2000,
    commit_interval_ms: Annotated[
        int, typer.Option(help="Commit a transaction at least this often")
    ] = 200,
    commit_records: Annotated[
        int, typer.Option(help="...or after this many input records")
    ] = 20_000,
    instance_id: Annotated[
        str | None,
        typer.Option(
            help="Stable id (transactional.id suffix; default: EDAML_INSTANCE_ID, POD_NAME, "
            "HOSTNAME or the host name): a restarted instance fences its predecessor at once"
        ),
    ] = None,
    future_skew_s: Annotated[
        float, typer.Option(help="Readings further ahead of the clock go to the DLQ")
    ] = 3600.0,
    past_horizon_s: Annotated[
        float,
        typer.Option(
            help="Readings further behind their partition's newest event time go to the DLQ "
            "(0: no limit; history replays are relative to their own time)"
        ),
    ] = 7 * 86400.0,
    shutdown_timeout_s: Annotated[
        float, typer.Option(help="SIGTERM ends the process within this many seconds")
    ] = 10.0,
    feature_set: Annotated[
        str, typer.Option(help="online (the platform's feature set) or raw (sensor values only)")
    ] = "online",
    alias_poll_s: Annotated[float, typer.Option(help="Seconds between MLflow alias polls")] = 3.0,
    report_interval_s: Annotated[
        float, typer.Option(help="Seconds between drift/shadow reports")
    ] = 30.0,
) -> None:
    """Score the sensor stream with each model's champion; hot-swap on promotion."""
    import mlflow

    from edaml.settings import Settings
    from streaming.kafka import KafkaAccessError, check_access, ensure_topics
    from streaming.serving import ScorerService, ServeConfig, feature_source

    if mode not in ("exactly-once", "at-least-once"):
        raise typer.BadParameter("--mode must be exactly-once or at-least-once")
    if future_skew_s <= 0 or past_horizon_s < 0 or shutdown_timeout_s <= 0:
        raise typer.BadParameter(
            "--future-skew-s and --shutdown-timeout-s must be > 0, --past-horizon-s >= 0"
        )
    settings = Settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    # The model watcher retries an unreachable registry with its own backoff: MLflow's client
    # would otherwise retry one request for minutes before the watcher hears of it.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    topics = settings.topics
    try:
        check_access(settings.bootstrap)
    except KafkaAccessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    ensure_topics(settings.bootstrap, topics)
    cfg = ServeConfig(
        bootstrap=settings.bootstrap,
        topics=topics,
        group=group,
        models=tuple(m.strip() for m in models.split(",") if m.strip()),
        mode=mode,  # type: ignore[arg-type]
        shadow=shadow,
        instance_id=instance_id,
        batch_size=batch_size,
        commit_interval_ms=commit_interval_ms,
        commit_records=commit_records,
        alias_poll_s=alias_poll_s,
        report_interval_s=report_interval_s,
        metrics_host=settings.host,
        metrics_port=None if metrics_port < 0 else metrics_port,
        future_skew_ms=int(future_skew_s * 1000),
        past_horizon_ms=int(past_horizon_s * 1000) if past_horizon_s > 0 else None,
        shutdown_timeout_s=shutdown_timeout_s,
    )
    service = ScorerService(cfg, features=feature_source(feature_set))

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping (at most %.0fs)", signum, shutdown_timeout_s)
        service.stop(hard_exit_after_s=shutdown_timeout_s)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.run()
    if service.fenced:
        log.info("exiting: fenced by a newer instance with the same id")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
