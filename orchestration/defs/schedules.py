"""Daily retraining on the day that just ended, running by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg

from orchestration.defs.training.plan import DEFAULT_DATASET, DatasetPlan

if TYPE_CHECKING:
    from orchestration.defs.jobs import RetrainJob


def schedule_name(plan: DatasetPlan) -> str:
    base = "daily_retrain_schedule"
    return base if plan.dataset == DEFAULT_DATASET else f"{base}_{plan.ident}"


def daily_schedule_for(plan: DatasetPlan, job: RetrainJob) -> Any:
    """Every day at 01:00 UTC: replay yesterday, retrain on the window, gate, promote."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name=schedule_name(plan),
        hour_of_day=1,
        minute_of_hour=0,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"{plan.dataset}: every day at 01:00 UTC, replay yesterday, retrain on the window, "
            "gate, promote."
        ),
    )
