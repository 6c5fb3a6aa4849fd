"""Daily retraining on the day that just ended."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.jobs import retrain_job

daily_retrain_schedule = dg.build_schedule_from_partitioned_job(
    retrain_job,
    name="daily_retrain_schedule",
    hour_of_day=1,
    minute_of_hour=0,
    description="Every day at 01:00 UTC: replay yesterday, retrain on the window, gate, promote.",
)
