"""Anomaly detectors: scikit-learn estimators with a threshold fitted at a target alert rate.

Three kinds, all scored so that higher is more anomalous (`anomaly_score`; `score_samples` is its
negation, scikit-learn's convention for outlier detectors, so code written for IsolationForest
keeps working):

- `isolation_forest`: scikit-learn's IsolationForest.
- `pca`: principal components of normal data; Hotelling's T² (distance inside the model plane,
  scaled by each component's variance) and Q, the squared prediction error (distance off the
  plane). The score is `max(T² / T²_limit, Q / Q_limit)` with both limits at the alert-rate
  quantile of the training rows, the classic "either chart alarms" rule in one number.
- `robust_z`: each column in units of its median and MAD; the score is the largest |z| over the
  columns (`combine="max"`) or their root mean square (`combine="rms"`).

Every kind first expresses its input against a robust baseline (`features.ml.baseline`):
`normalise="entity"` learns one per entity (rows carry an entity key), `"global"` one for all
rows, `"none"` feeds raw values (IsolationForest on raw values is the usual reference). Inputs
may be raw sensor values or window features: a detector only sees a numeric matrix, so a 1 Hz
rig can be modelled on its raw channels with no window at all. NaN is imputed with the training
median of the normalised column.

`fit` sets `threshold_` at the `1 - alert_rate` quantile of the training scores (weighted when
`sample_weight` is given): on the training rows, about `alert_rate` of them are flagged.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest

from features.ml.baseline import EntityBaseline
from features.ml.forest import score_samples as forest_score_samples
from features.ml.thresholds import threshold_for_alert_rate

AnomalyKind = Literal["isolation_forest", "pca", "robust_z"]
Normalise = Literal["entity", "global", "none"]

#: The kinds `make_detector` builds, in the order `auto` prefers them on a tie.
ANOMALY_KINDS: tuple[AnomalyKind, ...] = ("pca", "robust_z", "isolation_forest")
DEFAULT_ALERT_RATE = 0.01
_TINY = 1e-12


def as_matrix(X: Any) -> np.ndarray:
    """A 2-D float64 array of `X` (a DataFrame, an array or a list of rows)."""
    A = np.asarray(X, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {A.shape}")
    return A


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Base: baseline normalisation, imputation and the alert-rate threshold."""

    kind: ClassVar[AnomalyKind]

    def __init__(
        self,
        *,
        alert_rate: float = DEFAULT_ALERT_RATE,
        normalise: Normalise = "entity",
        seed: int = 0,
    ) -> None:
        self.alert_rate = alert_rate
        self.normalise = normalise
        #: Random seed (only randomised kinds use it; every kind accepts it, so a caller can
        #: pass the same parameters to any kind).
        self.seed = seed

    # -- what a kind implements -----------------------------------------------------------
    def _fit_core(self, Z: np.ndarray, w: np.ndarray | None) -> None:
        raise NotImplementedError

    def _core_scores(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def _normalise_mode(self) -> Normalise:
        return self.normalise

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        entities: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Fit on rows taken as normal (`y` is ignored: pass only normal rows to learn normal)."""
        A = as_matrix(X)
        if len(A) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 training rows, got {len(A)}")
        mode = self._normalise_mode()
        self.baseline_: EntityBaseline | None = (
            None
            if mode == "none"
            else EntityBaseline.fit(A, entities if mode == "entity" else None)
        )
        Z = self._normalised(A, entities)
        fill = np.nanmedian(np.where(np.isfinite(Z), Z, np.nan), axis=0) if len(Z) else Z[0]
        self.fill_ = np.where(np.isnan(fill), 0.0, fill)
        Z = self._imputed(Z)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self._fit_core(Z, w)
        train = self._core_scores(Z)
        self.threshold_ = threshold_for_alert_rate(train, self.alert_rate, w)
        self.n_features_in_ = A.shape[1]
        return self

    @property
    def needs_entities(self) -> bool:
        """True when scores depend on each row's entity key (per-entity baselines): a caller that
        scores without keys gets every row judged against the global baseline."""
        return self._normalise_mode() == "entity"

    def add_entities(self, X: Any, entities: np.ndarray) -> Self:
        """Learn the baselines of entities first seen in `X` (their own history, unlabelled
        rows are fine: the median and MAD resist a few anomalies); the model is unchanged."""
        if self.baseline_ is not None and self._normalise_mode() == "entity":
            self.baseline_ = self.baseline_.with_entities(as_matrix(X), entities)
        return self

    def _normalised(self, A: np.ndarray, entities: np.ndarray | None) -> np.ndarray:
        if self.baseline_ is None:
            return A.copy()
        if self._normalise_mode() == "entity":
            return self.baseline_.transform(A, entities)
        return self.baseline_.transform_global(A)

    def _imputed(self, Z: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(Z)
        if bad.any():
            Z = np.where(bad, self.fill_, Z)
        return Z

    def transform_input(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        """The matrix the core model sees: normalised against the baseline, NaN imputed."""
        A = as_matrix(X)
        if A.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} columns, got {A.shape[1]}")
        return self._imputed(self._normalised(A, entities))

    def anomaly_score(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        """Higher is more anomalous; a row is flagged when its score is >= `threshold_`."""
        return self._core_scores(self.transform_input(X, entities))

    def score_samples(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        """scikit-learn's convention for outlier detectors: lower is more anomalous."""
        return -self.anomaly_score(X, entities)

    def decision_function(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        """Negative for flagged rows (scikit-learn's convention)."""
        return self.threshold_ - self.anomaly_score(X, entities)

    def predict(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        """-1 for flagged rows, +1 for the others (scikit-learn's convention)."""
        return np.where(self.anomaly_score(X, entities) >= self.threshold_, -1, 1)


class IsolationForestDetector(AnomalyDetector):
    """IsolationForest on the (normalised) input."""

    kind: ClassVar[AnomalyKind] = "isolation_forest"

    def __init__(
        self,
        *,
        alert_rate: float = DEFAULT_ALERT_RATE,
        normalise: Normalise = "entity",
        n_estimators: int = 100,
        max_samples: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(alert_rate=alert_rate, normalise=normalise, seed=seed)
        self.n_estimators = n_estimators
        self.max_samples = max_samples

    def _fit_core(self, Z: np.ndarray, w: np.ndarray | None) -> None:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(Z)),
            random_state=self.seed,
            n_jobs=1,
        ).fit(Z, sample_weight=w)

    def _core_scores(self, Z: np.ndarray) -> np.ndarray:
        return -forest_score_samples(self.forest_, Z)  # compiled walk, scikit-learn's scores


class PCADetector(AnomalyDetector):
    """Hotelling's T² and Q (squared prediction error) of a PCA of normal data."""

    kind: ClassVar[AnomalyKind] = "pca"

    def __init__(
        self,
        *,
        alert_rate: float = DEFAULT_ALERT_RATE,
        normalise: Normalise = "entity",
        n_components: float | int = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__(alert_rate=alert_rate, normalise=normalise, seed=seed)
        self.n_components = n_components

    def _fit_core(self, Z: np.ndarray, w: np.ndarray | None) -> None:
        w = np.ones(len(Z)) if w is None else w / np.mean(w)
        self.mean_ = np.average(Z, axis=0, weights=w)
        sd = np.sqrt(np.average((Z - self.mean_) ** 2, axis=0, weights=w))
        self.scale_ = np.where(sd > _TINY, sd, 1.0)
        S = (Z - self.mean_) / self.scale_ * np.sqrt(w)[:, None]
        # Eigen-decomposition of the p x p covariance: cheaper than an SVD of n x p rows.
        var, vecs = np.linalg.eigh(S.T @ S / max(np.sum(w) - 1.0, 1.0))
        var, vecs = np.maximum(var[::-1], 0.0), vecs[:, ::-1]
        p = Z.shape[1]
        k = _n_components(self.n_components, var, p)
        self.components_ = np.ascontiguousarray(vecs[:, :k].T)  # (k, p)
        self.explained_variance_ = np.maximum(var[:k], _TINY)
        t2, q = self._t2_q(Z)
        self.t2_limit_ = max(threshold_for_alert_rate(t2, self.alert_rate), _TINY)
        self.q_limit_ = max(threshold_for_alert_rate(q, self.alert_rate), _TINY)

    def _t2_q(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = (Z - self.mean_) / self.scale_
        T = S @ self.components_.T
        t2 = np.sum(T**2 / self.explained_variance_, axis=1)
        resid = S - T @ self.components_
        return t2, np.sum(resid**2, axis=1)

    def t2_q(self, X: Any, entities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Hotelling's T² and Q of rows `X`."""
        return self._t2_q(self.transform_input(X, entities))

    def _core_scores(self, Z: np.ndarray) -> np.ndarray:
        t2, q = self._t2_q(Z)
        return np.maximum(t2 / self.t2_limit_, q / self.q_limit_)


def _n_components(spec: float | int, var: np.ndarray, p: int) -> int:
    """Components kept: an int as given, a fraction by explained variance; always leave at least
    one out (when p > 1) so that Q measures something."""
    top = max(p - 1, 1)
    if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 1:
        return min(spec, top)
    total = float(np.sum(var))
    if total <= 0:
        return 1
    k = int(np.searchsorted(np.cumsum(var) / total, float(spec)) + 1)
    return max(1, min(k, top))


class RobustZDetector(AnomalyDetector):
    """Per-column robust z-scores (median/MAD); the score is max |z| (or their RMS)."""

    kind: ClassVar[AnomalyKind] = "robust_z"

    def __init__(
        self,
        *,
        alert_rate: float = DEFAULT_ALERT_RATE,
        normalise: Normalise = "entity",
        combine: Literal["max", "rms"] = "max",
        seed: int = 0,
    ) -> None:
        super().__init__(alert_rate=alert_rate, normalise=normalise, seed=seed)
        self.combine = combine

    def _normalise_mode(self) -> Normalise:
        # A z-score needs a baseline: "none" means one global baseline here.
        return "global" if self.normalise == "none" else self.normalise

    def _fit_core(self, Z: np.ndarray, w: np.ndarray | None) -> None:
        self.center_ = np.nanmedian(Z, axis=0)

    def _core_scores(self, Z: np.ndarray) -> np.ndarray:
        a = np.abs(Z - self.center_)
        if self.combine == "rms":
            return np.sqrt(np.mean(a**2, axis=1))
        return np.max(a, axis=1)


_KINDS: dict[str, type[AnomalyDetector]] = {
    c.kind: c for c in (IsolationForestDetector, PCADetector, RobustZDetector)
}


#: Other names a spec or caller may use for a kind.
KIND_ALIASES: dict[str, AnomalyKind] = {"iforest": "isolation_forest"}


def make_detector(kind: str, **params: Any) -> AnomalyDetector:
    """A detector of `kind` (one of `ANOMALY_KINDS`, or an alias of `KIND_ALIASES`) with `params`
    (alert_rate, normalise, ...)."""
    cls = _KINDS.get(KIND_ALIASES.get(kind, kind))
    if cls is None:
        raise ValueError(f"unknown anomaly model kind {kind!r}; use one of {list(_KINDS)}")
    return cls(**params)


class PerEntityDetector(OutlierMixin, BaseEstimator):
    """One detector of `kind` per entity (the spec's `models.anomaly.per_entity: true`), and one
    over every row for entities it has too few rows of (or never saw).

    Each entity's scores are divided by its own detector's threshold, so `threshold_` is 1.0
    for every entity: one card threshold serves them all. Scores need each row's entity key
    (`needs_entities`); a row without one is judged by the global detector."""

    def __init__(
        self,
        *,
        kind: str = "robust_z",
        min_rows: int = 100,
        alert_rate: float = DEFAULT_ALERT_RATE,
        normalise: Normalise = "none",
        seed: int = 0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.min_rows = min_rows
        self.alert_rate = alert_rate
        self.normalise = normalise
        self.seed = seed
        self.params = params

    def _make(self) -> AnomalyDetector:
        # Within one entity, "entity" normalisation is global normalisation.
        mode: Normalise = "global" if self.normalise == "entity" else self.normalise
        return make_detector(
            self.kind,
            alert_rate=self.alert_rate,
            normalise=mode,
            seed=self.seed,
            **(self.params or {}),
        )

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        entities: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        A = as_matrix(X)
        self.global_ = self._make().fit(A, sample_weight=sample_weight)
        self.models_: dict[str, AnomalyDetector] = {}
        if entities is not None:
            self.add_entities(A, entities, sample_weight=sample_weight)
        self.threshold_ = 1.0
        self.n_features_in_ = A.shape[1]
        return self

    @property
    def needs_entities(self) -> bool:
        return True

    def add_entities(
        self, X: Any, entities: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Self:
        """Fit the detectors of entities first seen in `X` that have at least `min_rows` rows."""
        A = as_matrix(X)
        keys = np.asarray(entities).astype(str)
        for key in np.unique(keys):
            rows = keys == key
            if key in self.models_ or int(rows.sum()) < self.min_rows:
                continue
            w = None if sample_weight is None else np.asarray(sample_weight)[rows]
            self.models_[str(key)] = self._make().fit(A[rows], sample_weight=w)
        return self

    def anomaly_score(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        A = as_matrix(X)
        out = self.global_.anomaly_score(A) / max(self.global_.threshold_, _TINY)
        if entities is None:
            return out
        keys = np.asarray(entities).astype(str)
        for key in np.unique(keys):
            model = self.models_.get(str(key))
            if model is not None:
                rows = keys == key
                out[rows] = model.anomaly_score(A[rows]) / max(model.threshold_, _TINY)
        return out

    def score_samples(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        return -self.anomaly_score(X, entities)

    def decision_function(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        return self.threshold_ - self.anomaly_score(X, entities)

    def predict(self, X: Any, entities: np.ndarray | None = None) -> np.ndarray:
        return np.where(self.anomaly_score(X, entities) >= self.threshold_, -1, 1)
