"""Backfill lands exactly the expected history on a real broker, stamped with event time."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME
from kafka_read_events import read_all, record_count

from features.contract import Maintenance, parse_event, parse_reading
from features.contract.topics import Topics
from streaming.sources.producers import backfill

pytestmark = pytest.mark.integration


def test_one_day_of_1000_devices_lands_exactly_with_event_time(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    end_ms = 1_780_000_200_000  # a fixed past instant, a multiple of the interval
    labels = tmp_path / "labels.csv"
    stats = backfill(
        kafka_bootstrap,
        topics,
        devices=1000,
        days=1,
        interval_s=600,
        seed=3,
        end_ms=end_ms,
        labels_path=labels,
    )
    expected = 1000 * 144
    assert (stats.readings, stats.steps) == (expected, 144)
    assert record_count(kafka_bootstrap, topics.sensor_readings) == expected
    assert stats.start_ms == end_ms - 86_400_000

    records = read_all(kafka_bootstrap, topics.sensor_readings, expected)
    assert len(records) == expected
    per_device: dict[str, list[int]] = {}
    ids = set()
    for m in records:
        r = parse_reading(m.value() or b"")
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_CREATE_TIME and ts == r.ts_ms
        assert stats.start_ms <= ts < end_ms
        assert m.key() == r.device_id.encode()
        per_device.setdefault(r.device_id, []).append(ts)
        ids.add(r.event_id)
    assert len(ids) == expected
    assert len(per_device) == 1000
    for times in per_device.values():  # one partition per device: its history is in order
        assert len(times) == 144 and times == sorted(times)

    n_maint = record_count(kafka_bootstrap, topics.maintenance)
    assert n_maint == stats.maintenance
    for m in read_all(kafka_bootstrap, topics.maintenance, n_maint):
        event = parse_event(m.value() or b"")
        assert isinstance(event, Maintenance) and m.timestamp()[1] == event.ts_ms
    table = pacsv.read_csv(labels)
    assert table.column_names == ["device_id", "fault_type", "start_ms", "end_ms", "failed"]
    assert sum(table.column("failed").to_pylist()) == stats.failures
