"""Per-event metrics, window scoring and the windowed-Gaussian baseline on hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.ml.gaussian import windowed_gaussian_scores
from features.ml.metrics import event_metrics
from features.ml.windows import (
    HOUR_MS,
    Window,
    combine,
    labels_from_windows,
    load_nab_windows,
    window_scores,
    window_scores_by_entity,
    windows_from_labels,
)


def test_event_metrics_by_hand() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    f = np.array([1, 0, 0, 0, 0, 0, 1, 1, 1, 0])
    m = event_metrics(y, f)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 1, 5)
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 4)
    assert m.f1 == pytest.approx(3 / 4)
    assert m.far == pytest.approx(1 / 6)
    assert m.mar == pytest.approx(1 / 4)


def test_event_metrics_empty_denominators_are_zero() -> None:
    m = event_metrics(np.zeros(5), np.zeros(5))
    assert (m.precision, m.recall, m.f1, m.far, m.mar) == (0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        event_metrics(np.zeros(5), np.zeros(4))


def test_window_scoring_on_a_tiny_case() -> None:
    # 49 hourly rows (two days); windows at hours 10-14 and 30-34.
    ts = np.arange(49) * HOUR_MS
    windows = [Window(10 * HOUR_MS, 14 * HOUR_MS), Window(30 * HOUR_MS, 34 * HOUR_MS)]
    f = np.zeros(49, dtype=bool)
    f[[2, 3]] = True  # one false alarm episode (two rows)
    f[[9, 10, 11]] = True  # starts before window 1, runs into it: detection at hour 10, lead 0
    f[[12]] = True  # same window again: still one detection
    f[[20]] = True  # a second false alarm
    # window 2 missed
    s = window_scores(ts, f, windows)
    assert (s.windows, s.detected, s.false_alarms) == (2, 1, 2)
    assert s.days == pytest.approx(2.0)
    assert s.false_alarms_per_day == pytest.approx(1.0)
    assert s.lead_times_h == [0.0]
    f[32] = True
    s2 = window_scores(ts[::-1], f[::-1], windows)  # order of rows does not matter
    assert s2.detected == 2
    assert s2.lead_times_h == [0.0, 2.0]
    assert s2.median_lead_time_h == pytest.approx(1.0)


def test_combine_and_by_entity() -> None:
    ts = np.concatenate([np.arange(25), np.arange(25)]) * HOUR_MS
    ent = np.array(["a"] * 25 + ["b"] * 25)
    f = np.zeros(50, dtype=bool)
    f[[5, 30]] = True  # a: hour 5 (in its window), b: hour 5 (no window: false alarm)
    per = window_scores_by_entity(ent, ts, f, {"a": [Window(4 * HOUR_MS, 6 * HOUR_MS)]})
    assert per["a"].detected == 1 and per["a"].false_alarms == 0
    assert per["b"].windows == 0 and per["b"].false_alarms == 1
    total = combine(per.values())
    assert (total.windows, total.detected, total.false_alarms) == (1, 1, 1)
    assert total.false_alarms_per_day == pytest.approx(1 / 2)
    assert total.lead_times_h == [1.0]


def test_windows_and_labels_round_trip() -> None:
    ts = np.arange(10) * 1000
    y = np.array([0, 1, 1, 0, 0, 1, 0, 0, 1, 1])
    w = windows_from_labels(ts, y)
    assert w == [Window(1000, 2000), Window(5000, 5000), Window(8000, 9000)]
    np.testing.assert_array_equal(labels_from_windows(ts, w), y)


def test_load_nab_windows(tmp_path: Path) -> None:
    path = tmp_path / "windows.json"
    path.write_text(
        json.dumps(
            {
                "realKnownCause/x.csv": [
                    ["2014-01-01 00:00:00.000000", "2014-01-01 01:00:00.000000"]
                ],
                "realKnownCause/y.csv": [],
            }
        )
    )
    got = load_nab_windows(path)
    start = 1388534400000  # 2014-01-01T00:00:00Z
    assert got == {
        "realKnownCause/x.csv": [Window(start, start + HOUR_MS)],
        "realKnownCause/y.csv": [],
    }


def test_windowed_gaussian_by_hand() -> None:
    x = np.array([1.0, 3.0, 1.0, 3.0, 10.0, 2.0])
    z = windowed_gaussian_scores(x, window=4, min_periods=2)
    # row 4: previous 4 values 1,3,1,3: mean 2, std 1 -> |10 - 2| / 1 = 8
    assert z[4] == pytest.approx(8.0)
    # row 5: previous 3,1,3,10: mean 4.25, std sqrt(mean((x-4.25)^2))
    prev = np.array([3.0, 1.0, 3.0, 10.0])
    assert z[5] == pytest.approx(abs(2.0 - prev.mean()) / prev.std())
    assert z[0] == 0.0 and z[1] == 0.0  # fewer than min_periods earlier values
    assert windowed_gaussian_scores(np.ones(10), window=3, min_periods=2)[5] == 0.0  # std 0
