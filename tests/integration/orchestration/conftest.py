"""Fixtures of the orchestration integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import TopicPartition

from features.contract import ModelLifecycleEvent, parse_event
from features.contract.topics import Topics
from streaming.kafka import make_consumer

LifecycleReader = Callable[[str, Topics], list[ModelLifecycleEvent]]


def lifecycle_events(bootstrap: str, topics: Topics) -> list[ModelLifecycleEvent]:
    """Every event on the lifecycle topic, read up to its end offsets."""
    c = make_consumer(bootstrap, f"t-{uuid.uuid4().hex[:8]}")
    topic = topics.model_lifecycle
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        out: list[ModelLifecycleEvent] = []
        todo = {p for p in parts if ends[p] > 0}
        while todo:
            for m in c.consume(num_messages=100, timeout=5):
                value, part, off = m.value(), m.partition(), m.offset()
                assert m.error() is None and value is not None
                assert part is not None and off is not None
                e = parse_event(value)
                assert isinstance(e, ModelLifecycleEvent)
                out.append(e)
                if off >= ends[part] - 1:
                    todo.discard(part)
        return out
    finally:
        c.close()


@pytest.fixture
def read_lifecycle() -> LifecycleReader:
    """Reads every event on a lifecycle topic, up to its end offsets."""
    return lifecycle_events
