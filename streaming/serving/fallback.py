"""Rule-based scoring that stands in for a model: per-sensor operating limits.

Used while a model's circuit breaker is open, while no version is loaded yet, and while a
device's feature state is warming up. The score is the largest relative exceedance of a limit
(0 when every sensor is inside its limits); a reading is flagged when any sensor is outside.

The limits come from the model version's card when it has them, else from the dataset spec
(`FallbackRules.from_spec`): its operating limits, per entity group (e.g. machine type) where
the spec declares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.contract.events import ReasonCode
from features.contract.readings import SensorReading
from features.ml.model_card import SensorLimits
from features.ml.reference import limit_excess
from streaming.serving.reasons import limit_reasons

if TYPE_CHECKING:
    from features.spec import DatasetSpec


@dataclass(frozen=True, slots=True)
class FallbackRules:
    """A dataset's operating limits and units, for when no model version's card has limits."""

    #: Default limits per sensor (sensors without limits are absent: never flagged).
    limits: dict[str, SensorLimits] = field(default_factory=dict)
    #: Per group value (of `group_field`): the limits of that group.
    by_group: dict[str, dict[str, SensorLimits]] = field(default_factory=dict)
    #: The reading field naming its group ("machine_type" or "site"), if limits differ by group.
    group_field: str | None = None
    units: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> FallbackRules:
        return cls(spec.fallback_limits, spec.group_limits, spec.entity.group, spec.units)

    def limits_for(self, reading: SensorReading) -> dict[str, SensorLimits]:
        if self.group_field is not None and self.by_group:
            group = self.by_group.get(getattr(reading, self.group_field, ""))
            if group is not None:
                return group
        return self.limits


def rule_score(
    reading: SensorReading,
    limits: dict[str, SensorLimits],
    units: dict[str, str] | None = None,
) -> tuple[float, list[ReasonCode]]:
    """(score, reasons): the rule score of `features.ml.reference` (the one the gate's rule
    baseline is evaluated with), > 0 exactly when some sensor is outside its limits."""
    values = reading.values
    score = max(
        (
            float(limit_excess(v, lim))
            for s, lim in limits.items()
            if (v := values.get(s)) is not None
        ),
        default=0.0,
    )
    return (score, limit_reasons(values, limits, units) if score > 0 else [])
