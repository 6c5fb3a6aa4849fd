"""`edaml demo`: the whole loop on this machine, from an empty Kafka to live alerts.

1. start the stack (Kafka, MLflow, Dagster) and create the topics;
2. backfill simulated fleet history into Kafka (skipped when history is already there);
3. run the Dagster retrain job: replay, validate, features, train, evaluate, gate, promote;
4. start the scorer (`edaml serve`) in the background; it loads the promoted champions;
5. stream live readings for a while and report what the scorer produced.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edaml.services import StackError
from edaml.settings import Settings
from edaml.stack import Stack

console = Console()


def _history_count(bootstrap: str, topic: str) -> int:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    from streaming.kafka import make_consumer

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    consumer = make_consumer(bootstrap, "edaml-demo-probe")
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.topics[topic].partitions
        )
    finally:
        consumer.close()


def _count_committed(
    bootstrap: str, topic: str, *, seconds: float = 10.0
) -> tuple[int, list[bytes]]:
    """Records a read_committed reader sees in `topic` (read from the start), and a few samples."""
    import uuid

    from streaming.kafka import make_consumer

    consumer = make_consumer(bootstrap, f"edaml-demo-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    count = 0
    samples: list[bytes] = []
    deadline = time.monotonic() + seconds
    idle = 0
    try:
        while time.monotonic() < deadline and idle < 3:
            batch = consumer.consume(5000, 1.0)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error() is None:
                    count += 1
                    value = msg.value()
                    if value is not None and len(samples) < 3:
                        samples.append(value)
    finally:
        consumer.close()
    return count, samples


def demo(
    devices: Annotated[int, typer.Option(min=1, help="Simulated devices.")] = 300,
    days: Annotated[int, typer.Option(min=2, help="Days of history to backfill and train on.")] = 7,
    interval_s: Annotated[
        float, typer.Option(min=1, help="Seconds between a device's readings in history.")
    ] = 300.0,
    live_seconds: Annotated[
        float, typer.Option(min=0, help="Seconds of live traffic to score.")
    ] = 60.0,
    rate: Annotated[float, typer.Option(min=1, help="Live readings per second.")] = 500.0,
) -> None:
    """Run the whole loop: stack, history, training and promotion, live scoring."""
    from edaml.commands.train import train
    from streaming.kafka import ensure_topics
    from streaming.producers import backfill, simulate_live

    settings = Settings()
    stack = Stack(settings)
    try:
        with console.status("starting Kafka, MLflow and Dagster…"):
            stack.up()
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    topics = settings.topics
    ensure_topics(settings.bootstrap, topics)
    console.print(f"[bold]1.[/bold] stack up, topics ready (prefix {topics.prefix!r})")

    have = _history_count(settings.bootstrap, topics.sensor_readings)
    if have:
        console.print(f"[bold]2.[/bold] history already in Kafka: {have:,} readings (no backfill)")
    else:
        labels = settings.home_abs / "data" / "labels.csv"
        labels.parent.mkdir(parents=True, exist_ok=True)
        with console.status(f"backfilling {days + 1} days of {devices} devices…"):
            stats = backfill(
                settings.bootstrap,
                topics,
                devices=devices,
                days=days + 1,
                interval_s=interval_s,
                labels_path=labels,
            )
        console.print(
            f"[bold]2.[/bold] backfilled {stats.readings:,} readings, {stats.maintenance} "
            f"maintenance events, {stats.failures} failures ({stats.rate:,.0f} readings/s)"
        )

    console.print(
        f"[bold]3.[/bold] training over the last {days} complete days (Dagster retrain_job)"
    )
    try:
        train(days=days, end=None)
    except typer.Exit as exc:
        if exc.exit_code:
            console.print(
                "[yellow]training did not promote a model; the scorer uses rule fallback[/yellow]"
            )

    with console.status("starting the scorer…"):
        stack.up(only={"scorer"})
    console.print(
        f"[bold]4.[/bold] scorer serving (metrics on http://{settings.host}:{settings.scorer_port}/metrics)"
    )

    if live_seconds > 0:
        with console.status(f"streaming {rate:.0f} readings/s for {live_seconds:.0f}s…"):
            live = simulate_live(
                settings.bootstrap,
                topics,
                devices=devices,
                rate=rate,
                duration_s=live_seconds,
                seed=1,
            )
        console.print(f"[bold]5.[/bold] produced {live.readings:,} live readings")

    table = Table("topic", "records (read_committed)")
    for name in (
        topics.scored,
        topics.alerts,
        topics.dlq,
        topics.model_lifecycle,
        topics.model_monitoring,
    ):
        n, _ = _count_committed(settings.bootstrap, name)
        table.add_row(name, f"{n:,}")
    console.print(table)
    _, alerts = _count_committed(settings.bootstrap, topics.alerts, seconds=5)
    for raw in alerts:
        console.print(raw.decode(errors="replace")[:400], highlight=False, soft_wrap=True)
    console.print(
        f"\nDagster UI: http://{settings.host}:{settings.dagster_port}   "
        f"MLflow UI: {settings.tracking_uri}   scorer: http://{settings.host}:{settings.scorer_port}/status\n"
        "The stack keeps running; stop it with `.venv/bin/edaml stack down`."
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
