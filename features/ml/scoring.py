"""One meaning of a model's score, shared by training, evaluation and serving."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from features.ml.detectors import AnomalyDetector, PerEntityDetector
from features.ml.forest import score_samples

ScoreKind = Literal["anomaly", "failure-risk"]


def scores(model: Any, X: Any, kind: ScoreKind, entities: np.ndarray | None = None) -> np.ndarray:
    """Scores of rows `X`; a row is flagged when its score is >= the model's threshold.

    anomaly: higher is more anomalous (`AnomalyDetector.anomaly_score`, given each row's entity
    key when the detector normalises per entity; for any other scikit-learn outlier detector or
    pipeline, the negated `score_samples`). failure-risk: P(failure), `predict_proba[:, 1]`.
    """
    if kind == "anomaly":
        if isinstance(model, AnomalyDetector | PerEntityDetector):
            return model.anomaly_score(X, entities)
        return -score_samples(model, X)  # compiled for an IsolationForest (features.ml.forest)
    if kind == "failure-risk":
        return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]
    raise ValueError(f"unknown score kind {kind!r}")
