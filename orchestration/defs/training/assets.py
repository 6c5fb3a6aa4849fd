"""Training assets: feature_table, training_set and the two challenger models."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import hashlib
import json
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from features.model_card import ModelCard
from features.readings import SENSORS
from orchestration.defs.history.assets import event_history
from orchestration.defs.history.parquet import read_days, write_atomic
from orchestration.defs.history.replay import day_window
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training import build, reference
from orchestration.defs.training.dataset import KafkaOffsetsSource
from orchestration.defs.training.fit import fit_anomaly, fit_failure
from orchestration.defs.training.models import ANOMALY_MODEL, FAILURE_MODEL
from orchestration.defs.training.tracking import Registered, log_and_register
from orchestration.defs.training.window import run_end_day, window_days

HOUR_MS = 3600 * 1000


def digest_of(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _features_api() -> tuple[Any, Any]:
    from features.batch import compute_features
    from features.definitions import FEATURE_SET

    return compute_features, FEATURE_SET


@dg.asset(deps=[event_history], group_name="training", kinds={"pandas", "parquet"})
def feature_table(
    context: dg.AssetExecutionContext, storage: HistoryStorage, training: TrainingSettings
) -> dg.MaterializeResult:
    """Per-reading features over the training window's days (the features batch path)."""
    compute_features, feature_set = _features_api()
    days = window_days(storage.stored_days(), run_end_day(context), training.window_days)
    if len(days) <= training.holdout_days:
        raise ValueError(f"not enough replayed days for training: {days}")
    readings = read_days([storage.readings_file(d) for d in days])
    feats = compute_features(readings[["event_id", "device_id", "ts_ms", *SENSORS, "seq"]])
    table = build.with_sensors(feats, readings)
    write_atomic(table, storage.file("features", "feature_table.parquet"))
    stats = {
        d: json.loads(storage.file("history", "stats", f"date={d}.json").read_text()) for d in days
    }
    desc = {
        "days": days,
        "feature_set_version": feature_set.version,
        "feature_names": list(feature_set.names),
        "rows": len(table),
        # The replayed history's digests and the feature definitions determine the table.
        "digest": digest_of(
            feature_set.version, *(s["readings"]["digest"] for s in stats.values())
        ),
        "offsets": {d: s["readings"]["offsets"] for d, s in stats.items()},
        "topic": next(iter(stats.values()))["readings"]["topic"],
        "history_digests": {d: s["readings"]["digest"] for d, s in stats.items()},
    }
    storage.file("features", "feature_table.json").write_text(json.dumps(desc))
    return dg.MaterializeResult(
        metadata={
            "days": dg.MetadataValue.json(days),
            "rows": len(table),
            "feature_set_version": feature_set.version,
            "features": len(feature_set.names),
            "digest": desc["digest"],
        }
    )


@dg.asset(deps=[feature_table], group_name="training", kinds={"pandas", "parquet"})
def training_set(
    context: dg.AssetExecutionContext, storage: HistoryStorage, training: TrainingSettings
) -> dg.MaterializeResult:
    """Labelled features split by time: earlier days train, the latest days are held out."""
    desc = json.loads(storage.file("features", "feature_table.json").read_text())
    table = pd.read_parquet(storage.file("features", "feature_table.parquet"))
    maintenance = read_days([storage.maintenance_file(d) for d in desc["days"]])
    truth = storage.ground_truth()
    labelled = build.label(table, maintenance, truth, int(training.horizon_hours * HOUR_MS))
    split = build.split_by_days(labelled, desc["days"], training.holdout_days)
    # Models train on a sample (every positive, weighted negatives); the hold-out stays whole.
    sample = build.sample_rows(split.train, "y_failure", training.max_train_rows, training.seed)
    write_atomic(sample, storage.file("training", "train.parquet"))
    write_atomic(split.holdout, storage.file("training", "holdout.parquet"))
    write_atomic(maintenance, storage.file("training", "maintenance.parquet"))
    summary = {
        **desc,
        "train_days": split.train_days,
        "holdout_days": split.holdout_days,
        "train_rows": len(split.train),
        "train_sample_rows": len(sample),
        "holdout_rows": len(split.holdout),
        "train_failure_positives": int(split.train["y_failure"].sum()),
        "holdout_failure_positives": int(split.holdout["y_failure"].sum()),
        "holdout_anomaly_positives": int(split.holdout["y_anomaly"].sum()),
        "anomaly_labels": "ground truth" if truth is not None else "failure horizon",
        "digest": digest_of(desc["digest"], training.horizon_hours, training.holdout_days),
    }
    storage.file("training", "training_set.json").write_text(json.dumps(summary))
    context.log.info("training set: %s", {k: v for k, v in summary.items() if "rows" in k})
    return dg.MaterializeResult(
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v
            for k, v in summary.items()
            if k not in ("offsets", "history_digests", "feature_names")
        }
    )


def _context(storage: HistoryStorage) -> tuple[dict[str, Any], pd.DataFrame]:
    summary = json.loads(storage.file("training", "training_set.json").read_text())
    return summary, pd.read_parquet(storage.file("training", "train.parquet"))


def _tags(context: dg.AssetExecutionContext, summary: dict[str, Any]) -> dict[str, str]:
    return {
        "dagster_run_id": context.run.run_id,
        "partitions": f"{summary['days'][0]}..{summary['days'][-1]}",
        "data_digest": summary["digest"],
        "feature_set": summary["feature_set_version"],
    }


def _card(
    kind: str,
    name: str,
    summary: dict[str, Any],
    train: pd.DataFrame,
    threshold: float,
    rate: float,
    context: dg.AssetExecutionContext,
    horizon: float | None,
) -> ModelCard:
    names = summary["feature_names"]
    raw = train[[f"raw_{s}" for s in SENSORS]].rename(columns=lambda c: c.removeprefix("raw_"))
    return ModelCard(
        model_name=name,
        kind=kind,  # type: ignore[arg-type]
        feature_set_version=summary["feature_set_version"],
        feature_names=names,
        threshold=float(threshold),
        horizon_hours=horizon,
        reference=reference.histograms(train, names),
        fallback_limits=reference.sensor_limits(raw),
        reference_alert_rate=rate,
        training_data={
            "topic": summary["topic"],
            "offsets": summary["offsets"],
            "days": summary["days"],
            "train_days": summary["train_days"],
            "holdout_days": summary["holdout_days"],
            "dagster_run_id": context.run.run_id,
            "digest": summary["digest"],
        },
    )


def _write_manifest(storage: HistoryStorage, reg: Registered) -> None:
    storage.file("models", f"{reg.name}.json").write_text(reg.to_json())


@dg.asset(deps=[training_set], group_name="models", kinds={"sklearn", "mlflow"})
def anomaly_model(
    context: dg.AssetExecutionContext,
    storage: HistoryStorage,
    kafka: KafkaResource,
    mlflow: MlflowResource,
    training: TrainingSettings,
) -> dg.MaterializeResult:
    """IsolationForest challenger, threshold at the target alert rate, registered in MLflow."""
    summary, train = _context(storage)
    names = summary["feature_names"]
    fitted = fit_anomaly(train, names, alert_rate=training.alert_rate, seed=training.seed)
    card = _card(
        "anomaly",
        training.model_name(ANOMALY_MODEL),
        summary,
        train,
        fitted.threshold,
        training.alert_rate,
        context,
        None,
    )
    mlflow.activate()
    reg = log_and_register(
        fitted=fitted,
        card=card,
        train=train,
        source=KafkaOffsetsSource(kafka.bootstrap_servers, summary["topic"], summary["offsets"]),
        params={
            "n_estimators": 150,
            "max_samples": 512,
            "alert_rate": training.alert_rate,
            "train_rows": fitted.train_rows,
            "seed": training.seed,
        },
        metrics={"threshold": fitted.threshold},
        tags=_tags(context, summary),
    )
    _write_manifest(storage, reg)
    return dg.MaterializeResult(
        metadata={"version": reg.version, "run_id": reg.run_id, "threshold": reg.threshold}
    )


@dg.asset(deps=[training_set], group_name="models", kinds={"sklearn", "mlflow"})
def failure_risk_model(
    context: dg.AssetExecutionContext,
    storage: HistoryStorage,
    kafka: KafkaResource,
    mlflow: MlflowResource,
    training: TrainingSettings,
) -> dg.MaterializeResult:
    """Gradient-boosted failure-within-horizon challenger, threshold for the target precision."""
    summary, train = _context(storage)
    names = summary["feature_names"]
    calib_start = day_window(summary["train_days"][-training.calibration_days])[0]
    fitted = fit_failure(
        train,
        names,
        target_precision=training.target_precision,
        seed=training.seed,
        calibration_start_ms=calib_start,
        shuffle_labels=training.shuffle_labels,
    )
    y, s = fitted.calibration_labels, fitted.calibration_scores
    flagged = s >= fitted.threshold
    calib = train[train["ts_ms"] >= calib_start].sample(frac=1.0, random_state=0).head(2000)
    imp = (
        permutation_importance(
            fitted.model,
            calib[names],
            calib["y_failure"],
            n_repeats=1,
            random_state=training.seed,
            scoring="average_precision",
        )
        if calib["y_failure"].nunique() > 1
        else None
    )
    card = _card(
        "failure-risk",
        training.model_name(FAILURE_MODEL),
        summary,
        train,
        fitted.threshold,
        float(np.mean(flagged)),
        context,
        training.horizon_hours,
    )
    mlflow.activate()
    reg = log_and_register(
        fitted=fitted,
        card=card,
        train=train,
        source=KafkaOffsetsSource(kafka.bootstrap_servers, summary["topic"], summary["offsets"]),
        params={
            "max_iter": 200,
            "learning_rate": 0.1,
            "horizon_hours": training.horizon_hours,
            "target_precision": training.target_precision,
            "train_rows": fitted.train_rows,
            "seed": training.seed,
            "shuffle_labels": training.shuffle_labels,
        },
        metrics={
            "threshold": fitted.threshold,
            "calibration_precision": float(y[flagged].mean()) if flagged.any() else 0.0,
            "calibration_recall": float(flagged[y == 1].mean()) if (y == 1).any() else 0.0,
        },
        tags=_tags(context, summary),
        importances=dict(zip(names, imp.importances_mean, strict=True))
        if imp is not None
        else None,
    )
    _write_manifest(storage, reg)
    return dg.MaterializeResult(
        metadata={"version": reg.version, "run_id": reg.run_id, "threshold": reg.threshold}
    )
