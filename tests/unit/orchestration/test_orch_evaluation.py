from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.defs.training.evaluation import alert_episodes, evaluate

H = 3600 * 1000


def test_alert_episodes_start_at_rising_edges_per_device() -> None:
    dev = np.array(["a", "a", "a", "a", "b", "b"])
    ts = np.array([0, 1, 2, 3, 0, 1])
    flag = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    assert sorted(alert_episodes(dev, ts, flag).tolist()) == [0, 3, 4]


def test_perfect_scorer_catches_the_failure_ahead_and_raises_no_false_alarm() -> None:
    # One device, a reading every 10 minutes for a day; it fails at 20h, horizon 6h.
    ts = np.arange(0, 24 * H, H // 6)
    dev = np.array(["a"] * len(ts))
    fail_ms = 20 * H
    y = ((ts < fail_ms) & (fail_ms - ts <= 6 * H)).astype(int)
    scores = y.astype(float)
    failures = pd.DataFrame({"device_id": ["a"], "ts_ms": [fail_ms]})
    m = evaluate(
        y=y,
        scores=scores,
        threshold=0.5,
        device_ids=dev,
        ts_ms=ts,
        failures=failures,
        horizon_ms=6 * H,
    )
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["pr_auc"] == 1.0
    assert m["false_alarms_per_device_day"] == 0.0
    assert m["failures"] == 1 and m["failure_recall_1h"] == 1.0
    assert 5.5 <= m["lead_time_median_h"] <= 6.0
    assert m["far"] == 0.0 and m["mar"] == 0.0
    assert m["windows"] == 1 and m["windows_detected"] == 1 and m["window_recall"] == 1.0
    assert m["window_false_alarms_per_day"] == 0.0 and m["window_lead_time_median_h"] == 0.0


def test_late_alert_counts_as_caught_but_not_one_hour_ahead() -> None:
    ts = np.arange(0, 24 * H, H // 6)
    dev = np.array(["a"] * len(ts))
    fail_ms = 20 * H
    scores = ((ts >= fail_ms - H // 2) & (ts < fail_ms)).astype(float)
    y = ((ts < fail_ms) & (fail_ms - ts <= 6 * H)).astype(int)
    m = evaluate(
        y=y,
        scores=scores,
        threshold=0.5,
        device_ids=dev,
        ts_ms=ts,
        failures=pd.DataFrame({"device_id": ["a"], "ts_ms": [fail_ms]}),
        horizon_ms=6 * H,
    )
    assert m["failures_caught"] == 1 and m["failure_recall_1h"] == 0.0
    assert m["recall"] < 0.2


def test_false_alarms_are_counted_per_device_day() -> None:
    ts = np.tile(np.arange(0, 24 * H, H), 2)
    dev = np.repeat(["a", "b"], 24)
    y = np.zeros(48, dtype=int)
    scores = np.zeros(48)
    scores[[3, 4, 10, 30]] = 1.0  # episodes: a@3-4, a@10, b@6
    m = evaluate(
        y=y,
        scores=scores,
        threshold=0.5,
        device_ids=dev,
        ts_ms=ts,
        failures=pd.DataFrame({"device_id": [], "ts_ms": []}),
        horizon_ms=6 * H,
    )
    span_days = 23 / 24
    assert abs(m["false_alarms_per_device_day"] - 3 / (2 * span_days)) < 1e-9
    assert m["precision"] == 0.0


def test_window_scores_per_device_count_missed_windows_and_alarms_outside() -> None:
    # Device a: a window at rows 2-3 caught one row late; device b: a window never flagged and
    # one alert outside any window.
    dev = np.array(["a"] * 6 + ["b"] * 6)
    ts = np.tile(np.arange(6) * H, 2)
    y = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0])
    flagged = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0], dtype=float)
    m = evaluate(
        y=y,
        scores=flagged,
        threshold=0.5,
        device_ids=dev,
        ts_ms=ts,
        failures=pd.DataFrame({"device_id": [], "ts_ms": []}),
        horizon_ms=6 * H,
    )
    assert m["windows"] == 2 and m["windows_detected"] == 1 and m["window_recall"] == 0.5
    assert m["window_lead_time_median_h"] == 1.0
    assert m["window_false_alarms_per_day"] == 1 / (2 * 5 / 24)
    assert m["far"] == 1 / 8 and m["mar"] == 3 / 4
