"""Drift of live features against a model card's reference distributions (pure, incremental).

Population stability index per feature: PSI = sum((a - e) * ln(a / e)) over the reference bins,
with live values outside the reference range counted in the outer bins and empty bins smoothed.
Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.ml.model_card import Histogram

PSI_THRESHOLD = 0.25
_EPS = 1e-4


def monitored(reference: dict[str, Histogram]) -> dict[str, Histogram]:
    """The reference features drift is measured on: all but the `count_<window>` features. A
    window's count follows its pane boundaries (its span runs from one pane short of the window
    to the whole window), the same for every device at a given time, so any window of minutes
    sits in one or two of its bins, far from the all-day reference, with no change in the data."""
    return {k: v for k, v in reference.items() if not k.startswith("count_")}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two distributions over the same bins (fractions or counts; normalised here)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.clip(e / max(e.sum(), _EPS), _EPS, None)
    a = np.clip(a / max(a.sum(), _EPS), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def bin_counts(hist: Histogram, values: np.ndarray) -> np.ndarray:
    """Counts of finite `values` in the bins of `hist` (out-of-range values go to the end bins)."""
    v = values[np.isfinite(values)]
    n_bins = len(hist.fractions)
    idx = np.searchsorted(np.asarray(hist.edges[1:-1], dtype=np.float64), v, side="right")
    return np.bincount(np.clip(idx, 0, n_bins - 1), minlength=n_bins).astype(np.float64)


@dataclass(slots=True)
class DriftWindow:
    """Live counts per referenced feature and the live alert rate, since the last report."""

    reference: dict[str, Histogram]
    feature_index: dict[str, int]
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    n_events: int = 0
    n_flagged: int = 0
    start_ms: int = 0

    def add(self, X: np.ndarray, flagged: np.ndarray, now_ms: int) -> None:
        """Add a batch of feature rows (columns per `feature_index`) and their decisions."""
        if self.n_events == 0:
            self.start_ms = now_ms
        self.n_events += len(X)
        self.n_flagged += int(np.count_nonzero(flagged))
        for name, hist in self.reference.items():
            col = self.feature_index.get(name)
            if col is None or len(hist.fractions) == 0:
                continue
            c = bin_counts(hist, X[:, col])
            prev = self.counts.get(name)
            self.counts[name] = c if prev is None else prev + c

    def psi_by_feature(self) -> dict[str, float]:
        return {
            name: psi(np.asarray(self.reference[name].fractions), c)
            for name, c in self.counts.items()
            if c.sum() > 0
        }

    @property
    def alert_rate(self) -> float:
        return self.n_flagged / self.n_events if self.n_events else 0.0

    def reset(self) -> None:
        self.counts.clear()
        self.n_events = 0
        self.n_flagged = 0
