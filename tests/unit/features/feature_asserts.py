"""Comparison helpers for the feature tests."""

from __future__ import annotations

import numpy as np

from features.engine.definitions import FeatureSet


def mismatches(
    a: np.ndarray, b: np.ndarray, names: tuple[str, ...], *, rtol: float, atol: float = 0.0
) -> list[str]:
    """Cells where a and b differ by more than rtol (relative) + atol, NaN equal to NaN."""
    assert a.shape == b.shape, (a.shape, b.shape)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b))
    bad = ~(both_nan | close)
    out = []
    for r, c in zip(*np.nonzero(bad), strict=True):
        out.append(f"row {r} {names[c]}: {a[r, c]!r} != {b[r, c]!r}")
        if len(out) >= 10:
            break
    return out


def feature_matrix(df, fs: FeatureSet) -> np.ndarray:  # type: ignore[no-untyped-def]
    return df[list(fs.names)].to_numpy(dtype=np.float64)
