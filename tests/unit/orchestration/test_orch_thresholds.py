from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_score

from features.ml.thresholds import threshold_for_alert_rate
from orchestration.defs.training.models import threshold_for_precision


def test_alert_rate_threshold_flags_that_fraction() -> None:
    scores = np.random.default_rng(0).normal(size=100_000)
    t = threshold_for_alert_rate(scores, 0.02)
    assert abs(np.mean(scores >= t) - 0.02) < 0.001


def test_precision_threshold_reaches_the_target_on_its_data() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(20_000) < 0.05
    scores = rng.normal(size=20_000) + 2.5 * y
    t = threshold_for_precision(y.astype(int), scores, 0.8)
    flagged = scores >= t
    assert precision_score(y, flagged) >= 0.8
    # The lowest such threshold: a slightly lower one would flag more rows.
    assert flagged.sum() > 0


def test_precision_threshold_without_positives_flags_nothing() -> None:
    scores = np.arange(10.0)
    t = threshold_for_precision(np.zeros(10, dtype=int), scores, 0.8)
    assert not np.any(scores >= t)
