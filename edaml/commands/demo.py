"""`edaml demo`: the whole loop on this machine, from an empty Kafka to a model retrained on drift.

The story (the same every run, whatever the hour: history is anchored on whole UTC days):

1. start the stack (Kafka, MLflow, Dagster with its drift sensor and daily schedule running);
2. backfill `window + since` whole days of fleet history ending at midnight UTC; at the start
   of the last `since` days (13) a sensor firmware rolled out at one site (its vibration sensors
   report peak-to-peak instead of RMS, x2.83);
3. train v1 in Dagster on the `window` days before the rollout (the model you have been
   serving), gate it, promote it; then replay and check the days since (history only);
4. start the scorer at the live edge; it serves v1;
5. stream the whole fleet live, the same simulation going on from the history (no seam in any
   device's features): the other sites are the healthy part, whose alert rate stays low;
   the updated site's vibration is off v1's reference: the scorer's drift reports reach
   `mlops.model-monitoring`, Dagster's drift sensor launches `retrain_job` for yesterday, whose
   window now holds the new firmware's days; the gate compares v2 with v1 on the same
   hold-out and promotes v2; the scorer hot-swaps to v2 without a restart;
6. a summary: durations, alert rates per phase (the healthy sites apart), the versions served.

The live view shows throughput, lag, alerts/s (model and rules), the serving versions, and each
lifecycle, drift and Dagster event as it happens.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from edaml.services import StackError
from edaml.settings import Settings
from edaml.stack import Stack

console = Console()
err_console = Console(stderr=True)

DAY_MS = 86_400_000
#: The firmware rollout of the story: peak-to-peak instead of RMS for a sine is 2 * sqrt(2).
FIRMWARE_SENSOR = "vibration"
FIRMWARE_SCALE = 2 * math.sqrt(2)
FIRMWARE_SITE = "plant-east"


@dataclass(frozen=True, slots=True)
class Plan:
    """The demo's days and phases, derived from the UTC date only (pure)."""

    today: date
    devices: int
    interval_s: float
    window_days: int
    since_days: int
    after_s: float
    seed: int = 0

    @property
    def history_days(self) -> int:
        return self.window_days + self.since_days

    @property
    def end_ms(self) -> int:
        """Midnight UTC that started today: the end of the backfilled history."""
        return int(
            datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC).timestamp()
            * 1000
        )

    @property
    def start_ms(self) -> int:
        """The first step of the simulated history (live readings continue that simulation)."""
        return self.end_ms - self.history_days * DAY_MS

    @property
    def rollout_ms(self) -> int:
        return self.end_ms - self.since_days * DAY_MS

    def day(self, days_ago: int) -> str:
        return (self.today - timedelta(days=days_ago)).isoformat()

    @property
    def v1_range(self) -> tuple[str, str]:
        """v1's training window: the `window_days` whole days before the rollout."""
        return self.day(self.history_days), self.day(self.since_days + 1)

    @property
    def since_range(self) -> tuple[str, str]:
        """The days after v1's window, up to yesterday (replayed and checked, not trained)."""
        return self.day(self.since_days), self.day(1)

    @property
    def live_rate(self) -> float:
        """Live readings/s: each device reports at the history's cadence (features agree)."""
        return self.devices / self.interval_s

    def estimate_s(self, training_s: float) -> float:
        """Rough wall time: stack, backfill, two trainings, replay of the days since, the
        first drift reports (a window holds `DRIFT_MIN_EVENTS` readings), live after v2."""
        from streaming.serving.scoring import DRIFT_MIN_EVENTS

        rows = self.devices * self.history_days * DAY_MS / 1000 / self.interval_s
        drift_s = 2 * DRIFT_MIN_EVENTS / self.live_rate + 60
        return 90 + rows / 60_000 + 2 * training_s + 120 + drift_s + self.after_s


def plan_for(today: date, *, quick: bool, devices: int, interval_s: float) -> Plan:
    return Plan(
        today=today,
        devices=devices,
        interval_s=interval_s,
        window_days=14,
        since_days=13,
        after_s=30.0 if quick else 300.0,
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _quiet() -> None:
    """The demo's terminal shows its steps and the live view: the libraries' own INFO logs and
    download progress bars stay out of it (the servers' logs are under EDAML_HOME/logs)."""
    import logging
    import os

    for name in ("alembic", "great_expectations", "mlflow", "dagster", "streaming", "py.warnings"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _step(n: int, text: str) -> None:
    console.print(f"[bold]{n}.[/bold] {text}", highlight=False)


def _reset(settings: Settings, stack: Stack) -> list[str]:
    """Stop the stack and remove its data (Kafka log, MLflow store, Dagster instance, history)."""
    stack.down()
    removed = []
    for sub in ("kafka", "mlflow", "dagster", "data"):
        path = settings.home_abs / sub
        if path.exists():
            shutil.rmtree(path)
            removed.append(str(path))
    return removed


def _history_count(bootstrap: str, topic: str) -> int:
    from streaming.kafka import make_consumer, watermarks

    consumer = make_consumer(bootstrap, "edaml-demo-probe")
    try:
        return sum(hi for _lo, hi in watermarks(consumer, topic).values())
    finally:
        consumer.close()


def top_up_today(bootstrap: str, topics: Any, plan: Plan, firmware: Any) -> int:
    """Readings from midnight up to now, of the same simulation as the history (the devices go
    on where midnight left them): the scorer's feature windows then see no gap and no seam
    between history and live. Today is never a training day, so the whole days stay the same
    whatever the hour. Returns where the top-up ends (the live producer goes on from there)."""
    from streaming.sources.producers import backfill

    step = round(plan.interval_s * 1000)
    now_ms = int(time.time() * 1000) // step * step
    if now_ms <= plan.end_ms:
        return plan.end_ms
    backfill(
        bootstrap,
        topics,
        devices=plan.devices,
        days=(now_ms - plan.start_ms) / DAY_MS,
        interval_s=plan.interval_s,
        seed=plan.seed,
        end_ms=now_ms,
        firmware=[firmware],
        emit_from_ms=plan.end_ms,
    )
    return now_ms


def _start_at_live_edge(bootstrap: str, topic: str, group: str) -> int:
    """Commit the scorer group's offsets at the end of `topic`: the scorer scores what comes
    next (it rebuilds its feature state from the history before those offsets by itself)."""
    from confluent_kafka import TopicPartition

    from streaming.kafka import make_consumer, watermarks

    consumer = make_consumer(bootstrap, group)
    try:
        ends = watermarks(consumer, topic)
        consumer.commit(
            offsets=[TopicPartition(topic, p, hi) for p, (_lo, hi) in ends.items()],
            asynchronous=False,
        )
        return sum(hi for _lo, hi in ends.values())
    finally:
        consumer.close()


def loop_job(defs: Any) -> tuple[Any, list[Any]]:
    """The fleet's `retrain_job` in `defs` and the selection that only replays and checks
    history (its `event_history` asset)."""
    import dagster as dg

    return defs.resolve_job_def("retrain_job"), [dg.AssetKey(["iot_fleet", "event_history"])]


def _retrain(first: str, last: str, *, trigger: str, history_only: bool = False) -> Any:
    """Run Dagster's retrain_job (or only its event_history step) over [first, last]."""
    import dagster as dg

    from edaml.commands.train import RANGE_END, RANGE_START, dagster_home

    dagster_home(Settings())
    from orchestration.definitions import defs

    job, history = loop_job(defs)
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            instance=instance,
            # the run's events are on its page in the Dagster UI; the terminal shows the steps
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={RANGE_START: first, RANGE_END: last, "edaml/trigger": trigger},
            asset_selection=history if history_only else None,
            raise_on_error=False,
        )


MODELS = ("iot-anomaly", "iot-failure-risk")


def _champions(settings: Settings) -> dict[str, str | None]:
    """The version each model's @champion names in MLflow (None: no champion)."""
    import mlflow

    from streaming.registry import CHAMPION, resolve_alias

    mlflow.set_tracking_uri(settings.tracking_uri)
    return {m: resolve_alias(m, CHAMPION) for m in MODELS}


def _gate_table(result: Any) -> tuple[Table, list[str]]:
    """The gate's figures per model from the evaluation metadata, and failed check names."""
    table = Table(
        "model",
        "role",
        "pr_auc",
        "precision",
        "recall",
        "failure_recall_1h",
        "false alarms/device-day",
    )
    metrics = ("pr_auc", "precision", "recall", "failure_recall_1h", "false_alarms_per_device_day")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        entry = meta.get("evaluation")
        if not isinstance(entry, dict) or "model" not in entry:
            continue  # not a model's evaluation
        for role in ("challenger", "champion", "rules"):
            vals = [meta.get(f"{role}/{m}") for m in metrics]
            if any(v is not None for v in vals):
                table.add_row(
                    str(entry["model"]),
                    role,
                    *("-" if v is None else f"{float(v):.3f}" for v in vals),
                )
    failed = [ev.check_name for ev in result.get_asset_check_evaluations() if not ev.passed]
    return table, failed


def _wait(cond: Callable[[], bool], timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)  # polling pace of a condition with a deadline
    return cond()


@dataclass(frozen=True, slots=True)
class PhaseCounts:
    scored: int
    alerts: int
    alerts_model: int
    alerts_rules: int

    @property
    def alert_rate(self) -> float:
        return self.alerts / self.scored if self.scored else 0.0


def count_by_phase(
    scored_ts: list[int], alerts: list[tuple[int, bool]], bounds: list[int]
) -> list[PhaseCounts]:
    """Scored records and alerts (ts, fallback) per phase [bounds[i], bounds[i+1]) (pure)."""
    out = []
    for lo, hi in itertools.pairwise(bounds):
        in_alerts = [fb for ts, fb in alerts if lo <= ts < hi]
        out.append(
            PhaseCounts(
                scored=sum(1 for ts in scored_ts if lo <= ts < hi),
                alerts=len(in_alerts),
                alerts_model=sum(1 for fb in in_alerts if not fb),
                alerts_rules=sum(1 for fb in in_alerts if fb),
            )
        )
    return out


def site_devices(plan: Plan, site: str) -> set[str]:
    """The device ids of one site of the demo's fleet (the fleet depends on the seed only)."""
    from streaming.sources.sim import SimConfig, Simulator

    fleet = Simulator(SimConfig(devices=plan.devices, seed=plan.seed)).fleet
    return {d for d, s in zip(fleet.device_ids, fleet.sites, strict=True) if s == site}


def of_devices(
    scored: list[tuple[int, str]],
    alerts: list[tuple[int, bool, str]],
    devices: set[str],
    *,
    keep: bool,
) -> tuple[list[int], list[tuple[int, bool]]]:
    """Scored times and (time, fallback) of alerts of `devices` (keep) or of the others (pure)."""
    return (
        [ts for ts, d in scored if (d in devices) == keep],
        [(ts, fb) for ts, fb, d in alerts if (d in devices) == keep],
    )


def _read_outputs(
    bootstrap: str, scored: str, alerts: str
) -> tuple[list[tuple[int, str]], list[tuple[int, bool, str]]]:
    """(event time, device) of every committed scored record and (event time, fallback,
    device) of each alert."""
    import uuid

    from confluent_kafka import TopicPartition

    from streaming.kafka import make_consumer, watermarks

    consumer = make_consumer(bootstrap, f"edaml-demo-count-{uuid.uuid4().hex[:8]}")
    scored_ts: list[tuple[int, str]] = []
    alert_rows: list[tuple[int, bool, str]] = []
    try:
        for topic in (scored, alerts):
            ends = {p: hi for p, (lo, hi) in watermarks(consumer, topic).items() if hi > lo}
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            deadline = time.monotonic() + 120
            while ends and time.monotonic() < deadline:
                for msg in consumer.consume(10_000, 1.0):
                    value, part, off = msg.value(), msg.partition(), msg.offset()
                    if msg.error() is not None or value is None or part is None or off is None:
                        continue
                    d = json.loads(value)
                    if topic == scored:
                        scored_ts.append((msg.timestamp()[1], str(d.get("device_id"))))
                    else:
                        alert_rows.append(
                            (msg.timestamp()[1], bool(d.get("fallback")), str(d.get("device_id")))
                        )
                    if off + 1 >= ends.get(part, 0):
                        ends.pop(part, None)
                # a partition whose last records are transaction markers never yields them
                for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition, None)
            consumer.unassign()
    finally:
        consumer.close()
    return scored_ts, alert_rows


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Shorter live phases (same history, same models).")
    ] = False,
    devices: Annotated[int, typer.Option(min=30, help="Simulated devices.")] = 300,
    interval_s: Annotated[
        float, typer.Option(min=10, help="Seconds between a device's readings (history and live).")
    ] = 300.0,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh/--reuse",
            help="Start from an empty stack (removes the data under EDAML_HOME) or reuse it.",
        ),
    ] = True,
    timeout_min: Annotated[
        float, typer.Option(min=1, help="Give up waiting for the retrain after this long.")
    ] = 40.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the whole loop: history, v1 in Dagster, live scoring, drift, retrain, v2 hot-swapped."""
    from edaml.commands.demo_live import (
        Feed,
        on_record,
        poll_scorer,
        render,
        tail_topics,
        watch_drift_runs,
    )
    from streaming.kafka import ensure_topics
    from streaming.serving.scoring import DRIFT_MIN_EVENTS
    from streaming.sources.producers import backfill, simulate_live
    from streaming.sources.sim import Firmware

    t_start = time.monotonic()
    _quiet()
    settings = Settings()
    stack = Stack(settings)
    topics = settings.topics
    plan = plan_for(datetime.now(UTC).date(), quick=quick, devices=devices, interval_s=interval_s)
    firmware_hist = Firmware(
        "vib-p2p-3.0", FIRMWARE_SENSOR, plan.rollout_ms, scale=FIRMWARE_SCALE, site=FIRMWARE_SITE
    )
    est = plan.estimate_s(training_s=360.0)
    console.print(
        f"[bold]edaml demo[/bold]{' --quick' if quick else ''}: about {est / 60:.0f} minutes "
        f"on a 2-core machine (two Dagster trainings take most of it). {plan.devices} devices, "
        f"{plan.history_days} days of history ending {plan.day(1)}, firmware rollout at "
        f"{FIRMWARE_SITE} on {plan.since_range[0]}.",
        highlight=False,
    )
    timings: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - since, 1)
        return now

    t = time.monotonic()
    if fresh:
        removed = _reset(settings, stack)
        if removed:
            console.print(f"   fresh start: removed {', '.join(removed)}", highlight=False)
    try:
        with console.status("starting Kafka, MLflow and Dagster…"):
            stack.up()
    except StackError as exc:
        raise _fail(str(exc)) from None
    ensure_topics(settings.bootstrap, topics)
    _step(
        1,
        f"stack up, topics ready (Dagster http://{settings.host}:{settings.dagster_port}, MLflow {settings.tracking_uri})",
    )
    console.print(
        "   Dagster's drift sensor and daily schedule run by default "
        f"(http://{settings.host}:{settings.dagster_port}/automation)",
        highlight=False,
    )
    t = mark("stack", t)

    have = _history_count(settings.bootstrap, topics.sensor_readings)
    if have:
        _step(2, f"history already in Kafka: {have:,} readings (no backfill)")
    else:
        labels = settings.home_abs / "data" / "labels.csv"
        with console.status(f"backfilling {plan.history_days} days of {plan.devices} devices…"):
            stats = backfill(
                settings.bootstrap,
                topics,
                devices=plan.devices,
                days=plan.history_days,
                interval_s=plan.interval_s,
                seed=plan.seed,
                end_ms=plan.end_ms,
                labels_path=labels,
                firmware=[firmware_hist],
            )
        _step(
            2,
            f"backfilled {plan.history_days} whole days: {stats.readings:,} readings, "
            f"{stats.maintenance} maintenance events, {stats.failures} failures "
            f"({stats.rate:,.0f} readings/s)",
        )
    t = mark("backfill", t)

    first, last = plan.v1_range
    _step(
        3,
        f"training v1 on {first} .. {last} (Dagster retrain_job: replay, checks, train, gate, promote)",
    )
    with console.status("training v1…"):
        result = _retrain(first, last, trigger="demo")
    table, failed = _gate_table(result)
    console.print(table)
    champions = _champions(settings)
    if not all(champions.values()):
        raise _fail(
            f"v1 was not promoted ({champions}; run {result.run_id}, failed checks: "
            f"{', '.join(failed) or 'none'}); "
            f"see the run in Dagster at http://{settings.host}:{settings.dagster_port}"
        )
    t = mark("train_v1", t)
    s_first, s_last = plan.since_range
    with console.status(f"replaying and checking {s_first} .. {s_last}…"):
        hist = _retrain(s_first, s_last, trigger="demo", history_only=True)
    if not hist.success:
        raise _fail(f"the days {s_first} .. {s_last} did not replay (run {hist.run_id})")
    _step(4, f"days since v1's window replayed and checked: {s_first} .. {s_last}")
    t = mark("history_since", t)

    live_from = top_up_today(settings.bootstrap, topics, plan, firmware_hist)
    if live_from > plan.end_ms:
        console.print(
            f"   today so far (not a training day): {(live_from - plan.end_ms) / 3_600_000:.1f} h "
            "of readings up to now; live readings go on from there (same simulation, no seam)",
            highlight=False,
        )
    _start_at_live_edge(settings.bootstrap, topics.sensor_readings, "edaml-scorer")
    with console.status("starting the scorer…"):
        stack.up(only={"scorer"})
    feed = Feed()
    stop_view = threading.Event()
    base = f"http://{settings.host}:{settings.scorer_port}"
    threads = [
        threading.Thread(target=poll_scorer, args=(base, feed, stop_view), daemon=True),
        threading.Thread(
            target=tail_topics,
            args=(
                settings.bootstrap,
                [topics.model_lifecycle, topics.model_monitoring],
                on_record(feed),
                stop_view,
            ),
            daemon=True,
        ),
        threading.Thread(target=watch_drift_runs, args=(feed, stop_view), daemon=True),
    ]
    for th in threads:
        th.start()
    models = MODELS
    v1 = {}
    if not _wait(lambda: all(feed.serving(m) for m in models), 180):
        stop_view.set()
        raise _fail(f"the scorer did not load the champions within 3 minutes ({base}/status)")
    for m in models:
        v1[m] = feed.serving(m)
    _step(
        5,
        f"scorer serving {', '.join(f'{m} v{v}' for m, v in v1.items())} (metrics {base}/metrics)",
    )
    t = mark("scorer_start", t)

    stop_live = threading.Event()
    live_box: dict[str, Any] = {}

    def run_live() -> None:
        try:
            live_box["stats"] = simulate_live(
                settings.bootstrap,
                topics,
                devices=plan.devices,
                rate=plan.live_rate,
                seed=plan.seed,
                stop=stop_live,
                firmware=[firmware_hist],
                history_start_ms=plan.start_ms,
                emit_from_ms=live_from,
            )
        except Exception as exc:  # shown in the summary; the demo fails on it
            live_box["error"] = exc

    live = threading.Thread(target=run_live, daemon=True)
    t_live_ms = int(time.time() * 1000)
    live.start()
    promoted: dict[str, str] = {}

    after: dict[str, str | None] = {}

    def settled() -> bool:
        """The drift-triggered run has finished and the scorer serves MLflow's champions."""
        if not feed.drift_run_finished():
            return False
        after.update(_champions(settings))
        return all(feed.serving(m) == after[m] for m in models)

    try:
        with Live(
            render(feed, "edaml demo"), console=console, refresh_per_second=2, transient=False
        ) as view:

            def tick(until: Callable[[], bool], seconds: float) -> bool:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    view.update(render(feed, "edaml demo"))
                    if until() or "error" in live_box:
                        return until()
                    time.sleep(0.5)  # refresh pace of the view
                return until()

            feed.phase = (
                f"v1 serving; {FIRMWARE_SITE} on firmware vib-p2p-3.0 since "
                f"{plan.since_range[0]} (vibration x{FIRMWARE_SCALE:.2f}), after v1's window"
            )
            feed.add_event(
                f"[fleet] live: {plan.live_rate:.1f} readings/s from {plan.devices} devices; "
                f"drift reports every {DRIFT_MIN_EVENTS} scored readings"
            )
            ok = tick(settled, timeout_min * 60)
            t = mark("live_until_v2_served", t)
            t_after_ms = int(time.time() * 1000)
            if ok and any(after[m] != v1[m] for m in models):
                for m in models:
                    promoted[m] = feed.serving(m) or ""
                feed.phase = "after the swap: " + ", ".join(
                    f"{m} v{v}" for m, v in promoted.items()
                )
                tick(lambda: False, plan.after_s)
                t = mark("after", t)
            view.update(render(feed, "edaml demo"))
    finally:
        stop_live.set()
        live.join(30)
        stop_view.set()
    t_end_ms = int(time.time() * 1000)

    if "error" in live_box:
        raise _fail(f"the live producer failed: {live_box['error']}")
    if not promoted:
        raise _fail(
            f"no new version served within {timeout_min:.0f} minutes of the drift (drift runs: "
            f"{feed.drift_runs or 'none'}; champions {after or v1}); see the drift sensor at "
            f"http://{settings.host}:{settings.dagster_port}/automation and its runs"
        )
    with console.status("counting scored readings and alerts per phase…"):
        scored_ts, alerts = _read_outputs(settings.bootstrap, topics.scored, topics.alerts)
    phases = (
        "v1, healthy sites",
        f"v1, {FIRMWARE_SITE} (new firmware)",
        "v2, healthy sites",
        f"v2, {FIRMWARE_SITE} (new firmware)",
    )
    east = site_devices(plan, FIRMWARE_SITE)
    bounds = [t_live_ms, t_after_ms, t_end_ms + 60_000]
    healthy = count_by_phase(*of_devices(scored_ts, alerts, east, keep=False), bounds)
    drifted = count_by_phase(*of_devices(scored_ts, alerts, east, keep=True), bounds)
    counts = [healthy[0], drifted[0], healthy[1], drifted[1]]
    total_s = round(time.monotonic() - t_start, 1)
    summary: dict[str, Any] = {
        "seconds": total_s,
        "timings_s": timings,
        "served_before": v1,
        "served_after": promoted,
        "phases": {
            p: {**asdict(c), "alert_rate": round(c.alert_rate, 5)}
            for p, c in zip(phases, counts, strict=True)
        },
        "history_days": plan.history_days,
        "devices": plan.devices,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        tbl = Table("phase", "scored", "alerts", "of which rules", "alerts / scored")
        for p, c in zip(phases, counts, strict=True):
            tbl.add_row(
                p, f"{c.scored:,}", f"{c.alerts:,}", f"{c.alerts_rules:,}", f"{c.alert_rate:.2%}"
            )
        console.print(tbl)
        console.print(
            "served: "
            + ", ".join(f"{m} v{v1[m]} -> v{promoted[m]}" for m in models)
            + f"; total {total_s / 60:.1f} min ("
            + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
            + ")",
            highlight=False,
        )
        console.print(
            f"\nDagster UI: http://{settings.host}:{settings.dagster_port}   "
            f"MLflow UI: {settings.tracking_uri}   scorer: {base}/status\n"
            "The stack keeps running; stop it with `.venv/bin/edaml stack down`."
        )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
