"""The two model pipelines and how their decision thresholds are calibrated."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import precision_recall_curve
from sklearn.pipeline import Pipeline

from orchestration.defs.dataset import SPEC

#: Registered names of the dataset's models (the spec's; the fleet keeps `iot-anomaly` and
#: `iot-failure-risk`).
ANOMALY_MODEL = SPEC.anomaly_model_name
FAILURE_MODEL = SPEC.failure_model_name or f"{SPEC.name}.failure-risk"


def anomaly_pipeline(*, seed: int, n_estimators: int = 150, max_samples: int = 512) -> Pipeline:
    """Median imputation, then an IsolationForest (NaN features are fine)."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            (
                "forest",
                IsolationForest(
                    n_estimators=n_estimators, max_samples=max_samples, random_state=seed, n_jobs=1
                ),
            ),
        ]
    )


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


def anomaly_scores(model: Pipeline, X: object) -> np.ndarray:
    """Higher is more anomalous (the negated IsolationForest score_samples)."""
    return -np.asarray(model.score_samples(X), dtype=np.float64)


def failure_scores(model: Pipeline, X: object) -> np.ndarray:
    """Probability of a failure within the horizon."""
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def threshold_for_alert_rate(
    scores: np.ndarray, rate: float, weights: np.ndarray | None = None
) -> float:
    """The score above which a (weighted) fraction `rate` of the reference rows is flagged."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"alert rate must be in (0, 1), got {rate}")
    if weights is None:
        return float(np.quantile(scores, 1.0 - rate))
    order = np.argsort(scores)
    cum = np.cumsum(weights[order]) / np.sum(weights)
    return float(scores[order][np.searchsorted(cum, 1.0 - rate)])


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
