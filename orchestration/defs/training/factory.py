"""The model-asset factory: one set of Dagster assets per model declared in a dataset spec.

    bundle = model_assets(spec, history=event_history)
    dg.Definitions(assets=[event_history, *bundle.assets], asset_checks=bundle.checks,
                   jobs=bundle.jobs, schedules=bundle.schedules, sensors=bundle.sensors)

For a dataset `d` (asset key prefix and group `ident(d)`, e.g. `iot_fleet`):

- `feature_table`, `training_set`: the dataset's training window, labelled and split (with an
  embargo of at least the labels horizon before the hold-out);
- per declared model `m` (`anomaly`, and `failure_risk` only when the dataset has failure
  labels): `m_model` (fit, register, alias `challenger`), `m_evaluation` (hold-out metrics of
  challenger, champion and rules, the gate's decision and reasons, MLflow verdict tags, the
  `rejected` lifecycle event), the blocking check `m_gate` on it, and `m_champion` (moves
  `@champion`, publishes `promoted`). Each model trains, gates and promotes on its own.
- the retrain job (`retrain_job` for the default dataset, else `retrain_<ident>`), the daily
  schedule and the drift sensor, both running by default.

Every asset of the bundle is in the Dagster concurrency pool `retrain-<dataset>`; the instance
gives each pool one slot (dagster.yaml `concurrency.pools.default_limit: 1`), so two retrain
runs of one dataset never interleave their steps, and the champion asset refuses a version that
was not evaluated and gated in its own run against the champion still in place.

Intermediate values (feature table, training set, registered version) travel through the
definitions' IO manager; the gate and the champion read the evaluation from the run's own
event log.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

from dataclasses import dataclass
from typing import Any

import dagster as dg

from features.spec import DatasetSpec
from orchestration.defs.jobs import retrain_job_for
from orchestration.defs.promotion.assets import (
    evaluate_challenger,
    policy_for,
    promote_champion,
    registered_metadata,
)
from orchestration.defs.promotion.checks import gate_result
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.schedules import daily_schedule_for
from orchestration.defs.sensors import drift_sensor_for
from orchestration.defs.settings import RetrainConfig, TrainingSettings
from orchestration.defs.training.assets import (
    FeatureTable,
    TrainingSet,
    build_feature_table,
    build_training_set,
    feature_table_metadata,
    train_model,
    training_set_metadata,
)
from orchestration.defs.training.plan import DatasetPlan, ModelPlan, plan_from_spec
from orchestration.defs.training.tracking import Registered
from orchestration.defs.training.window import run_days, run_end_day

#: Bumped when the training or promotion code changes what an asset produces.
CODE_VERSION = "2"
OWNERS = ["team:edaml-ml"]


@dataclass(frozen=True)
class ModelAssets:
    """Everything the factory made for one dataset."""

    plan: DatasetPlan
    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetChecksDefinition]
    jobs: list[Any]
    schedules: list[Any]
    sensors: list[dg.SensorDefinition]

    def definitions(self) -> dg.Definitions:
        """The bundle as Definitions (merged into the code location's)."""
        return dg.Definitions(
            assets=self.assets,
            asset_checks=self.checks,
            jobs=self.jobs,
            schedules=self.schedules,
            sensors=self.sensors,
        )

    def key(self, name: str) -> dg.AssetKey:
        """The asset key of `name` (e.g. `anomaly_champion`) in this dataset."""
        return dg.AssetKey([self.plan.ident, name])


def model_assets(
    spec: DatasetSpec,
    *,
    history: dg.AssetsDefinition | dg.SourceAsset | dg.AssetKey,
    plan: DatasetPlan | None = None,
) -> ModelAssets:
    """The assets, gate checks, retrain job, daily schedule and drift sensor of one dataset.

    `spec`: the dataset (its sensors, feature set, labels, models and their settings reach every
    asset body); `history`: its replayed event history (daily partitioned) that the feature
    table reads; `plan`: what to build (default `plan_from_spec(spec)`; tests pass a subset)."""
    plan = plan or plan_from_spec(spec)
    prefix, group = [plan.ident], plan.ident
    common: dict[str, Any] = {
        "key_prefix": prefix,
        "group_name": group,
        "owners": OWNERS,
        "code_version": CODE_VERSION,
        "pool": plan.pool,
    }
    history_key = history if isinstance(history, dg.AssetKey) else history.key

    @dg.asset(
        name="feature_table",
        deps=[history_key],
        kinds={"pandas"},
        description=f"Per-reading features of {plan.dataset} over the training window's days.",
        **common,
    )
    def feature_table(
        context: dg.AssetExecutionContext,
        config: RetrainConfig,
        storage: HistoryStorage,
        training: TrainingSettings,
    ) -> dg.Output[FeatureTable]:
        ft = build_feature_table(
            spec, storage, run_days(context), run_end_day(context), config.apply(training)
        )
        return dg.Output(ft, metadata=feature_table_metadata(ft))

    @dg.asset(
        name="training_set",
        ins={"features": dg.AssetIn(key=feature_table.key)},
        kinds={"pandas"},
        description=(
            "Labelled features split by time: earlier days train, the latest are held out, and "
            "the embargo (at least the labels horizon) before the hold-out trains nothing."
        ),
        **common,
    )
    def training_set(
        context: dg.AssetExecutionContext,
        features: FeatureTable,
        storage: HistoryStorage,
        training: TrainingSettings,
    ) -> dg.Output[TrainingSet]:
        ts = build_training_set(spec, features, storage, training)
        context.log.info("training set: %s", {k: v for k, v in ts.summary.items() if "rows" in k})
        return dg.Output(ts, metadata=training_set_metadata(ts))

    assets: list[dg.AssetsDefinition] = [feature_table, training_set]
    checks: list[dg.AssetChecksDefinition] = []
    for m in plan.models:
        made = _model_branch(spec, m, training_set.key, common)
        assets += made[:3]
        checks.append(made[3])
    job = retrain_job_for(plan, [history_key, *(a.key for a in assets)])
    return ModelAssets(
        plan=plan,
        assets=assets,
        checks=checks,
        jobs=[job],
        schedules=[daily_schedule_for(plan, job)],
        sensors=[drift_sensor_for(plan, job)],
    )


def _model_branch(
    spec: DatasetSpec, m: ModelPlan, training_set_key: dg.AssetKey, common: dict[str, Any]
) -> tuple[Any, Any, Any, Any]:
    """model -> evaluation (+ blocking gate check) -> champion, for one declared model."""
    kinds = {"sklearn", "mlflow"}

    @dg.asset(
        name=m.model_asset,
        ins={"training_set": dg.AssetIn(key=training_set_key)},
        kinds=kinds,
        description=f"{m.kind} challenger ({m.algorithm}): {m.description}",
        **common,
    )
    def model(
        context: dg.AssetExecutionContext,
        training_set: TrainingSet,
        kafka: KafkaResource,
        mlflow: MlflowResource,
        training: TrainingSettings,
    ) -> dg.Output[Registered]:
        reg = train_model(spec, m, training_set, context.run.run_id, kafka, mlflow, training)
        return dg.Output(reg, metadata=registered_metadata(reg, mlflow.tracking_uri))

    @dg.asset(
        name=m.evaluation_asset,
        ins={
            "registered": dg.AssetIn(key=model.key),
            "training_set": dg.AssetIn(key=training_set_key),
        },
        kinds={"mlflow"},
        description=(
            f"{m.kind}: challenger, champion and rule baseline on the same hold-out; the gate's "
            "decision and reasons (also the version's MLflow tags gate_verdict, gate_reasons)."
        ),
        **common,
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        registered: Registered,
        training_set: TrainingSet,
        kafka: KafkaResource,
        mlflow: MlflowResource,
        training: TrainingSettings,
    ) -> dg.MaterializeResult:
        _, metadata = evaluate_challenger(
            m,
            registered,
            training_set,
            context.run.run_id,
            kafka,
            mlflow,
            training,
            context.log,
        )
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset_check(
        asset=evaluation,
        name=m.gate_check,
        blocking=True,
        description=f"{m.kind}: the challenger evaluated in this run passes the gate.",
    )
    def gate(
        context: dg.AssetCheckExecutionContext, training: TrainingSettings
    ) -> dg.AssetCheckResult:
        return gate_result(
            context.instance, context.run.run_id, evaluation.key, policy_for(m, training)
        )

    @dg.asset(
        name=m.champion_asset,
        deps=[evaluation],
        kinds={"mlflow", "kafka"},
        description=(
            f"{m.kind}: the serving version (`@champion`). Moves only to the version gated in the "
            "same run, and only if the champion it was compared with is still the champion."
        ),
        **common,
    )
    def champion(
        context: dg.AssetExecutionContext, kafka: KafkaResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        metadata = promote_champion(
            m,
            evaluation.key,
            dg.AssetCheckKey(evaluation.key, m.gate_check),
            context.instance,
            context.run.run_id,
            kafka,
            mlflow,
        )
        return dg.MaterializeResult(metadata=metadata)

    return model, evaluation, champion, gate
