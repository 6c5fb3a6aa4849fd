"""The broker we run supports exactly-once: aborted records are never read, committed ones all are."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import TopicPartition

from streaming.kafka import create_topic, make_consumer, make_producer

pytestmark = pytest.mark.integration


def _drain(
    bootstrap: str, topic: str, partitions: int, *, isolation: str, at_least: int
) -> list[bytes]:
    """Read from the start until `at_least` records have come and the position has reached
    every partition's end offset: whatever else is visible up to there is returned too."""
    consumer = make_consumer(bootstrap, f"g-{uuid.uuid4().hex}", **{"isolation.level": isolation})
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
        consumer.assign(tps)
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        # Transaction markers take offsets too, and a reader never receives them: a partition
        # is drained once the consumer's position reaches its end offset.
        while len(values) < at_least or not all(
            tp.offset >= ends[tp.partition] for tp in consumer.position(tps)
        ):
            assert time.monotonic() < deadline, "records missing before the end offsets"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value())
        return values
    finally:
        consumer.close()


def test_aborted_records_are_never_seen_committed_ones_all_are(kafka_bootstrap: str) -> None:
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, topic, partitions=2)
    producer = make_producer(kafka_bootstrap, **{"transactional.id": f"tx-{uuid.uuid4().hex}"})
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(500):
        producer.produce(topic, key=str(i % 7), value=f"aborted-{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    for i in range(1000):
        producer.produce(topic, key=str(i % 7), value=f"committed-{i}".encode())
    producer.commit_transaction(30)

    seen = _drain(kafka_bootstrap, topic, 2, isolation="read_committed", at_least=1000)
    assert sorted(seen) == sorted(f"committed-{i}".encode() for i in range(1000))

    # The aborted records are in the log: a read_uncommitted reader sees them, which shows
    # the committed reader's filter is what hid them.
    raw = _drain(kafka_bootstrap, topic, 2, isolation="read_uncommitted", at_least=1500)
    assert sum(v.startswith(b"aborted-") for v in raw) == 500
