"""Hypothesis strategies for valid contract events (shared by the contract tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from features.contract.events import (
    Alert,
    DriftReport,
    FeatureDrift,
    Heartbeat,
    Maintenance,
    ModelLifecycleEvent,
    ModelScore,
    ReasonCode,
    ScoredEvent,
    ShadowReport,
)
from features.contract.readings import SensorReading
from features.spec import load_spec

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSOR_RANGES = FLEET.ranges

uuids = st.uuids().map(str)
ts_ms = st.integers(0, 253402300799999)
printable = st.characters(categories=["L", "N", "P", "S"])
ids = st.text(printable, min_size=1, max_size=128)
opt_ids = st.text(printable, max_size=128)
texts = st.text(max_size=300)
names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}", fullmatch=True)
finite = st.floats(-1e15, 1e15, allow_nan=False)
unit = st.floats(0.0, 1.0)
counts = st.integers(0, 2**63 - 1)


@st.composite
def sensor_values(draw: st.DrawFn) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for name in draw(st.lists(st.sampled_from(sorted(SENSOR_RANGES)), unique=True)):
        lo, hi = SENSOR_RANGES[name]
        values[name] = draw(st.none() | st.floats(lo, hi))
    others = draw(st.dictionaries(names, st.none() | finite, max_size=8))
    for name, v in others.items():
        values.setdefault(name, v)
    if not values:
        values["temperature"] = draw(st.floats(*SENSOR_RANGES["temperature"]))
    return values


readings = st.builds(
    SensorReading,
    event_id=uuids,
    device_id=ids,
    ts_ms=ts_ms,
    values=sensor_values(),
    site=opt_ids,
    machine_type=opt_ids,
    extra=st.dictionaries(names, st.text(printable, max_size=256), max_size=5),
)
maintenance = st.builds(
    Maintenance,
    event_id=uuids,
    device_id=ids,
    ts_ms=ts_ms,
    kind=st.sampled_from(["failure", "repair"]),
    fault_type=ids,
    site=opt_ids,
    machine_type=opt_ids,
)
model_scores = st.builds(
    ModelScore,
    model_name=ids,
    model_version=ids,
    score=finite,
    threshold=st.none() | finite,
    flagged=st.booleans(),
)
scored = st.builds(
    ScoredEvent,
    event_id=uuids,
    ts_ms=ts_ms,
    reading_event_id=uuids,
    device_id=ids,
    scores=st.lists(model_scores, max_size=3),
    decision=st.sampled_from(["normal", "alert", "unknown"]),
    fallback=st.booleans(),
    fallback_reason=texts,
    feature_set_version=opt_ids,
)
reason_codes = st.builds(
    ReasonCode,
    code=ids,
    feature=ids,
    value=st.none() | finite,
    reference=st.none() | finite,
    contribution=finite,
    text=texts,
)
alerts = st.builds(
    Alert,
    event_id=uuids,
    ts_ms=ts_ms,
    reading_event_id=uuids,
    device_id=ids,
    kind=st.sampled_from(["anomaly", "failure-risk"]),
    model_name=ids,
    model_version=ids,
    score=finite,
    threshold=finite,
    confidence=unit,
    reasons=st.lists(reason_codes, max_size=4),
    fallback=st.booleans(),
)
lifecycle = st.builds(
    ModelLifecycleEvent,
    event_id=uuids,
    ts_ms=ts_ms,
    model_name=ids,
    version=ids,
    action=st.sampled_from(["registered", "validated", "promoted", "rejected", "rolled_back"]),
    reasons=st.lists(texts, max_size=4),
    alias=opt_ids,
    previous_version=opt_ids,
    run_id=opt_ids,
    actor=opt_ids,
    metrics=st.dictionaries(names, finite, max_size=5),
)
drift = st.builds(
    DriftReport,
    event_id=uuids,
    ts_ms=ts_ms,
    model_name=ids,
    model_version=ids,
    window_start_ms=ts_ms,
    window_end_ms=ts_ms,
    n_events=counts,
    features=st.lists(
        st.builds(
            FeatureDrift,
            feature=ids,
            statistic=ids,
            value=finite,
            threshold=finite,
            drifted=st.booleans(),
        ),
        max_size=4,
    ),
    drifted=st.booleans(),
)
shadow = st.builds(
    ShadowReport,
    event_id=uuids,
    ts_ms=ts_ms,
    model_name=ids,
    champion_version=ids,
    challenger_version=ids,
    window_start_ms=ts_ms,
    window_end_ms=ts_ms,
    n_events=counts,
    agreement=unit,
    champion_alert_rate=unit,
    challenger_alert_rate=unit,
    mean_abs_score_diff=finite,
    metrics=st.dictionaries(names, finite, max_size=5),
)
heartbeats = st.builds(
    Heartbeat,
    event_id=uuids,
    ts_ms=ts_ms,
    service=ids,
    instance=ids,
    status=st.sampled_from(["ok", "degraded", "stopping"]),
    models=st.dictionaries(ids, opt_ids, max_size=3),
    events_processed=counts,
    lag=counts,
    fallback=st.booleans(),
)
any_event: st.SearchStrategy[Any] = st.one_of(
    readings, maintenance, scored, alerts, lifecycle, drift, shadow, heartbeats
)
