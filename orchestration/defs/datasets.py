"""Every dataset declared under `datasets/` as one asset group of the code location.

For each spec: its history (`history/`: `event_history`, daily from the topic's first event,
and its blocking checks) and its models (`training/`'s factory: features, training set, one
branch per declared model, the retrain job, schedule and drift sensor). Values passed between
assets go through the run-scoped IO manager (`io_manager.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from features.spec import DatasetSpec, list_datasets, load_spec
from orchestration.defs.history.assets import HistoryAssets, history_assets
from orchestration.defs.resources import HistoryStorage, KafkaResource, default_resources
from orchestration.defs.training.factory import ModelAssets, model_assets


def dataset_bundle(
    spec: DatasetSpec, resources: Mapping[str, Any]
) -> tuple[HistoryAssets, ModelAssets]:
    """One dataset's history assets and model assets (tests select from them)."""
    history = dataset_history(spec, resources)
    return history, model_assets(spec, history=history.event_history)


def dataset_definitions(spec: DatasetSpec, resources: Mapping[str, Any]) -> dg.Definitions:
    """One dataset's asset group (history and models), jobs, schedule and sensor."""
    history, models = dataset_bundle(spec, resources)
    return dg.Definitions(
        assets=[history.event_history, *models.assets],
        asset_checks=[history.checks, *models.checks],
        jobs=models.jobs,
        schedules=models.schedules,
        sensors=models.sensors,
    )


def dataset_history(spec: DatasetSpec, resources: Mapping[str, Any]) -> HistoryAssets:
    """The history assets of `spec`, partitioned from the topic that `resources` point at."""
    kafka: KafkaResource = resources["kafka"].process_config_and_initialize()
    storage: HistoryStorage = resources["storage"].process_config_and_initialize()
    return history_assets(spec, kafka=kafka, storage=storage)


def all_definitions(
    resources: Mapping[str, Any] | None = None, datasets: Sequence[str] | None = None
) -> dg.Definitions:
    """Every dataset's definitions with `resources` (default: the environment's)."""
    res = dict(resources or default_resources())
    specs = [load_spec(name) for name in (datasets or list_datasets())]
    # Runs execute their steps in the run's own process: a retrain's steps run one after the
    # other anyway (one slot per dataset pool), and a step subprocess would load the code
    # location (topics, models) again for each step.
    return dg.Definitions.merge(
        *(dataset_definitions(spec, res) for spec in specs),
        dg.Definitions(resources=res, executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location's datasets and resources (found by `load_from_defs_folder`)."""
    return all_definitions()
