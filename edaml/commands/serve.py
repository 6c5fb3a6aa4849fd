"""`edaml serve`: run the streaming scorer (see streaming/serving/).

One scorer process serves one dataset (`--dataset`, default the fleet): its spec gives the
contract, the feature set, the fallback limits, the topics (`topic_prefix`) and the model
names. Several datasets: one `edaml serve --dataset NAME` each (own consumer group per dataset
by default, so they scale and fail independently). The event-time policy (future skew, past
horizon) is the spec's `event_time` unless the options override it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from types import FrameType

    from streaming.serving import ScorerService

# mlflow, confluent-kafka and the scorer are imported inside `serve`: every other `edaml`
# command would otherwise pay their import time (10+ s) just to start.

log = logging.getLogger(__name__)


def serve(
    dataset: Annotated[
        str, typer.Option(help="Dataset to serve: a name under datasets/ or a spec path")
    ] = "iot-fleet",
    mode: Annotated[
        str, typer.Option(help="exactly-once (transactions) or at-least-once")
    ] = "exactly-once",
    group: Annotated[
        str | None,
        typer.Option(
            help="Consumer group; instances in one group share partitions "
            "(default: edaml-scorer, edaml-scorer-<dataset> for other datasets)"
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated registered model names (default: the dataset's)"),
    ] = None,
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
        float | None,
        typer.Option(
            help="Readings further ahead of the clock go to the DLQ (default: the spec's "
            "event_time.future_skew)"
        ),
    ] = None,
    past_horizon_s: Annotated[
        float | None,
        typer.Option(
            help="Readings further behind their partition's newest event time go to the DLQ "
            "(0: no limit; history replays are relative to their own time; default: the "
            "spec's event_time.past_horizon)"
        ),
    ] = None,
    shutdown_timeout_s: Annotated[
        float, typer.Option(help="SIGTERM ends the process within this many seconds")
    ] = 10.0,
    feature_set: Annotated[
        str | None,
        typer.Option(
            help="online (the dataset's windowed features) or raw (sensor values only); "
            "default: raw when the spec's anomaly model takes raw input, else online"
        ),
    ] = None,
    alias_poll_s: Annotated[float, typer.Option(help="Seconds between MLflow alias polls")] = 3.0,
    report_interval_s: Annotated[
        float, typer.Option(help="Seconds between drift/shadow reports")
    ] = 30.0,
    workers: Annotated[
        int,
        typer.Option(
            help="Scorer processes on this machine, all in the consumer group, each with its "
            "own instance id (<instance-id>-<k>: its own transactional id) and metrics port "
            "(--metrics-port + k); more than the input's partitions leaves some idle"
        ),
    ] = 1,
) -> None:
    """Score the sensor stream with each model's champion; hot-swap on promotion."""
    from edaml.commands.events import fail, spec_or_fail

    if workers < 1:
        fail("--workers must be >= 1")
    if workers > 1:
        raise typer.Exit(run_workers(worker_commands(sys.argv, workers, instance_id, metrics_port)))
    if mode not in ("exactly-once", "at-least-once"):
        fail("--mode must be exactly-once or at-least-once")
    if feature_set not in (None, "online", "raw"):
        fail("--feature-set must be online or raw")
    if (future_skew_s is not None and future_skew_s <= 0) or shutdown_timeout_s <= 0:
        fail("--future-skew-s and --shutdown-timeout-s must be > 0")
    if past_horizon_s is not None and past_horizon_s < 0:
        fail("--past-horizon-s must be >= 0 (0: no limit)")
    spec = spec_or_fail(dataset)  # a bad spec: one line per problem, nothing starts
    et = spec.event_time
    future_skew_ms = et.future_skew_ms if future_skew_s is None else int(future_skew_s * 1000)
    if past_horizon_s is None:
        past_horizon_ms = et.past_horizon_ms
    else:
        past_horizon_ms = int(past_horizon_s * 1000) if past_horizon_s > 0 else None

    import mlflow

    from edaml.settings import Settings
    from streaming.kafka import KafkaAccessError, check_access, ensure_topics
    from streaming.serving import ScorerService, ServeConfig, feature_source

    settings = Settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    # The model watcher retries an unreachable registry with its own backoff: MLflow's client
    # would otherwise retry one request for minutes before the watcher hears of it.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    topics = spec.topics(settings.topic_prefix, settings.partitions)
    if group is None:
        group = "edaml-scorer" if spec.name == "iot-fleet" else f"edaml-scorer-{spec.name}"
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
        dataset=spec,
        models=tuple(m.strip() for m in models.split(",") if m.strip()) if models else (),
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
        future_skew_ms=future_skew_ms,
        past_horizon_ms=past_horizon_ms,
        shutdown_timeout_s=shutdown_timeout_s,
    )
    if feature_set is None:
        feature_set = "raw" if spec.models.anomaly.input == "raw" else "online"
    service = ScorerService(cfg, features=feature_source(feature_set, spec))

    _stop_on_signals(service, shutdown_timeout_s)
    service.run()
    if service.fenced:
        log.info("exiting: fenced by a newer instance with the same id")


def worker_commands(
    argv: list[str], workers: int, instance_id: str | None, metrics_port: int
) -> list[list[str]]:
    """The command line of each of `workers` scorer processes: this one's arguments with one
    worker, instance id `<id>-<k>` (default id: the host's, as `default_instance_id`) and
    metrics port `metrics_port + k` (0: any free port, -1: off, for all)."""
    from streaming.serving.config import default_instance_id

    base = instance_id or default_instance_id()
    drop = {"--workers", "--instance-id", "--metrics-port"}
    rest: list[str] = []
    skip = False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in drop:
            skip = "=" not in a
            continue
        rest.append(a)
    cmds = []
    for k in range(workers):
        port = metrics_port + k if metrics_port > 0 else metrics_port
        cmds.append(
            [sys.executable, "-c", "from edaml.cli import main; main()", *rest, "--workers", "1",
             "--instance-id", f"{base}-{k}", "--metrics-port", str(port)]
        )  # fmt: skip
    return cmds


def run_workers(cmds: list[list[str]]) -> int:
    """Start every worker, pass SIGTERM/SIGINT on to them, wait for all; the exit code is the
    first non-zero one of theirs (0 when every worker stopped cleanly)."""
    procs = [subprocess.Popen(c) for c in cmds]

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


def _stop_on_signals(service: ScorerService, timeout_s: float) -> None:
    """SIGTERM and SIGINT stop the service within `timeout_s`, even while the main thread is
    blocked inside librdkafka (a transactional call waits up to 30 s for a broker that is gone).

    Python runs signal handlers on the main thread only between bytecodes, so a handler alone
    would start the shutdown clock only after that call returns. The wakeup fd is written by the
    C-level handler the moment the signal arrives; a thread waiting on it starts the stop."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def _noop(_signum: int, _frame: FrameType | None) -> None:
        """The Python-level handler: the stop itself starts on the wakeup thread."""

    def _wait_for_signal() -> None:
        signum = os.read(read_fd, 1)[0]
        log.info("signal %d: stopping (at most %.0fs)", signum, timeout_s)
        service.stop(hard_exit_after_s=timeout_s)

    signal.signal(signal.SIGTERM, _noop)
    signal.signal(signal.SIGINT, _noop)
    threading.Thread(target=_wait_for_signal, name="stop-on-signal", daemon=True).start()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
