"""Pure training of both models: fit, calibrate the threshold, score a frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from orchestration.defs.training.models import (
    anomaly_pipeline,
    anomaly_scores,
    failure_pipeline,
    failure_scores,
    threshold_for_alert_rate,
    threshold_for_precision,
)


@dataclass(frozen=True, slots=True)
class Fitted:
    """A fitted pipeline, its decision threshold and what calibration saw."""

    model: Pipeline
    threshold: float
    calibration_scores: np.ndarray
    calibration_labels: np.ndarray
    train_rows: int


def fit_anomaly(train: pd.DataFrame, names: list[str], *, alert_rate: float, seed: int) -> Fitted:
    """IsolationForest on the (weighted) training sample; threshold at the target alert rate."""
    w = train["weight"].to_numpy(np.float64) if "weight" in train else None
    model = anomaly_pipeline(seed=seed)
    model.fit(train[names], forest__sample_weight=w)
    scores = anomaly_scores(model, train[names])
    return Fitted(
        model=model,
        threshold=threshold_for_alert_rate(scores, alert_rate, w),
        calibration_scores=scores,
        calibration_labels=train["y_anomaly"].to_numpy(np.int8),
        train_rows=len(train),
    )


def fit_failure(
    train: pd.DataFrame,
    names: list[str],
    *,
    target_precision: float,
    seed: int,
    calibration_start_ms: int,
    shuffle_labels: bool = False,
) -> Fitted:
    """Gradient boosting on the rows before `calibration_start_ms`; threshold for the target
    precision on the rows after it (a later, untouched slice of time); rows carry weights."""
    data = train.copy()
    if shuffle_labels:
        data["y_failure"] = np.random.default_rng(seed).permutation(data["y_failure"].to_numpy())
    if "weight" not in data:
        data["weight"] = 1.0
    fit_part = data[data["ts_ms"] < calibration_start_ms]
    calib = data[data["ts_ms"] >= calibration_start_ms]
    if fit_part["y_failure"].nunique() < 2:
        raise ValueError("the training days hold no failure within the horizon (or only failures)")
    model = failure_pipeline(seed=seed)
    # One OpenMP thread: on a shared 2-core machine more threads spin and run slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(
            fit_part[names],
            fit_part["y_failure"].to_numpy(),
            boost__sample_weight=fit_part["weight"].to_numpy(),
        )
    y_cal = calib["y_failure"].to_numpy(np.int8)
    scores = failure_scores(model, calib[names])
    return Fitted(
        model=model,
        threshold=threshold_for_precision(
            y_cal, scores, target_precision, calib["weight"].to_numpy()
        ),
        calibration_scores=scores,
        calibration_labels=y_cal,
        train_rows=len(fit_part),
    )
