"""The exact types a served model may contain beyond what skops trusts by default.

The scorer loads model versions with `skops.io.load(path, trusted=TRUSTED_TYPES)` (or checks a
version's declared types against this list): fully qualified names, no prefixes, so a crafted
artifact cannot name any other callable. `tests/unit/ml/test_trusted_types.py` fits every model
this platform trains, saves it with skops and loads it with exactly this list; a new model type
that needs another entry fails that test until it is listed here.
"""

from __future__ import annotations

from typing import Final

TRUSTED_TYPES: Final[tuple[str, ...]] = (
    # features.ml anomaly detectors
    "features.ml.baseline.EntityBaseline",
    "features.ml.detectors.IsolationForestDetector",
    "features.ml.detectors.PCADetector",
    "features.ml.detectors.PerEntityDetector",
    "features.ml.detectors.RobustZDetector",
    # features.ml forecasting model kind (quantile gradient boosting: TreePredictor below)
    "features.ml.forecast.SeasonalProfile",
    "features.ml.forecast.SurgeForecaster",
    # scikit-learn internals of IsolationForest and HistGradientBoostingClassifier pipelines
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)
