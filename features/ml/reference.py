"""What a model version carries for serving, computed once here for training, tests and benches:
reference histograms (drift and reason codes), fallback limits, and the one rule score.

The rule score is what the scorer's fallback serves and what the gate's "rules" baseline is
evaluated with: per sensor, how far the value lies beyond its limits, in units of the allowed
span when both limits exist, else of the one limit's magnitude (1 when it is 0); the reading's
score is the largest such excess over its sensors, 0 when every value is inside (or missing).
A reading is flagged exactly when its score is > 0."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.ml.model_card import Histogram, SensorLimits


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


#: Rule scores at or above this flag a reading (any score > 0).
RULE_THRESHOLD: float = float(np.nextafter(0.0, 1.0))


def limit_scale(lim: SensorLimits) -> float:
    """The unit a limit's excess is measured in: the allowed span, else the bound's magnitude."""
    if lim.low is not None and lim.high is not None:
        return max(lim.high - lim.low, 1e-9)
    bound = lim.high if lim.high is not None else lim.low
    return abs(bound) if bound else 1.0


def limit_excess(x: Any, lim: SensorLimits) -> Any:
    """How far `x` (a value or an array) is beyond `lim`, in `limit_scale` units: > 0 outside,
    0 inside, for a missing (NaN) value, or when the sensor has no limit."""
    scale = limit_scale(lim)
    excess = np.zeros_like(x, dtype=np.float64)
    if lim.high is not None:
        excess = np.fmax(excess, (x - lim.high) / scale)
    if lim.low is not None:
        excess = np.fmax(excess, (lim.low - x) / scale)
    return excess


def rule_scores(
    values: pd.DataFrame | Mapping[str, np.ndarray], limits: Mapping[str, SensorLimits]
) -> np.ndarray:
    """The rule score of each row of `values` (one column per sensor; sensors without a column
    or without limits do not count)."""
    n = len(values) if isinstance(values, pd.DataFrame) else len(next(iter(values.values()), []))
    score = np.zeros(n, dtype=np.float64)
    for s, lim in limits.items():
        if s in values:
            score = np.fmax(score, limit_excess(np.asarray(values[s], dtype=np.float64), lim))
    return score
