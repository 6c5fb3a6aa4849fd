"""The bulk columnar decoder agrees with `parse_reading`, record for record.

`parse_reading` is the specification: for every batch, the records it rejects are exactly the
decoder's errors (same index, same field and reason), and every record it accepts is a row of the
decoder's columns with the same values.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, Literal

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_events import readings

from features.contract import ContractError
from features.contract.columns import decode_readings, iso_ts_to_ms
from features.contract.columns_arrow import load_arrow
from features.contract.fields import format_ts, parse_ts
from features.contract.readings import SensorReading
from features.spec import DatasetSpec, load_spec

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names
SENSOR_RANGES = FLEET.ranges


def _bits(x: float | None) -> bytes:
    return np.float64(np.nan if x is None else x).tobytes()  # tells -0.0 from 0.0


Engine = Literal["auto", "orjson"]
ENGINES: tuple[Engine, ...] = ("auto", "orjson")


def assert_agrees(raws: list[Any]) -> None:
    for engine in ENGINES:
        _assert_agrees(raws, engine)


def _assert_agrees(raws: list[Any], engine: Engine) -> None:
    cols, errors = decode_readings(raws, FLEET.contract, engine=engine)
    expected_errors: dict[int, ContractError] = {}
    expected_rows: list[tuple[int, SensorReading]] = []
    for i, raw in enumerate(raws):
        try:
            expected_rows.append((i, FLEET.contract.parse_reading(raw)))
        except ContractError as exc:
            expected_errors[i] = exc
    assert {i: (e.field, e.reason) for i, e in errors} == {
        i: (e.field, e.reason) for i, e in expected_errors.items()
    }
    assert cols.index.tolist() == [i for i, _ in expected_rows]
    assert len(cols.event_id) == len(cols.ts_ms) == len(expected_rows)
    for k, (_, r) in enumerate(expected_rows):
        assert cols.event_id[k].as_py() == r.event_id
        assert cols.device_id[k].as_py() == r.device_id
        assert cols.site[k].as_py() == r.site
        assert cols.machine_type[k].as_py() == r.machine_type
        assert int(cols.ts_ms[k]) == r.ts_ms
        for name in SENSORS:
            got, want = float(cols.sensors[name][k]), r.values.get(name)
            assert _bits(got) == _bits(want), (engine, name, got, want)


# ── plain readings: the decoder's fast path, with values near and beyond every limit ─────────


def _inside(name: str) -> st.SearchStrategy[object]:
    lo, hi = SENSOR_RANGES[name]
    return st.floats(lo, hi) | st.integers(int(lo), int(hi)) | st.sampled_from([lo, hi, None, -0.0])


def _outside(name: str) -> st.SearchStrategy[object]:
    lo, hi = SENSOR_RANGES[name]
    edges = [lo - 1e-9, hi + 1e-9, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)]
    odd = [True, False, "1.0", [1.0], {"v": 1.0}, 10**400, -(10**30), int(hi) + 1, 1e300]
    odd += [math.nan, math.inf, -math.inf]  # json.dumps writes NaN and Infinity literals
    return st.sampled_from(edges + odd)


ts_parts = st.tuples(
    st.sampled_from([1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999]) | st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.integers(0, 999),
)
timestamps = ts_parts.map(lambda p: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % p)  # noqa: UP031
valid_ts = st.integers(0, 253402300799999).map(format_ts)
hexish = st.text(st.sampled_from("0123456789abcdefABCDEF-gG "), min_size=35, max_size=37)
ids = st.text(st.characters(codec="utf-8"), max_size=130)
plain_ids = st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), max_size=20)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()  # big integers too, unlike orjson


@st.composite
def plain_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reading of the usual shape (the decoder's fast path)."""
    return {
        "schema": "iot.sensor_reading/v1",
        "event_id": draw(st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())),
        "ts": draw(valid_ts),
        "device_id": draw(
            st.sampled_from(["pump-1", "fan-7", "ü-3"]) | plain_ids.map("d{}".format)
        ),
        "site": draw(st.sampled_from(["", "plant-a"]) | plain_ids),
        "machine_type": draw(st.sampled_from(["pump", ""]) | plain_ids),
        "values": {name: draw(_inside(name)) for name in SENSORS},
    }


_ANY_JSON = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.none())


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A usual reading with one thing changed, which may or may not break it."""
    doc = draw(plain_docs())
    kind = draw(st.integers(0, 12))
    if kind == 1:  # a field removed
        del doc[draw(st.sampled_from(sorted(doc)))]
    elif kind == 2:  # a field of any JSON type
        doc[draw(st.sampled_from(sorted(doc)))] = draw(_ANY_JSON)
    elif kind == 3:  # a sensor removed, added or renamed
        doc["values"].pop(draw(st.sampled_from(SENSORS)))
        if draw(st.booleans()):
            doc["values"][draw(st.sampled_from(["flow", "bad name", "x" * 70]))] = 1.0
    elif kind == 4:  # extra, valid or not
        doc["extra"] = draw(st.sampled_from([{"fw": "1.2"}, {"k": 5}, None, "x", {}]))
    elif kind == 5:  # values that is not the usual object
        doc["values"] = draw(st.sampled_from([{}, [], {"temperature": None}, None]))
    elif kind == 6:  # a sensor at or beyond its limits, or not a number
        name = draw(st.sampled_from(SENSORS))
        doc["values"][name] = draw(_outside(name))
    elif kind == 7:  # a timestamp of the right width, valid or not, or another spelling
        doc["ts"] = draw(timestamps | st.sampled_from(["2026-11-28T01:02:03Z", "2026-11-28"]))
    elif kind == 8:  # an id of any text, an event id of almost-UUID characters, another schema
        field = draw(st.sampled_from(["device_id", "site", "machine_type", "event_id", "schema"]))
        doc[field] = draw(hexish if field == "event_id" else ids)
    if kind == 11:  # a number spelled -0 (the integer 0 to orjson, -0.0 to others)
        doc["values"][draw(st.sampled_from(SENSORS))] = 12345.25
        return _dumps(doc).replace(b"12345.25", b"-0")
    if kind == 12:  # spread over several lines (valid JSON, one record)
        return json.dumps(doc, indent=1).encode()
    raw = _dumps(doc)
    if kind == 9:  # the bytes themselves broken
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.sampled_from([b"", b"\xff", b"}", b"x"])) + raw[cut + 1 :]
    if kind == 10:  # not even bytes, or not an object, or too big
        odd = [None, 5, b"[]", b"null", b" ", b"", raw + b" " * 20_000, raw + b" " + raw]
        return draw(st.sampled_from([*odd, raw.decode(), bytearray(raw), memoryview(raw)]))
    return raw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(plain_docs().map(_dumps), mutated()), max_size=30))
def test_decoder_agrees_with_parse_reading_on_plain_and_broken_records(raws: list[Any]) -> None:
    assert_agrees(raws)


@settings(max_examples=200, deadline=None)
@given(st.lists(readings.map(FLEET.contract.encode_reading), min_size=1, max_size=20))
def test_decoder_agrees_on_any_valid_reading(raws: list[bytes]) -> None:
    # Any valid reading (other sensors, extra, optional fields missing...) round-trips.
    cols, errors = decode_readings(raws, FLEET.contract)
    assert errors == [] and len(cols) == len(raws)
    assert_agrees(raws)


@settings(max_examples=300, deadline=None)
@given(st.lists(ts_parts, min_size=1, max_size=50))
def test_vectorised_timestamps_match_parse_ts(parts: list[tuple[int, ...]]) -> None:
    texts = ["%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % p for p in parts]  # noqa: UP031
    chars = np.frombuffer("".join(texts).encode(), dtype=np.uint8).reshape(len(texts), 24)
    ms, ok = iso_ts_to_ms(chars)
    for text, m, good in zip(texts, ms.tolist(), ok.tolist(), strict=True):
        try:
            want = parse_ts(text)
        except ContractError:
            assert not good, text
        else:
            assert good and m == want, text


def test_a_bad_record_does_not_abort_the_batch() -> None:
    good = [
        orjson.dumps(
            {
                "schema": "iot.sensor_reading/v1",
                "event_id": str(uuid.uuid4()),
                "ts": "2026-01-01T00:00:00.123Z",
                "device_id": f"d{i}",
                "values": {"temperature": float(i)},
            }
        )
        for i in range(5)
    ]
    raws = [good[0], b"{not json", good[1], None, good[2], b'{"schema": 1}', good[3], good[4]]
    cols, errors = decode_readings(raws, FLEET.contract)  # type: ignore[arg-type]
    assert_agrees(raws)
    assert [i for i, _ in errors] == [1, 3, 5]
    assert [e.field for _, e in errors] == ["$", "$", "schema"]
    assert cols.index.tolist() == [0, 2, 4, 6, 7]
    assert cols.device_id.to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    assert cols.sensors["temperature"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert np.isnan(cols.sensors["rpm"]).all()


def test_empty_batch() -> None:
    cols, errors = decode_readings([], FLEET.contract)
    assert len(cols) == 0 and errors == [] and cols.ts_ms.dtype == np.int64


def _plain(i: int) -> dict[str, Any]:
    return {
        "schema": "iot.sensor_reading/v1",
        "event_id": str(uuid.UUID(int=i + 1)),
        "ts": format_ts(1_767_225_600_000 + 997 * i),
        "device_id": f"pump-{i % 3}",
        "site": "plant-a",
        "machine_type": "pump",
        "values": {
            "temperature": 60.5,
            "vibration": 2.0,
            "pressure": 6.0,
            "current": 40.0,
            "rpm": 1480.0,
        },
    }


def _with(path: str, value: Any) -> bytes:
    doc = _plain(99)
    *parents, key = path.split(".")
    target = doc
    for p in parents:
        target = target[p]
    if value is _DROP:
        del target[key]
    else:
        target[key] = value
    return _dumps(doc)


_DROP = object()
_ODD: list[Any] = [
    *(_with(f"values.{s}", v) for s in SENSORS for v in (math.nan, math.inf, -math.inf)),
    *(_with(f"values.{s}", v) for s in SENSORS for v in (-0.0, 0, None, _DROP)),
    *(_with(f"values.{s}", SENSOR_RANGES[s][1] + 1e-9) for s in SENSORS),
    *(_with(f"values.{s}", math.nextafter(SENSOR_RANGES[s][0], -math.inf)) for s in SENSORS),
    _dumps(_plain(7)).replace(b'"rpm": 1480.0', b'"rpm": -0'),
    *(_with(k, None) for k in ("site", "machine_type", "device_id", "event_id", "ts", "values")),
    *(_with(k, _DROP) for k in ("site", "machine_type", "device_id", "event_id", "ts", "values")),
    _with("values", {}),
    _with("values", dict.fromkeys(SENSORS)),
    _with("extra", {"fw": "1"}),
    _with("extra", None),
    _with("values.flow", 1.0),
    _with("device_id", "\u0000x"),
    _with("device_id", "\u00e9" * 129),
    _with("site", "x\u2028"),
    _with("event_id", str(uuid.UUID(int=5)).upper()),
    _with("ts", "2026-01-01T00:00:00.000+00:00"),
    _with("ts", "2024-02-29T23:59:59.999Z"),
    _with("ts", "2100-02-29T00:00:00.000Z"),
    _with("schema", "iot.sensor_reading/v2"),
    json.dumps(_plain(3), indent=1).encode(),
    _dumps(_plain(4)) + b" " + _dumps(_plain(5)),
    b"",
    b" ",
    b"{}",
    _dumps(_plain(10)).replace(b"plant-a", b"plant-\xff"),  # not UTF-8
    _dumps(_plain(11)).replace(b"plant-a", b"plant-\xed\xa0\x80"),  # an encoded surrogate
    _dumps(_plain(12)).replace(b"plant-a", b"plant-\xc3\xa9"),  # é, valid
    _dumps(_plain(6)).replace(b'"site"', b'"device_id": "dup", "site"'),
    _dumps(_plain(8)).decode(),
    memoryview(_dumps(_plain(9))),
]


@pytest.mark.parametrize("odd", _ODD)
def test_each_odd_record_among_plain_ones(odd: Any) -> None:
    # A batch the fast loader can take but for one record: that record decides alone.
    raws: list[Any] = [_dumps(_plain(i)) for i in range(6)]
    raws[3] = odd
    assert_agrees(raws)
    assert_agrees([odd])


def test_a_plain_batch_takes_the_arrow_loader() -> None:
    raws = [_dumps(_plain(i)) for i in range(50)]
    raw = load_arrow(raws, FLEET.contract)
    assert raw is not None and not raw.suspect.any()
    assert (
        load_arrow([*raws, raws[0] + b" "], FLEET.contract) is None
    )  # not `{...}` lines: the general loader


RIG = DatasetSpec.from_yaml_text(
    """
name: rig
cadence: 1s
sensors:
  accel_rms: {unit: g, range: [0, 50]}
  thermocouple_1: {unit: degC, range: [-200, 1300]}
  volume_flow: {unit: l/min, range: [0, 500]}
""",
    "rig.yaml",
)


@pytest.mark.parametrize("engine", ["auto", "orjson"])
def test_a_spec_with_other_sensor_names_decodes_on_the_fast_paths(engine: str) -> None:
    contract = RIG.contract
    docs = [
        {
            **_plain(i),
            "values": {"accel_rms": 1.5 + i, "thermocouple_1": 20.25, "volume_flow": 3.0},
        }
        for i in range(40)
    ]
    docs[7]["values"]["thermocouple_1"] = 1400.0  # outside the rig's range
    raws = [_dumps(d) for d in docs]
    if engine == "auto":
        fast = load_arrow(raws, contract)
        assert fast is not None and list(fast.sensors) == list(RIG.sensor_names)
    cols, errors = decode_readings(raws, contract, engine=engine)  # type: ignore[arg-type]
    assert [(i, e.field) for i, e in errors] == [(7, "values.thermocouple_1")]
    assert len(cols) == 39 and cols.sensors["accel_rms"][:2].tolist() == [1.5, 2.5]
    # the fleet's contract knows none of these sensors: it keeps no columns of them
    other, errs = decode_readings(raws, FLEET.contract, engine=engine)  # type: ignore[arg-type]
    assert not errs and set(other.sensors) == set(FLEET.sensor_names)
    assert np.isnan(other.sensors["temperature"]).all()
