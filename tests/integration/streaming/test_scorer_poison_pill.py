"""A record that breaks every transaction holding it (here: the feature code raises on it) is
isolated by bisecting the failing batch: it goes to the DLQ with the error, every other reading
is scored exactly once, and readiness recovers."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from conftest import Running, collect, docs, reading, valid_bytes

from features.contract.readings import SensorReading
from features.contract.topics import Topics
from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures
from features.spec import load_spec
from streaming.serving import ScorerService, ServeConfig

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)

pytestmark = pytest.mark.integration

POISON_DEVICE = "dev-9999"


class BrittleFeatures(RawFeatures):
    """Raw features with a bug one device's readings trigger."""

    def update(self, reading: SensorReading) -> Any:
        if reading.device_id == POISON_DEVICE:
            raise ValueError(f"feature bug on {reading.device_id}")
        return super().update(reading)


def _headers(m: Message) -> dict[str, str]:
    raw: Any = m.headers() or []
    return {k: v.decode() for k, v in raw if isinstance(v, bytes)}


def test_a_poison_pill_is_bisected_out_and_the_rest_is_scored(
    kafka_bootstrap: str, topics: Topics, good_anomaly_model: str
) -> None:
    cfg = ServeConfig(
        bootstrap=kafka_bootstrap,
        topics=topics,
        models=(good_anomaly_model,),
        group=f"g-{uuid.uuid4().hex[:8]}",
        metrics_port=None,
        alias_poll_s=1.0,
        batch_size=500,
    )
    scorer = Running(
        ScorerService(
            cfg,
            features=(
                partial(BrittleFeatures, FLEET.sensor_names),
                RAW_FEATURE_SET_VERSION,
                FLEET.sensor_names,
            ),
        )
    )
    scorer.thread.start()
    try:
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        sent: set[str] = set()
        poison = reading(9999, 0)
        for i in range(600):
            if i == 300:
                p.produce(topics.sensor_readings, key="k", value=valid_bytes(poison))
            r = reading(i % 40, i)
            sent.add(r.event_id)
            p.produce(topics.sensor_readings, key="k", value=valid_bytes(r))  # one partition
        assert p.flush(30) == 0

        scored = collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(sent), 90)
        dlq = collect(kafka_bootstrap, topics.dlq, lambda ms: len(ms) >= 1, 10)
        ids = [d["reading_event_id"] for d in docs(scored)]
        assert sorted(ids) == sorted(sent)  # each once
        assert len(dlq) == 1
        h = _headers(dlq[0])
        assert h["edaml.error.stage"] == "poison"
        assert h["edaml.error.exception.class"] == "ValueError"
        assert "feature bug on dev-9999" in h["edaml.error.reason"]
        svc = scorer.service
        deadline = time.monotonic() + 30
        while svc.status()["health"]["not_ready_reason"]:
            assert time.monotonic() < deadline, svc.status()["health"]
            time.sleep(0.1)  # polling readiness, bounded by the deadline
        assert scorer.error is None and scorer.thread.is_alive()
    finally:
        scorer.stop()
