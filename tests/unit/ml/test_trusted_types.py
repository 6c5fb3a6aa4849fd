"""Every model this platform trains saves and loads with skops and exactly TRUSTED_TYPES."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from features.ml import TRUSTED_TYPES
from features.ml.detectors import ANOMALY_KINDS, PerEntityDetector, make_detector
from features.ml.forecast import SurgeForecaster
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


def _forecaster() -> SurgeForecaster:
    """A small forecasting model (features.ml.forecast): profile and quantile boosting."""
    monday = 1_767_571_200_000
    counts = {"demand": RNG.poisson(2, (2, 2 * 1440)), "lead": RNG.poisson(5, (2, 2 * 1440))}
    rows = pd.DataFrame({"entity": ["a", "b"] * 50, "ts_ms": monday + np.arange(100) * 600_000})
    for col in ("demand__mean_15m", "demand__mean_1h", "lead__mean_15m", "lead__mean_1h"):
        rows[col] = RNG.random(100)
    rows["count_15m"], rows["count_1h"] = 30.0, 120.0
    model = SurgeForecaster(demand="demand", leading=("lead",), max_iter=3)
    return model.fit(rows, counts, ["a", "b"], monday)


FORECASTER = _forecaster()


def test_the_list_is_exactly_the_union_of_what_the_models_need() -> None:
    needed: set[str] = set()
    for model, _ in MODELS.values():
        needed |= set(sio.get_untrusted_types(data=sio.dumps(model)))
    needed |= set(sio.get_untrusted_types(data=sio.dumps(FORECASTER)))
    assert needed == set(TRUSTED_TYPES)
    assert all("*" not in t and not t.endswith(".") for t in TRUSTED_TYPES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_model_loads_with_exactly_the_list(name: str, tmp_path: Path) -> None:
    model, kind = MODELS[name]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = sio.load(path, trusted=list(TRUSTED_TYPES))
    np.testing.assert_array_equal(scores(loaded, X, kind, ENT), scores(model, X, kind, ENT))


def test_forecaster_loads_with_exactly_the_list(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(FORECASTER, path)
    loaded = sio.load(path, trusted=list(TRUSTED_TYPES))
    rows = pd.DataFrame({"entity": ["a", "b", "c"], "ts_ms": [1_767_600_000_000] * 3})
    for col in ("demand__mean_15m", "demand__mean_1h", "lead__mean_15m", "lead__mean_1h"):
        rows[col] = [0.2, 0.5, 0.3]
    rows["count_15m"], rows["count_1h"] = 40.0, 150.0
    pd.testing.assert_frame_equal(loaded.predict(rows), FORECASTER.predict(rows))


def test_a_type_off_the_list_is_refused(tmp_path: Path) -> None:
    model, _ = MODELS["pca-entity"]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    short = [t for t in TRUSTED_TYPES if t != "features.ml.baseline.EntityBaseline"]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path, trusted=short)
