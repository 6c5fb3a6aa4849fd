"""The promotion gate: a blocking check between evaluation and the champion alias."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from orchestration.defs.promotion.assets import load_evaluation, model_evaluation
from orchestration.defs.promotion.gate import Decision, GatePolicy, decide
from orchestration.defs.promotion.lifecycle import lifecycle_event, publish
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings


def policy_for(name: str, training: TrainingSettings) -> GatePolicy:
    floors = {"pr_auc": training.floor_pr_auc}
    if name.endswith("failure-risk"):
        floors["failure_recall_1h"] = training.floor_failure_recall_1h
    return GatePolicy(
        primary="pr_auc",
        margin=training.gate_margin,
        tolerance=training.gate_tolerance,
        floors=floors,
    )


def pyfunc_predicts(name: str, version: str, batch: pd.DataFrame) -> str | None:
    """None when the version loads through mlflow.pyfunc and predicts `batch`; else why not."""
    import mlflow.pyfunc  # imported here: importing it warns about MLflow's own type hints

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        out = np.asarray(model.predict(batch))
    except Exception as exc:
        return f"does not load or predict through mlflow.pyfunc: {exc!r}"[:500]
    if len(out) != len(batch):
        return f"pyfunc predicted {len(out)} rows for {len(batch)}"
    return None


@dg.asset_check(asset=model_evaluation, blocking=True)
def challenger_beats_champion(
    context: dg.AssetCheckExecutionContext,
    storage: HistoryStorage,
    kafka: KafkaResource,
    mlflow: MlflowResource,
    training: TrainingSettings,
) -> dg.AssetCheckResult:
    """Each challenger beats its champion (or the floors) and serves through mlflow.pyfunc."""
    mlflow.activate()
    evaluation = load_evaluation(storage)
    holdout = pd.read_parquet(storage.file("training", "holdout.parquet"))
    decisions: dict[str, Decision] = {}
    for name, entry in evaluation.items():
        champ = entry["champion"]
        d = decide(
            name,
            entry["challenger"]["metrics"],
            champ["metrics"] if champ and champ["metrics"] else None,
            policy_for(name, training),
        )
        names = _feature_names(storage)
        problem = pyfunc_predicts(name, entry["challenger"]["version"], holdout[names].head(64))
        if problem:
            d = Decision(name, False, [*d.reasons, problem])
        decisions[name] = d
    # The models are released together: one rejection keeps both champions in place.
    passed = all(d.promote for d in decisions.values())
    if not passed:
        events = []
        for name, d in decisions.items():
            reasons = d.reasons or [
                "blocked: "
                + "; ".join(f"{n} rejected" for n, o in decisions.items() if not o.promote)
            ]
            entry = evaluation[name]
            events.append(
                lifecycle_event(
                    name,
                    entry["challenger"]["version"],
                    "rejected",
                    reasons=reasons,
                    previous_version=(entry["champion"] or {}).get("version", ""),
                    run_id=entry["challenger"]["run_id"],
                    metrics=entry["challenger"]["metrics"],
                )
            )
        publish(kafka, events)
        context.log.warning("gate rejected: %s", {n: d.reasons for n, d in decisions.items()})
    metadata: dict[str, Any] = {
        f"{n}/reasons": dg.MetadataValue.json(d.reasons) for n, d in decisions.items()
    }
    return dg.AssetCheckResult(passed=passed, metadata=metadata)


def _feature_names(storage: HistoryStorage) -> list[str]:
    import json

    return list(
        json.loads(storage.file("training", "training_set.json").read_text())["feature_names"]
    )
