"""Detectors: thresholds at the target rate, T²/Q by hand, per-entity normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from features.ml.detectors import (
    ANOMALY_KINDS,
    IsolationForestDetector,
    PCADetector,
    RobustZDetector,
    make_detector,
)


def _correlated(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mixing = np.array([[1.0, 0.5, 0.0, 2.0], [0.0, 1.0, 1.0, -1.0]])
    return latent @ mixing + 0.1 * rng.normal(size=(n, 4))


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2])
def test_threshold_flags_the_target_rate_of_training_rows(kind: str, rate: float) -> None:
    X = _correlated(4000)
    model = make_detector(kind, alert_rate=rate).fit(X)
    flagged = np.mean(model.anomaly_score(X) >= model.threshold_)
    assert abs(flagged - rate) <= 0.1 * rate + 1 / len(X)


def test_weighted_threshold_counts_weights() -> None:
    X = _correlated(2000)
    w = np.ones(len(X))
    w[:1000] = 3.0  # the first half weighs three times as much
    model = RobustZDetector(alert_rate=0.1).fit(X, sample_weight=w)
    flagged = model.anomaly_score(X) >= model.threshold_
    assert abs(np.sum(w[flagged]) / np.sum(w) - 0.1) < 0.01


def test_pca_t2_and_q_match_a_hand_computation() -> None:
    X = _correlated(3000)
    model = PCADetector(normalise="none", n_components=2).fit(X)
    # By hand: standardise, eigen-decompose the covariance, keep the two largest components.
    mean, sd = X.mean(axis=0), X.std(axis=0)
    S = (X - mean) / sd
    cov = S.T @ S / (len(S) - 1)
    vals, vecs = np.linalg.eigh(cov)
    top = np.argsort(vals)[::-1][:2]
    P, lam = vecs[:, top], vals[top]
    new = np.array([[3.0, -1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    Sn = (new - mean) / sd
    t2_hand = np.sum((Sn @ P) ** 2 / lam, axis=1)
    q_hand = np.sum((Sn - Sn @ P @ P.T) ** 2, axis=1)
    t2, q = model.t2_q(new)
    np.testing.assert_allclose(t2, t2_hand, rtol=1e-6)
    np.testing.assert_allclose(q, q_hand, rtol=1e-6)
    expected = np.maximum(t2_hand / model.t2_limit_, q_hand / model.q_limit_)
    np.testing.assert_allclose(model.anomaly_score(new), expected, rtol=1e-6)


def test_pca_sees_a_broken_correlation_that_per_column_z_misses() -> None:
    X = _correlated(4000)
    odd = X[:1].copy()
    odd[0, :] = [1.0, -1.0, 1.0, -1.0]  # each value ordinary, together impossible
    pca = PCADetector(normalise="global", n_components=2).fit(X)
    rz = RobustZDetector(normalise="global").fit(X)
    assert pca.anomaly_score(odd)[0] > 3 * pca.threshold_
    assert rz.anomaly_score(odd)[0] < rz.threshold_


def test_robust_z_is_max_abs_deviation_in_mad_units() -> None:
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]])
    model = RobustZDetector(normalise="global", alert_rate=0.2).fit(X)
    # median (3, 30), MAD (1, 10) -> scale 1.4826 * MAD
    z = model.anomaly_score(np.array([[3.0, 60.0], [6.0, 30.0]]))
    np.testing.assert_allclose(z, [30 / (1.4826 * 10), 3 / 1.4826])
    assert RobustZDetector(normalise="global", combine="rms").fit(X).anomaly_score(
        np.array([[3.0 + 1.4826, 30.0 + 14.826]])
    )[0] == pytest.approx(1.0)


def test_iforest_on_raw_values_is_plain_isolation_forest() -> None:
    X = _correlated(1000)
    ours = IsolationForestDetector(normalise="none", n_estimators=50, seed=3).fit(X)
    plain = IsolationForest(n_estimators=50, max_samples=256, random_state=3).fit(X)
    np.testing.assert_allclose(ours.anomaly_score(X), -plain.score_samples(X))
    np.testing.assert_allclose(ours.score_samples(X), plain.score_samples(X))


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_one_model_serves_entities_of_any_scale(kind: str) -> None:
    small, large = _correlated(3000, seed=1), 1000.0 + 500.0 * _correlated(3000, seed=2)
    X = np.vstack([small, large])
    entities = np.array(["small"] * 3000 + ["large"] * 3000)
    model = make_detector(kind, alert_rate=0.02).fit(X, entities=entities)
    flags = model.anomaly_score(X, entities) >= model.threshold_
    # Each entity is flagged at about the target rate, not all of one and none of the other.
    assert 0.005 < flags[:3000].mean() < 0.05
    assert 0.005 < flags[3000:].mean() < 0.05
    # A jump of 8 standard units is an anomaly in either entity.
    jump = np.array([[8.0, 8.0, 8.0, 8.0]]) * X[:3000].std(axis=0)
    assert model.anomaly_score(small[:1] + jump, np.array(["small"]))[0] > model.threshold_
    big_jump = large[:1] + 500.0 * jump
    assert model.anomaly_score(big_jump, np.array(["large"]))[0] > model.threshold_


def test_unseen_entity_uses_the_global_baseline_until_added() -> None:
    X = np.vstack([_correlated(500, 1), 10 + _correlated(500, 2)])
    entities = np.array(["a"] * 500 + ["b"] * 500)
    model = RobustZDetector().fit(X, entities=entities)
    new = 1000.0 + _correlated(300, 3)
    unseen = model.anomaly_score(new, np.array(["c"] * 300))
    assert model.baseline_ is not None
    by_global = np.max(np.abs(model.baseline_.transform_global(new) - model.center_), axis=1)
    np.testing.assert_allclose(unseen, by_global)
    np.testing.assert_allclose(
        model.baseline_.global_center, np.median([[0.0] * 4, [10.0] * 4], axis=0), atol=0.2
    )
    assert np.all(unseen > model.threshold_)  # 1000 away from every training entity
    model.add_entities(new, np.array(["c"] * 300))
    after = model.anomaly_score(new, np.array(["c"] * 300))
    assert np.mean(after >= model.threshold_) < 0.05
    # Known entities keep their own baselines.
    fresh = RobustZDetector().fit(X, entities=entities)
    np.testing.assert_allclose(model.anomaly_score(X, entities), fresh.anomaly_score(X, entities))


def test_nan_features_are_imputed_with_the_training_median() -> None:
    X = _correlated(1000)
    model = PCADetector(normalise="global").fit(X)
    row = X[:1].copy()
    row[0, 2] = np.nan
    filled = row.copy()
    filled[0, 2] = np.median(X[:, 2])
    np.testing.assert_allclose(model.anomaly_score(row), model.anomaly_score(filled), rtol=1e-9)


def test_iforest_is_an_alias_of_isolation_forest() -> None:
    assert isinstance(make_detector("iforest"), IsolationForestDetector)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown anomaly model kind 'forest'"):
        make_detector("forest")
    with pytest.raises(ValueError, match="alert rate"):
        make_detector("pca", alert_rate=1.5).fit(_correlated(100))
    model = make_detector("pca").fit(_correlated(100))
    with pytest.raises(ValueError, match="expected 4 columns"):
        model.anomaly_score(np.zeros((3, 2)))


def test_one_model_per_entity_judges_each_entity_on_its_own_scale() -> None:
    from features.ml.detectors import PerEntityDetector

    rng = np.random.default_rng(5)
    # Two entities whose normal levels differ by far more than an anomaly moves either.
    a = rng.normal(0.0, 1.0, size=(2000, 3))
    b = rng.normal(100.0, 10.0, size=(2000, 3))
    X = np.vstack([a, b])
    ent = np.array(["a"] * 2000 + ["b"] * 2000)
    model = PerEntityDetector(kind="robust_z", alert_rate=0.01).fit(X, entities=ent)
    assert model.needs_entities and model.threshold_ == 1.0
    assert set(model.models_) == {"a", "b"}
    # Each entity flags about its alert rate of its own normal rows ...
    for key in ("a", "b"):
        rows = ent == key
        rate = float(np.mean(model.predict(X[rows], ent[rows]) == -1))
        assert 0.003 <= rate <= 0.03, (key, rate)
    # ... and a jump of 8 sds is an anomaly of `a` but ordinary for `b`.
    jump = np.full((1, 3), 8.0)
    assert model.predict(jump, np.array(["a"]))[0] == -1
    assert model.predict(jump + 92.0, np.array(["b"]))[0] == 1
    # An entity never seen (and a row without a key) is judged by the global detector.
    assert np.isfinite(model.anomaly_score(jump, np.array(["new"]))).all()
