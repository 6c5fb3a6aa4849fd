"""Training and promotion parameters, one resource shared by the training and gate assets."""

from __future__ import annotations

import dagster as dg


class TrainingSettings(dg.ConfigurableResource):
    """How much history to train on, how labels and thresholds are made, and the gate's policy.

    Fields left None take the dataset spec's value (`models.training_window`, `models.holdout`,
    `models.target_alert_rate`, `models.failure_risk.horizon`); a value set here (or by a run's
    `RetrainConfig`, `edaml train` options) overrides the spec (`training/params.py`)."""

    #: Prepended to the registered model names (keeps tenants and tests apart).
    model_prefix: str = ""
    #: Days of history a run trains on (None: the spec's training_window, else every day).
    window_days: int | None = None
    #: Whole latest days held out (None: the spec's `holdout` fraction of the window).
    holdout_days: int | None = None
    #: The share of the window held out (None: the spec's `models.holdout`).
    holdout: float | None = None
    #: The latest training days set the failure-risk threshold (the model fits on the others).
    calibration_days: int = 3
    #: The failure labels horizon (None: the spec's `models.failure_risk.horizon`).
    horizon_hours: float | None = None
    #: Gap between the last training row and the hold-out; never less than the labels horizon
    #: of a dataset with failure labels (a smaller value is raised to it), so no training label
    #: looks into the hold-out.
    embargo_hours: float = 0.0
    #: The anomaly threshold's alert rate (None: the spec's `models.target_alert_rate`).
    alert_rate: float | None = None
    #: The anomaly model kind (None: the spec's `models.anomaly.kind`).
    anomaly_kind: str | None = None
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


class RetrainConfig(dg.Config):
    """Run knobs of one retrain run (Launchpad, `edaml train`), set on the feature table; unset
    fields keep the `training` resource's values. The training set and the models read what the
    feature table recorded, so one run uses one set of values throughout."""

    window_days: int | None = None
    holdout_days: int | None = None
    holdout: float | None = None
    #: Raised to the labels horizon when smaller.
    embargo_hours: float | None = None
    alert_rate: float | None = None
    anomaly_kind: str | None = None

    def apply(self, training: TrainingSettings) -> TrainingSettings:
        """The training settings with this run's overrides."""
        fields = {k: v for k, v in self.model_dump().items() if v is not None}
        if not fields:
            return training
        return TrainingSettings(**{**_fields_of(training), **fields})


def _fields_of(training: TrainingSettings) -> dict[str, object]:
    return {name: getattr(training, name) for name in TrainingSettings.model_fields}
