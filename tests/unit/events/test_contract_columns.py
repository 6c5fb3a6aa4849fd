"""The bulk columnar decoder agrees with `parse_reading`, record for record.

`parse_reading` is the specification: for every batch, the records it rejects are exactly the
decoder's errors (same index, same field and reason), and every record it accepts is a row of the
decoder's columns with the same values.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_events import readings

from features.contract import SENSOR_RANGES, ContractError, encode_reading, parse_reading
from features.contract_columns import decode_readings, iso_ts_to_ms
from features.contract_fields import format_ts, parse_ts
from features.readings import SENSORS, SensorReading


def assert_agrees(raws: list[Any]) -> None:
    cols, errors = decode_readings(raws)
    expected_errors: dict[int, ContractError] = {}
    expected_rows: list[tuple[int, SensorReading]] = []
    for i, raw in enumerate(raws):
        try:
            expected_rows.append((i, parse_reading(raw)))
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
            assert (math.isnan(got) and want is None) or got == want, (name, got, want)


# ── plain readings: the decoder's fast path, with values near and beyond every limit ─────────


def _inside(name: str) -> st.SearchStrategy[object]:
    lo, hi = SENSOR_RANGES[name]
    return st.floats(lo, hi) | st.integers(int(lo), int(hi)) | st.sampled_from([lo, hi, None])


def _outside(name: str) -> st.SearchStrategy[object]:
    lo, hi = SENSOR_RANGES[name]
    edges = [lo - 1e-9, hi + 1e-9, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)]
    odd = [True, False, "1.0", [1.0], {"v": 1.0}, 10**400, -(10**30), int(hi) + 1, 1e300]
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
    kind = draw(st.integers(0, 10))
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
    raw = _dumps(doc)
    if kind == 9:  # the bytes themselves broken
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.sampled_from([b"", b"\xff", b"}", b"x"])) + raw[cut + 1 :]
    if kind == 10:  # not even bytes, or not an object, or too big
        return draw(st.sampled_from([None, 5, b"[]", b"null", b" ", raw + b" " * 20_000]))
    return raw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(plain_docs().map(_dumps), mutated()), max_size=30))
def test_decoder_agrees_with_parse_reading_on_plain_and_broken_records(raws: list[Any]) -> None:
    assert_agrees(raws)


@settings(max_examples=200, deadline=None)
@given(st.lists(readings.map(encode_reading), min_size=1, max_size=20))
def test_decoder_agrees_on_any_valid_reading(raws: list[bytes]) -> None:
    # Any valid reading (other sensors, extra, optional fields missing...) round-trips.
    cols, errors = decode_readings(raws)
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
    cols, errors = decode_readings(raws)  # type: ignore[arg-type]
    assert [i for i, _ in errors] == [1, 3, 5]
    assert [e.field for _, e in errors] == ["$", "$", "schema"]
    assert cols.index.tolist() == [0, 2, 4, 6, 7]
    assert cols.device_id.to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    assert cols.sensors["temperature"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert np.isnan(cols.sensors["rpm"]).all()


def test_empty_batch() -> None:
    cols, errors = decode_readings([])
    assert len(cols) == 0 and errors == [] and cols.ts_ms.dtype == np.int64
