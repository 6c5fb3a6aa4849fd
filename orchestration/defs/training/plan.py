"""What the model-asset factory builds for one dataset: its models, each trained, gated and
promoted on its own (pure; derived from the dataset spec)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from features.spec import DatasetSpec

ModelKind = Literal["anomaly", "failure-risk"]

#: The label column each kind of model is trained and evaluated against.
LABEL: dict[str, str] = {"anomaly": "y_anomaly", "failure-risk": "y_failure"}

DEFAULT_DATASET = "iot-fleet"


def ident(name: str) -> str:
    """A Dagster-safe identifier for a dataset or model name (`iot-fleet` -> `iot_fleet`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """One model of a dataset: its asset names, registered name, kind and what it predicts."""

    #: Asset-name part: `anomaly` -> assets `<dataset>/anomaly_model`, `anomaly_evaluation`, ...
    key: str
    kind: ModelKind
    #: The registered MLflow model name (before the deployment's `model_prefix`).
    registered_name: str
    #: The spec's model kind (isolation_forest, pca, robust_z, auto, gradient_boosting, ...).
    algorithm: str
    description: str
    #: The spec's gate: primary metric (`auto` resolved by `plan_from_spec`), declared margin
    #: and extra floors.
    gate_metric: str = "auto"
    gate_margin: float = 0.0
    gate_floors: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        return LABEL[self.kind]

    @property
    def model_asset(self) -> str:
        return f"{self.key}_model"

    @property
    def evaluation_asset(self) -> str:
        return f"{self.key}_evaluation"

    @property
    def champion_asset(self) -> str:
        return f"{self.key}_champion"

    @property
    def gate_check(self) -> str:
        return f"{self.key}_gate"


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """A dataset's name, description and the models declared for it."""

    dataset: str
    description: str
    models: tuple[ModelPlan, ...]

    @property
    def ident(self) -> str:
        return ident(self.dataset)

    @property
    def pool(self) -> str:
        """The Dagster concurrency pool of the dataset's retraining (limit 1: one run at a time)."""
        return f"retrain-{self.dataset}"

    @property
    def job_name(self) -> str:
        """`retrain_job` for the default dataset (the name the README and UI use), else
        `retrain_<dataset>`."""
        return "retrain_job" if self.dataset == DEFAULT_DATASET else f"retrain_{self.ident}"


ANOMALY_DESCRIPTION = (
    "Flags readings whose features are unlike the training history (score >= threshold: alert); "
    "threshold set for the target alert rate on the training rows."
)
FAILURE_DESCRIPTION = (
    "Probability that the device fails within the labels horizon (from failure events); "
    "threshold set for the target precision on the latest training days."
)


def plan_from_spec(spec: DatasetSpec) -> DatasetPlan:
    """The plan of a dataset spec: the anomaly model always, the failure-risk model when the
    spec names one (it does only when the dataset has failure labels)."""
    g = spec.models.gate
    gate = {
        "gate_margin": g.margin,
        "gate_floors": tuple(sorted(g.floors.items())),
    }
    labelled = any(ls.meaning == "anomaly" and ls.kind != "events" for ls in spec.labels)
    models = [
        ModelPlan(
            "anomaly",
            "anomaly",
            spec.anomaly_model_name,
            str(spec.models.anomaly.kind),
            ANOMALY_DESCRIPTION,
            # auto: per-event F1 where the spec labels anomalies (a column, NAB windows); the
            # fleet's anomaly model (labels from a ground-truth file or the failure horizon)
            # keeps PR-AUC.
            gate_metric=("f1" if labelled else "pr_auc") if g.metric == "auto" else g.metric,
            **gate,  # type: ignore[arg-type]
        )
    ]
    failure = spec.failure_model_name
    if failure:
        models.append(
            ModelPlan(
                "failure_risk",
                "failure-risk",
                failure,
                "gradient_boosting",
                FAILURE_DESCRIPTION,
                gate_metric="pr_auc" if g.metric == "auto" else g.metric,
                **gate,  # type: ignore[arg-type]
            )
        )
    return DatasetPlan(spec.name, spec.description, tuple(models))
