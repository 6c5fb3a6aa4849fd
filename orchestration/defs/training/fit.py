"""Pure training of both models: fit, calibrate the threshold, score a frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from orchestration.defs.training.build import sample_rows
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


def fit_anomaly(
    train: pd.DataFrame, names: list[str], *, alert_rate: float, max_rows: int, seed: int
) -> Fitted:
    """IsolationForest on a sample of the training rows; threshold at the target alert rate."""
    # The forest sees max_samples rows per tree; the sample only sets the threshold.
    sample = train.sample(n=min(len(train), max_rows, 100_000), random_state=seed)
    model = anomaly_pipeline(seed=seed)
    model.fit(sample[names])
    scores = anomaly_scores(model, sample[names])
    return Fitted(
        model=model,
        threshold=threshold_for_alert_rate(scores, alert_rate),
        calibration_scores=scores,
        calibration_labels=sample["y_anomaly"].to_numpy(np.int8),
        train_rows=len(sample),
    )


def fit_failure(
    train: pd.DataFrame,
    names: list[str],
    *,
    target_precision: float,
    max_rows: int,
    seed: int,
    calibration_start_ms: int,
    shuffle_labels: bool = False,
) -> Fitted:
    """Gradient boosting on rows before `calibration_start_ms`, threshold for the target precision
    on the rows after it (a later, untouched slice of time)."""
    data = train.copy()
    if shuffle_labels:
        data["y_failure"] = np.random.default_rng(seed).permutation(data["y_failure"].to_numpy())
    fit_part = data[data["ts_ms"] < calibration_start_ms]
    calib = data[data["ts_ms"] >= calibration_start_ms]
    if fit_part["y_failure"].nunique() < 2:
        raise ValueError("the training days hold no failure within the horizon (or only failures)")
    sample = sample_rows(fit_part, "y_failure", max_rows, seed)
    # Negatives were sub-sampled: weight them back so that scores stay probabilities.
    neg_total = int((fit_part["y_failure"] != 1).sum())
    neg_kept = max(int((sample["y_failure"] != 1).sum()), 1)
    weight = np.where(sample["y_failure"].to_numpy() == 1, 1.0, neg_total / neg_kept)
    model = failure_pipeline(seed=seed)
    model.fit(sample[names], sample["y_failure"].to_numpy(), boost__sample_weight=weight)
    y_cal = calib["y_failure"].to_numpy(np.int8)
    scores = failure_scores(model, calib[names])
    return Fitted(
        model=model,
        threshold=threshold_for_precision(y_cal, scores, target_precision),
        calibration_scores=scores,
        calibration_labels=y_cal,
        train_rows=len(sample),
    )
