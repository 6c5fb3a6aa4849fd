"""What `edaml demo` shows while the loop runs: a poller of the scorer's /status and /metrics,
a tail of the lifecycle and monitoring topics and of Dagster's drift-triggered runs, and the
rich view built from them. Pure parts (`parse_metrics`, `Feed.event_lines`, `render`) are
unit-tested; the I/O is one thread per source.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

#: Counters of the scorer's /metrics the view follows (sums over their labels).
EVENTS_IN = "edaml_scorer_events_in_total"
ALERTS = "edaml_scorer_alerts_total"
LAG = "edaml_scorer_consumer_lag"


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> {metric: {labels-string: value}} (comments and _created skipped)."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        if name.endswith("_created"):
            continue
        try:
            out.setdefault(name, {})[labels.rstrip("}")] = float(value)
        except ValueError:
            continue
    return out


def total(metrics: dict[str, dict[str, float]], name: str, contains: str = "") -> float:
    return sum(v for k, v in metrics.get(name, {}).items() if contains in k)


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll of the scorer: cumulative counters and the serving versions."""

    t: float
    events_in: float
    alerts_model: float
    alerts_rules: float
    lag: float
    champions: dict[str, str | None]
    ready: bool


@dataclass
class Feed:
    """Everything the view shows, filled by the pollers (thread-safe by one lock)."""

    started: float = field(default_factory=time.monotonic)
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=600))
    events: list[tuple[float, str]] = field(default_factory=list)
    phase: str = "starting"
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    #: Dagster runs the drift sensor launched: run id -> status (QUEUED, STARTED, SUCCESS, ...)
    drift_runs: dict[str, str] = field(default_factory=dict)

    def drift_run_finished(self) -> bool:
        with self.lock:
            return any(s in ("SUCCESS", "FAILURE", "CANCELED") for s in self.drift_runs.values())

    def add_event(self, text: str) -> None:
        with self.lock:
            self.events.append((time.monotonic() - self.started, text))

    def add_sample(self, s: Sample) -> None:
        """Add a poll; a model whose serving version changed since the last one is an event."""
        with self.lock:
            prev = self.samples[-1].champions if self.samples else {}
            self.samples.append(s)
        for name, version in sorted(s.champions.items()):
            if prev and version and prev.get(name) != version:
                was = f"v{prev[name]}" if prev.get(name) else "rules"
                self.add_event(f"[scorer] {name}: now serving v{version} (was {was}), no restart")

    def rates(self, seconds: float = 5.0) -> tuple[float, float, float]:
        """Readings/s, model alerts/s and rule alerts/s over the last `seconds`."""
        with self.lock:
            if len(self.samples) < 2:
                return 0.0, 0.0, 0.0
            last = self.samples[-1]
            first = next((s for s in self.samples if last.t - s.t <= seconds), self.samples[0])
            if first is last:
                first = self.samples[-2]
        dt = max(last.t - first.t, 1e-9)
        return (
            (last.events_in - first.events_in) / dt,
            (last.alerts_model - first.alerts_model) / dt,
            (last.alerts_rules - first.alerts_rules) / dt,
        )

    def latest(self) -> Sample | None:
        with self.lock:
            return self.samples[-1] if self.samples else None

    def serving(self, model: str) -> str | None:
        s = self.latest()
        return s.champions.get(model) if s else None


def render(feed: Feed, title: str, last_events: int = 12) -> RenderableType:
    """The live view: one status table and the latest lifecycle / drift / run events."""
    s = feed.latest()
    readings, model_alerts, rule_alerts = feed.rates()
    table = Table(title=title, show_header=False, expand=False, min_width=60)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("phase", feed.phase)
    table.add_row("elapsed", f"{time.monotonic() - feed.started:,.0f} s")
    table.add_row("scored readings/s", f"{readings:,.0f}")
    table.add_row("alerts/s (model | rules)", f"{model_alerts:,.1f} | {rule_alerts:,.1f}")
    if s is not None:
        table.add_row("consumer lag", f"{s.lag:,.0f} records")
        table.add_row("readings scored", f"{s.events_in:,.0f}")
        for name, version in sorted(s.champions.items()):
            table.add_row(f"serving {name}", f"v{version}" if version else "rules (no model)")
    with feed.lock:
        events = feed.events[-last_events:]
    lines = Text()
    for t, text in events:
        lines.append(f"{t:6.0f}s  ", style="dim")
        lines.append(text + "\n")
    return Group(table, Text("events", style="bold underline"), lines)


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def poll_scorer(base_url: str, feed: Feed, stop: threading.Event, every: float = 1.0) -> None:
    """Sample /status and /metrics until `stop` (an unreachable scorer is noted, not fatal)."""
    while not stop.is_set():
        try:
            status = json.loads(_get(f"{base_url}/status"))
            m = parse_metrics(_get(f"{base_url}/metrics").decode())
            feed.add_sample(
                Sample(
                    t=time.monotonic(),
                    events_in=total(m, EVENTS_IN),
                    alerts_model=total(m, ALERTS, 'fallback="false"'),
                    alerts_rules=total(m, ALERTS, 'fallback="true"'),
                    lag=total(m, LAG),
                    champions={
                        n: (str(v["champion"]) if v.get("champion") else None)
                        for n, v in status.get("models", {}).items()
                    },
                    ready=bool(status.get("ready")),
                )
            )
        except (OSError, ValueError) as exc:
            with feed.lock:
                feed.errors.append(f"scorer: {exc}")
        stop.wait(every)


def on_record(feed: Feed) -> Callable[[bytes], None]:
    """A `tail_topics` callback adding each lifecycle or drift event to `feed`."""

    def add(raw: bytes) -> None:
        line = describe_event(raw)
        if line is not None:
            feed.add_event(line)

    return add


def describe_event(raw: bytes) -> str | None:
    """One line for a lifecycle event or a drifted report; None for anything else."""
    try:
        d: dict[str, Any] = json.loads(raw)
    except ValueError:
        return None
    schema = str(d.get("schema", ""))
    if schema.startswith("mlops.model_lifecycle"):
        why = "; ".join(d.get("reasons") or [])
        prev = f" (was v{d['previous_version']})" if d.get("previous_version") else ""
        return f"[lifecycle] {d.get('model_name')} v{d.get('version')} {d.get('action')}{prev}" + (
            f": {why}" if why else ""
        )
    if schema.startswith("mlops.drift_report") and d.get("drifted"):
        worst = sorted(
            (f for f in d.get("features", []) if f.get("drifted")),
            key=lambda f: -float(f.get("value", 0.0)),
        )[:3]
        figures = ", ".join(f"{f['feature']} PSI {float(f['value']):.2f}" for f in worst)
        return f"[drift] {d.get('model_name')} v{d.get('model_version')}: {figures}"
    return None


def tail_topics(
    bootstrap: str,
    topics: list[str],
    on_event: Callable[[bytes], None],
    stop: threading.Event,
) -> None:
    """Call `on_event` for every record of `topics` written after this starts."""
    from confluent_kafka import OFFSET_END, TopicPartition

    from streaming.kafka import make_consumer, retry_leaderless

    consumer = make_consumer(bootstrap, f"edaml-demo-view-{uuid.uuid4().hex[:8]}")
    try:
        parts = []
        for topic in topics:
            meta = retry_leaderless(partial(consumer.list_topics, topic, timeout=10))
            parts += [TopicPartition(topic, p, OFFSET_END) for p in meta.topics[topic].partitions]
        consumer.assign(parts)
        while not stop.is_set():
            for msg in consumer.consume(500, 0.5):
                value = msg.value()
                if msg.error() is None and value is not None:
                    on_event(value)
    finally:
        consumer.close()


def watch_drift_runs(feed: Feed, stop: threading.Event, every: float = 2.0) -> None:
    """Report each Dagster run the drift sensor launched, and how it ends."""
    import dagster as dg

    seen: dict[str, str] = {}
    with dg.DagsterInstance.get() as instance:
        while not stop.is_set():
            try:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(tags={"edaml/trigger": "drift"}), limit=10
                )
            except Exception as exc:  # a busy sqlite storage: try again next tick
                with feed.lock:
                    feed.errors.append(f"dagster: {exc}")
                runs = []
            for run in runs:
                status = run.status.value
                if seen.get(run.run_id) != status:
                    seen[run.run_id] = status
                    with feed.lock:
                        feed.drift_runs[run.run_id] = status
                    feed.add_event(
                        f"[dagster] retrain_job run {run.run_id[:8]} "
                        f"(partition {run.tags.get('dagster/partition', '?')}, trigger drift): "
                        f"{status.lower()}"
                    )
            stop.wait(every)
