"""The training parameters of one run: the dataset spec's, with the settings' overrides (pure).

Precedence: a run's `RetrainConfig` (`edaml train` options) over the `training` resource's
fields over the spec (`models.training_window`, `models.holdout`, `models.target_alert_rate`,
`models.anomaly`, `models.failure_risk.horizon`). The feature table records the result, and
every later asset of the run reads it from there, so one run uses one set of values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from features.ml.detectors import ANOMALY_KINDS, KIND_ALIASES

if TYPE_CHECKING:
    from features.spec import DatasetSpec
    from orchestration.defs.settings import TrainingSettings

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TrainParams:
    """What one training run uses (JSON-able: it travels in the feature table's description)."""

    #: Days of history (None: every stored day up to the run's end).
    window_days: int | None
    #: Whole latest days held out; None: the `holdout` fraction of the rows (see build.split).
    holdout_days: int | None
    holdout: float
    alert_rate: float
    #: Anomaly model: kind (`auto` or one of features.ml's), input, normalisation, per entity.
    anomaly_kind: str
    anomaly_input: str
    normalise: str
    per_entity: bool
    #: Failure labels horizon, and the gap between training and hold-out (>= the horizon when
    #: the dataset has failure labels; any length otherwise).
    horizon_ms: int
    embargo_ms: int
    #: The spec's label sources of anomalies (`column`, `windows`), or () for the fleet's ground
    #: truth file / failure horizon.
    anomaly_label_kinds: tuple[str, ...]

    @property
    def horizon_hours(self) -> float:
        return self.horizon_ms / HOUR_MS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "anomaly_label_kinds": list(self.anomaly_label_kinds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainParams:
        return cls(**{**d, "anomaly_label_kinds": tuple(d["anomaly_label_kinds"])})


def resolve(spec: DatasetSpec, training: TrainingSettings) -> TrainParams:
    """The run's parameters; a bad override raises ValueError naming it and the fix."""
    m = spec.models
    window_days = training.window_days
    if window_days is None and m.training_window is not None:
        window_days = max(1, -(-m.training_window // DAY_MS))  # whole days, rounded up
    holdout = training.holdout if training.holdout is not None else m.holdout
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout {holdout}: a share of the window in (0, 1), e.g. 0.2")
    if training.holdout_days is not None and training.holdout_days < 1:
        raise ValueError(f"holdout_days {training.holdout_days}: at least 1 whole day")
    alert_rate = training.alert_rate if training.alert_rate is not None else m.target_alert_rate
    if not 0.0 < alert_rate < 0.5:
        raise ValueError(f"alert rate {alert_rate}: a share of training rows in (0, 0.5)")
    kind = training.anomaly_kind or m.anomaly.kind
    kind = KIND_ALIASES.get(kind, kind)
    if kind != "auto" and kind not in ANOMALY_KINDS:
        raise ValueError(f"anomaly kind {kind!r}: use auto or one of {', '.join(ANOMALY_KINDS)}")
    horizon_ms = (
        int(training.horizon_hours * HOUR_MS)
        if training.horizon_hours is not None
        else int(m.failure_risk.horizon)
    )
    embargo_ms = int(training.embargo_hours * HOUR_MS)
    if spec.has_failure_labels:
        embargo_ms = max(embargo_ms, horizon_ms)
    return TrainParams(
        window_days=window_days,
        holdout_days=training.holdout_days,
        holdout=float(holdout),
        alert_rate=float(alert_rate),
        anomaly_kind=kind,
        anomaly_input=m.anomaly.input,
        normalise=m.anomaly.normalise,
        per_entity=m.anomaly.per_entity,
        horizon_ms=horizon_ms,
        embargo_ms=embargo_ms,
        anomaly_label_kinds=tuple(
            ls.kind for ls in spec.labels if ls.meaning == "anomaly" and ls.kind != "events"
        ),
    )
