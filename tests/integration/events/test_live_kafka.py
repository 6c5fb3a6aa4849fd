"""Live simulation holds its rate, with event time = wall clock."""

from __future__ import annotations

import time

import pytest
from kafka_read_events import read_all, record_count

from features.contract import parse_reading
from features.contract.topics import Topics
from streaming.sources.producers import simulate_live

pytestmark = pytest.mark.integration


def test_live_mode_produces_at_the_target_rate_on_the_wall_clock(
    kafka_bootstrap: str, topics: Topics
) -> None:
    began = int(time.time() * 1000)
    stats = simulate_live(kafka_bootstrap, topics, devices=200, rate=2000, seed=1, duration_s=3.0)
    finished = int(time.time() * 1000)
    assert stats.readings == 6000  # 200 devices every 0.1 s for 3 s
    assert record_count(kafka_bootstrap, topics.sensor_readings) == 6000
    assert 2.7 <= stats.elapsed_s <= 3.5
    assert abs(stats.rate - 2000) / 2000 < 0.1
    assert stats.max_lag_ms < 500
    times = []
    for m in read_all(kafka_bootstrap, topics.sensor_readings, 6000):
        r = parse_reading(m.value() or b"")
        assert m.timestamp()[1] == r.ts_ms
        times.append(r.ts_ms)
    assert began <= min(times) and max(times) <= finished
    assert max(times) - min(times) >= 2900  # spread over the run, not produced in one burst
