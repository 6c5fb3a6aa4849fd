"""Validated history only, on a real broker and a real MLflow server: a corrupted day blocks its
own run and later runs train without it (its reason in the lineage); a CSV replayed twice and
history from 2014 train."""

from __future__ import annotations

import csv
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from mlflow import MlflowClient

from features.contract import SensorReading, encode_reading
from features.contract.topics import Topics
from features.spec import load_spec
from orchestration.defs.datasets import dataset_bundle
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from streaming.kafka import make_producer
from streaming.sources.producers import backfill
from streaming.sources.replay import replay_csv

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
SPEC = load_spec("iot-fleet")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def produce_refused(bootstrap: str, topic: str, day_start_ms: int, n: int) -> None:
    """`n` readings of a day whose temperature (9999 °C) the contract refuses."""
    p = make_producer(bootstrap)
    for i in range(n):
        ts = day_start_ms + i * (DAY_MS // n)
        r = SensorReading(
            str(uuid.uuid4()),
            "pump-broken",
            ts,
            {"temperature": 1.0, "vibration": 2.0, "pressure": 6.0, "current": 40.0, "rpm": 1.0},
        )
        raw = encode_reading(r).replace(b'"temperature":1.0', b'"temperature":9999.0')
        p.produce(topic, raw, b"pump-broken", timestamp=ts)
    assert p.flush(30) == 0


def resources(bootstrap: str, topics: Topics, root: Path, uri: str, **training: Any) -> dict:
    return {
        "kafka": KafkaResource(
            bootstrap_servers=bootstrap, topic_prefix=topics.prefix, partitions=topics.partitions
        ),
        "storage": HistoryStorage(root=str(root)),
        "mlflow": MlflowResource(tracking_uri=uri, experiment=f"test-{topics.prefix}"),
        "training": TrainingSettings(**training),
    }


def run(
    res: dict[str, Any],
    instance: dg.DagsterInstance,
    tags: dict[str, str],
    upto: str = "anomaly_model",
) -> dg.ExecuteInProcessResult:
    """The dataset's retrain job, from the history up to `upto` (the models' gate and promotion
    are another room's tests)."""
    history, models = dataset_bundle(SPEC, res)
    keep = {"feature_table", "training_set", upto}
    selection = [history.event_history.key] + [
        a.key for a in models.assets if a.key.path[-1] in keep
    ]
    defs = dg.Definitions(
        assets=[history.event_history, *models.assets],
        asset_checks=[history.checks, *models.checks],
        jobs=models.jobs,
        resources={**res, "io_manager": dg.mem_io_manager},
    )
    return defs.resolve_job_def(models.plan.job_name).execute_in_process(
        instance=instance, tags=tags, asset_selection=selection, raise_on_error=False
    )


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult, name: str) -> list[Any]:
    return [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None and e.asset_key.path[-1] == name
    ]


@pytest.mark.timeout(1500)
def test_a_corrupted_day_blocks_its_run_and_the_next_run_skips_it_with_its_reason(
    kafka_bootstrap: str, mlflow_tracking_uri: str, topics: Topics, tmp_path: Path
) -> None:
    end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS  # today 00:00 UTC: 4 whole days before
    backfill(kafka_bootstrap, topics, devices=30, days=4, interval_s=300, seed=5, end_ms=end_ms)
    bad = end_ms - 2 * DAY_MS
    produce_refused(kafka_bootstrap, topics.sensor_readings, bad, 400)  # 4 % of the day
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    res = resources(
        kafka_bootstrap,
        topics,
        tmp_path,
        mlflow_tracking_uri,
        model_prefix=prefix,
        window_days=4,
        holdout_days=1,
        max_train_rows=20_000,
    )
    instance = dg.DagsterInstance.ephemeral()

    # The run over the first three days, the corrupted one among them: blocked at the checks.
    first = run(res, instance, {RANGE_START: day(end_ms - 4 * DAY_MS), RANGE_END: day(bad)})
    assert not first.success
    failed = checks_of(first)["history_invalid_records"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["failed_days"].value == [day(bad)]
    text = failed.description or ""
    assert text.startswith(f"{day(bad)}: invalid_fraction: observed 0.0")
    assert "[0.0, 0.001]" in text and f"--end {day(bad)} --days 1" in text
    assert not materialized(first, "feature_table")

    # The next day's run (one partition, as the daily schedule runs it): the corrupted day is
    # left out of training, with its reason in the lineage.
    nxt = run(res, instance, {"dagster/partition": day(end_ms - DAY_MS)})
    assert nxt.success, [e.message for e in nxt.all_events if e.is_failure]
    assert all(c.passed for c in nxt.get_asset_check_evaluations())
    (ft,) = materialized(nxt, "feature_table")
    assert ft.metadata["days"].value == [day(end_ms - k * DAY_MS) for k in (4, 3, 1)]
    reason = ft.metadata["days_skipped"].value[day(bad)]
    assert reason.startswith(f"failed its checks: {day(bad)}: invalid_fraction: observed")
    version = MlflowClient(mlflow_tracking_uri).get_model_version_by_alias(
        prefix + "iot-anomaly", "challenger"
    )
    assert json.loads(version.tags["days_skipped"]) == {day(bad): reason}


def write_fleet_csv(path: Path, start: datetime, hours: float, devices: int, seed: int) -> int:
    """A CSV of fleet-like readings every 5 minutes (device_id and timestamp columns)."""
    rng = np.random.default_rng(seed)
    steps = int(hours * 12)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["timestamp", "device_id", "temperature", "vibration", "pressure", "current", "rpm"]
        )
        for k in range(steps):
            ts = (start + timedelta(minutes=5 * k)).strftime("%Y-%m-%d %H:%M:%S")
            for d in range(devices):
                t, v, p, c, r = (
                    60 + rng.normal(0, 2),
                    2 + rng.normal(0, 0.2),
                    6 + rng.normal(0, 0.3),
                    40 + rng.normal(0, 1),
                    1480 + rng.normal(0, 10),
                )
                w.writerow(
                    [
                        ts,
                        f"pump-{d:02d}",
                        f"{t:.3f}",
                        f"{v:.4f}",
                        f"{p:.4f}",
                        f"{c:.3f}",
                        f"{r:.2f}",
                    ]
                )
    return steps * devices


@pytest.mark.timeout(1500)
def test_a_csv_from_2014_replayed_twice_trains_on_its_complete_days(
    kafka_bootstrap: str, mlflow_tracking_uri: str, topics: Topics, tmp_path: Path
) -> None:
    # 2014-02-01 06:00 .. 2014-02-06 03:55: a partial first day (75 %) and last day (16 %: the
    # spec's cadence is a minute).
    csv_path = tmp_path / "rig.csv"
    rows = write_fleet_csv(csv_path, datetime(2014, 2, 1, 6, tzinfo=UTC), 4 * 24 + 22, 8, 1)
    for _ in range(2):
        stats = replay_csv(
            kafka_bootstrap,
            topics,
            [csv_path],
            device_id_column="device_id",
            timestamp_column="timestamp",
        )
        assert stats.produced == rows
    res = resources(
        kafka_bootstrap,
        topics,
        tmp_path / "data",
        mlflow_tracking_uri,
        model_prefix=f"t{uuid.uuid4().hex[:6]}-",
        holdout_days=1,
    )
    history, _ = dataset_bundle(SPEC, res)
    # The partitions start on the topic's first event day: 2014 history is trainable.
    assert history.start_source == "topic"
    assert history.partitions_def.get_first_partition_key() == "2014-02-01"

    result = run(
        res, dg.DagsterInstance.ephemeral(), {RANGE_START: "2014-02-01", RANGE_END: "2014-02-06"}
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks = checks_of(result)
    dup = checks["history_unique_event_ids"]
    # Every reading came twice: dropped, counted and reported, never an error.
    assert not dup.passed and dup.severity == dg.AssetCheckSeverity.WARN
    assert "exact duplicates dropped (50 %" in (dup.description or "")
    assert all(c.passed for n, c in checks.items() if n != "history_unique_event_ids")
    (hist,) = materialized(result, "event_history")[:1]
    assert hist.metadata["duplicates_dropped"].value == rows
    (ft,) = materialized(result, "feature_table")
    assert ft.metadata["days"].value == [f"2014-02-0{d}" for d in range(1, 6)]
    assert ft.metadata["dagster/row_count"].value == rows - 8 * 4 * 12  # each reading once
    assert (
        ft.metadata["days_skipped"]
        .value["2014-02-06"]
        .startswith("partial day: readings cover 16% of it (00:00-03:55 UTC)")
    )
    assert ft.metadata["day_notes"].value["2014-02-01"].startswith("partial day used: readings")
    assert materialized(result, "anomaly_model")
