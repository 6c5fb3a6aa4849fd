"""A loaded model version made ready to serve: its columns mapped onto the service's feature
vector, reference statistics for reason codes, and the acceptance checks a new version must pass
before it may replace the one serving (feature-set version, smoke prediction on a reference batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from streaming.registry import LoadedModel
from streaming.serving.reasons import ReferenceStats

SMOKE_ROWS = 64


class ModelRefused(Exception):
    """A version the service will not serve; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ServingModel:
    loaded: LoadedModel
    columns: np.ndarray  # indices of the card's features in the service's feature vector
    stats: ReferenceStats

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def threshold(self) -> float:
        return self.loaded.card.threshold

    @property
    def needs_entities(self) -> bool:
        """True when the model judges each row against its entity's own baseline."""
        return bool(getattr(self.loaded.model, "needs_entities", False))

    def scores(self, X_full: np.ndarray, entities: np.ndarray | None = None) -> np.ndarray:
        """Scores for rows of the service's full feature matrix (`entities`: each row's key)."""
        return self.loaded.predict_scores(X_full[:, self.columns], entities)


def reference_batch(model: LoadedModel, rows: int = SMOKE_ROWS) -> np.ndarray:
    """Rows spread over each feature's reference distribution (quantile points of the histogram);
    NaN for features without a reference (the pipeline imputes them)."""
    card = model.card
    q = (np.arange(rows) + 0.5) / rows
    X = np.full((rows, len(card.feature_names)), np.nan)
    for j, name in enumerate(card.feature_names):
        hist = card.reference.get(name)
        if hist is None or not hist.fractions:
            continue
        cdf = np.concatenate([[0.0], np.cumsum(hist.fractions)])
        cdf /= cdf[-1] or 1.0
        X[:, j] = np.interp(q, cdf, np.asarray(hist.edges, dtype=np.float64))
    # Shuffle columns independently so rows are not all low or all high at once.
    rng = np.random.default_rng(0)
    for j in range(X.shape[1]):
        rng.shuffle(X[:, j])
    return X


def prepare(
    model: LoadedModel,
    *,
    feature_set_version: str,
    feature_names: tuple[str, ...] | list[str],
    smoke_timeout_s: float = 5.0,
) -> ServingModel:
    """Check that the service can serve `model` and wrap it; raise `ModelRefused` otherwise."""
    card = model.card
    if card.model_name != model.name:
        raise ModelRefused(f"card names model {card.model_name!r}, registry {model.name!r}")
    if card.feature_set_version != feature_set_version:
        raise ModelRefused(
            f"needs feature set {card.feature_set_version!r}; this service computes "
            f"{feature_set_version!r}"
        )
    index = {n: i for i, n in enumerate(feature_names)}
    missing = [n for n in card.feature_names if n not in index]
    if missing:
        raise ModelRefused(f"needs features this service does not compute: {missing[:5]}")
    X = reference_batch(model)
    t0 = time.perf_counter()
    try:
        scores = model.predict_scores(X)
    except Exception as exc:
        raise ModelRefused(f"smoke prediction raised {type(exc).__name__}: {exc}") from exc
    elapsed = time.perf_counter() - t0
    if np.shape(scores) != (len(X),):
        raise ModelRefused(f"smoke prediction returned shape {np.shape(scores)}, not ({len(X)},)")
    if not np.all(np.isfinite(scores)):
        raise ModelRefused(
            f"smoke prediction gave {int(np.sum(~np.isfinite(scores)))} NaN/inf scores"
        )
    if elapsed > smoke_timeout_s:
        raise ModelRefused(f"smoke prediction took {elapsed:.1f}s (limit {smoke_timeout_s}s)")
    columns = np.asarray([index[n] for n in card.feature_names], dtype=np.intp)
    stats = ReferenceStats.from_reference(list(card.feature_names), card.reference)
    return ServingModel(loaded=model, columns=columns, stats=stats)
