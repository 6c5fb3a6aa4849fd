"""Rule-based scoring that stands in for a model: per-sensor limits shipped with the version.

Used while a model's circuit breaker is open, while no version is loaded yet, and while a
device's feature state is warming up. The score is the largest relative exceedance of a limit
(0 when every sensor is inside its limits); a reading is flagged when any sensor is outside.
"""

from __future__ import annotations

from typing import Final

from features.contract_events import ReasonCode
from features.model_card import SensorLimits
from features.readings import SensorReading
from streaming.reasons import limit_reasons

#: Conservative limits for when no model version (hence no card) is available at all: well
#: outside normal operation of the simulated fleet, so they only catch clear faults.
DEFAULT_LIMITS: Final[dict[str, SensorLimits]] = {
    "temperature": SensorLimits(low=-20.0, high=110.0),
    "vibration": SensorLimits(low=None, high=12.0),
    "pressure": SensorLimits(low=0.5, high=12.0),
    "current": SensorLimits(low=None, high=120.0),
    "rpm": SensorLimits(low=None, high=4000.0),
}


def rule_score(
    reading: SensorReading, limits: dict[str, SensorLimits]
) -> tuple[float, list[ReasonCode]]:
    """(score, reasons): score > 0 exactly when some sensor is outside its limits."""
    reasons = limit_reasons(reading.values, limits)
    return (max((r.contribution for r in reasons), default=0.0), reasons)
