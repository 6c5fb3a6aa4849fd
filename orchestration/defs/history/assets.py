"""The history half of a dataset's asset group: `event_history` and its blocking checks.

    history = history_assets(spec, kafka=..., storage=...)
    history.event_history        # AssetsDefinition, key [<ident>, "event_history"], daily
    history.checks               # the blocking GE checks (multi-asset check)
    history.days(storage)        # DatasetHistory: the stored days of this history code
    history.select_days(storage, days)  # valid days and the skipped ones with reasons

One partition is one UTC day of the event log (record timestamps are event times), replayed
into Parquet by `offsets_for_times` at both ends. The partitions start on the day of the topic's
first event (`partitions.py`). A range of days materialises in one run (a UI backfill too).
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from features.spec import DatasetSpec
from orchestration.defs.history.checks import CHECKS, Tolerances, judge_days, run_checks
from orchestration.defs.history.columns import MaintenanceColumns, ReadingColumns
from orchestration.defs.history.parquet import content_digest, write_atomic
from orchestration.defs.history.partitions import daily_partitions, start_day
from orchestration.defs.history.replay import DAY_MS, END_OF_LOG_MS, day_window, replay
from orchestration.defs.history.store import DatasetHistory
from orchestration.defs.history.validity import DaySelection, select_days
from orchestration.defs.resources import HistoryStorage, KafkaResource

#: Bumped when replaying or checking changes what a day's files hold (a new storage folder).
HISTORY_CODE_VERSION = "2"
OWNERS = ["team:edaml-data"]


def ident(name: str) -> str:
    """A Dagster-safe identifier for a dataset name (`iot-fleet` -> `iot_fleet`)."""
    return name.replace("-", "_").replace(".", "_")


def has_maintenance(spec: DatasetSpec) -> bool:
    """Whether the dataset's labels include failure/repair events on a topic."""
    return any(src.kind == "events" for src in spec.labels)


class HistoryCheckConfig(dg.Config):
    """Tolerances of the history checks (the defaults are documented in checks.py)."""

    #: Late readings accepted this far before the day (None: the spec's features.lateness).
    lateness_minutes: float | None = None
    range_mostly: float = 0.999
    window_mostly: float = 0.999
    max_invalid_fraction: float = 0.001
    max_conflicting_fraction: float = 0.001
    warn_duplicate_fraction: float = 0.01
    volume_low: float = 0.5
    volume_high: float = 2.0


def dedupe(df: pd.DataFrame, sensors: list[str]) -> tuple[pd.DataFrame, int, int]:
    """Keep each event id's first reading (log order); count exact and conflicting duplicates."""
    dup = df.duplicated("event_id", keep="first")
    n = int(dup.sum())
    if n == 0:
        return df, 0, 0
    exact = int(df.duplicated(["event_id", "device_id", "ts_ms", *sensors], keep="first").sum())
    return df[~dup].reset_index(drop=True), exact, n - exact


def coverage(ts: pd.Series, day: str, cadence_ms: int) -> tuple[float, int, int]:
    """The share of the day between its first and last readings (plus one cadence slot)."""
    start, end = day_window(day)
    if ts.empty:
        return 0.0, start, start
    first, last = max(int(ts.min()), start), min(int(ts.max()), end - 1)
    return min(1.0, max(0, last - first + cadence_ms) / DAY_MS), first, last


def replay_days(
    kafka: KafkaResource, spec: DatasetSpec, history: DatasetHistory, days: list[str]
) -> list[dict[str, Any]]:
    """Replay the days' readings (and maintenance) into Parquet, one folder per day; return
    each day's stats.

    A day holds the records whose event time falls in it, wherever they sit in the log: one
    scan from the first offset at or after the first day's start (every record of these days is
    at or after it) to the end of the log, so a late reading, or a file replayed again later,
    lands in its own day."""
    days = sorted(days)
    start_ms = day_window(days[0])[0]
    topics = spec.topics(kafka.topic_prefix, kafka.partitions)
    sensors = list(spec.sensor_names)
    # A throwaway group: assign() with explicit offsets, nothing is ever committed.
    consumer = kafka.consumer(
        f"edaml-history-{uuid.uuid4().hex[:8]}",
        **{"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024},
    )
    t0 = time.perf_counter()
    readings, maintenance = ReadingColumns(sensors, spec.contract), MaintenanceColumns()
    try:
        r_stats = replay(
            consumer, topics.sensor_readings, start_ms, END_OF_LOG_MS, readings, timestamps=True
        )
        m_stats = (
            replay(consumer, topics.maintenance, start_ms, END_OF_LOG_MS, maintenance)
            if has_maintenance(spec)
            else None
        )
    finally:
        consumer.close()
    all_readings, all_maintenance = readings.frame(), maintenance.frame()
    seconds = time.perf_counter() - t0
    out = []
    for day in days:
        s, e = day_window(day)
        in_day = all_readings[(all_readings["ts_ms"] >= s) & (all_readings["ts_ms"] < e)]
        m_in_day = all_maintenance[(all_maintenance["ts_ms"] >= s) & (all_maintenance["ts_ms"] < e)]
        out.append(
            store_day(history, spec, day, in_day, m_in_day, readings.invalid_on(s), r_stats.topic)
        )
        out[-1]["seconds"] = round(seconds / len(days), 3)
        out[-1]["events_per_s"] = round(
            (r_stats.records + (m_stats.records if m_stats else 0)) / max(seconds, 1e-9)
        )
    return out


def replay_day(
    kafka: KafkaResource, spec: DatasetSpec, history: DatasetHistory, day: str
) -> dict[str, Any]:
    """Replay one day (see `replay_days`)."""
    return replay_days(kafka, spec, history, [day])[0]


def _offsets(df: pd.DataFrame) -> dict[str, list[int]]:
    """Per partition, the offsets [first, last + 1) of the day's records."""
    if df.empty:
        return {}
    g = df.groupby("partition")["offset"].agg(["min", "max"])
    return {str(p): [int(lo), int(hi) + 1] for p, (lo, hi) in g.iterrows()}


def store_day(
    history: DatasetHistory,
    spec: DatasetSpec,
    day: str,
    readings: pd.DataFrame,
    maintenance: pd.DataFrame,
    invalid: dict[str, int],
    topic: str,
) -> dict[str, Any]:
    """Write one day's de-duplicated readings and maintenance events and their stats."""
    start_ms, end_ms = day_window(day)
    sensors = list(spec.sensor_names)
    r_df, exact, conflicting = dedupe(readings.reset_index(drop=True), sensors)
    m_df = maintenance.drop_duplicates("event_id", ignore_index=True)
    cov, first, last = coverage(r_df["ts_ms"], day, spec.cadence_ms)
    # The old verdict does not describe the new content: the checks write the next one.
    history.clear_verdict(day)
    write_atomic(r_df, history.readings_file(day))
    write_atomic(m_df, history.maintenance_file(day))
    stats: dict[str, Any] = {
        "day": day,
        "window_ms": [start_ms, end_ms],
        "readings": {
            "topic": topic,
            "partitions": sorted(int(p) for p in r_df["partition"].unique()),
            "offsets": _offsets(r_df),
            "records": len(readings) + sum(invalid.values()),
            "rows": len(r_df),
            "invalid": invalid,
            "duplicates": {"exact": exact, "conflicting": conflicting},
            "digest": content_digest(r_df),
            "coverage": round(cov, 4),
            "first_ts_ms": first,
            "last_ts_ms": last,
        },
        "maintenance": {"rows": len(m_df), "digest": content_digest(m_df)},
    }
    # Written last: a day is stored once its stats exist.
    history.write_stats(day, stats)
    return stats


def stored_history(storage: HistoryStorage, dataset: str) -> DatasetHistory:
    """The stored days of `dataset` replayed by this version of the history code."""
    return DatasetHistory.at(storage.path, dataset, HISTORY_CODE_VERSION)


def column_schema(df: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(str(c), str(t)) for c, t in df.dtypes.items()])


@dataclass(frozen=True)
class HistoryAssets:
    """The history assets of one dataset and how to read what they stored."""

    spec: DatasetSpec
    partitions_def: dg.DailyPartitionsDefinition
    event_history: dg.AssetsDefinition
    checks: dg.AssetChecksDefinition
    #: Where the first partition's day came from: "topic", "remembered" or "no data".
    start_source: str

    @property
    def ident(self) -> str:
        return ident(self.spec.name)

    def days(self, storage: HistoryStorage) -> DatasetHistory:
        return stored_history(storage, self.spec.name)

    def select_days(self, storage: HistoryStorage, days: list[str]) -> DaySelection:
        """The valid days among `days`, and each skipped day with its reason (for lineage)."""
        return select_days(self.days(storage), days)


def history_assets(
    spec: DatasetSpec, *, kafka: KafkaResource, storage: HistoryStorage
) -> HistoryAssets:
    """`event_history` of `spec` (daily from the topic's first event) and its checks.

    `kafka` and `storage` are read when the definitions load, for the first event's day."""
    name, group = spec.name, ident(spec.name)
    topic = spec.topics(kafka.topic_prefix, kafka.partitions).sensor_readings
    first_day, source = start_day(
        # librdkafka logs nothing: a broker that is down is reported once, below.
        lambda: kafka.consumer(f"edaml-partitions-{uuid.uuid4().hex[:8]}", log_level=0),
        topic,
        stored_history(storage, name).base.parent / "start.json",
    )
    partitions = daily_partitions(first_day)

    def _event_history(
        context: dg.AssetExecutionContext, kafka: KafkaResource, storage: HistoryStorage
    ) -> dg.MaterializeResult:
        history = stored_history(storage, name)
        days = replay_days(kafka, spec, history, list(context.partition_keys))
        for d in days:
            r = d["readings"]
            context.log.info(
                "%s: %d readings (%d duplicates dropped, %d invalid), coverage %.0f%%, %.1fs "
                "(%d events/s)",
                d["day"],
                r["rows"],
                r["duplicates"]["exact"] + r["duplicates"]["conflicting"],
                sum(r["invalid"].values()),
                100 * r["coverage"],
                d["seconds"],
                d["events_per_s"],
            )
        rows = sum(d["readings"]["rows"] for d in days)
        seconds = sum(d["seconds"] for d in days)
        sample = history.readings_file(days[-1]["day"]) if days else None
        import pyarrow.parquet as pq

        schema = (
            column_schema(pq.read_schema(sample).empty_table().to_pandas())
            if sample and sample.exists()
            else None
        )
        metadata: dict[str, Any] = {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "days": dg.MetadataValue.json(
                {
                    d["day"]: {
                        "rows": d["readings"]["rows"],
                        "coverage": d["readings"]["coverage"],
                        "duplicates": d["readings"]["duplicates"],
                        "invalid": d["readings"]["invalid"],
                        "offsets": d["readings"]["offsets"],
                        "digest": d["readings"]["digest"],
                    }
                    for d in days
                }
            ),
            "topic": topic,
            "duplicates_dropped": dg.MetadataValue.int(
                sum(sum(d["readings"]["duplicates"].values()) for d in days)
            ),
            "invalid_records": dg.MetadataValue.int(
                sum(sum(d["readings"]["invalid"].values()) for d in days)
            ),
            "maintenance_rows": dg.MetadataValue.int(sum(d["maintenance"]["rows"] for d in days)),
            "events_per_s": dg.MetadataValue.float(round(rows / max(seconds, 1e-9), 1)),
            "path": dg.MetadataValue.path(str(history.base)),
        }
        if schema is not None:
            metadata["dagster/column_schema"] = schema
        return dg.MaterializeResult(metadata=metadata)

    # One run per backfill: a range backfill in the UI trains once, not once per day. The
    # policy parameter is marked beta; its warning is silenced for this definition only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        event_history = dg.asset(
            name="event_history",
            key_prefix=[group],
            group_name=group,
            partitions_def=partitions,
            backfill_policy=dg.BackfillPolicy.single_run(),
            kinds={"kafka", "parquet"},
            owners=OWNERS,
            code_version=HISTORY_CODE_VERSION,
            description=(
                f"{name}: readings{' and maintenance events' if has_maintenance(spec) else ''} "
                f"of one UTC day, replayed from `{topic}` into Parquet (duplicates dropped and "
                f"counted). Partitions start on the topic's first event day ({first_day}, from "
                f"the {source})."
            ),
        )(_event_history)

    check_names = [c for c in CHECKS if c != "maintenance_valid" or has_maintenance(spec)]

    @dg.multi_asset_check(
        name=f"{group}_history_expectations",
        specs=[
            dg.AssetCheckSpec(c, asset=event_history, blocking=True, description=CHECKS[c][0])
            for c in check_names
        ],
    )
    def history_expectations(
        context: dg.AssetCheckExecutionContext, config: HistoryCheckConfig, storage: HistoryStorage
    ) -> Iterator[dg.AssetCheckResult]:
        """Great Expectations suites over each replayed day; a day's verdict gates training."""
        history = stored_history(storage, name)
        # Run on its own (no partition): re-validate every stored day.
        partitioned = context.has_partition_key or context.has_partition_key_range
        days = list(context.partition_keys) if partitioned else history.stored_days()
        lateness = (
            int(config.lateness_minutes * 60_000)
            if config.lateness_minutes is not None
            else spec.feature_set.lateness_ms
        )
        tol = Tolerances(
            lateness_ms=lateness,
            range_mostly=config.range_mostly,
            window_mostly=config.window_mostly,
            max_invalid_fraction=config.max_invalid_fraction,
            max_conflicting_fraction=config.max_conflicting_fraction,
            warn_duplicate_fraction=config.warn_duplicate_fraction,
            volume_low=config.volume_low,
            volume_high=config.volume_high,
            with_maintenance=has_maintenance(spec),
        )
        results = judge_days(history, days, spec.expectations, tol, name, context.run.run_id)
        verdicts = {d: history.verdict(d) or {} for d in days}
        for check, passed, severity, text in run_checks(results):
            if check not in check_names:
                continue
            failed_days = sorted({r.day for r in results_for(results, check) if not r.passed})
            yield dg.AssetCheckResult(
                asset_key=event_history.key,
                check_name=check,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR
                if severity == "ERROR"
                else dg.AssetCheckSeverity.WARN,
                description=text,
                metadata={
                    "days": dg.MetadataValue.json(days),
                    "failed_days": dg.MetadataValue.json(failed_days),
                    "messages": dg.MetadataValue.json(
                        [r.message for r in results_for(results, check) if not r.passed]
                    ),
                    "failed": dg.MetadataValue.json(
                        [o for r in results_for(results, check) for o in r.outcomes]
                    ),
                    "valid_days": dg.MetadataValue.int(
                        sum(1 for v in verdicts.values() if v.get("valid"))
                    ),
                },
            )

    return HistoryAssets(spec, partitions, event_history, history_expectations, source)


def results_for(results: dict[str, list[Any]], check: str) -> list[Any]:
    return [r for res in results.values() for r in res if r.check == check]
