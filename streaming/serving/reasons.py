"""Reason codes: which features drove a decision and by how much, in words a person can act on.

For a model decision, each feature's z-score against the card's reference distribution (mean and
standard deviation of the histogram); the three largest |z| are the reasons. For a rule-based
(fallback) decision, each sensor outside its limits is a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from features.contract.events import ReasonCode
from features.ml.model_card import Histogram, SensorLimits
from features.ml.reference import limit_excess

TOP_REASONS = 3


@dataclass(frozen=True, slots=True)
class ReferenceStats:
    """Per-feature mean and standard deviation of a card's reference histograms, as arrays."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_reference(
        cls, feature_names: list[str], reference: dict[str, Histogram]
    ) -> ReferenceStats:
        means, stds = [], []
        for name in feature_names:
            hist = reference.get(name)
            if hist is None or len(hist.fractions) == 0:
                means.append(math.nan)
                stds.append(math.nan)
                continue
            edges = np.asarray(hist.edges, dtype=np.float64)
            w = np.asarray(hist.fractions, dtype=np.float64)
            mids = (edges[:-1] + edges[1:]) / 2
            total = w.sum() or 1.0
            m = float((w * mids).sum() / total)
            var = float((w * (mids - m) ** 2).sum() / total)
            # A histogram of a near-constant feature: use a bin width as the scale.
            std = max(math.sqrt(var), float(np.min(np.diff(edges))) / 2 or 1e-9)
            means.append(m)
            stds.append(std)
        return cls(tuple(feature_names), np.asarray(means), np.asarray(stds))


def _unit(feature: str, units: Mapping[str, str] | None) -> str:
    for sensor, unit in (units or {}).items():
        if unit and feature.startswith(sensor):
            return f" {unit}"
    return ""


def model_reasons(
    stats: ReferenceStats,
    row: np.ndarray,
    top: int = TOP_REASONS,
    units: Mapping[str, str] | None = None,
) -> list[ReasonCode]:
    """The `top` features of `row` furthest from the reference, as z-score reason codes
    (`units`: each sensor's unit, from the dataset spec, for the texts)."""
    z = (row - stats.mean) / stats.std
    finite = np.where(np.isfinite(z))[0]
    order = finite[np.argsort(-np.abs(z[finite]))][:top]
    out = []
    for i in order:
        name, zi = stats.names[i], float(z[i])
        direction = "above" if zi > 0 else "below"
        unit = _unit(name, units)
        out.append(
            ReasonCode(
                code=f"feature_{'high' if zi > 0 else 'low'}",
                feature=name,
                value=float(row[i]),
                reference=float(stats.mean[i]),
                contribution=round(zi, 3),
                text=(
                    f"{name} is {row[i]:.4g}{unit}, {abs(zi):.1f} standard deviations {direction} "
                    f"its training mean of {stats.mean[i]:.4g}{unit}"
                ),
            )
        )
    return out


def limit_reasons(
    values: dict[str, float | None],
    limits: dict[str, SensorLimits],
    units: Mapping[str, str] | None = None,
) -> list[ReasonCode]:
    """Sensors outside their fallback limits, most exceeded first; each contribution is the
    sensor's `limit_excess` (the rule score's unit)."""
    found: list[tuple[float, ReasonCode]] = []
    for sensor, lim in limits.items():
        v = values.get(sensor)
        if v is None:
            continue
        rel = float(limit_excess(v, lim))
        if not rel > 0:
            continue
        above = lim.high is not None and v > lim.high
        bound, word = (lim.high, "above") if above else (lim.low, "below")
        assert bound is not None
        unit = f" {units[sensor]}" if units and units.get(sensor) else ""
        code = ReasonCode(
            code=f"limit_{'high' if word == 'above' else 'low'}",
            feature=sensor,
            value=float(v),
            reference=float(bound),
            contribution=round(rel, 4),
            text=f"{sensor} is {v:.4g}{unit}, {word} the safe limit of {bound:.4g}{unit}",
        )
        found.append((rel, code))
    found.sort(key=lambda t: -t[0])
    return [r for _, r in found[:TOP_REASONS]]
