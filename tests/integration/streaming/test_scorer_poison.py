"""Acceptance (a) and (b): poison input goes to the DLQ with its reason, every valid reading is
scored, and broken or incompatible models are refused or fall back without stopping alerts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, Producer
from conftest import Running, collect, docs, reading, register, valid_bytes

from features.contract.topics import Topics

pytestmark = pytest.mark.integration


def _doc() -> dict[str, Any]:
    return orjson.loads(valid_bytes(reading(1, 0)))


def _with(**changes: Any) -> bytes:
    d = _doc()
    for k, v in changes.items():
        if v is _DEL:
            d.pop(k, None)
        else:
            d[k] = v
    return orjson.dumps(d)


def _values(**changes: Any) -> bytes:
    d = _doc()
    d["values"].update(changes)
    return orjson.dumps(d)


_DEL = object()


def _headers(m: Message) -> dict[str, bytes]:
    raw: Any = m.headers() or []
    return {k: v for k, v in raw if isinstance(v, bytes)}


POISON: dict[str, bytes | None] = {
    "empty": b"",
    "bad_json": b"{not json",
    "truncated_json": valid_bytes(reading(1, 1))[:-5],
    "non_utf8": b"\xff\xfe\xfa" + b"x" * 10,
    "json_array": b"[1, 2, 3]",
    "json_string": b'"hello"',
    "json_number": b"42",
    "json_null": b"null",
    "null_value": None,
    "nan_literal": valid_bytes(reading(1, 2)).replace(b'"values":{', b'"values":{"x_nan":NaN,'),
    "inf_literal": valid_bytes(reading(1, 3)).replace(
        b'"values":{', b'"values":{"x_inf":Infinity,'
    ),
    "value_string": _values(temperature="hot"),
    "value_bool": _values(temperature=True),
    "value_list": _values(temperature=[1.0]),
    "value_out_of_range": _values(temperature=1e9),
    "value_huge": _values(temperature=1e308 * 10 if False else 1.7e308),
    "values_not_object": _with(values=[1, 2]),
    "values_missing": _with(values=_DEL),
    "missing_event_id": _with(event_id=_DEL),
    "missing_device_id": _with(device_id=_DEL),
    "missing_ts": _with(ts=_DEL),
    "missing_schema": _with(schema=_DEL),
    "unknown_schema": _with(schema="iot.sensor_reading/v99"),
    "other_schema": _with(schema="iot.maintenance/v1"),
    "device_id_int": _with(device_id=123),
    "device_id_empty": _with(device_id=""),
    "device_id_too_long": _with(device_id="d" * 5000),
    "event_id_not_uuid": _with(event_id="not-a-uuid"),
    "ts_not_iso": _with(ts="yesterday"),
    "ts_number": _with(ts=1700000000000),
    "ts_bad_date": _with(ts="2026-02-30T00:00:00.000Z"),
    "ts_before_1970": _with(ts="1960-01-01T00:00:00.000Z"),
    "extra_not_object": _with(extra="x"),
    "one_mb_value": b'{"schema":"iot.sensor_reading/v1","pad":"' + b"x" * 1_000_000 + b'"}',
    "deep_nesting": b"[" * 10_000 + b"]" * 10_000,
    "bom_prefixed": b"\xef\xbb\xbf" + valid_bytes(reading(1, 4)),
}


def test_poison_records_go_to_dlq_and_valid_ones_are_scored(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    good_anomaly_model: str,
) -> None:
    name = good_anomaly_model
    scorer = run_scorer(topics, (name,))
    p = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    valid_ids: set[str] = set()
    bad_keys: set[str] = set()
    for i, (kind, raw) in enumerate(POISON.items()):
        for j in range(3):
            r = reading(i, j)
            valid_ids.add(r.event_id)
            p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
        key = None if kind == "null_value" else f"bad-{kind}"
        if key:
            bad_keys.add(key)
        p.produce(topics.sensor_readings, key=key, value=raw, headers=[("kind", kind.encode())])
    assert p.flush(30) == 0
    assert len(POISON) >= 30

    scored = collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(valid_ids))
    dlq = collect(kafka_bootstrap, topics.dlq, lambda ms: len(ms) >= len(POISON))

    assert scorer.error is None and scorer.thread.is_alive()
    got_ids = [d["reading_event_id"] for d in docs(scored)]
    assert sorted(got_ids) == sorted(valid_ids)
    assert all(d["scores"][0]["model_name"] == name for d in docs(scored))
    kinds: dict[str, dict[str, bytes]] = {}
    for m in dlq:
        h = _headers(m)
        kinds[h["kind"].decode()] = h
        assert h["edaml.error.topic"].decode() == topics.sensor_readings
        assert h["edaml.error.stage"] == b"parse"
        assert h["edaml.error.exception.class"] == b"ContractError"
        assert int(h["edaml.error.offset"]) >= 0 and int(h["edaml.error.partition"]) >= 0
        assert h["edaml.error.exception.message"]
    assert set(kinds) == set(POISON)
    big = next(m for m in dlq if _headers(m)["kind"] == b"one_mb_value")
    assert big.value() == POISON["one_mb_value"]  # the original bytes are kept


def test_broken_models_are_refused_or_fall_back_and_alerts_keep_flowing(
    kafka_bootstrap: str, topics: Topics, run_scorer: Callable[..., Running]
) -> None:
    raises = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    nan = f"iot-failure-risk-{uuid.uuid4().hex[:6]}"
    unknown_fs = f"iot-anomaly-fs-{uuid.uuid4().hex[:6]}"
    register(raises, "anomaly", variant="raises")
    register(nan, "failure-risk", variant="nan")
    register(unknown_fs, "anomaly", fs_version="windows/v999")
    # Small batches: the 300 readings below make several model calls, so the breaker sees
    # consecutive failures (one large batch would be a single failure).
    scorer = run_scorer(
        topics,
        (raises, nan, unknown_fs),
        breaker_failures=2,
        breaker_open_s=60,
        batch_size=40,
    )

    rejected = collect(
        kafka_bootstrap,
        topics.model_lifecycle,
        lambda ms: (
            {d["model_name"] for d in docs(ms) if d["action"] == "rejected"} >= {nan, unknown_fs}
        ),
    )
    reasons = {d["model_name"]: " ".join(d["reasons"]) for d in docs(rejected)}
    assert "NaN" in reasons[nan]
    assert "windows/v999" in reasons[unknown_fs]

    # Wait until the raising model is the champion, then send readings that make it raise
    # (negative temperatures) mixed with normal ones; each batch must still produce alerts.
    deadline = time.monotonic() + 30
    while scorer.service.status()["models"][raises]["champion"] is None:
        assert time.monotonic() < deadline, "the raising model was never loaded"
        time.sleep(0.1)  # polling a condition with a deadline
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    ids = set()
    for i in range(300):
        r = reading(i % 7, i, temperature=-50.0 if i % 3 == 0 else None)
        ids.add(r.event_id)
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    scored = docs(collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= len(ids)))
    alerts = docs(collect(kafka_bootstrap, topics.alerts, lambda ms: len(ms) >= 100, timeout=20))
    assert {d["reading_event_id"] for d in scored} == ids
    assert all(d["fallback"] for d in scored)  # no model could score: the rules did
    cold = [a for a in alerts if a["reasons"] and a["reasons"][0]["feature"] == "temperature"]
    assert len(cold) >= 100 and all(a["fallback"] for a in cold)
    assert "below the safe limit" in cold[0]["reasons"][0]["text"]
    st = scorer.service.status()["models"]
    assert st[nan]["champion"] is None and st[unknown_fs]["champion"] is None
    assert st[raises]["champion"] is not None and st[raises]["breaker"] == "open"
    assert "ValueError" in st[raises]["last_error"]
    assert scorer.error is None and scorer.thread.is_alive()
