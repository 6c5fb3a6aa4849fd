"""Pure modules of the scorer: breaker, PSI, reason codes, fallback, score_batch without Kafka."""

from __future__ import annotations

import numpy as np

from features.contract.readings import SensorReading
from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures
from features.ml.model_card import Histogram, SensorLimits
from features.spec import load_spec
from streaming.serving.breaker import CircuitBreaker
from streaming.serving.drift import monitored, psi
from streaming.serving.fallback import FallbackRules, rule_score
from streaming.serving.reasons import ReferenceStats, model_reasons
from streaming.serving.scoring import ModelSlot, ScorerState, score_batch

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)


def test_breaker_opens_after_failures_and_half_open_probe_closes_it() -> None:
    b = CircuitBreaker(failure_threshold=2, open_seconds=10)
    b.record_failure(0, "x")
    assert b.allow(0)
    b.record_failure(1, "x")
    assert b.state == "open" and not b.allow(5)
    assert b.allow(11) and b.state == "half-open"
    b.record_failure(11, "again")
    assert b.state == "open" and not b.allow(12)
    assert b.allow(21)
    b.record_success()
    assert b.state == "closed"


def test_psi_is_zero_for_same_distribution_and_grows_with_shift() -> None:
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(ref, ref * 40) < 1e-9
    small, big = psi(ref, np.array([30, 25, 25, 20])), psi(ref, np.array([0, 0, 10, 90]))
    assert 0 < small < 0.1 < 0.25 < big


def test_drift_leaves_out_the_window_counts() -> None:
    h = Histogram([0.0, 1.0, 2.0], [0.5, 0.5])
    ref = {"count_24h": h, "count_1h": h, "vibration__mean_1h": h, "temperature__last": h}
    assert sorted(monitored(ref)) == ["temperature__last", "vibration__mean_1h"]


def test_reasons_name_the_most_deviating_features_in_words() -> None:
    hist = Histogram([0.0, 1.0, 2.0, 3.0, 4.0], [0.1, 0.4, 0.4, 0.1])
    stats = ReferenceStats.from_reference(
        ["temperature_mean", "rpm_mean"], {"temperature_mean": hist, "rpm_mean": hist}
    )
    reasons = model_reasons(stats, np.array([2.1, 9.0]))
    assert reasons[0].feature == "rpm_mean" and reasons[0].contribution > 3
    assert "above its training mean" in reasons[0].text


def test_fallback_flags_only_readings_outside_limits() -> None:
    limits = {"temperature": SensorLimits(0.0, 90.0)}
    hot = SensorReading("e", "d", 1, {"temperature": 99.0})
    ok = SensorReading("f", "d", 1, {"temperature": 50.0})
    score, reasons = rule_score(hot, limits, {"temperature": "°C"})
    assert score > 0 and "is 99 °C, above the safe limit of 90 °C" in reasons[0].text
    assert rule_score(ok, limits) == (0.0, [])


def test_score_batch_without_models_uses_default_rules_and_drops_duplicates() -> None:
    state = ScorerState(RawFeatures(FLEET.sensor_names), RAW_FEATURE_SET_VERSION)
    slots = {"iot-anomaly": ModelSlot("iot-anomaly", rules=FallbackRules.from_spec(FLEET))}
    vals: dict[str, float | None] = {
        "temperature": 500.0 - 200.0,
        "vibration": 2.0,
        "pressure": 6.0,
        "current": 40.0,
        "rpm": 1500.0,
    }
    r1 = SensorReading("a", "d1", 1, vals)
    r2 = SensorReading("b", "d1", 2, {**vals, "temperature": 50.0})
    out = score_batch(slots, [r1, r2, r1], state)
    assert [s.reading_event_id for s in out.scored] == ["a", "b"]
    assert state.duplicates == 1
    assert all(s.fallback for s in out.scored)
    assert [a.reading_event_id for a in out.alerts] == ["a"] and out.alerts[0].fallback


def test_fallback_limits_follow_the_entity_group() -> None:
    # a fan's healthy pressure (~0.1-0.4 bar) is below the fleet's default limit of 0.5 bar
    rules = FallbackRules.from_spec(FLEET)
    vals: dict[str, float | None] = {
        "temperature": 40.0,
        "vibration": 1.5,
        "pressure": 0.2,
        "current": 12.0,
        "rpm": 970.0,
    }
    fan = SensorReading("a", "fan-00001", 1, vals, machine_type="fan")
    pump = SensorReading("b", "pump-00002", 1, vals, machine_type="pump")
    assert rule_score(fan, rules.limits_for(fan), rules.units) == (0.0, [])
    score, reasons = rule_score(pump, rules.limits_for(pump), rules.units)
    assert score > 0 and reasons[0].text.endswith("below the safe limit of 0.5 bar")
