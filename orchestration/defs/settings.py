"""Training and promotion parameters, one resource shared by the training and gate assets."""

from __future__ import annotations

import dagster as dg


class TrainingSettings(dg.ConfigurableResource):
    """How much history to train on, how labels and thresholds are made, and the gate's policy."""

    #: Prepended to the registered model names (keeps tenants and tests apart).
    model_prefix: str = ""
    window_days: int = 14
    holdout_days: int = 2
    #: The latest training days set the failure-risk threshold (the model fits on the others).
    calibration_days: int = 3
    horizon_hours: float = 6.0
    #: Gap between the last training row and the hold-out; never less than `horizon_hours`
    #: (a smaller value is raised to it), so no training label looks into the hold-out.
    embargo_hours: float = 0.0
    alert_rate: float = 0.02
    target_precision: float = 0.2
    max_train_rows: int = 150_000
    seed: int = 7
    #: Train the failure-risk model on permuted labels: a deliberately worse challenger.
    shuffle_labels: bool = False
    #: The declared least improvement of the primary metric over the champion (ties never win).
    gate_margin: float = 0.001
    gate_tolerance: float = 0.05
    floor_pr_auc: float = 0.02
    floor_failure_recall_1h: float = 0.25

    def model_name(self, base: str) -> str:
        return f"{self.model_prefix}{base}"

    @property
    def embargo_ms(self) -> int:
        """The embargo in effect: at least the labels horizon."""
        return int(max(self.embargo_hours, self.horizon_hours) * 3600 * 1000)


class RetrainConfig(dg.Config):
    """Run knobs of one retrain run (Launchpad, `edaml train`), set on the feature table; unset
    fields keep the `training` resource's values. The training set and the models read what the
    feature table recorded, so one run uses one set of values throughout."""

    window_days: int | None = None
    holdout_days: int | None = None
    #: Raised to the labels horizon when smaller.
    embargo_hours: float | None = None

    def apply(self, training: TrainingSettings) -> TrainingSettings:
        """The training settings with this run's overrides."""
        fields = {k: v for k, v in self.model_dump().items() if v is not None}
        if not fields:
            return training
        return TrainingSettings(**{**_fields_of(training), **fields})


def _fields_of(training: TrainingSettings) -> dict[str, object]:
    return {name: getattr(training, name) for name in TrainingSettings.model_fields}
