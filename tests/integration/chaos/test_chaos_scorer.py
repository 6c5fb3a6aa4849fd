"""Chaos inside the scorer's own world (session broker and registry): a model slower than its
deadline, a flood of new device ids, instances joining and leaving while the input flows.
After each: every valid reading scored exactly once (read_committed), refusals in the DLQ with
their reasons, the served version the alias's."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, Producer
from scorer_test_support import Running, read_to_end, reading, valid_bytes

from features.contract.topics import Topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _send(bootstrap: str, topics: Topics, readings: list[Any]) -> set[str]:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for r in readings:
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    return {r.event_id for r in readings}


def _scored_once(bootstrap: str, topics: Topics, ids: set[str], timeout: float) -> list[Any]:
    """Waits until every id in `ids` is scored (read_committed); asserts none is scored twice;
    returns the scored events."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = read_to_end(bootstrap, topics.scored, topics.partitions)
        got = [orjson.loads(m.value() or b"{}") for m in msgs]
        counts = Counter(d["reading_event_id"] for d in got)
        assert max(counts.values(), default=1) == 1, "a reading was scored twice"
        if set(counts) >= ids:
            assert set(counts) == ids
            return got
        assert time.monotonic() < deadline, f"{len(counts)} of {len(ids)} scored"
        time.sleep(0.5)  # polling the output, bounded by the deadline


def _headers(m: Message) -> dict[str, str]:
    raw: Any = m.headers() or []
    return {k: v.decode(errors="replace") for k, v in raw if isinstance(v, bytes)}


@pytest.mark.timeout(240)
def test_a_model_slower_than_its_deadline_falls_back_without_stalling(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    """The model answers, but never within its (tiny) deadline: each call is abandoned at the
    deadline, the breaker opens, the rules score; nothing waits for the model."""
    scorer = run_scorer(
        topics, (good_anomaly_model,), model_timeout_s=1e-5, breaker_open_s=0.5, batch_size=200
    )
    deadline = time.monotonic() + 60
    while scorer.service.status()["models"][good_anomaly_model]["champion"] is None:
        assert time.monotonic() < deadline, "the model never loaded"
        time.sleep(0.1)  # polling a condition with a deadline
    ids = _send(kafka_bootstrap, topics, [reading(i % 30, i) for i in range(3000)])
    got = _scored_once(kafka_bootstrap, topics, ids, 120)
    assert all(d["fallback"] for d in got)
    st = scorer.service.status()["models"][good_anomaly_model]
    assert "TimeoutError" in st["last_error"] and st["breaker"] in ("open", "half-open")
    assert scorer.error is None and scorer.thread.is_alive()


@pytest.mark.timeout(300)
def test_a_flood_of_new_device_ids_is_capped_and_idle_devices_are_forgotten(
    kafka_bootstrap: str, topics: Topics, run_scorer: Callable[..., Running]
) -> None:
    cap = 40
    scorer = run_scorer(
        topics,
        ("no-such-model",),
        feature_set="online",
        max_devices_per_partition=cap,
        rebuild_horizon_ms=60_000,
        evict_interval_s=0.5,
    )
    known = [reading(d, 0) for d in range(12)]
    ids = _send(kafka_bootstrap, topics, known)
    _scored_once(kafka_bootstrap, topics, ids, 120)
    flood = [reading(10_000 + d, 0) for d in range(600)]
    flood_ids = _send(kafka_bootstrap, topics, flood)
    later = [reading(d, 1) for d in range(12)]  # the known devices keep being scored
    ids |= _send(kafka_bootstrap, topics, later)
    deadline = time.monotonic() + 120
    while True:
        dlq = read_to_end(kafka_bootstrap, topics.dlq, topics.partitions)
        scored = read_to_end(kafka_bootstrap, topics.scored, topics.partitions)
        done = {orjson.loads(m.value() or b"{}")["reading_event_id"] for m in scored}
        if len(dlq) + len(done & flood_ids) >= len(flood) and ids <= done:
            break
        assert time.monotonic() < deadline, f"{len(dlq)} refused, {len(done)} scored"
        time.sleep(0.5)  # polling the outputs, bounded by the deadline
    assert len(dlq) + len(done & flood_ids) == len(flood)
    assert len(done & flood_ids) <= cap * topics.partitions
    assert len(dlq) >= len(flood) - cap * topics.partitions
    h = _headers(dlq[0])
    assert (
        h["edaml.error.stage"] == "device-cap"
        and "maximum of 40 devices" in h["edaml.error.reason"]
    )
    assert scorer.service.status()["devices"] <= cap * topics.partitions
    # half an hour later (event time; longer than the 60 s horizon), the idle devices are
    # forgotten: their state no longer counts
    _send(kafka_bootstrap, topics, [_shift(reading(d, 2), 1_800_000) for d in range(12)])
    deadline = time.monotonic() + 60
    while scorer.service.status()["devices"] > 12:
        assert time.monotonic() < deadline, scorer.service.status()
        time.sleep(0.2)  # polling a condition with a deadline
    assert scorer.service.status()["evicted_devices"] > 0


def _shift(r: Any, ms: int) -> Any:
    import dataclasses

    return dataclasses.replace(r, ts_ms=r.ts_ms + ms)


@pytest.mark.timeout(420)
def test_instances_joining_and_leaving_while_the_input_flows(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    over = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}

    def start(name: str) -> Running:
        # windowed features, snapshots every second: each rebalance restores the moved
        # partitions' state from snapshots written in the transactions of their last owner
        return run_scorer(
            topics,
            (good_anomaly_model,),
            group=group,
            instance_id=name,
            consumer_overrides=over,
            feature_set="online",
            snapshot_interval_s=1.0,
        )

    live = [start("a"), start("b")]
    sent: set[str] = set()
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            sent.update(
                _send(kafka_bootstrap, topics, [reading(j % 50, i + j) for j in range(200)])
            )
            i += 200
            stop.wait(0.2)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    names = iter("cdefghijklmnopqrst")
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end:  # for a minute, every ~5 s one leaves and another joins
        stop.wait(5)
        leaving = live.pop(0)
        leaving.stop()
        assert leaving.error is None
        live.append(start(next(names)))
    stop.set()
    producer.join(30)
    _scored_once(kafka_bootstrap, topics, sent, 180)
    assert all(r.error is None for r in live)
    restores = [s for r in live for s in r.service.rebuilds]
    assert any(s.source == "snapshot" and s.devices > 0 for s in restores), restores
