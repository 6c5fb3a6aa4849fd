"""Every model this platform trains saves and loads with skops and exactly TRUSTED_TYPES."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from features.ml import TRUSTED_TYPES
from features.ml.detectors import ANOMALY_KINDS, PerEntityDetector, make_detector
from features.ml.scoring import scores

RNG = np.random.default_rng(0)
X = RNG.normal(size=(400, 5))
ENT = np.array(["a", "b"] * 200)


def _models() -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for kind in ANOMALY_KINDS:
        for norm in ("entity", "global", "none"):
            out[f"{kind}-{norm}"] = (
                make_detector(kind, normalise=norm).fit(X, entities=ENT),
                "anomaly",
            )
    for kind in ANOMALY_KINDS:
        out[f"{kind}-per-entity"] = (
            PerEntityDetector(kind=kind, min_rows=50).fit(X, entities=ENT),
            "anomaly",
        )
    out["iforest-pipeline"] = (
        make_pipeline(SimpleImputer(strategy="median"), IsolationForest(n_estimators=5)).fit(X),
        "anomaly",
    )
    y = (X[:, 0] > 1).astype(int)
    out["boosting-pipeline"] = (
        make_pipeline(SimpleImputer(), HistGradientBoostingClassifier(max_iter=5)).fit(X, y),
        "failure-risk",
    )
    return out


MODELS = _models()


def test_the_list_is_exactly_the_union_of_what_the_models_need() -> None:
    needed: set[str] = set()
    for model, _ in MODELS.values():
        needed |= set(sio.get_untrusted_types(data=sio.dumps(model)))
    assert needed == set(TRUSTED_TYPES)
    assert all("*" not in t and not t.endswith(".") for t in TRUSTED_TYPES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_model_loads_with_exactly_the_list(name: str, tmp_path: Path) -> None:
    model, kind = MODELS[name]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = sio.load(path, trusted=list(TRUSTED_TYPES))
    np.testing.assert_array_equal(scores(loaded, X, kind, ENT), scores(model, X, kind, ENT))


def test_a_type_off_the_list_is_refused(tmp_path: Path) -> None:
    model, _ = MODELS["pca-entity"]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    short = [t for t in TRUSTED_TYPES if t != "features.ml.baseline.EntityBaseline"]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path, trusted=short)
