"""The promotion decision on one metric: a challenger must beat the champion by a margin.

Ties never promote: with `margin=0` the challenger must still be strictly better. A NaN on either
side never promotes a challenger over a champion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Gains within this of the margin are ties (0.52 - 0.50 is 0.020000000000000018 in floats).
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class GateResult:
    promote: bool
    reason: str


def challenger_wins(
    challenger: float,
    champion: float | None,
    *,
    margin: float,
    metric: str = "f1",
    higher_is_better: bool = True,
) -> GateResult:
    """Promote when the challenger beats the champion by more than `margin` (>= 0)."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if math.isnan(challenger):
        return GateResult(False, f"challenger {metric} is NaN")
    if champion is None:
        return GateResult(True, f"no champion: challenger {metric} {challenger:.4f}")
    if math.isnan(champion):
        return GateResult(False, f"champion {metric} is NaN: not comparable")
    gain = challenger - champion if higher_is_better else champion - challenger
    if gain > margin + _EPS:
        return GateResult(
            True, f"{metric} {challenger:.4f} beats {champion:.4f} by {gain:.4f} > {margin:.4f}"
        )
    return GateResult(
        False,
        f"{metric} {challenger:.4f} vs {champion:.4f}: gain {gain:.4f} <= margin {margin:.4f}",
    )
