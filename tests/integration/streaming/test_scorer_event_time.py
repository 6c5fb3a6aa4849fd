"""Event-time policy: a reading from year 9999 once stalled the scorer for good (its event time
became the output record's timestamp, the broker refused it, the transaction aborted, the batch
came again). Now it goes to the DLQ with its reason, the readings after it are scored within
seconds, outputs carry processing time as record timestamp, and a replay of old history is
scored like live data."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, Producer
from conftest import Running, collect, docs, reading, valid_bytes

from features.contract.fields import parse_ts
from features.contract.topics import Topics

pytestmark = pytest.mark.integration

YEAR_9999 = "9999-12-31T23:59:59.000Z"


def _headers(m: Message) -> dict[str, str]:
    raw: Any = m.headers() or []
    return {k: v.decode() for k, v in raw if isinstance(v, bytes)}


def _at(device: int, i: int, ts: str) -> bytes:
    doc = orjson.loads(valid_bytes(reading(device, i)))
    doc["ts"] = ts
    return orjson.dumps(doc)


def test_far_future_reading_goes_to_dlq_and_the_rest_is_scored(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    scorer = run_scorer(topics, (good_anomaly_model,))
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    # one partition (one key) so the poison comes first for every later reading
    p.produce(topics.sensor_readings, key="dev-0001", value=_at(1, 0, YEAR_9999))
    p.produce(topics.sensor_readings, key="dev-0001", value=_at(1, 1, "1990-01-01T00:00:00.000Z"))
    sent: set[str] = set()
    for i in range(57):
        r = reading(1, 10 + i)
        sent.add(r.event_id)
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    produced_at = time.time()

    scored = collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(sent), timeout=30)
    dlq = collect(kafka_bootstrap, topics.dlq, lambda ms: len(ms) >= 2, timeout=10)

    assert {d["reading_event_id"] for d in docs(scored)} == sent
    assert {_headers(m)["edaml.error.stage"] for m in dlq} == {"event-time"}
    reasons = [_headers(m)["edaml.error.reason"] for m in dlq]
    assert any("9999-12-31" in r and "ahead of the scorer's clock" in r for r in reasons)
    assert any("1990-01-01" in r and "behind the newest event time" in r for r in reasons)
    # record timestamps are processing time; the payload keeps the event time
    for m in scored:
        assert abs(m.timestamp()[1] / 1000 - produced_at) < 120
    assert scorer.error is None and scorer.thread.is_alive()
    assert scorer.service.status()["ready"]


def test_a_replay_of_old_history_is_scored(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    """Readings of 2014 (as NAB replays them), in order: none is too old for its partition."""
    run_scorer(topics, (good_anomaly_model,))
    start = parse_ts("2014-02-14T14:30:00.000Z")
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    sent: dict[str, int] = {}
    for i in range(200):
        r = dataclasses.replace(reading(i % 5, i), ts_ms=start + i * 300_000)
        sent[r.event_id] = r.ts_ms
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    scored = docs(collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(sent)))
    assert {d["reading_event_id"] for d in scored} == set(sent)
    assert {d["reading_event_id"]: parse_ts(d["ts"]) for d in scored} == sent
