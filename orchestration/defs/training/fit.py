"""Pure training of both models: fit, calibrate the threshold, score a frame.

The anomaly model is a `features.ml` detector of the spec's kind (`auto`: every kind fitted on
the earlier training rows, the best validation F1 on the latest `holdout` share of them kept,
then refitted on all training rows), on the spec's input (window features, or the raw values:
each sensor's `__last` feature, which the scorer computes too) with the spec's normalisation.
Rows labelled anomalous are left out of the fit; the threshold flags `alert_rate` of the normal
training rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.ml.detectors import AnomalyDetector, PerEntityDetector
from features.ml.leakage import check_no_label_leak
from features.ml.selection import fit_detector, train_anomaly
from orchestration.defs.training.models import (
    failure_pipeline,
    failure_scores,
    threshold_for_precision,
)
from orchestration.defs.training.params import TrainParams

#: Per-kind parameters of the detectors (the fleet's forest keeps its 150 trees of 512 rows).
KIND_PARAMS: dict[str, dict[str, Any]] = {
    "isolation_forest": {"n_estimators": 150, "max_samples": 512}
}


@dataclass(frozen=True, slots=True)
class Fitted:
    """A fitted model, its decision threshold and what calibration saw."""

    model: Any
    threshold: float
    calibration_scores: np.ndarray
    calibration_labels: np.ndarray
    train_rows: int
    #: The anomaly detector kind fitted and why (auto: the validation figures of every kind).
    algorithm: str = ""
    reason: str = ""
    validation: dict[str, dict[str, float]] = field(default_factory=dict)


def raw_feature_names(sensors: tuple[str, ...] | list[str], feature_names: list[str]) -> list[str]:
    """The features that are the raw sensor values (`<sensor>__last`, computed by the scorer
    too); a feature set without them cannot serve a raw-input model."""
    names = [f"{s}__last" for s in sensors]
    missing = [n for n in names if n not in feature_names]
    if missing:
        raise ValueError(
            f"models.anomaly.input: raw needs the features {missing[:3]}: keep `last` in "
            "features.sensor_aggs"
        )
    return names


def _entities(frame: pd.DataFrame, params: TrainParams) -> np.ndarray | None:
    return frame["device_id"].astype(str).to_numpy() if params.normalise == "entity" else None


def _labels(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly labels (0 where unknown) and which rows have a known label."""
    y = frame["y_anomaly"].to_numpy(np.int8)
    known = frame["y_known"].to_numpy(bool) if "y_known" in frame else np.ones(len(y), bool)
    return np.where(known, y, 0).astype(np.int8), known


def validation_cut(ts_ms: np.ndarray, share: float) -> int:
    """The event time from which the latest `share` of the rows are the validation split."""
    ts = np.sort(ts_ms)
    return int(ts[min(len(ts) - 1, int(np.floor(len(ts) * (1.0 - share))))])


def fit_anomaly(
    train: pd.DataFrame,
    names: list[str],
    params: TrainParams,
    *,
    seed: int,
    label_columns: tuple[str, ...] = (),
) -> Fitted:
    """The anomaly detector of the spec's kind on the (weighted) training rows (module doc)."""
    X = train[names].to_numpy(np.float64)
    ent = _entities(train, params)
    y, known = _labels(train)
    w = train["weight"].to_numpy(np.float64) if "weight" in train else None
    common: dict[str, Any] = {
        "alert_rate": params.alert_rate,
        "normalise": params.normalise,
        "seed": seed,
    }
    kind, reason, validation = params.anomaly_kind, "the spec's kind", {}
    if kind == "auto":
        ts = train["ts_ms"].to_numpy(np.int64)
        val = ts >= validation_cut(ts, params.holdout)
        if val.all() or not val.any():
            raise ValueError(f"auto: {len(ts)} training rows are too few to validate on")
        scored = val & known
        choice = train_anomaly(
            "auto",
            X[~val],
            X[scored],
            y[scored],
            feature_names=names,
            label_columns=label_columns,
            entities_train=None if ent is None else ent[~val],
            entities_val=None if ent is None else ent[scored],
            labels_train=y[~val],
            kind_params=KIND_PARAMS,
            **common,
        )
        kind, reason = choice.best.kind, choice.reason
        validation = {c.kind: c.validation.as_dict() for c in choice.candidates}
    else:
        check_no_label_leak(names, label_columns)
    model: AnomalyDetector | PerEntityDetector
    if params.per_entity:
        # One detector per entity (each at the alert rate of its own normal rows).
        ent = train["device_id"].astype(str).to_numpy()
        normal = y == 0
        model = PerEntityDetector(kind=kind, params=KIND_PARAMS.get(kind), **common).fit(
            X[normal], entities=ent[normal], sample_weight=None if w is None else w[normal]
        )
        reason += "; one model per entity"
    else:
        model = fit_detector(
            kind,
            X,
            entities=ent,
            labels=y,
            sample_weight=w,
            **common,
            **KIND_PARAMS.get(kind, {}),
        )
    scores = model.anomaly_score(X, ent)
    return Fitted(
        model=model,
        threshold=float(model.threshold_),
        calibration_scores=scores,
        calibration_labels=y,
        train_rows=len(train),
        algorithm=kind,
        reason=reason,
        validation=validation,
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
