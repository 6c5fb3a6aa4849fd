"""Bodies of the training assets (the factory in `training/factory.py` wraps them per dataset):
the feature table, the training set and one challenger per declared model.

Intermediate data travels as return values through the IO manager (keyed by run), never
through fixed file paths, so two runs can never read each other's tables."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from features.ml import reference
from features.ml.model_card import ModelCard
from features.spec import DatasetSpec
from orchestration.defs.history.assets import stored_history
from orchestration.defs.history.parquet import read_days
from orchestration.defs.history.replay import day_window
from orchestration.defs.history.validity import select_days
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training import build
from orchestration.defs.training.dataset import KafkaOffsetsSource
from orchestration.defs.training.fit import Fitted, fit_anomaly, fit_failure, raw_feature_names
from orchestration.defs.training.params import TrainParams, resolve
from orchestration.defs.training.plan import ModelPlan
from orchestration.defs.training.tracking import Registered, log_and_register
from orchestration.defs.training.truth import Truth, spec_truth
from orchestration.defs.training.window import window_days

HOUR_MS = 3600 * 1000


def digest_of(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class FeatureTable:
    """Per-reading features (with `raw_<sensor>` columns) and what they were computed from."""

    table: pd.DataFrame
    desc: dict[str, Any]


@dataclass(frozen=True)
class TrainingSet:
    """The (sampled) training rows, the whole hold-out, the window's maintenance events and a
    summary (days, embargo, digests, counts) that travels into lineage and the gate's figures."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    maintenance: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def column_schema(df: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(str(c), str(t)) for c, t in df.dtypes.items()])


def featurize(spec: DatasetSpec, readings: pd.DataFrame) -> pd.DataFrame:
    """Per-reading features of the spec's feature set (the batch path) with `raw_<sensor>`
    columns; `readings`: event_id, device_id, ts_ms, the sensors and seq (arrival order)."""
    from features.engine.batch import compute_features

    columns = ["event_id", "device_id", "ts_ms", *spec.sensor_names, "seq"]
    feats = compute_features(readings[columns], spec.feature_set)
    return build.with_sensors(feats, readings, spec.sensor_names)


def labelled_split(
    table: pd.DataFrame,
    days: list[str],
    maintenance: pd.DataFrame,
    truth: Truth,
    params: TrainParams,
) -> build.Split:
    """The feature rows labelled from `truth` and the failures, split by time for `params`."""
    labelled = build.label(table, maintenance, truth.intervals, params.horizon_ms, truth.unlabelled)
    return build.split_by_time(
        labelled,
        days,
        holdout_days=params.holdout_days,
        holdout=params.holdout,
        embargo_ms=params.embargo_ms,
    )


def build_feature_table(
    spec: DatasetSpec,
    storage: HistoryStorage,
    days_range: tuple[str, str] | None,
    end_day: str | None,
    training: TrainingSettings,
) -> FeatureTable:
    """Features over the training window's valid days (the features batch path): the run's range
    of days, else the window (`window_days`, else every stored day) ending at `end_day`. Days
    that failed or missed their checks are skipped, each with its reason in the lineage
    (`days_skipped`). The run's parameters (`params.resolve`: the spec's, overridden by the
    settings) are recorded for the later assets."""
    dataset, feature_set = spec.name, spec.feature_set
    names = list(feature_set.names)
    try:
        params = resolve(spec, training)
        # What the anomaly model reads: the window features, or the raw values.
        anomaly_features = (
            raw_feature_names(spec.sensor_names, names) if params.anomaly_input == "raw" else names
        )
    except ValueError as exc:
        raise dg.Failure(f"{dataset}: {exc}") from None
    history = stored_history(storage, dataset)
    stored = history.stored_days()
    if days_range is not None:
        window = [d for d in stored if days_range[0] <= d <= days_range[1]]
    else:
        window = window_days(stored, end_day, params.window_days or len(stored) + 36500)
    selection = select_days(history, window)
    days = selection.used
    need = (params.holdout_days or 0) + 1
    if len(days) < need:
        skipped = "; ".join(selection.lines()) or "none"
        raise dg.Failure(
            f"{dataset}: not enough valid days for training: {days} (window {window[:1]}.."
            f"{window[-1:]}; skipped: {skipped}); need at least {need}: replay more days "
            f"(edaml train --dataset {dataset} --days N)"
        )
    table = featurize(spec, read_days([history.readings_file(d) for d in days]))
    stats = {d: history.stats(d) or {} for d in days}
    desc = {
        "dataset": dataset,
        "days": days,
        "holdout_days": params.holdout_days,
        "embargo_ms": params.embargo_ms,
        "params": params.to_dict(),
        **selection.lineage(),
        "feature_set_version": feature_set.version,
        "feature_names": names,
        "anomaly_features": anomaly_features,
        "rows": len(table),
        # The replayed history's digests and the feature definitions determine the table.
        "digest": digest_of(
            feature_set.version, *(s["readings"]["digest"] for s in stats.values())
        ),
        "offsets": {d: s["readings"]["offsets"] for d, s in stats.items()},
        "topic": next(iter(stats.values()))["readings"]["topic"],
        "history_digests": {d: s["readings"]["digest"] for d, s in stats.items()},
    }
    return FeatureTable(table, desc)


def feature_table_metadata(ft: FeatureTable) -> dict[str, Any]:
    d = ft.desc
    return {
        "dagster/row_count": len(ft.table),
        "dagster/column_schema": column_schema(ft.table),
        "days": dg.MetadataValue.json(d["days"]),
        "days_skipped": dg.MetadataValue.json(d["days_skipped"]),
        "day_notes": dg.MetadataValue.json(d["day_notes"]),
        "feature_set_version": d["feature_set_version"],
        "features": len(d["feature_names"]),
        "digest": d["digest"],
    }


def build_training_set(
    spec: DatasetSpec, ft: FeatureTable, storage: HistoryStorage, training: TrainingSettings
) -> TrainingSet:
    """Labelled features split by time (`build.split_by_time`: whole days, or the latest share
    of the rows of a short dataset), with the embargo before the hold-out left out of training.
    Labels come from the spec's label sources (`truth.py`); failures from the maintenance
    events of the replayed history."""
    desc = ft.desc
    params = TrainParams.from_dict(desc["params"])
    history = stored_history(storage, desc["dataset"])
    maintenance = read_days([history.maintenance_file(d) for d in desc["days"]])
    truth = spec_truth(spec, storage.ground_truth())
    try:
        split = labelled_split(ft.table, desc["days"], maintenance, truth, params)
    except ValueError as exc:
        raise dg.Failure(f"{desc['dataset']}: {exc}") from None
    # Models train on a sample (every positive, weighted negatives); the hold-out stays whole.
    target = "y_failure" if spec.has_failure_labels else "y_anomaly"
    sample = build.sample_rows(split.train, target, training.max_train_rows, training.seed)
    known = split.holdout["y_known"].to_numpy(bool)
    summary = {
        **desc,
        "train_days": split.train_days,
        "holdout_days": split.holdout_days,
        "holdout_day_count": len(split.holdout_days),
        "holdout_share": params.holdout if params.holdout_days is None else None,
        "holdout_start_ms": int(split.holdout["ts_ms"].min()),
        "embargo_hours": split.embargo_ms / HOUR_MS,
        "horizon_hours": params.horizon_hours,
        "embargoed_rows": split.embargoed_rows,
        "train_rows": len(split.train),
        "train_sample_rows": len(sample),
        "holdout_rows": len(split.holdout),
        "holdout_labelled_rows": int(known.sum()),
        "train_failure_positives": int(split.train["y_failure"].sum()),
        "holdout_failure_positives": int(split.holdout["y_failure"].sum()),
        "train_anomaly_positives": int(split.train["y_anomaly"].sum()),
        "holdout_anomaly_positives": int(split.holdout["y_anomaly"].to_numpy()[known].sum()),
        "anomaly_labels": (truth.source if truth.intervals is not None else "failure horizon"),
        "label_notes": truth.notes,
        "digest": digest_of(
            desc["digest"],
            params.horizon_ms,
            params.holdout_days,
            params.holdout,
            split.embargo_ms,
            len(truth.intervals) if truth.intervals is not None else -1,
        ),
    }
    return TrainingSet(sample, split.holdout, maintenance, summary)


def training_set_metadata(ts: TrainingSet) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v
        for k, v in ts.summary.items()
        if k not in ("offsets", "history_digests", "feature_names", "rows")
    }
    out["dagster/row_count"] = len(ts.train) + len(ts.holdout)
    out["dagster/column_schema"] = column_schema(ts.holdout)
    return out


def lineage_tags(run_id: str, summary: dict[str, Any]) -> dict[str, str]:
    return {
        "dagster_run_id": run_id,
        "partitions": f"{summary['days'][0]}..{summary['days'][-1]}",
        # Which days were left out of training and why (valid days only train).
        "days_skipped": json.dumps(summary.get("days_skipped", {}))[:5000],
        "data_digest": summary["digest"],
        "feature_set": summary["feature_set_version"],
    }


def model_card(
    spec: DatasetSpec,
    plan: ModelPlan,
    name: str,
    summary: dict[str, Any],
    names: list[str],
    train: pd.DataFrame,
    fitted: Fitted,
    rate: float,
    run_id: str,
    horizon: float | None,
) -> ModelCard:
    raw = train[[f"raw_{s}" for s in spec.sensor_names]].rename(
        columns=lambda c: c.removeprefix("raw_")
    )
    return ModelCard(
        model_name=name,
        kind=plan.kind,
        feature_set_version=summary["feature_set_version"],
        feature_names=names,
        threshold=float(fitted.threshold),
        horizon_hours=horizon,
        reference=reference.histograms(train, names),
        fallback_limits=reference.sensor_limits(raw),
        reference_alert_rate=rate,
        training_data={
            "topic": summary["topic"],
            "offsets": summary["offsets"],
            "days": summary["days"],
            "days_skipped": summary.get("days_skipped", {}),
            "train_days": summary["train_days"],
            "holdout_days": summary["holdout_days"],
            "embargo_hours": summary["embargo_hours"],
            "dagster_run_id": run_id,
            "digest": summary["digest"],
        },
    )


def version_description(
    plan: ModelPlan, card: ModelCard, summary: dict[str, Any], algorithm: str = ""
) -> str:
    """The registered version's description shown in the MLflow UI."""
    names = card.feature_names
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return (
        f"{plan.description}\n\n"
        f"- kind: {plan.kind} ({algorithm or plan.algorithm}), threshold {card.threshold:.6g}\n"
        f"- features: feature set {card.feature_set_version}: {shown}\n"
        f"- training window: {summary['train_days'][0]} .. {summary['train_days'][-1]} "
        f"(embargo {summary['embargo_hours']:g} h), hold-out {summary['holdout_days'][0]} .. "
        f"{summary['holdout_days'][-1]}\n"
        f"- data digest: {summary['digest']}\n"
        f"- Dagster run: {card.training_data.get('dagster_run_id', '')}\n"
        f"- model card: artifact edaml/model_card.json of the version's run"
    )


def train_model(
    spec: DatasetSpec,
    plan: ModelPlan,
    ts: TrainingSet,
    run_id: str,
    kafka: KafkaResource,
    mlflow: MlflowResource,
    training: TrainingSettings,
) -> Registered:
    """Fit one declared model on the training set and register it (alias `challenger`)."""
    summary, train = ts.summary, ts.train
    p = TrainParams.from_dict(summary["params"])
    name = training.model_name(plan.registered_name)
    metrics: dict[str, float]
    importances: dict[str, float] | None = None
    if plan.kind == "anomaly":
        names = list(summary.get("anomaly_features") or summary["feature_names"])
        try:
            fitted = fit_anomaly(
                train, names, p, seed=training.seed, label_columns=spec.label_columns
            )
        except ValueError as exc:
            raise dg.Failure(f"{name}: {exc}") from None
        if p.normalise == "entity" or p.per_entity:
            # Entities first seen in the hold-out (a file-named dataset's latest files) get
            # their own baseline from their rows, as `auto` validates them; an entity the model
            # never saw is judged against the global baseline when served.
            hold = ts.holdout
            fitted.model.add_entities(
                hold[names].to_numpy(np.float64), hold["device_id"].astype(str).to_numpy()
            )
        rate, horizon = p.alert_rate, None
        params: dict[str, Any] = {
            "alert_rate": p.alert_rate,
            "anomaly_kind": p.anomaly_kind,
            "chosen_kind": fitted.algorithm,
            "input": p.anomaly_input,
            "normalise": p.normalise,
            "auto_reason": fitted.reason[:500],
            **{k: v for k, v in fitted.model.get_params().items() if k != "seed"},
        }
        metrics = {"threshold": fitted.threshold}
        for kind, vm in fitted.validation.items():
            metrics.update({f"validation_{kind}_{k}": v for k, v in vm.items()})
    else:
        names = list(summary["feature_names"])
        fitted, params, metrics, importances = _fit_failure(train, names, summary, training)
        rate, horizon = (
            float(np.mean(fitted.calibration_scores >= fitted.threshold)),
            p.horizon_hours,
        )
    card = model_card(spec, plan, name, summary, names, train, fitted, rate, run_id, horizon)
    mlflow.activate()
    return log_and_register(
        fitted=fitted,
        card=card,
        train=train,
        source=KafkaOffsetsSource(kafka.bootstrap_servers, summary["topic"], summary["offsets"]),
        params={
            **params,
            "algorithm": fitted.algorithm or plan.algorithm,
            "train_rows": fitted.train_rows,
            "seed": training.seed,
            "embargo_hours": summary["embargo_hours"],
        },
        metrics=metrics,
        tags=lineage_tags(run_id, summary),
        importances=importances,
        description=version_description(plan, card, summary, fitted.algorithm),
        model_description=f"{plan.description} Trained by edaml's Dagster retrain job.",
    )


def _fit_failure(
    train: pd.DataFrame, names: list[str], summary: dict[str, Any], training: TrainingSettings
) -> tuple[Fitted, dict[str, Any], dict[str, float], dict[str, float] | None]:
    horizon_hours = TrainParams.from_dict(summary["params"]).horizon_hours
    from sklearn.inspection import permutation_importance

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
    params = {
        "max_iter": 200,
        "learning_rate": 0.1,
        "horizon_hours": horizon_hours,
        "target_precision": training.target_precision,
        "shuffle_labels": training.shuffle_labels,
    }
    metrics = {
        "threshold": fitted.threshold,
        "calibration_precision": float(y[flagged].mean()) if flagged.any() else 0.0,
        "calibration_recall": float(flagged[y == 1].mean()) if (y == 1).any() else 0.0,
    }
    importances = dict(zip(names, imp.importances_mean, strict=True)) if imp is not None else None
    return fitted, params, metrics, importances
