"""Plots are pure: a Figure comes back with what was asked drawn on it."""

from __future__ import annotations

import numpy as np

from features.ml.plots import metric_bars, score_histogram, score_timeline
from features.ml.windows import HOUR_MS, Window


def test_score_timeline_draws_scores_threshold_windows_and_values() -> None:
    ts = np.arange(100) * HOUR_MS
    s = np.sin(np.arange(100) / 5.0)
    fig = score_timeline(
        ts, s, 0.9, windows=[Window(10 * HOUR_MS, 20 * HOUR_MS)], values=s * 3, title="t"
    )
    top, bottom = fig.axes
    assert len(bottom.lines) == 3  # scores, threshold, alerts
    assert bottom.lines[1].get_ydata()[0] == 0.9
    alerts = bottom.lines[2].get_ydata()
    assert len(alerts) == int(np.sum(s >= 0.9))
    assert len(top.patches) == 1 and len(bottom.patches) == 1  # the window, on both axes
    assert top.get_title() == "t"


def test_histogram_and_bars() -> None:
    s = np.concatenate([np.zeros(50), np.ones(10)])
    y = np.concatenate([np.zeros(50), np.ones(10)])
    ax = score_histogram(s, y, 0.5).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["normal", "anomaly", "threshold"]
    bars = metric_bars({"model": {"f1": 0.5, "far": 0.1}, "baseline": {"f1": 0.2}}, ["f1", "far"])
    heights = [p.get_height() for p in bars.axes[0].patches]
    assert heights[:3] == [0.5, 0.1, 0.2]
