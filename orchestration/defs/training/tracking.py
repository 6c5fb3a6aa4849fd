"""Log one trained model to MLflow: run params, metrics, dataset input, plots, the version."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import mlflow.data
import numpy as np
import pandas as pd

from features.ml.model_card import ModelCard
from orchestration.defs.training.dataset import KafkaOffsetsSource
from orchestration.defs.training.fit import Fitted
from streaming.registry import CHALLENGER, log_model_version

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Registered:
    """A registered challenger version and the run that produced it."""

    name: str
    version: str
    run_id: str
    threshold: float
    experiment_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Registered:
        return cls(**json.loads(text))


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def version_url(tracking_uri: str, name: str, version: str) -> str:
    """The MLflow UI page of a registered model version."""
    return f"{tracking_uri.rstrip('/')}/#/models/{name}/versions/{version}"


def log_and_register(
    *,
    fitted: Fitted,
    card: ModelCard,
    train: pd.DataFrame,
    source: KafkaOffsetsSource,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    importances: dict[str, float] | None = None,
    description: str = "",
    model_description: str = "",
) -> Registered:
    """One MLflow run per model version; returns the registered version (alias challenger).

    `description` goes on the version, `model_description` on the registered model (what it
    predicts), both shown in the MLflow UI."""
    names = card.feature_names
    label = "y_anomaly" if card.kind == "anomaly" else "y_failure"
    with mlflow.start_run(
        run_name=f"{card.model_name}-{tags.get('dagster_run_id', '')[:8]}"
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                **params,
                "feature_set_version": card.feature_set_version,
                "training_rows_total": len(train),
                "training_days": ",".join(card.training_data.get("train_days", [])),
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        # MLflow profiles the frame row by row in Python: a sample describes the full set
        # (whose row count, digest and Kafka offsets are params and the source).
        sample = train[[*names, label]].sample(n=min(len(train), 5000), random_state=0)
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            sample, source=source, targets=label, name=f"{card.model_name}-train"
        )
        mlflow.log_input(dataset, context="training")
        from orchestration.defs.training import plots  # matplotlib: only when logging

        y, s = fitted.calibration_labels, fitted.calibration_scores
        for fname, fig in (
            (
                "plots/precision_recall.png",
                plots.pr_curve(y, s, f"{card.model_name} (calibration)"),
            ),
            (
                "plots/confusion_matrix.png",
                plots.confusion(y, (s >= fitted.threshold).astype(int), card.model_name),
            ),
            (
                "plots/score_distribution.png",
                plots.score_distribution(y, s, fitted.threshold, card.model_name),
            ),
        ):
            mlflow.log_figure(fig, fname)
            plots.close(fig)
        if importances:
            fig = plots.importance(
                list(importances), np.asarray(list(importances.values())), card.model_name
            )
            mlflow.log_figure(fig, "plots/feature_importance.png")
            plots.close(fig)
        mlflow.log_dict(
            {"source": source.to_dict(), "training_data": card.training_data},
            "edaml/training_data.json",
        )
        version = log_model_version(
            fitted.model,
            card,
            input_example=train[names].head(5),
            tags=tags,
            alias=CHALLENGER,
        )
        client = mlflow.MlflowClient()
        if description:
            client.update_model_version(card.model_name, str(version.version), description)
        if model_description:
            client.update_registered_model(card.model_name, model_description)
        return Registered(
            card.model_name,
            str(version.version),
            run.info.run_id,
            fitted.threshold,
            run.info.experiment_id,
        )
