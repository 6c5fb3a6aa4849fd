"""Publish model lifecycle events (promoted, rejected) to `mlops.model-lifecycle`."""

from __future__ import annotations

from features.contract import ModelLifecycleEvent, encode
from features.contract.events import LifecycleAction
from features.contract.topics import MODEL_LIFECYCLE
from orchestration.defs.resources import KafkaResource


def lifecycle_event(
    name: str,
    version: str,
    action: LifecycleAction,
    *,
    reasons: list[str] | None = None,
    alias: str = "",
    previous_version: str = "",
    run_id: str = "",
    metrics: dict[str, float] | None = None,
) -> ModelLifecycleEvent:
    """A lifecycle event published by Dagster (actor `dagster`)."""
    return ModelLifecycleEvent.now(
        name,
        version,
        action,
        actor="dagster",
        reasons=reasons or (),
        alias=alias,
        previous_version=previous_version,
        run_id=run_id,
        metrics=metrics,
    )


def publish(kafka: KafkaResource, events: list[ModelLifecycleEvent]) -> None:
    """Produce the events keyed by model name and wait until the broker has them all. The topic
    is created first when missing: a dataset replayed into its own topics (`edaml replay
    --dataset`) may be the first thing a fresh deployment ever trains."""
    from streaming.kafka import ensure_topics

    ensure_topics(kafka.bootstrap_servers, kafka.topics, names=[MODEL_LIFECYCLE])
    producer = kafka.producer()
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    topic = kafka.topics.model_lifecycle
    for e in events:
        producer.produce(topic, key=e.model_name.encode(), value=encode(e), on_delivery=on_delivery)
    remaining = producer.flush(30)
    if remaining or errors:
        raise RuntimeError(f"lifecycle events not delivered to {topic}: {remaining} left, {errors}")
