"""The failure-risk pipeline, and how decision thresholds are calibrated (the anomaly models
are `features.ml`'s detectors: `training/fit.py`)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import precision_recall_curve
from sklearn.pipeline import Pipeline


def failure_pipeline(*, seed: int, max_iter: int = 120, learning_rate: float = 0.1) -> Pipeline:
    """Median imputation, then gradient-boosted trees with balanced class weights."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            (
                "boost",
                HistGradientBoostingClassifier(
                    max_iter=max_iter,
                    learning_rate=learning_rate,
                    early_stopping=False,
                    l2_regularization=1.0,
                    max_leaf_nodes=15,
                    min_samples_leaf=100,
                    max_bins=63,
                    random_state=seed,
                ),
            ),
        ]
    )


def failure_scores(model: Pipeline, X: object) -> np.ndarray:
    """Probability of a failure within the horizon."""
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def threshold_for_precision(
    y: np.ndarray, scores: np.ndarray, target: float, weights: np.ndarray | None = None
) -> float:
    """The lowest threshold whose (weighted) precision reaches `target`, else the best-F1 one."""
    if int(np.sum(y)) == 0:
        return float(np.max(scores)) + 1e-9
    precision, recall, thresholds = precision_recall_curve(y, scores, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]
    ok = np.flatnonzero((precision >= target) & (recall > 0))
    if ok.size:
        return float(thresholds[ok[0]])
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1))])
