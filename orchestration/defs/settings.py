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
    alert_rate: float = 0.02
    target_precision: float = 0.2
    max_train_rows: int = 150_000
    seed: int = 7
    #: Train the failure-risk model on permuted labels: a deliberately worse challenger.
    shuffle_labels: bool = False
    gate_margin: float = 0.0
    gate_tolerance: float = 0.05
    floor_pr_auc: float = 0.02
    floor_failure_recall_1h: float = 0.25

    def model_name(self, base: str) -> str:
        return f"{self.model_prefix}{base}"
