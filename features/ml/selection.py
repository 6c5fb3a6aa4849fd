"""Fitting a detector, and `auto`: fit every kind and keep the best on the validation split.

`train_anomaly` is what a training pipeline calls: the label-leak check, then one kind or `auto`,
fitted on the training split and judged on the validation split.

`fit_detector` trains on the rows taken as normal: when labels are known, rows labelled 1 are
left out of the fit (the detector learns normal behaviour; the threshold is the alert-rate
quantile of normal training rows). `select_auto` fits each kind in `ANOMALY_KINDS`, scores the
validation rows at each detector's own threshold and keeps the highest validation F1; a tie keeps
the kind listed first. Validation rows with no anomaly label give F1 = 0 for every kind, so
`auto` then keeps the first kind (`pca`) and says so in `reason`. Entities first seen in the validation split get
their baseline from their own validation rows (`AnomalyDetector.add_entities`): with a time-based
hold-out, a file-named dataset's latest files are all new entities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.ml.detectors import ANOMALY_KINDS, AnomalyDetector, as_matrix, make_detector
from features.ml.leakage import check_no_label_leak
from features.ml.metrics import EventMetrics, event_metrics


def fit_detector(
    kind: str,
    X: Any,
    *,
    entities: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    **params: Any,
) -> AnomalyDetector:
    """A detector of `kind` fitted on the rows of `X` not labelled anomalous."""
    A = as_matrix(X)
    keep = np.ones(len(A), dtype=bool) if labels is None else ~np.asarray(labels).astype(bool)
    ent = None if entities is None else np.asarray(entities)[keep]
    w = None if sample_weight is None else np.asarray(sample_weight)[keep]
    return make_detector(kind, **params).fit(A[keep], entities=ent, sample_weight=w)


@dataclass(frozen=True)
class Candidate:
    kind: str
    model: AnomalyDetector
    validation: EventMetrics


@dataclass(frozen=True)
class AutoChoice:
    best: Candidate
    candidates: list[Candidate]
    reason: str


def select_auto(
    X_train: Any,
    X_val: Any,
    y_val: np.ndarray,
    *,
    entities_train: np.ndarray | None = None,
    entities_val: np.ndarray | None = None,
    labels_train: np.ndarray | None = None,
    kinds: tuple[str, ...] = ANOMALY_KINDS,
    kind_params: Mapping[str, Mapping[str, Any]] | None = None,
    **params: Any,
) -> AutoChoice:
    """Fit each of `kinds` and keep the one with the best validation F1 (see module doc).
    `params` go to every kind, `kind_params[kind]` to that kind only (e.g. trees of a forest)."""
    if not kinds:
        raise ValueError("auto needs at least one model kind")
    found: list[Candidate] = []
    for kind in kinds:
        extra = dict((kind_params or {}).get(kind, {}))
        model = fit_detector(
            kind, X_train, entities=entities_train, labels=labels_train, **params, **extra
        )
        if entities_val is not None:
            model.add_entities(X_val, entities_val)  # an entity first seen in validation
        flags = model.anomaly_score(X_val, entities_val) >= model.threshold_
        found.append(Candidate(kind, model, event_metrics(y_val, flags)))
    if not np.asarray(y_val).astype(bool).any():
        return AutoChoice(found[0], found, f"no anomaly label in validation: kept {kinds[0]}")
    best = max(found, key=lambda c: c.validation.f1)  # max keeps the first of equals
    scores = ", ".join(f"{c.kind} {c.validation.f1:.3f}" for c in found)
    return AutoChoice(best, found, f"validation F1: {scores}; kept {best.kind}")


def train_anomaly(
    kind: str,
    X_train: Any,
    X_val: Any,
    y_val: np.ndarray | None,
    *,
    feature_names: list[str],
    label_columns: Sequence[str] = (),
    entities_train: np.ndarray | None = None,
    entities_val: np.ndarray | None = None,
    labels_train: np.ndarray | None = None,
    kind_params: Mapping[str, Mapping[str, Any]] | None = None,
    **params: Any,
) -> AutoChoice:
    """Train the anomaly model of a dataset: `kind` is one of `ANOMALY_KINDS` or `auto`.

    Refuses features that leak a label column; leaves labelled rows out of the fit; the chosen
    model knows the baselines of the validation entities too. `y_val` None: no labels.
    """
    check_no_label_leak(feature_names, label_columns)
    kinds = ANOMALY_KINDS if kind == "auto" else (kind,)
    y = np.zeros(len(as_matrix(X_val)), dtype=np.int8) if y_val is None else y_val
    return select_auto(
        X_train,
        X_val,
        y,
        entities_train=entities_train,
        entities_val=entities_val,
        labels_train=labels_train,
        kinds=kinds,
        kind_params=kind_params,
        **params,
    )
