"""The demo's pure parts: whole-day anchoring, the firmware rollout, phase counts, the view."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException

from edaml.commands.demo import DAY_MS, count_by_phase, of_devices, plan_for, site_devices
from edaml.commands.demo_live import Feed, Sample, describe_event, parse_metrics, render, total
from streaming.kafka import retry_leaderless
from streaming.sources.producers import history_simulator, start_of_day_ms
from streaming.sources.sim import Firmware, SimConfig, Simulator


def test_history_ends_at_midnight_whatever_the_hour() -> None:
    day = 1_795_910_400_000  # 2026-11-29T00:00Z
    assert day % DAY_MS == 0
    for hour in (0, 1, 13, 23):
        assert start_of_day_ms(day + hour * 3_600_000 + 59_999) == day


def test_plan_days_follow_the_date_only() -> None:
    p = plan_for(date(2026, 11, 29), quick=True, devices=300, interval_s=300)
    assert p.end_ms == 1_795_910_400_000
    assert p.history_days == 27
    # v1: the 14 days before the rollout; then the 13 days since, up to yesterday (v2's
    # 14-day window then fits on the new firmware but for its first day)
    assert p.v1_range == ("2026-11-02", "2026-11-15")
    assert p.since_range == ("2026-11-16", "2026-11-28")
    assert p.rollout_ms == p.end_ms - 13 * DAY_MS
    assert p.live_rate == 1.0  # each device at the history's cadence
    assert p.start_ms == p.end_ms - 27 * DAY_MS
    full = plan_for(date(2026, 11, 29), quick=False, devices=300, interval_s=300)
    assert full.after_s > p.after_s and full.estimate_s(360) > p.estimate_s(360)


def _run(fw: tuple[Firmware, ...], steps: int = 30) -> tuple[Simulator, np.ndarray]:
    sim = Simulator(
        SimConfig(devices=60, seed=3, start_ms=1_795_910_400_000, interval_s=300, firmware=fw)
    )
    return sim, np.stack([sim.step().values for _ in range(steps)])


def test_firmware_scales_one_sensor_of_one_site_from_its_time() -> None:
    start = 1_795_910_400_000
    fw = Firmware("p2p", "vibration", start + 10 * 300_000, scale=2.0, site="plant-east")
    sim, with_fw = _run((fw,))
    _, without = _run(())
    east = np.array(sim.fleet.sites) == "plant-east"
    assert east.any() and (~east).any()
    ratio = with_fw[:, :, 1] / without[:, :, 1]
    ok = np.isfinite(ratio) & (without[:, :, 1] > 0.05)
    before, after = ok[:10], ok[10:]
    # only plant-east's vibration, only from step 10, changes (rounding aside)
    assert np.allclose(ratio[:10][before], 1.0)
    assert np.allclose(ratio[10:][after & east[None, :]], 2.0, rtol=0.01)
    assert np.allclose(ratio[10:][after & ~east[None, :]], 1.0)
    others = [0, 2, 3, 4]
    same = np.isfinite(without[:, :, others])
    assert np.array_equal(with_fw[:, :, others][same], without[:, :, others][same])


def test_same_seed_same_history() -> None:
    _, a = _run(())
    _, b = _run(())
    assert np.array_equal(a, b, equal_nan=True)


def test_phase_counts_and_rates() -> None:
    scored = [0, 5, 10, 15, 20, 25]
    alerts = [(5, False), (11, True), (12, False), (30, False)]
    healthy, drift = count_by_phase(scored, alerts, [0, 10, 20])
    assert (healthy.scored, healthy.alerts, healthy.alerts_rules) == (2, 1, 0)
    assert (drift.scored, drift.alerts, drift.alerts_rules, drift.alerts_model) == (2, 2, 1, 1)
    assert healthy.alert_rate == 0.5


def test_outputs_split_by_site_devices() -> None:
    scored = [(0, "a"), (1, "b"), (2, "a"), (3, "c")]
    alerts = [(0, False, "a"), (3, True, "c")]
    assert of_devices(scored, alerts, {"a"}, keep=True) == ([0, 2], [(0, False)])
    assert of_devices(scored, alerts, {"a"}, keep=False) == ([1, 3], [(3, True)])
    plan = plan_for(date(2026, 11, 29), quick=True, devices=300, interval_s=300)
    sites = [site_devices(plan, s) for s in ("plant-north", "plant-south", "plant-east")]
    assert all(sites) and sum(map(len, sites)) == 300 and len(set().union(*sites)) == 300


def test_live_readings_continue_the_history_simulation() -> None:
    """The live producer's simulator, fast-forwarded over the history's steps, gives exactly the
    readings the history would have gone on with (same devices, state and phase: no seam)."""
    start = 1_795_910_400_000
    fw = (Firmware("p2p", "vibration", start + 5 * 300_000, scale=2.0, site="plant-east"),)
    hist = history_simulator(40, 3, start, 300.0, fw)
    steps = [hist.step() for _ in range(30)]
    live = history_simulator(40, 3, start, 300.0, fw)
    while live.step_time_ms(live.steps_done) < start + 20 * 300_000:
        live.step()
    for want in steps[20:]:
        got = live.step()
        assert np.array_equal(got.ts_ms, want.ts_ms)
        assert np.array_equal(got.values, want.values, equal_nan=True)


def test_metrics_parsing_sums_labels() -> None:
    text = "\n".join(
        [
            "# HELP edaml_scorer_alerts_total Alerts produced",
            'edaml_scorer_alerts_total{fallback="false",model="a"} 3.0',
            'edaml_scorer_alerts_total{fallback="true",model="a"} 2.0',
            'edaml_scorer_alerts_created{fallback="true",model="a"} 1.7e9',
            "edaml_scorer_events_in_total 10.0",
        ]
    )
    m = parse_metrics(text)
    assert total(m, "edaml_scorer_alerts_total") == 5.0
    assert total(m, "edaml_scorer_alerts_total", 'fallback="true"') == 2.0
    assert "edaml_scorer_alerts_created" not in m
    assert total(m, "edaml_scorer_events_in_total") == 10.0


def test_events_described_for_the_view() -> None:
    promoted = {
        "schema": "mlops.model_lifecycle/v1",
        "model_name": "iot-anomaly",
        "version": "2",
        "action": "promoted",
        "previous_version": "1",
        "reasons": ["passed the gate"],
    }
    line = describe_event(json.dumps(promoted).encode())
    assert line == "[lifecycle] iot-anomaly v2 promoted (was v1): passed the gate"
    drift = {
        "schema": "mlops.drift_report/v1",
        "model_name": "iot-anomaly",
        "model_version": "1",
        "drifted": True,
        "features": [
            {"feature": "vibration__last", "value": 0.9, "drifted": True},
            {"feature": "rpm__last", "value": 0.01, "drifted": False},
        ],
    }
    assert (
        describe_event(json.dumps(drift).encode())
        == "[drift] iot-anomaly v1: vibration__last PSI 0.90"
    )
    assert describe_event(json.dumps({**drift, "drifted": False}).encode()) is None
    assert describe_event(b"not json") is None


def test_view_shows_rates_and_versions() -> None:
    from rich.console import Console

    feed = Feed()
    feed.add_sample(Sample(1.0, 0, 0, 0, 0, {"iot-anomaly": "1"}, True))
    feed.add_sample(Sample(3.0, 20, 4, 2, 7, {"iot-anomaly": "1"}, True))
    feed.add_event("[fleet] plant-east online")
    console = Console(record=True, width=120)
    console.print(render(feed, "demo"))
    out = console.export_text()
    assert "10" in out and "2.0 | 1.0" in out and "v1" in out and "plant-east online" in out
    # a hot swap seen in /status is an event of the view
    feed.add_sample(Sample(4.0, 21, 4, 2, 0, {"iot-anomaly": "2"}, True))
    assert feed.events[-1][1] == "[scorer] iot-anomaly: now serving v2 (was v1), no restart"


def test_leaderless_calls_are_retried_then_given_up() -> None:
    calls = {"n": 0}

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 7

    assert retry_leaderless(flaky, timeout=5) == 7 and calls["n"] == 3

    def broken() -> int:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))

    with pytest.raises(KafkaException):
        retry_leaderless(broken, timeout=5)

    def never() -> int:
        raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE))

    with pytest.raises(KafkaException):
        retry_leaderless(never, timeout=0.3)
