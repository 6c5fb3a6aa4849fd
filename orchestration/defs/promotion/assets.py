"""Promotion assets: model_evaluation (challenger vs champion) and champion_model."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import json
from typing import Any

import dagster as dg
import mlflow as mlflow_api
import pandas as pd

from orchestration.defs.promotion.evaluate import (
    comparable,
    failures_of,
    model_metrics,
    rule_metrics,
    summary,
)
from orchestration.defs.promotion.lifecycle import lifecycle_event, publish
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training.assets import anomaly_model, failure_risk_model
from orchestration.defs.training.models import ANOMALY_MODEL, FAILURE_MODEL
from orchestration.defs.training.tracking import Registered
from streaming.registry import CHAMPION, load_model_version, resolve_alias, set_alias


def load_evaluation(storage: HistoryStorage) -> dict[str, Any]:
    return json.loads(storage.file("models", "evaluation.json").read_text())


@dg.asset(deps=[anomaly_model, failure_risk_model], group_name="promotion", kinds={"mlflow"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    storage: HistoryStorage,
    mlflow: MlflowResource,
    training: TrainingSettings,
) -> dg.MaterializeResult:
    """Challenger, current champion and the rule baseline scored on the same hold-out days."""
    mlflow.activate()
    holdout = pd.read_parquet(storage.file("training", "holdout.parquet"))
    failures = failures_of(pd.read_parquet(storage.file("training", "maintenance.parquet")))
    horizon_ms = int(training.horizon_hours * 3600 * 1000)
    result: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for name in (training.model_name(ANOMALY_MODEL), training.model_name(FAILURE_MODEL)):
        reg = Registered.from_json(storage.file("models", f"{name}.json").read_text())
        challenger = load_model_version(name, version=reg.version)
        champ_version = resolve_alias(name, CHAMPION)
        champion = load_model_version(name, version=champ_version) if champ_version else None
        entry: dict[str, Any] = {
            "challenger": {
                "version": reg.version,
                "run_id": reg.run_id,
                "metrics": model_metrics(challenger, holdout, failures, horizon_ms),
            },
            "champion": None,
            "rules": rule_metrics(
                challenger.card.kind, challenger.card.fallback_limits, holdout, failures, horizon_ms
            ),
        }
        if champion is not None and comparable(champion, challenger):
            entry["champion"] = {
                "version": champion.version,
                "metrics": model_metrics(champion, holdout, failures, horizon_ms),
            }
        elif champion is not None:
            entry["champion"] = {"version": champion.version, "metrics": None}
        with mlflow_api.start_run(run_id=reg.run_id):
            for role in ("challenger", "champion", "rules"):
                block = entry[role]
                m = block if role == "rules" else (block or {}).get("metrics")
                if m:
                    prefix = "holdout" if role == "challenger" else f"{role}_holdout"
                    mlflow_api.log_metrics({f"{prefix}_{k}": float(v) for k, v in m.items()})
            mlflow_api.log_dict(entry, "edaml/evaluation.json")
        result[name] = entry
        context.log.info(
            "%s: challenger v%s %s | champion %s | rules %s",
            name,
            reg.version,
            summary(entry["challenger"]["metrics"]),
            summary((entry["champion"] or {}).get("metrics") or {}),
            summary(entry["rules"]),
        )
        for role in ("challenger", "champion", "rules"):
            block = entry[role]
            m = block if role == "rules" else (block or {}).get("metrics")
            for k, v in (m or {}).items():
                metadata[f"{name}/{role}/{k}"] = dg.MetadataValue.float(float(v))
    storage.file("models", "evaluation.json").write_text(json.dumps(result))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(deps=[model_evaluation], group_name="promotion", kinds={"mlflow", "kafka"})
def champion_model(
    context: dg.AssetExecutionContext,
    storage: HistoryStorage,
    kafka: KafkaResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """The serving versions: the gate passed, so `champion` moves and ModelPromoted is published."""
    mlflow.activate()
    evaluation = load_evaluation(storage)
    events = []
    metadata: dict[str, Any] = {}
    for name, entry in evaluation.items():
        version = entry["challenger"]["version"]
        previous = resolve_alias(name, CHAMPION) or ""
        set_alias(name, CHAMPION, version)
        events.append(
            lifecycle_event(
                name,
                version,
                "promoted",
                alias=CHAMPION,
                previous_version=previous,
                run_id=entry["challenger"]["run_id"],
                metrics=entry["challenger"]["metrics"],
                reasons=[f"passed the gate in Dagster run {context.run.run_id}"],
            )
        )
        metadata[f"{name}/version"] = version
        metadata[f"{name}/previous"] = previous or "none"
    publish(kafka, events)
    return dg.MaterializeResult(metadata=metadata)
