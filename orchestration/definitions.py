"""The Dagster code location of edaml (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.history.assets import event_history
from orchestration.defs.history.checks import history_expectations
from orchestration.defs.jobs import retrain_job
from orchestration.defs.promotion.assets import champion_model, model_evaluation
from orchestration.defs.promotion.checks import challenger_beats_champion
from orchestration.defs.resources import default_resources
from orchestration.defs.schedules import daily_retrain_schedule
from orchestration.defs.sensors import drift_sensor
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training.assets import (
    anomaly_model,
    failure_risk_model,
    feature_table,
    training_set,
)

ASSETS = [
    event_history,
    feature_table,
    training_set,
    anomaly_model,
    failure_risk_model,
    model_evaluation,
    champion_model,
]
CHECKS = [history_expectations, challenger_beats_champion]


def build_defs(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The definitions with the environment's resources, or `resources` (tests)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[retrain_job],
        schedules=[daily_retrain_schedule],
        sensors=[drift_sensor],
        resources=resources or {**default_resources(), "training": TrainingSettings()},
    )


defs = build_defs()
