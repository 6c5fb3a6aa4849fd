"""Reading a test topic back in full (shared by the events integration tests)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Message, TopicPartition
from confluent_kafka.admin import AdminClient

from streaming.kafka import make_consumer


def record_count(bootstrap: str, topic: str) -> int:
    """Records in a topic: the sum of its partitions' high watermarks (nothing is compacted)."""
    consumer = make_consumer(bootstrap, f"count-{uuid.uuid4().hex}")
    try:
        meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
        total = 0
        for p in meta.topics[topic].partitions:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += hi - lo
        return total
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Message]:
    """Consume `expected` records from the start; stop at that count (or fail at the deadline)."""
    consumer = make_consumer(bootstrap, f"read-{uuid.uuid4().hex}")
    consumer.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for m in consumer.consume(10_000, timeout=0.5):
                if m.error() is None:
                    out.append(m)
        return out
    finally:
        consumer.close()
