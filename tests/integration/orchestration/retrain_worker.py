"""One retrain run of a one-model test dataset, in its own process, on a shared Dagster instance
(DAGSTER_HOME). Used by test_orch_retrain_concurrency.py to launch runs together.

    python retrain_worker.py '{"dataset": ..., "bootstrap": ..., ...}'

Prints one JSON line: {"run_id": ..., "success": ...}.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from features.spec import load_spec
from orchestration.defs.history.assets import history_assets
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training.factory import model_assets
from orchestration.defs.training.plan import DatasetPlan, plan_from_spec


def main(cfg: dict[str, object]) -> None:
    spec = load_spec("iot-fleet").model_copy(update={"name": str(cfg["dataset"])})
    plan = DatasetPlan(spec.name, "test", plan_from_spec(spec).models[:1])
    kafka = KafkaResource(
        bootstrap_servers=str(cfg["bootstrap"]),
        topic_prefix=str(cfg["prefix"]),
        partitions=int(cfg["partitions"]),  # type: ignore[call-overload]
    )
    storage = HistoryStorage(root=str(cfg["root"]))
    history = history_assets(spec, kafka=kafka, storage=storage)
    bundle = model_assets(spec, plan=plan, history=history.event_history)
    defs = dg.Definitions(
        assets=[history.event_history, *bundle.assets],
        asset_checks=[history.checks, *bundle.checks],
        jobs=bundle.jobs,
        resources={
            "kafka": kafka,
            "storage": storage,
            "mlflow": MlflowResource(tracking_uri=str(cfg["mlflow"]), experiment="concurrency"),
            "training": TrainingSettings(**cfg["training"]),  # type: ignore[arg-type]
            # Each process keeps its run's values in memory: runs cannot read each other's.
            "io_manager": dg.mem_io_manager,
        },
    )
    job = defs.resolve_job_def(plan.job_name)
    selection = None if cfg.get("history") else [a.key for a in bundle.assets]
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=dict(cfg.get("tags") or {}),  # type: ignore[call-overload]
            asset_selection=selection,
            raise_on_error=False,
        )
    print(json.dumps({"run_id": result.run_id, "success": result.success}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
