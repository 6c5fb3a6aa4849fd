"""Which stored days a training run uses: a window ending at the run's last partition."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def window_days(stored: list[str], end: str | None, n: int) -> list[str]:
    """The stored days in (end - n days, end]; `end` None means the latest stored day."""
    if not stored:
        return []
    last = date.fromisoformat(end or stored[-1])
    first = last - timedelta(days=n - 1)
    return [d for d in stored if first <= date.fromisoformat(d) <= last]


def run_end_day(context: dg.AssetExecutionContext) -> str | None:
    """The last partition this run materialized (range or single), if it is a partitioned run."""
    tags = context.run.tags
    return tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)


def run_days(context: dg.AssetExecutionContext) -> tuple[str, str] | None:
    """The first and last partitions of a run over a range of days (`edaml train`, a UI
    backfill): the run trains on exactly those days. None for a single partition or none."""
    tags = context.run.tags
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    return (start, end) if start and end and start != end else None
