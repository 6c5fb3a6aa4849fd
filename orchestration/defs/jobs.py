"""The retrain job: replay history, check it, train, evaluate, gate and promote."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.history.assets import event_history
from orchestration.defs.promotion.assets import champion_model, model_evaluation
from orchestration.defs.training.assets import (
    anomaly_model,
    failure_risk_model,
    feature_table,
    training_set,
)

RETRAIN_ASSETS = [
    event_history,
    feature_table,
    training_set,
    anomaly_model,
    failure_risk_model,
    model_evaluation,
    champion_model,
]

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="Replay the day(s) from Kafka, check, train both models, gate, promote.",
)
