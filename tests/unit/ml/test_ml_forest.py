"""The compiled IsolationForest scorer gives scikit-learn's scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.ml.forest import CompiledForest, compiled, score_samples


def _data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 100.0, size=d)
    X[rng.random(n) < 0.02] *= 8.0  # some outliers
    return X


@pytest.mark.parametrize(
    ("kwargs", "seed"),
    [
        ({"n_estimators": 100}, 0),
        ({"n_estimators": 37, "max_samples": 64, "max_features": 0.5}, 1),
        ({"n_estimators": 10, "max_samples": 1.0, "bootstrap": True}, 2),
    ],
)
def test_scores_equal_scikit_learn(kwargs: dict[str, object], seed: int) -> None:
    X = _data(3000, 12, seed)
    forest = IsolationForest(random_state=seed, **kwargs).fit(X[:2000])  # type: ignore[arg-type]
    test = np.vstack([X[2000:], X[:50] * 50.0, np.full((1, 12), 1e30)])
    want = forest.score_samples(test)
    got = CompiledForest.of(forest).score_samples(test)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert np.ptp(want) > 0.1  # the rows really land in different leaves


def test_missing_values_follow_the_trees_like_scikit_learn() -> None:
    X = _data(1500, 6, 3)
    X[np.random.default_rng(4).random(X.shape) < 0.1] = np.nan
    forest = IsolationForest(n_estimators=50, random_state=0).fit(X[:1000])
    np.testing.assert_allclose(
        CompiledForest.of(forest).score_samples(X[1000:]),
        forest.score_samples(X[1000:]),
        rtol=0,
        atol=1e-9,
    )


def test_pipeline_and_fallback() -> None:
    X = _data(2000, 8, 5)
    X[::17, 3] = np.nan
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), IsolationForest(random_state=1))
    pipe.fit(X[:1500])
    np.testing.assert_allclose(score_samples(pipe, X[1500:]), pipe.score_samples(X[1500:]),
                               rtol=0, atol=1e-9)  # fmt: skip
    forest = pipe.steps[-1][1]
    assert compiled(forest) is compiled(forest)  # built once per fitted forest
    forest.set_params(n_estimators=7).fit(X[:500, :])  # a refit of the same object
    assert len(compiled(forest).roots) == 7
    np.testing.assert_allclose(score_samples(forest, X[:50]), forest.score_samples(X[:50]),
                               rtol=0, atol=1e-9)  # fmt: skip

    class Other:
        def score_samples(self, X: np.ndarray) -> np.ndarray:
            return X[:, 0] * 2.0

    assert np.array_equal(score_samples(Other(), X[:5]), X[:5, 0] * 2.0)


def test_wrong_width_is_refused() -> None:
    forest = IsolationForest(n_estimators=5, random_state=0).fit(_data(100, 4, 0))
    with pytest.raises(ValueError, match="expected 4 features"):
        CompiledForest.of(forest).score_samples(np.zeros((3, 5)))
