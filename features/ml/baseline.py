"""Robust per-entity baselines: each entity's values in units of its own median and MAD.

Entities differ in scale (a machine temperature near 80, a CPU load near 40 %, taxi counts near
15,000): one model serves them all once every entity's values are expressed against a baseline
learned from that entity's own history. The baseline of a column is its median and its scaled
median absolute deviation (1.4826 MAD, the standard deviation for normal data); a column that is
constant for an entity falls back to the pooled scale of that column.

An entity not seen at fit time is normalised with the *global* baseline (unless the baseline was
extended with that entity's history, `with_entities`, which training does for the entities of the
validation split and serving data it has seen) (the median over entities
of their medians and scales). That is the documented fallback: it is right when the new entity
resembles the training entities, and it never fails; a dataset whose entities differ wildly in
scale and keep appearing should use per-entity models of its own (the spec's `per_entity`), or
window features that are scale-free already (z-scores against the entity's own window).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: MAD of a normal distribution times this is its standard deviation.
MAD_TO_STD = 1.4826
_TINY = 1e-9


def robust_center_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and scaled MADs of `X` (NaN ignored; NaN where a column has no value)."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        nan = np.full(X.shape[1], np.nan)
        return nan, nan.copy()
    if not np.isnan(X).any():  # np.median is much faster than np.nanmedian
        center = np.median(X, axis=0)
        return center, MAD_TO_STD * np.median(np.abs(X - center), axis=0)
    with warnings.catch_warnings():  # all-NaN columns: NaN, said by the docstring
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nanmedian(X, axis=0)
        scale = MAD_TO_STD * np.nanmedian(np.abs(X - center), axis=0)
    return center, scale


@dataclass
class EntityBaseline:
    """Per-entity (center, scale) of every column, plus the global fallback."""

    entities: list[str]
    centers: np.ndarray  # (n_entities, n_columns)
    scales: np.ndarray  # (n_entities, n_columns), > 0
    global_center: np.ndarray  # (n_columns,)
    global_scale: np.ndarray  # (n_columns,), > 0

    @classmethod
    def fit(cls, X: np.ndarray, entities: np.ndarray | None) -> EntityBaseline:
        """Learn each entity's baseline from its rows (all rows are one entity when None)."""
        X = np.asarray(X, dtype=np.float64)
        names, groups = _groups(_keys(entities, len(X)))
        centers = np.empty((len(names), X.shape[1]))
        scales = np.empty_like(centers)
        for i, rows in enumerate(groups):
            centers[i], scales[i] = robust_center_scale(X[rows])
        pooled_center, pooled_scale = robust_center_scale(X)
        g_center = _nan_to(_nanmedian0(centers), pooled_center)
        g_scale = _nan_to(_nanmedian0(np.where(scales > _TINY, scales, np.nan)), pooled_scale)
        g_scale = _positive(g_scale, np.nanstd(X, axis=0) if len(X) else g_scale)
        centers = np.where(np.isnan(centers), g_center, centers)
        scales = np.where(np.isnan(scales) | (scales <= _TINY), g_scale, scales)
        return cls(names, centers, scales, _nan_to(g_center, 0.0), g_scale)

    def with_entities(self, X: np.ndarray, entities: np.ndarray) -> EntityBaseline:
        """A copy that also knows the entities of `entities` it did not know, each learned from
        its rows of `X`; known entities and the global fallback are unchanged."""
        X = np.asarray(X, dtype=np.float64)
        known = set(self.entities)
        names, groups = _groups(_keys(entities, len(X)))
        fresh = [(n, rows) for n, rows in zip(names, groups, strict=True) if n not in known]
        if not fresh:
            return self
        new = [n for n, _ in fresh]
        centers, scales = [self.centers], [self.scales]
        for _, rows in fresh:
            c, s = robust_center_scale(X[rows])
            centers.append(np.where(np.isnan(c), self.global_center, c)[None, :])
            scales.append(np.where(np.isnan(s) | (s <= _TINY), self.global_scale, s)[None, :])
        return EntityBaseline(
            [*self.entities, *new],
            np.concatenate(centers),
            np.concatenate(scales),
            self.global_center,
            self.global_scale,
        )

    def transform(self, X: np.ndarray, entities: np.ndarray | None) -> np.ndarray:
        """`(X - center) / scale` with each row's entity baseline (the global one if unseen)."""
        X = np.asarray(X, dtype=np.float64)
        keys = _keys(entities, len(X))
        index = {name: i for i, name in enumerate(self.entities)}
        rows = np.fromiter((index.get(k, -1) for k in keys.tolist()), np.intp, len(keys))
        center = np.where(
            (rows >= 0)[:, None], self.centers[np.maximum(rows, 0)], self.global_center
        )
        scale = np.where((rows >= 0)[:, None], self.scales[np.maximum(rows, 0)], self.global_scale)
        return (X - center) / scale

    def transform_global(self, X: np.ndarray) -> np.ndarray:
        """`(X - center) / scale` with the global baseline (no entity information)."""
        return (np.asarray(X, dtype=np.float64) - self.global_center) / self.global_scale


#: Entity key of every row when a dataset has a single entity (or none is given).
SINGLE_ENTITY = "_"


def _keys(entities: np.ndarray | None, n: int) -> np.ndarray:
    if entities is None:
        return np.full(n, SINGLE_ENTITY, dtype=object)
    keys = np.asarray(entities).astype(str).astype(object)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} entity keys for {n} rows")
    return keys


def _groups(keys: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Sorted distinct keys and the row indices of each (one sort, not one scan per key)."""
    names, inverse = np.unique(keys.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return [str(n) for n in names], np.split(order, bounds)


def _nanmedian0(A: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(A, axis=0) if len(A) else np.full(A.shape[1], np.nan)


def _nan_to(a: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    return np.where(np.isnan(a), fill, a)


def _positive(scale: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    s = np.where(np.isnan(scale) | (scale <= _TINY), fallback, scale)
    return np.where(np.isnan(s) | (s <= _TINY), 1.0, s)
