"""The retrain job of a dataset: replay history, check it, train each model, gate, promote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.defs.training.plan import DatasetPlan

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as RetrainJob,
    )

#: Run tag naming the dataset a retrain run is for. The local stack's instance queues runs
#: with one running per value (dagster.yaml `run_queue.tag_concurrency_limits`).
RETRAIN_TAG = "edaml/retrain"


def retrain_job_for(plan: DatasetPlan, keys: Sequence[dg.AssetKey]) -> RetrainJob:
    """The dataset's retrain job over `keys` (its history and model assets, with their checks)."""
    names = ", ".join(m.registered_name for m in plan.models)
    return dg.define_asset_job(
        plan.job_name,
        selection=dg.AssetSelection.assets(*keys),
        tags={RETRAIN_TAG: plan.dataset},
        description=(
            f"{plan.dataset}: replay the day(s) from Kafka, check them, train {names}; each model "
            "is gated and promoted on its own. One run at a time per dataset."
        ),
    )
