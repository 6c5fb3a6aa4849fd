"""`edaml train`: queue the dataset's retrain job on the Dagster instance and follow it.

The run goes through the same queue as the daily schedule and the drift sensor (submitted to
the Dagster webserver of the local stack, started by the daemon), so the instance's limits
apply to it too: one retrain run per dataset at a time, the others wait in the queue.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edaml.settings import Settings

console = Console()
err = Console(stderr=True)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
LOCATION = "edaml"
REPOSITORY = "__repository__"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

EVENTS_QUERY = """
query RunEvents($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on AssetCheckEvaluationEvent {
          evaluation { checkName success severity description assetKey { path } }
        }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on JsonMetadataEntry { jsonString }
            ... on TextMetadataEntry { text }
            ... on IntMetadataEntry { intValue }
            ... on FloatMetadataEntry { floatValue }
          }
        }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
      }
    }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""


def dagster_home(settings: Settings) -> str:
    """Give in-process runs the environment the stack gives its Dagster daemon (DAGSTER_HOME,
    KAFKA_BOOTSTRAP_SERVERS, MLFLOW_TRACKING_URI, EDAML_HOME; what is already set wins): the
    code location's resources read it, and the runs show in the Dagster UI."""
    from edaml.stack import _dagster_env

    for key, value in _dagster_env(settings).items():
        os.environ.setdefault(key, value)
    return os.environ["DAGSTER_HOME"]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def partition_range(
    days: int | None, end: str | None, span: tuple[str, str] | None, today: date
) -> tuple[str, str]:
    """First and last daily partition to replay and train on.

    No dates: every complete day with data (`span` = first and last event days), the last
    partition being yesterday at the latest. `--days N`: N days ending at `--end` (default: the
    last day with data, or yesterday)."""
    if days is not None and days < 1:
        raise typer.BadParameter("--days must be at least 1")
    yesterday = today - timedelta(days=1)
    last_data = min(date.fromisoformat(span[1]), yesterday) if span else yesterday
    try:
        last = date.fromisoformat(end) if end else last_data
    except ValueError as exc:
        raise typer.BadParameter(f"--end {end!r}: expected YYYY-MM-DD") from exc
    if last > yesterday:
        raise typer.BadParameter(
            f"--end {last}: only complete days train; yesterday is {yesterday}"
        )
    if days is not None:
        return (last - timedelta(days=days - 1)).isoformat(), last.isoformat()
    if span is None:
        raise typer.BadParameter("no events in the dataset's topic: replay some first")
    first = date.fromisoformat(span[0])
    if first > last:
        raise typer.BadParameter(f"no complete day with data yet (first event on {first})")
    return first.isoformat(), last.isoformat()


def run_overrides(
    *,
    holdout: float | None,
    holdout_days: int | None,
    alert_rate: float | None,
    model_kind: str | None,
) -> dict[str, object]:
    """The run's `RetrainConfig` from the options given (a bad value: a one-line error)."""
    from features.ml.detectors import ANOMALY_KINDS

    if holdout is not None and not 0.0 < holdout < 1.0:
        raise typer.BadParameter(f"--holdout {holdout}: a share in (0, 1), e.g. 0.2")
    if holdout_days is not None and holdout_days < 1:
        raise typer.BadParameter(f"--holdout-days {holdout_days}: at least 1")
    if alert_rate is not None and not 0.0 < alert_rate < 0.5:
        raise typer.BadParameter(f"--alert-rate {alert_rate}: a share in (0, 0.5), e.g. 0.01")
    if model_kind is not None and model_kind not in ("auto", *ANOMALY_KINDS):
        raise typer.BadParameter(
            f"--model-kind {model_kind!r}: use auto or one of {', '.join(ANOMALY_KINDS)}"
        )
    given = {
        "holdout": holdout,
        "holdout_days": holdout_days,
        "alert_rate": alert_rate,
        "anomaly_kind": model_kind,
    }
    return {k: v for k, v in given.items() if v is not None}


def topic_span(settings: Settings, topic: str) -> tuple[str, str] | None:
    import uuid

    from orchestration.defs.history.partitions import topic_time_span
    from streaming.kafka import make_consumer

    consumer = make_consumer(settings.bootstrap, f"edaml-train-{uuid.uuid4().hex[:8]}")
    try:
        span = topic_time_span(consumer, topic, timeout=20.0)
    finally:
        consumer.close()
    return (span.first_day, span.last_day) if span else None


def run_events(client: Any, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        data = client._execute(EVENTS_QUERY, {"runId": run_id, "after": after})["logsForRun"]
        if data["__typename"] != "EventConnection":
            raise RuntimeError(data.get("message", data["__typename"]))
        events += data["events"]
        after = data["cursor"]
        if not data["hasMore"]:
            return events


def _value(entry: dict[str, Any]) -> Any:
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    for k in ("text", "intValue", "floatValue"):
        if k in entry:
            return entry[k]
    return None


def report(events: list[dict[str, Any]]) -> None:
    """The checks (failing ones with their day, figure, expected range and next step), the days
    training skipped, and the promotion, from the run's event log."""
    table = Table("asset", "check", "result")
    problems: list[str] = []
    for ev in events:
        if ev["__typename"] != "AssetCheckEvaluationEvent":
            continue
        e = ev["evaluation"]
        if e["success"]:
            verdict = "[green]passed[/green]"
        elif e["severity"] == "WARN":
            verdict = "[yellow]warning[/yellow]"
        else:
            verdict = "[red]failed[/red]"
        table.add_row("/".join(e["assetKey"]["path"]), e["checkName"], verdict)
        if not e["success"] and e.get("description"):
            problems += [f"{e['checkName']}: {line}" for line in e["description"].splitlines()]
    console.print(table)
    for line in problems:
        console.print(line, markup=False, highlight=False)
    for ev in events:
        if ev["__typename"] == "MaterializationEvent":
            meta = {m["label"]: _value(m) for m in ev["metadataEntries"]}
            asset = "/".join(ev["assetKey"]["path"])
            for day, why in sorted((meta.get("days_skipped") or {}).items()):
                console.print(f"{asset}: {day} skipped: {why}", markup=False, highlight=False)
            for day, note in sorted((meta.get("day_notes") or {}).items()):
                console.print(f"{asset}: {day}: {note}", markup=False, highlight=False)
            if asset.endswith("champion") and meta:
                console.print(f"{asset}: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
        elif ev["__typename"] == "ExecutionStepFailureEvent":
            msg = (ev.get("error") or {}).get("message", "").strip().splitlines()
            console.print(f"step {ev['stepKey']} failed: {msg[0] if msg else ''}", markup=False)


def train(
    dataset: Annotated[str, typer.Option(help="Dataset name (datasets/NAME.yaml).")] = "iot-fleet",
    days: Annotated[
        int | None,
        typer.Option(help="Train on this many days ending at --end; default: every complete day."),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day (YYYY-MM-DD); default: the last day with data.")
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(help="Share of the window held out for the gate (spec: models.holdout)."),
    ] = None,
    holdout_days: Annotated[
        int | None, typer.Option(help="Hold out the latest N whole days instead of a share.")
    ] = None,
    alert_rate: Annotated[
        float | None,
        typer.Option(help="Anomaly threshold's alert rate (spec: models.target_alert_rate)."),
    ] = None,
    model_kind: Annotated[
        str | None,
        typer.Option(
            help="Anomaly model kind: auto, isolation_forest, pca, robust_z "
            "(spec: models.anomaly.kind)."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run until it ends.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 3600.0,
) -> None:
    """Replay the days from Kafka, check them, train, gate and promote: a run of the dataset's
    retrain job, queued on the Dagster instance like the schedule's and the sensor's. Options
    left out keep the dataset spec's values."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    from features.spec import SpecError, load_spec
    from orchestration.defs.training.plan import plan_from_spec

    settings = Settings()
    try:
        spec = load_spec(dataset)
    except SpecError as exc:
        raise fail(str(exc), 2) from None
    overrides = run_overrides(
        holdout=holdout, holdout_days=holdout_days, alert_rate=alert_rate, model_kind=model_kind
    )
    topic = spec.topics(settings.topic_prefix, settings.partitions).sensor_readings
    span = None if (days is not None and end is not None) else topic_span(settings, topic)
    first, last = partition_range(days, end, span, datetime.now(UTC).date())
    plan = plan_from_spec(spec)
    job = plan.job_name
    url = f"http://{settings.host}:{settings.dagster_port}"
    # Reloading the code location reads the topics and imports the models: minutes on a busy
    # machine.
    client = DagsterGraphQLClient(settings.host, port_number=settings.dagster_port, timeout=600)
    try:
        # The partitions start on the first event's day, read when the code location loads:
        # reload it, so days replayed since it last loaded (an earlier era) are partitions.
        reloaded = client.reload_repository_location(LOCATION)
        if reloaded.status.value != "SUCCESS":
            raise fail(f"the Dagster code location did not load: {reloaded.message}")
        run_id = client.submit_job_execution(
            job,
            repository_location_name=LOCATION,
            repository_name=REPOSITORY,
            tags={RANGE_START: first, RANGE_END: last, "edaml/trigger": "cli"},
            run_config=(
                {"ops": {f"{plan.ident}__feature_table": {"config": overrides}}}
                if overrides
                else None
            ),
        )
    except DagsterGraphQLClientError as exc:
        raise fail(
            f"could not queue {job} on Dagster at {url}: {exc}; is the stack up (edaml stack up)?"
        ) from None
    console.print(f"{job} over {first} .. {last}: run {run_id} queued ({url}/runs/{run_id})")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    status, shown = "QUEUED", ""
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status != shown:
            console.print(f"run {run_id}: {status.lower()}")
            shown = status
        if status in TERMINAL:
            break
        time.sleep(2.0)  # polling the run's status, with a deadline
    else:
        raise fail(
            f"run {run_id} still {status.lower()} after {timeout:.0f}s; see {url}/runs/{run_id}"
        )
    report(run_events(client, run_id))
    if status != "SUCCESS":
        raise fail(f"run {run_id}: {status.lower()} ({url}/runs/{run_id})")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
