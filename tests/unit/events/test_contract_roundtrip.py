"""Any valid event survives encode → parse unchanged."""

from __future__ import annotations

import math
import uuid

import orjson
import pytest
from hypothesis import given, settings
from strategies_events import any_event, readings

from features.contract import (
    SCHEMAS,
    ContractError,
    encode,
    encode_reading,
    format_ts,
    parse_event,
    parse_reading,
    parse_ts,
    validate_reading,
)
from features.contract.readings import SensorReading


@settings(max_examples=300, deadline=None)
@given(readings)
def test_reading_roundtrip(r: SensorReading) -> None:
    raw = encode_reading(r)
    assert parse_reading(raw) == r
    assert parse_event(raw) == r


@settings(max_examples=400, deadline=None)
@given(any_event)
def test_every_event_roundtrips_through_its_schema(event: object) -> None:
    raw = encode(event)  # type: ignore[arg-type]
    doc = orjson.loads(raw)
    assert doc["schema"] == SCHEMAS[type(event)]
    assert parse_event(raw) == event


@given(readings)
def test_envelope_has_uuid_and_iso_utc_ms(r: SensorReading) -> None:
    doc = orjson.loads(encode_reading(r))
    assert str(uuid.UUID(doc["event_id"])) == doc["event_id"].lower()
    ts = doc["ts"]
    assert len(ts) == 24 and ts.endswith("Z") and ts[10] == "T" and ts[19] == "."
    assert parse_ts(ts) == r.ts_ms


def test_timestamp_matches_the_example_of_the_contract() -> None:
    # 2026-11-28T01:02:03.456Z, computed independently from the calendar.
    days = 365 * 56 + 14 + sum([31, 28, 31, 30, 31, 30, 31, 31, 30, 31]) + 27
    ms = ((days * 24 + 1) * 60 + 2) * 60_000 + 3456
    assert format_ts(ms) == "2026-11-28T01:02:03.456Z"
    assert parse_ts("2026-11-28T01:02:03.456Z") == ms
    assert parse_ts("2026-11-28T01:02:03Z") == ms - 456
    assert parse_ts("2026-11-28T01:02:03.456+00:00") == ms


def test_integers_become_floats_and_missing_optional_fields_default() -> None:
    eid = str(uuid.uuid4())
    raw = orjson.dumps(
        {
            "schema": "iot.sensor_reading/v1",
            "event_id": eid,
            "ts": "2026-01-01T00:00:00.000Z",
            "device_id": "d-1",
            "values": {"rpm": 1500, "flow_rate": -3},
        }
    )
    r = parse_reading(raw)
    assert r.values == {"rpm": 1500.0, "flow_rate": -3.0}
    assert all(type(v) is float for v in r.values.values())
    assert (r.site, r.machine_type, r.extra) == ("", "", {})


def test_encode_refuses_an_invalid_event_in_memory() -> None:
    bad = SensorReading(str(uuid.uuid4()), "d", 0, {"temperature": math.nan})
    with pytest.raises(ContractError) as err:
        encode_reading(bad)
    assert err.value.field == "values.temperature"
    with pytest.raises(ContractError):
        validate_reading(SensorReading("not-a-uuid", "d", 0, {"rpm": 1.0}))
