"""What a model version carries for serving: drift references, fallback limits, the rule baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.model_card import Histogram, SensorLimits


def histograms(df: pd.DataFrame, columns: list[str], bins: int = 10) -> dict[str, Histogram]:
    """Quantile-binned reference distribution of each column (NaN excluded)."""
    out: dict[str, Histogram] = {}
    for c in columns:
        x = df[c].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size < 2:
            edges = np.array([x[0] - 0.5, x[0] + 0.5])
        counts, _ = np.histogram(x, bins=edges)
        out[c] = Histogram(edges=edges.tolist(), fractions=(counts / counts.sum()).tolist())
    return out


def sensor_limits(readings: pd.DataFrame, q: float = 0.001) -> dict[str, SensorLimits]:
    """Static per-sensor limits: the q and 1-q quantiles of the training readings (one
    column per sensor)."""
    out: dict[str, SensorLimits] = {}
    for s in readings.columns:
        x = readings[s].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            out[s] = SensorLimits(low=None, high=None)
            continue
        out[s] = SensorLimits(low=float(np.quantile(x, q)), high=float(np.quantile(x, 1 - q)))
    return out


def rule_scores(readings: pd.DataFrame, limits: dict[str, SensorLimits]) -> np.ndarray:
    """The rule baseline's score: the largest excess beyond a sensor's limits, in units of that
    sensor's allowed span (> 0 means some limit is broken)."""
    score = np.full(len(readings), -np.inf)
    for s, lim in limits.items():
        if lim.low is None or lim.high is None or s not in readings:
            continue
        span = max(lim.high - lim.low, 1e-9)
        x = readings[s].to_numpy(np.float64)
        excess = np.maximum((x - lim.high) / span, (lim.low - x) / span)
        score = np.fmax(score, excess)
    return np.where(np.isfinite(score), score, -1.0)
