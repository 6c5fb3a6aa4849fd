"""Bodies of the promotion assets (wrapped per model by `training/factory.py`):

- `<model>_evaluation` scores the challenger, the current champion and the rule baseline on the
  same hold-out, decides with the gate's rule, records the decision (asset metadata, MLflow
  version tags) and publishes `rejected` lifecycle events;
- the blocking check `<model>_gate` (promotion/checks.py) re-decides from the evaluation this
  run recorded; it has no side effects;
- `<model>_champion` moves `@champion` only to the version whose gate passed in the same run,
  and only if the champion it was compared with is still the champion.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from orchestration.defs.promotion.evaluate import (
    comparable,
    failures_of,
    holdout_scores,
    labelled_rows,
    model_metrics,
    rule_metrics,
    summary,
)
from orchestration.defs.promotion.gate import VERDICT_TAG, GatePolicy, gate_decision, verdict_tags
from orchestration.defs.promotion.lifecycle import lifecycle_event, publish
from orchestration.defs.promotion.runlog import (
    check_in_run,
    evaluation_entry,
    materialization_in_run,
)
from orchestration.defs.resources import KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training.assets import TrainingSet
from orchestration.defs.training.plan import ModelPlan
from orchestration.defs.training.tracking import Registered, version_url
from streaming.registry import CHAMPION, load_model_version, resolve_alias, set_alias

PROMOTED_BY_TAG = "promoted_by_dagster_run_id"


def policy_for(plan: ModelPlan, training: TrainingSettings) -> GatePolicy:
    """The model's gate: the spec's metric (`auto` was resolved by `plan_from_spec`: F1 for an
    anomaly model with the spec's anomaly labels, else PR-AUC), the spec's margin (when it
    declares none, the settings'), the settings' floors with the spec's on top."""
    floors = {"pr_auc": training.floor_pr_auc}
    if plan.kind == "failure-risk":
        floors["failure_recall_1h"] = training.floor_failure_recall_1h
    floors.update(dict(plan.gate_floors))
    return GatePolicy(
        primary="pr_auc" if plan.gate_metric == "auto" else plan.gate_metric,
        margin=plan.gate_margin or training.gate_margin,
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


def _champion_block(
    name: str, challenger: Any, holdout: pd.DataFrame, failures: pd.DataFrame, horizon_ms: int
) -> dict[str, Any] | None:
    """The current champion's version and hold-out metrics; `metrics` None (with `note` or
    `broken`) when it cannot be compared: another feature set, or it no longer loads or scores."""
    version = resolve_alias(name, CHAMPION)
    if not version:
        return None
    try:
        champion = load_model_version(name, version=version)
        if not comparable(champion, challenger):
            return {
                "version": version,
                "metrics": None,
                "note": "reads another feature set: not compared, the floors decide",
            }
        return {
            "version": version,
            "metrics": model_metrics(champion, holdout, failures, horizon_ms),
        }
    except Exception as exc:
        return {
            "version": version,
            "metrics": None,
            "broken": f"champion v{version} can no longer be scored: {exc!r}"[:600],
        }


def evaluate_challenger(
    plan: ModelPlan,
    reg: Registered,
    ts: TrainingSet,
    run_id: str,
    kafka: KafkaResource,
    mlflow: MlflowResource,
    training: TrainingSettings,
    log: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The evaluation record of this run's challenger and the asset's metadata."""
    import mlflow as mlflow_api

    mlflow.activate()
    client = MlflowClient()
    name = reg.name
    mv = client.get_model_version(name, reg.version)
    if mv.tags.get("dagster_run_id") != run_id:
        raise dg.Failure(
            f"{name} v{reg.version} was trained by Dagster run {mv.tags.get('dagster_run_id')}, "
            f"not by this run {run_id}: a run evaluates only the version it trained"
        )
    holdout, failures = ts.holdout, failures_of(ts.maintenance)
    horizon_ms = int(ts.summary["params"]["horizon_ms"])
    challenger = load_model_version(name, version=reg.version)
    names = list(challenger.card.feature_names)
    problems = []
    problem = pyfunc_predicts(name, reg.version, holdout[names].head(64))
    if problem:
        problems.append(problem)
    s = ts.summary
    scores = holdout_scores(challenger, holdout)
    known = labelled_rows(holdout)
    positives = int(holdout[plan.label].to_numpy()[known].sum())
    entry: dict[str, Any] = {
        "model": name,
        "dagster_run_id": run_id,
        "challenger": {
            "version": reg.version,
            "run_id": reg.run_id,
            "metrics": model_metrics(challenger, holdout, failures, horizon_ms, scores),
        },
        "champion": _champion_block(name, challenger, holdout, failures, horizon_ms),
        "rules": rule_metrics(
            challenger.card.kind, challenger.card.fallback_limits, holdout, failures, horizon_ms
        ),
        "problems": problems,
        "holdout": {
            "days": s["holdout_days"],
            "rows": s["holdout_rows"],
            "train_days": s["train_days"],
            "embargo_hours": s["embargo_hours"],
            "horizon_hours": s["horizon_hours"],
            "labelled_rows": int(known.sum()),
            # No positive label in the hold-out: the labelled figures judge nothing (the gate
            # then promotes on the pyfunc and serving checks alone: gate.gate_decision).
            "positives": positives,
        },
    }
    policy = policy_for(plan, training)
    decision = gate_decision(entry, policy)
    champ = entry["champion"] or {}
    entry["gate"] = {
        "promote": decision.promote,
        "reasons": decision.reasons,
        "notes": [n for n in (champ.get("broken"), champ.get("note")) if n]
        + (
            ["no positive label in the hold-out: not judged on labelled figures"]
            if positives == 0
            else []
        ),
        "policy": {
            "primary": policy.primary,
            "margin": policy.margin,
            "tolerance": policy.tolerance,
            "floors": policy.floors,
        },
    }
    compared = str(champ.get("version") or "") if champ.get("metrics") else ""
    client_tags = verdict_tags(decision, run_id, compared)
    for k, v in client_tags.items():
        client.set_model_version_tag(name, reg.version, k, v)
    with mlflow_api.start_run(run_id=reg.run_id):
        for role, prefix in (
            ("challenger", "holdout"),
            ("champion", "champion_holdout"),
            ("rules", "rules_holdout"),
        ):
            block = entry[role]
            m = block if role == "rules" else (block or {}).get("metrics")
            if m:
                mlflow_api.log_metrics({f"{prefix}_{k}": float(v) for k, v in m.items()})
        mlflow_api.log_dict(entry, "edaml/evaluation.json")
        _log_holdout_plots(
            entry, scores[known], holdout[plan.label].to_numpy()[known], challenger.card.threshold
        )
    log.info(
        "%s: challenger v%s %s | champion %s | rules %s -> %s %s",
        name,
        reg.version,
        summary(entry["challenger"]["metrics"]),
        summary(champ.get("metrics") or {}),
        summary(entry["rules"]),
        client_tags[VERDICT_TAG],
        decision.reasons,
    )
    if not decision.promote:
        publish(
            kafka,
            [
                lifecycle_event(
                    name,
                    reg.version,
                    "rejected",
                    reasons=decision.reasons,
                    previous_version=str(champ.get("version") or ""),
                    run_id=reg.run_id,
                    metrics=entry["challenger"]["metrics"],
                )
            ],
        )
    return entry, evaluation_metadata(entry, mlflow.tracking_uri)


#: The labelled figures the hold-out bar chart compares (challenger, champion, rules).
PLOTTED = ("precision", "recall", "f1", "far", "mar", "window_recall", "pr_auc")


def _log_holdout_plots(
    entry: dict[str, Any], scores: np.ndarray, labels: np.ndarray, threshold: float
) -> None:
    """Hold-out score distributions and the labelled figures of challenger, champion and rules,
    as artifacts of the challenger's MLflow run (plots/holdout_*.png)."""
    import mlflow as mlflow_api

    from features.ml import plots

    name = entry["model"]
    blocks = {
        "challenger": entry["challenger"]["metrics"],
        "champion": (entry["champion"] or {}).get("metrics"),
        "rules": entry["rules"],
    }
    figures = {
        "plots/holdout_scores.png": plots.score_histogram(
            scores, labels, threshold, f"{name} v{entry['challenger']['version']} (hold-out)"
        ),
        "plots/holdout_metrics.png": plots.metric_bars(
            {k: v for k, v in blocks.items() if v}, PLOTTED, f"{name}: hold-out"
        ),
    }
    for path, fig in figures.items():
        mlflow_api.log_figure(fig, path)


def evaluation_metadata(entry: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    """What the evaluation asset page shows: the decision and reasons first, then the figures."""
    gate, hold = entry["gate"], entry["holdout"]
    champ = entry["champion"] or {}
    reasons = gate["reasons"] or ["every floor and guardrail met; beats the champion"]
    md: dict[str, Any] = {
        "gate/verdict": "passed" if gate["promote"] else "rejected",
        "gate/reasons": dg.MetadataValue.md(
            "\n".join(f"- {r}" for r in [*reasons, *(f"note: {n}" for n in gate["notes"])])
        ),
        "challenger_version": entry["challenger"]["version"],
        "champion_version": str(champ.get("version") or "none"),
        "holdout": (
            f"{hold['days'][0]} .. {hold['days'][-1]}, {hold['rows']} rows; training ends "
            f"{hold['embargo_hours']:g} h before the hold-out (embargo >= labels horizon "
            f"{hold['horizon_hours']:g} h)"
        ),
        "embargo_hours": float(hold["embargo_hours"]),
        "mlflow_version": dg.MetadataValue.url(
            version_url(tracking_uri, entry["model"], entry["challenger"]["version"])
        ),
        "evaluation": dg.MetadataValue.json(entry),
    }
    for role in ("challenger", "champion", "rules"):
        block = entry[role]
        m = block if role == "rules" else (block or {}).get("metrics")
        for k, v in (m or {}).items():
            md[f"{role}/{k}"] = dg.MetadataValue.float(float(v))
    return md


class PromotionRefused(dg.Failure):
    """The champion asset refuses to promote (nothing changed); the description says why."""


def promote_champion(
    plan: ModelPlan,
    evaluation_key: dg.AssetKey,
    gate_key: dg.AssetCheckKey,
    instance: dg.DagsterInstance,
    run_id: str,
    kafka: KafkaResource,
    mlflow: MlflowResource,
) -> dict[str, Any]:
    """Move `@champion` to the version this run evaluated and gated, or refuse with a reason."""
    mat = materialization_in_run(instance, run_id, evaluation_key)
    if mat is None or "evaluation" not in mat:
        raise PromotionRefused(
            f"nothing promoted: {evaluation_key.to_user_string()} was not materialized in this "
            f"run, and the champion moves only to a version evaluated and gated in the same run; "
            f"materialize it with its evaluation (run the retrain job)"
        )
    entry = evaluation_entry(mat)
    name, version = entry["model"], str(entry["challenger"]["version"])
    gate = check_in_run(instance, run_id, gate_key)
    if gate is None:
        raise PromotionRefused(
            f"nothing promoted: the gate {gate_key.name} did not run in this run for {name} "
            f"v{version}"
        )
    passed, gate_md = gate
    if not passed or str(gate_md.get("version")) != version:
        raise PromotionRefused(
            f"nothing promoted: the gate did not pass {name} v{version} in this run "
            f"(passed={passed}, version judged={gate_md.get('version')})"
        )
    mlflow.activate()
    champ = entry["champion"] or {}
    compared = str(champ.get("version") or "")
    current = resolve_alias(name, CHAMPION) or ""
    if current != compared:
        raise PromotionRefused(
            f"nothing promoted: {name} v{version} was compared with champion "
            f"{('v' + compared) if compared else '(none)'}, but the champion is now "
            f"{('v' + current) if current else '(none)'}; re-run the retrain job to re-evaluate"
        )
    set_alias(name, CHAMPION, version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, PROMOTED_BY_TAG, run_id)
    notes = entry["gate"].get("notes") or []
    publish(
        kafka,
        [
            lifecycle_event(
                name,
                version,
                "promoted",
                alias=CHAMPION,
                previous_version=current,
                run_id=entry["challenger"]["run_id"],
                metrics=entry["challenger"]["metrics"],
                reasons=[f"passed the gate in Dagster run {run_id}", *notes],
            )
        ],
    )
    return {
        "version": version,
        "previous": current or "none",
        "model": name,
        "mlflow_version": dg.MetadataValue.url(version_url(mlflow.tracking_uri, name, version)),
        "gate": dg.MetadataValue.json(gate_md),
    }


def registered_metadata(reg: Registered, tracking_uri: str) -> dict[str, Any]:
    """The model asset's metadata: the version and links to its MLflow run and version pages."""
    from orchestration.defs.training.tracking import run_url

    return {
        "model": reg.name,
        "version": reg.version,
        "run_id": reg.run_id,
        "threshold": reg.threshold,
        "mlflow_run": dg.MetadataValue.url(run_url(tracking_uri, reg.experiment_id, reg.run_id)),
        "mlflow_version": dg.MetadataValue.url(version_url(tracking_uri, reg.name, reg.version)),
    }
