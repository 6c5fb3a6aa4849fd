"""Label columns never reach the features: a check both training and serving can run."""

from __future__ import annotations

from collections.abc import Iterable

#: Separator between a sensor and its aggregate in feature names (`<sensor>__<agg>_<window>`).
_SEP = "__"


class LabelLeakError(ValueError):
    """A feature is a label column, or is computed from one."""


def leaked_features(feature_names: Iterable[str], label_columns: Iterable[str]) -> list[str]:
    """Features that are a label column or derived from one (`<label>__...`, a ratio naming it)."""
    labels = {lab.lower() for lab in label_columns}
    out = []
    for name in feature_names:
        low = name.lower()
        parts = {low, low.split(_SEP, 1)[0], *low.split("_per_")}
        if parts & labels:
            out.append(name)
    return out


def check_no_label_leak(feature_names: Iterable[str], label_columns: Iterable[str]) -> None:
    """Raise `LabelLeakError` naming the features that leak a label column."""
    names = list(feature_names)
    bad = leaked_features(names, label_columns)
    if bad:
        raise LabelLeakError(
            f"label columns leak into the features: {bad}; declare them as labels, not sensors"
        )
