"""event_history: one UTC day of the event log, replayed from Kafka into Parquet."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import json
import time
import uuid
import warnings
from typing import Any

import dagster as dg

from orchestration.defs.history.columns import MaintenanceColumns, ReadingColumns
from orchestration.defs.history.parquet import content_digest, write_atomic
from orchestration.defs.history.replay import day_window, replay
from orchestration.defs.resources import HistoryStorage, KafkaResource

daily_partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")


def replay_day(kafka: KafkaResource, storage: HistoryStorage, day: str) -> dict[str, Any]:
    """Replay one day of readings and maintenance into Parquet; return its description."""
    start_ms, end_ms = day_window(day)
    topics = kafka.topics
    # A throwaway group: assign() with explicit offsets, nothing is ever committed.
    consumer = kafka.consumer(
        f"edaml-history-{uuid.uuid4().hex[:8]}",
        **{"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024},
    )
    t0 = time.perf_counter()
    try:
        readings, maintenance = ReadingColumns(), MaintenanceColumns()
        r_stats = replay(consumer, topics.sensor_readings, start_ms, end_ms, readings)
        m_stats = replay(consumer, topics.maintenance, start_ms, end_ms, maintenance)
    finally:
        consumer.close()
    r_df, m_df = readings.frame(), maintenance.frame()
    write_atomic(r_df, storage.readings_file(day))
    write_atomic(m_df, storage.maintenance_file(day))
    seconds = time.perf_counter() - t0
    desc: dict[str, Any] = {
        "day": day,
        "window_ms": [start_ms, end_ms],
        "readings": {
            **r_stats.as_metadata(),
            "rows": len(r_df),
            "invalid": dict(readings.invalid),
            "digest": content_digest(r_df),
        },
        "maintenance": {
            **m_stats.as_metadata(),
            "rows": len(m_df),
            "invalid": dict(maintenance.invalid),
            "digest": content_digest(m_df),
        },
        "seconds": round(seconds, 3),
        "events_per_s": round((r_stats.records + m_stats.records) / max(seconds, 1e-9)),
    }
    storage.file("history", "stats", f"date={day}.json").write_text(json.dumps(desc))
    return desc


def _event_history(
    context: dg.AssetExecutionContext, kafka: KafkaResource, storage: HistoryStorage
) -> dg.MaterializeResult:
    """Sensor readings and maintenance events of one UTC day, replayed from Kafka into Parquet."""
    days = [replay_day(kafka, storage, day) for day in context.partition_keys]
    for d in days:
        context.log.info(
            "%s: %d readings, %d maintenance events, %.1fs (%d events/s)",
            d["day"],
            d["readings"]["rows"],
            d["maintenance"]["rows"],
            d["seconds"],
            d["events_per_s"],
        )
    rows = sum(d["readings"]["rows"] for d in days)
    seconds = sum(d["seconds"] for d in days)
    metadata: dict[str, Any] = {
        "days": dg.MetadataValue.json({d["day"]: d for d in days}),
        "topic": kafka.topics.sensor_readings,
        "maintenance_topic": kafka.topics.maintenance,
        "partitions": dg.MetadataValue.json(days[0]["readings"]["partitions"] if days else []),
        "offsets": dg.MetadataValue.json({d["day"]: d["readings"]["offsets"] for d in days}),
        "row_count": dg.MetadataValue.int(rows),
        "maintenance_rows": dg.MetadataValue.int(sum(d["maintenance"]["rows"] for d in days)),
        "invalid_records": dg.MetadataValue.int(
            sum(sum(d["readings"]["invalid"].values()) for d in days)
        ),
        "digest": content_digest_of_days(days),
        "events_per_s": dg.MetadataValue.float(round(rows / max(seconds, 1e-9), 1)),
        "path": dg.MetadataValue.path(str(storage.path / "history")),
    }
    return dg.MaterializeResult(metadata=metadata)


# One run per backfill: a range backfill in the UI trains once, not once per day. The policy
# parameter is marked beta; its warning is silenced for this definition only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    event_history = dg.asset(
        name="event_history",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="history",
        kinds={"kafka", "parquet"},
    )(_event_history)


def content_digest_of_days(days: list[dict[str, Any]]) -> str:
    """The day's digest for one day, a digest of the days' digests for a range."""
    if len(days) == 1:
        return str(days[0]["readings"]["digest"])
    import hashlib

    h = hashlib.sha256()
    for d in days:
        h.update(f"{d['day']}:{d['readings']['digest']}:{d['maintenance']['digest']}".encode())
    return h.hexdigest()
