"""Per-event (per-reading) detection metrics against 0/1 labels.

Definitions (as in SKAB): precision TP/(TP+FP), recall TP/(TP+FN), F1 their harmonic mean,
false-alarm rate FAR = FP/(FP+TN) (share of normal readings flagged), missed-alarm rate
MAR = FN/(FN+TP) (share of anomalous readings not flagged). A ratio with an empty denominator
is 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class EventMetrics:
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    far: float
    mar: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def event_metrics(y_true: np.ndarray, flagged: np.ndarray) -> EventMetrics:
    """Confusion counts and the ratios above; `y_true` and `flagged` are 0/1 (or bool) per row."""
    y = np.asarray(y_true).astype(bool)
    f = np.asarray(flagged).astype(bool)
    if y.shape != f.shape:
        raise ValueError(f"labels {y.shape} and flags {f.shape} differ in shape")
    tp = int(np.sum(f & y))
    fp = int(np.sum(f & ~y))
    fn = int(np.sum(~f & y))
    tn = int(np.sum(~f & ~y))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EventMetrics(
        tp, fp, fn, tn, precision, recall, f1, _ratio(fp, fp + tn), _ratio(fn, fn + tp)
    )
