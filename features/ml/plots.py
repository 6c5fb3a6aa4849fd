"""Figures of an evaluation, as pure functions returning matplotlib Figures (nothing is shown or
saved here; the caller logs or writes them). matplotlib is imported when a figure is drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from features.ml.windows import Window

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def score_timeline(
    ts_ms: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    windows: Sequence[Window] = (),
    labels: np.ndarray | None = None,
    values: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """Scores over time with the threshold, anomaly windows shaded, labelled rows marked and
    (optionally) the raw values above."""
    fig = _figure(10, 4.5 if values is not None else 3)
    axes = fig.subplots(2 if values is not None else 1, 1, sharex=True, squeeze=False)[:, 0]
    t = np.asarray(ts_ms, dtype="datetime64[ms]")
    if values is not None:
        axes[0].plot(t, values, lw=0.6, color="0.3")
        axes[0].set_ylabel("value")
    ax = axes[-1]
    ax.plot(t, scores, lw=0.6, color="tab:blue", label="score")
    ax.axhline(threshold, color="tab:red", lw=0.8, ls="--", label="threshold")
    flagged = np.asarray(scores) >= threshold
    ax.plot(t[flagged], np.asarray(scores)[flagged], ".", ms=2, color="tab:red", label="alert")
    for a in axes:
        for w in windows:
            a.axvspan(
                np.datetime64(w.start_ms, "ms"),
                np.datetime64(w.end_ms, "ms"),
                color="tab:orange",
                alpha=0.2,
                lw=0,
            )
    if labels is not None:
        y = np.asarray(labels).astype(bool)
        ax.plot(t[y], np.full(int(y.sum()), threshold), "|", color="tab:orange", label="label")
    ax.set_ylabel("anomaly score")
    ax.legend(loc="upper left", fontsize=7)
    axes[0].set_title(title)
    return fig


def score_histogram(
    scores: np.ndarray, labels: np.ndarray, threshold: float, title: str = ""
) -> Figure:
    """Score distributions of normal and anomalous rows, and the threshold."""
    fig = _figure(6, 3)
    ax = fig.subplots()
    s, y = np.asarray(scores), np.asarray(labels).astype(bool)
    finite = np.isfinite(s)
    bins: list[float] | int = (
        np.histogram_bin_edges(s[finite], bins=60).tolist() if finite.any() else 10
    )
    ax.hist(s[finite & ~y], bins=bins, alpha=0.6, density=True, label="normal")
    if (finite & y).any():
        ax.hist(s[finite & y], bins=bins, alpha=0.6, density=True, label="anomaly")
    ax.axvline(threshold, color="tab:red", ls="--", lw=0.8, label="threshold")
    ax.set_xlabel("anomaly score")
    ax.legend(fontsize=7)
    ax.set_title(title)
    return fig


def metric_bars(
    results: Mapping[str, Mapping[str, float]], metrics: Sequence[str], title: str = ""
) -> Figure:
    """Grouped bars: one group per metric, one bar per model (e.g. model vs baseline)."""
    fig = _figure(1.6 + 1.4 * len(metrics), 3)
    ax = fig.subplots()
    names = list(results)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        vals = [float(results[name].get(m, np.nan)) for m in metrics]
        bars = ax.bar(x + i * width, vals, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x + width * (len(names) - 1) / 2, list(metrics))
    ax.legend(fontsize=7)
    ax.set_title(title)
    return fig
