"""Malformed input raises ContractError — with where and what — and nothing else."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies_events import any_event, readings

from features.contract import (
    MAX_READING_BYTES,
    ContractError,
    encode,
    encode_reading,
    parse_event,
    parse_reading,
)
from features.contract.readings import SensorReading
from features.spec import load_spec

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)


def _doc() -> dict[str, Any]:
    return {
        "schema": "iot.sensor_reading/v1",
        "event_id": str(uuid.uuid4()),
        "ts": "2026-11-28T01:02:03.456Z",
        "device_id": "pump-0001",
        "site": "plant-a",
        "machine_type": "pump",
        "values": {"temperature": 61.2, "vibration": 2.3, "rpm": None},
    }


def _error(raw: bytes) -> ContractError:
    with pytest.raises(ContractError) as err:
        FLEET.contract.parse_event(raw)  # the fleet's sensor ranges apply
    assert isinstance(err.value, ValueError)
    assert err.value.field and err.value.reason
    assert str(err.value) == f"{err.value.field}: {err.value.reason}"
    return err.value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_contract_error(raw: bytes) -> None:
    for parse in (parse_event, parse_reading):
        with contextlib.suppress(ContractError):
            parse(raw)


@given(any_event, st.data())
def test_truncated_events_are_bad_json(event: object, data: st.DataObject) -> None:
    raw = encode(event)  # type: ignore[arg-type]
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert _error(raw[:cut]).field == "$"


@given(readings, st.data())
def test_non_utf8_bytes_are_rejected(r: SensorReading, data: st.DataObject) -> None:
    raw = encode_reading(r)
    at = data.draw(st.integers(1, len(raw) - 1))
    bad = data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]))
    assert _error(raw[:at] + bad + raw[at:]).field == "$"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_nan_and_infinity_are_rejected(token: str) -> None:
    raw = orjson.dumps(_doc()).replace(b"61.2", token.encode())
    _error(raw)


@pytest.mark.parametrize("field", ["schema", "event_id", "ts", "device_id", "values"])
def test_missing_required_fields_are_named(field: str) -> None:
    doc = _doc()
    del doc[field]
    assert _error(orjson.dumps(doc)).field == field


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["event_id", "ts", "device_id", "site", "machine_type", "values", "extra"]),
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_wrong_types_are_named(field: str, value: object) -> None:
    doc = _doc()
    doc[field] = value
    assert _error(json.dumps(doc).encode()).field == field


@pytest.mark.parametrize(
    ("sensor", "value"),
    [
        ("temperature", "hot"),
        ("temperature", True),
        ("vibration", -1.0),
        ("rpm", 1e9),
        ("pressure", [1.0]),
        ("my sensor", 1.0),
        ("x" * 65, 1.0),
        ("flow", 1e16),
    ],
)
def test_bad_sensor_values_are_named(sensor: str, value: object) -> None:
    doc = _doc()
    doc["values"][sensor] = value
    err = _error(orjson.dumps(doc))
    assert err.field == f"values.{sensor[:64]}"


@pytest.mark.parametrize(
    "schema", ["iot.sensor_reading/v2", "iot.sensor_reading", "nope/v1", "", 3, None]
)
def test_unknown_schema_or_version_is_rejected(schema: object) -> None:
    doc = _doc()
    doc["schema"] = schema
    assert _error(orjson.dumps(doc)).field == "schema"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_id", "d" * 129),
        ("device_id", ""),
        ("device_id", "bad\nid"),
        ("site", "s" * 500),
        ("event_id", "1234"),
        ("event_id", "zzzzzzzz-1111-4111-8111-111111111111"),
        ("ts", "2026-11-28 01:02:03"),
        ("ts", "2026-02-30T01:02:03.000Z"),
        ("ts", "2026-11-28T25:02:03.000Z"),
        ("ts", "2026-11-28T01:02:03.000+02:00"),
        ("ts", "1969-12-31T23:59:59.999Z"),
        ("ts", "\uff12\uff10\uff12\uff16-11-28T01:02:03.000Z"),
        ("ts", "2026-11-28T01:02:03.\uff14\uff15\uff16Z"),
        ("values", {}),
        ("values", {f"s{i}": 1.0 for i in range(65)}),
        ("extra", {"k": "v" * 300}),
        ("extra", {"k": 5}),
    ],
)
def test_oversize_and_out_of_format_values_are_named(field: str, value: object) -> None:
    doc = _doc()
    doc[field] = value
    where = _error(orjson.dumps(doc)).field
    assert where == field or where.startswith(f"{field}.")


def test_oversize_event_is_rejected_before_parsing() -> None:
    doc = _doc()
    doc["padding"] = "x" * MAX_READING_BYTES
    err = _error(orjson.dumps(doc))
    assert err.field == "$" and "limit" in err.reason


@given(st.sampled_from(["scores", "decision", "reading_event_id", "fallback", "device_id"]))
def test_other_events_name_their_bad_fields(field: str) -> None:
    doc = {
        "schema": "iot.scored/v1",
        "event_id": str(uuid.uuid4()),
        "ts": "2026-11-28T01:02:03.456Z",
        "reading_event_id": str(uuid.uuid4()),
        "device_id": "d",
        "scores": [{"model_name": "m", "model_version": "1", "score": 0.5}],
        "decision": "normal",
        "fallback": False,
    }
    parse_event(orjson.dumps(doc))  # the document is valid as written
    doc[field] = {"nested": "object"}
    assert _error(orjson.dumps(doc)).field == field


def test_nested_errors_carry_their_path() -> None:
    doc = {
        "schema": "iot.alert/v1",
        "event_id": str(uuid.uuid4()),
        "ts": "2026-11-28T01:02:03.456Z",
        "reading_event_id": str(uuid.uuid4()),
        "device_id": "d",
        "kind": "anomaly",
        "model_name": "iot-anomaly",
        "model_version": "2",
        "score": 0.9,
        "threshold": 0.5,
        "confidence": 1.5,
        "reasons": [],
    }
    assert _error(orjson.dumps(doc)).field == "confidence"
    doc["confidence"] = 0.5
    doc["reasons"] = [
        {
            "code": "X",
            "feature": "f",
            "value": 1,
            "reference": None,
            "contribution": "a",
            "text": "",
        }
    ]
    assert _error(orjson.dumps(doc)).field == "reasons[0].contribution"


@given(any_event)
def test_a_reading_is_not_accepted_as_another_schema(event: object) -> None:
    assume(not isinstance(event, SensorReading))
    with pytest.raises(ContractError) as err:
        parse_reading(encode(event))  # type: ignore[arg-type]
    assert err.value.field == "schema"
