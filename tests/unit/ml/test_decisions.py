"""Scores semantics, auto selection, the gate's decision and the label-leak check."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

from features.ml.detectors import ANOMALY_KINDS, make_detector
from features.ml.gate import challenger_wins
from features.ml.leakage import LabelLeakError, check_no_label_leak, leaked_features
from features.ml.scoring import scores
from features.ml.selection import fit_detector, select_auto, train_anomaly


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    return np.column_stack([t, t + 0.05 * rng.normal(size=n), rng.normal(size=n)])


def test_scores_one_meaning_for_every_model() -> None:
    X = _data(500, 0)
    ent = np.array(["a", "b"] * 250)
    det = make_detector("robust_z").fit(X, entities=ent)
    np.testing.assert_array_equal(scores(det, X, "anomaly", ent), det.anomaly_score(X, ent))
    assert det.needs_entities
    assert not make_detector("pca", normalise="global").needs_entities
    forest = IsolationForest(n_estimators=10, random_state=0).fit(X)
    np.testing.assert_array_equal(scores(forest, X, "anomaly"), -forest.score_samples(X))
    y = (X[:, 2] > 0).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    np.testing.assert_array_equal(scores(clf, X, "failure-risk"), clf.predict_proba(X)[:, 1])
    with pytest.raises(ValueError, match="unknown score kind"):
        scores(det, X, "risk")  # type: ignore[arg-type]


def test_fit_detector_learns_from_normal_rows_only() -> None:
    X = _data(1000, 1)
    X[:100] += 50.0
    labels = np.zeros(1000, dtype=int)
    labels[:100] = 1
    clean = fit_detector("robust_z", X, labels=labels, normalise="global")
    dirty = fit_detector("robust_z", X, normalise="global")
    assert np.mean(clean.anomaly_score(X[:100]) >= clean.threshold_) == 1.0
    assert clean.threshold_ < dirty.threshold_


def test_auto_keeps_the_best_validation_f1() -> None:
    train = _data(3000, 2)
    val = _data(1000, 3)
    y = np.zeros(1000, dtype=int)
    # Broken correlation between columns 0 and 1: PCA's Q sees it, per-column z does not.
    val[:50, 0], val[:50, 1] = 1.0, -1.0
    y[:50] = 1
    choice = select_auto(train, val, y, kinds=("robust_z", "pca"), normalise="global")
    assert choice.best.kind == "pca"
    by_kind = {c.kind: c.validation.f1 for c in choice.candidates}
    assert by_kind["pca"] > by_kind["robust_z"]
    assert "kept pca" in choice.reason


def test_auto_without_validation_labels_keeps_the_first_kind() -> None:
    choice = select_auto(_data(500, 4), _data(200, 5), np.zeros(200), kinds=("robust_z", "pca"))
    assert choice.best.kind == "robust_z"
    assert "no anomaly label" in choice.reason


def test_gate_ties_never_promote() -> None:
    assert not challenger_wins(0.5, 0.5, margin=0.0).promote
    assert not challenger_wins(0.52, 0.5, margin=0.02).promote
    assert challenger_wins(0.53, 0.5, margin=0.02).promote
    assert challenger_wins(0.3, None, margin=0.02).promote
    assert not challenger_wins(float("nan"), 0.1, margin=0.0).promote
    assert not challenger_wins(0.9, float("nan"), margin=0.0).promote
    # Lower is better (false alarms per day).
    assert challenger_wins(1.0, 2.0, margin=0.5, higher_is_better=False).promote
    assert not challenger_wins(2.0, 1.0, margin=0.0, higher_is_better=False).promote
    with pytest.raises(ValueError):
        challenger_wins(0.5, 0.4, margin=-0.1)


def test_label_columns_never_in_features() -> None:
    labels = ["anomaly", "changepoint"]
    ok = ["Voltage__mean_30s", "Thermocouple", "Voltage_per_Thermocouple"]
    check_no_label_leak(ok, labels)
    bad = ["anomaly", "changepoint__mean_30s", "Voltage_per_anomaly", "Voltage__std_10s"]
    assert leaked_features(bad, labels) == bad[:3]
    with pytest.raises(LabelLeakError, match="anomaly"):
        check_no_label_leak(bad, labels)


def test_train_anomaly_refuses_a_leaking_label_and_learns_validation_entities() -> None:
    train, val = _data(1000, 6), 100.0 + _data(400, 7)
    with pytest.raises(LabelLeakError):
        train_anomaly(
            "pca", train, val, None, feature_names=["a", "anomaly", "c"], label_columns=["anomaly"]
        )
    got = train_anomaly(
        "robust_z",
        train,
        val,
        None,
        feature_names=["a", "b", "c"],
        label_columns=["anomaly"],
        entities_train=np.array(["old"] * 1000),
        entities_val=np.array(["new"] * 400),
    )
    assert got.best.kind == "robust_z" and len(got.candidates) == 1
    # "new" sits 100 away from "old" but is judged against its own baseline: few alerts.
    assert got.best.validation.fp < 0.05 * 400
    every = train_anomaly("auto", train, val, None, feature_names=["a", "b", "c"])
    assert [c.kind for c in every.candidates] == list(ANOMALY_KINDS)
