"""The events besides the sensor reading, as plain frozen dataclasses.

Wire rules (applied by `features.contract`): an `int` field whose name ends in `_ms` travels as an
ISO-8601 UTC string under the name without `_ms` (`ts_ms` → `ts`, `window_start_ms` →
`window_start`); every other field travels under its own name. Fields with a default may be
missing on the wire.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

MaintenanceKind = Literal["failure", "repair"]
Decision = Literal["normal", "alert", "unknown"]
AlertKind = Literal["anomaly", "failure-risk"]
LifecycleAction = Literal["registered", "validated", "promoted", "rejected", "rolled_back"]
HealthStatus = Literal["ok", "degraded", "stopping"]


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A failure or a repair of a device: the ground truth that failure-risk labels come from."""

    event_id: str
    device_id: str
    ts_ms: int
    kind: MaintenanceKind
    fault_type: str
    site: str = ""
    machine_type: str = ""


@dataclass(frozen=True, slots=True)
class ModelScore:
    """One model's score of one reading. `threshold` is the version's decision threshold."""

    model_name: str
    model_version: str
    score: float
    threshold: float | None = None
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """The scorer's verdict on one reading; `ts_ms` is the reading's event time.

    `decision` is "alert" when any model flagged the reading, "normal" when none did and
    "unknown" when no model could score it (per-device state still warming up). `fallback` is
    true when rules stood in for a model (none loaded, or it failed), with `fallback_reason`.
    """

    event_id: str
    ts_ms: int
    reading_event_id: str
    device_id: str
    scores: list[ModelScore]
    decision: Decision
    fallback: bool = False
    fallback_reason: str = ""
    feature_set_version: str = ""


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """Why an alert fired: one feature's value against its reference and its share of the score."""

    code: str
    feature: str
    value: float | None
    reference: float | None
    contribution: float
    text: str


@dataclass(frozen=True, slots=True)
class Alert:
    """An anomaly or failure-risk alert about one reading, with reasons and a confidence in [0, 1]."""

    event_id: str
    ts_ms: int
    reading_event_id: str
    device_id: str
    kind: AlertKind
    model_name: str
    model_version: str
    score: float
    threshold: float
    confidence: float
    reasons: list[ReasonCode]
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class ModelLifecycleEvent:
    """A step in a model version's life: registered, validated, promoted, rejected, rolled back."""

    event_id: str
    ts_ms: int
    model_name: str
    version: str
    action: LifecycleAction
    reasons: list[str] = field(default_factory=list)
    alias: str = ""
    previous_version: str = ""
    run_id: str = ""
    actor: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def now(
        cls,
        model_name: str,
        version: str,
        action: LifecycleAction,
        *,
        actor: str,
        reasons: Sequence[str] = (),
        alias: str = "",
        previous_version: str = "",
        run_id: str = "",
        metrics: Mapping[str, float] | None = None,
    ) -> ModelLifecycleEvent:
        """The event as every publisher builds it: a fresh id, the wall clock, reasons cut to
        1,000 characters each, metrics as floats."""
        return cls(
            event_id=str(uuid.uuid4()),
            ts_ms=int(time.time() * 1000),
            model_name=model_name,
            version=version,
            action=action,
            reasons=[r[:1000] for r in reasons],
            alias=alias,
            previous_version=previous_version,
            run_id=run_id,
            actor=actor,
            metrics={k: float(v) for k, v in (metrics or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's drift statistic (e.g. "psi") against its training reference."""

    feature: str
    statistic: str
    value: float
    threshold: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift of the serving model's inputs (and score) over one window of events."""

    event_id: str
    ts_ms: int
    model_name: str
    model_version: str
    window_start_ms: int
    window_end_ms: int
    n_events: int
    features: list[FeatureDrift]
    drifted: bool


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """Champion against challenger on the same events over one window."""

    event_id: str
    ts_ms: int
    model_name: str
    champion_version: str
    challenger_version: str
    window_start_ms: int
    window_end_ms: int
    n_events: int
    agreement: float
    champion_alert_rate: float
    challenger_alert_rate: float
    mean_abs_score_diff: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The scorer is alive: which model versions it serves, how far it got, how far behind."""

    event_id: str
    ts_ms: int
    service: str
    instance: str
    status: HealthStatus
    models: dict[str, str] = field(default_factory=dict)
    events_processed: int = 0
    lag: int = 0
    fallback: bool = False
