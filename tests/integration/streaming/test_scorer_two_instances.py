"""Two scorer instances in one consumer group share the input partitions, and together they
score every reading exactly once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from conftest import Running, collect, docs, reading, valid_bytes

from features.contract.topics import Topics

pytestmark = pytest.mark.integration


def _send_readings(bootstrap: str, topic: str, devices: int, per_device: int) -> set[str]:
    """Produce valid readings keyed by device; return their event ids."""
    p = Producer({"bootstrap.servers": bootstrap})
    sent: set[str] = set()
    for device in range(devices):
        for i in range(per_device):
            r = reading(device, i)
            sent.add(r.event_id)
            p.produce(topic, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    return sent


def test_two_instances_in_one_group_share_partitions(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = run_scorer(topics, (good_anomaly_model,), group=group, instance_id="a")
    second = run_scorer(topics, (good_anomaly_model,), group=group, instance_id="b")

    # Both have joined (each owns partitions) before the traffic starts.
    deadline = time.monotonic() + 60
    while not (first.service._assignment and second.service._assignment):
        assert time.monotonic() < deadline, "the two instances did not both get partitions"
        time.sleep(0.1)  # polling the assignment, bounded by the deadline
    owned_a = {tp.partition for tp in first.service._assignment}
    owned_b = {tp.partition for tp in second.service._assignment}
    assert owned_a and owned_b and not owned_a & owned_b
    assert owned_a | owned_b == set(range(topics.partitions))

    sent = _send_readings(kafka_bootstrap, topics.sensor_readings, 60, 20)

    scored = collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(sent))
    ids = [d["reading_event_id"] for d in docs(scored)]
    assert sorted(ids) == sorted(sent)  # every reading once, none twice
    assert first.service.processed > 0 and second.service.processed > 0
    assert first.service.processed + second.service.processed == len(sent)
    assert first.error is None and second.error is None


def test_at_least_once_mode_scores_every_reading(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    scorer = run_scorer(topics, (good_anomaly_model,), mode="at-least-once")
    sent = _send_readings(kafka_bootstrap, topics.sensor_readings, 30, 10)

    scored = collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(sent))
    ids = {d["reading_event_id"] for d in docs(scored)}
    assert ids == sent  # none lost (without a crash, none duplicated either)
    assert len(scored) == len(sent)
    assert scorer.error is None and scorer.thread.is_alive()
