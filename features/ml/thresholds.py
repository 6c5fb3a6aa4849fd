"""Decision thresholds fitted on training scores at a target alert rate."""

from __future__ import annotations

import numpy as np


def threshold_for_alert_rate(
    scores: np.ndarray, rate: float, weights: np.ndarray | None = None
) -> float:
    """The score at or above which a (weighted) fraction `rate` of the reference rows is flagged
    (the `1 - rate` quantile; NaN scores are ignored)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"alert rate must be in (0, 1), got {rate}")
    s = np.asarray(scores, dtype=np.float64)
    keep = np.isfinite(s)
    if not keep.any():
        raise ValueError("no finite score to fit a threshold on")
    if weights is None:
        return float(np.quantile(s[keep], 1.0 - rate))
    w = np.asarray(weights, dtype=np.float64)[keep]
    s = s[keep]
    order = np.argsort(s)
    cum = np.cumsum(w[order]) / np.sum(w)
    return float(s[order][min(int(np.searchsorted(cum, 1.0 - rate)), len(s) - 1)])
