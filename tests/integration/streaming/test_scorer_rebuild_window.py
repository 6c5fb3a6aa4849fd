"""`streaming.serving.rebuild.read_window` re-reads, per partition, the records of the last horizon of
event time before the committed offset (read_committed), skipping and counting bad records."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest
from confluent_kafka import TopicPartition
from conftest import read_to_end, reading, valid_bytes

from features.contract import parse_reading
from features.contract.topics import Topics
from streaming.kafka import consumer_config, make_producer
from streaming.serving.rebuild import RebuildStats, read_window

pytestmark = pytest.mark.integration

STEP_MS = 60_000
HORIZON_MS = 30 * STEP_MS


def test_read_window_reads_the_horizon_before_the_committed_offsets(
    kafka_bootstrap: str, topics: Topics
) -> None:
    p = make_producer(kafka_bootstrap)
    t0 = 1_700_000_000_000
    for i in range(240):
        r = reading(i % 6, i)
        ts = t0 + (i // 6) * STEP_MS
        r = dataclasses.replace(r, ts_ms=ts)
        p.produce(topics.sensor_readings, valid_bytes(r), r.device_id, timestamp=ts)
        if i % 50 == 7:  # a bad record among them (it went to the DLQ when first consumed)
            p.produce(topics.sensor_readings, b"{not json", r.device_id, timestamp=ts)
    p.flush()
    by_part: dict[int, list[tuple[int, int, bytes]]] = defaultdict(list)
    for m in read_to_end(kafka_bootstrap, topics.sensor_readings, topics.partitions):
        by_part[m.partition() or 0].append((m.offset() or 0, m.timestamp()[1], m.value() or b""))
    # committed offsets: about two thirds into each partition (one partition: nothing committed)
    parts = sorted(by_part)
    committed = {p_: (len(by_part[p_]) * 2 // 3 if p_ != parts[-1] else 0) for p_ in parts}
    want_ids: set[str] = set()
    want_bad = 0
    for p_, c in committed.items():
        before = [x for x in by_part[p_] if x[0] < c]
        if not before:
            continue
        newest = max(ts for _o, ts, _v in before[-16:])
        for _o, ts, v in before:
            if ts >= newest - HORIZON_MS:
                if v.startswith(b"{not"):
                    want_bad += 1
                else:
                    want_ids.add(parse_reading(v).event_id)
    stats = RebuildStats()
    tps = [TopicPartition(topics.sensor_readings, p_, c) for p_, c in committed.items()]
    got = list(read_window(consumer_config(kafka_bootstrap, "rb"), tps, HORIZON_MS, stats=stats))
    assert want_bad > 0 and len(want_ids) < sum(committed.values())
    assert {r.event_id for _k, r in got} == want_ids and len(got) == len(want_ids)
    assert (stats.readings, stats.skipped) == (len(want_ids), want_bad)
    # per partition, in arrival (offset) order
    for p_ in parts:
        seq = [r.event_id for k, r in got if k[1] == p_]
        order = [
            parse_reading(v).event_id for _o, _t, v in by_part[p_] if not v.startswith(b"{not")
        ]
        assert seq == [e for e in order if e in set(seq)]
