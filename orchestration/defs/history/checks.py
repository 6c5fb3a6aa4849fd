"""Blocking Great Expectations checks on event_history: nothing trains on broken history."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import dagster as dg
import pandas as pd

from features.readings import SENSORS
from orchestration.defs.history import expectations as ex
from orchestration.defs.history.assets import event_history
from orchestration.defs.history.parquet import read_days
from orchestration.defs.history.replay import day_window
from orchestration.defs.resources import HistoryStorage


class HistoryCheckConfig(dg.Config):
    """Tolerances of the history checks."""

    lateness_minutes: int = 60
    max_missing_fraction: float = 0.05
    range_mostly: float = 0.999
    max_invalid_fraction: float = 0.001
    volume_low: float = 0.5
    volume_high: float = 2.0


CHECKS: dict[str, str] = {
    "history_schema": "Columns and types of the replayed readings match the contract.",
    "history_nulls": "Ids and timestamps are never null; sensor dropouts stay rare.",
    "history_sensor_ranges": "Every sensor's values stay inside its plausible operating range.",
    "history_unique_event_ids": "Each event_id occurs once in the replayed window.",
    "history_in_window": "Event timestamps fall inside the partition's day (plus lateness).",
    "history_volume": "Each day's volume is in line with earlier days and few records are invalid.",
    "maintenance_valid": "Maintenance events are complete, unique and inside the window.",
}


def evaluate_history(
    storage: HistoryStorage, days: list[str], cfg: HistoryCheckConfig
) -> dict[str, list[ex.Outcome]]:
    """Run every suite over the stored days; outcomes by check name."""
    readings = read_days([storage.readings_file(d) for d in days])
    maintenance = read_days([storage.maintenance_file(d) for d in days])
    start_ms, end_ms = day_window(days[0])[0], day_window(days[-1])[1]
    lateness_ms = cfg.lateness_minutes * 60_000
    stats = {d: _stats(storage, d) for d in storage.stored_days()}
    counts = {d: int(stats[d]["readings"]["rows"]) for d in days if d in stats}
    earlier = {d: int(s["readings"]["rows"]) for d, s in stats.items() if d not in counts}
    volume = ex.volume_frame(counts, earlier)
    invalid = pd.DataFrame(
        {
            "invalid_fraction": [
                sum(stats[d]["readings"]["invalid"].values())
                / max(1, stats[d]["readings"]["records"])
                for d in counts
            ]
        }
    )
    import great_expectations as gx

    out = {
        "history_schema": ex.run_suite(readings, ex.schema_expectations(), name="schema"),
        "history_nulls": ex.run_suite(
            readings, ex.null_expectations(cfg.max_missing_fraction), name="nulls"
        ),
        # Each suite sees only its columns: GE copies and scans what it is given.
        "history_sensor_ranges": ex.run_suite(
            readings[[s for s in SENSORS if s in readings]],
            ex.range_expectations(cfg.range_mostly),
            name="ranges",
        ),
        "history_unique_event_ids": ex.run_suite(
            readings[["event_id"]], ex.unique_expectations(), name="unique"
        ),
        "history_in_window": ex.run_suite(
            readings[["ts_ms"]],
            ex.window_expectations(start_ms, end_ms, lateness_ms),
            name="window",
        ),
        "history_volume": ex.run_suite(
            volume, ex.volume_expectations(cfg.volume_low, cfg.volume_high), name="volume"
        )
        + ex.run_suite(
            invalid,
            [
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="invalid_fraction", min_value=0.0, max_value=cfg.max_invalid_fraction
                )
            ],
            name="invalid",
        ),
        "maintenance_valid": ex.run_suite(
            maintenance, ex.maintenance_expectations(start_ms, end_ms, lateness_ms), name="maint"
        )
        if len(maintenance)
        else [],
    }
    return out


def _stats(storage: HistoryStorage, day: str) -> dict[str, Any]:
    return json.loads(storage.file("history", "stats", f"date={day}.json").read_text())


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=event_history, blocking=True, description=text)
        for name, text in CHECKS.items()
    ],
)
def history_expectations(
    context: dg.AssetCheckExecutionContext, config: HistoryCheckConfig, storage: HistoryStorage
) -> Iterator[dg.AssetCheckResult]:
    """Great Expectations suites over the replayed days (schema, nulls, ranges, ids, window, volume)."""
    days = list(context.partition_keys)
    outcomes = evaluate_history(storage, days, config)
    for name, results in outcomes.items():
        failed = [r for r in results if not r.success]
        yield dg.AssetCheckResult(
            asset_key=event_history.key,
            check_name=name,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "days": dg.MetadataValue.json(days),
                "expectations": len(results),
                "failed": dg.MetadataValue.json([asdict(r) for r in failed]),
            },
        )
