"""Broken history stops the retrain job at the blocking checks: nothing downstream runs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.contract import SensorReading, encode_reading
from orchestration.definitions import build_defs
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from streaming.kafka import make_producer
from streaming.producers import backfill
from streaming.topics import Topics

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def produce_stuck_sensor(bootstrap: str, topic: str, day_start_ms: int) -> int:
    """A device whose temperature sensor is stuck at 390 °C (legal on the wire) for a day."""
    p = make_producer(bootstrap)
    n = 0
    for ts in range(day_start_ms, day_start_ms + DAY_MS, 300_000):
        r = SensorReading(
            str(uuid.uuid4()),
            "pump-stuck",
            ts,
            {
                "temperature": 390.0,
                "vibration": 2.0,
                "pressure": 6.0,
                "current": 40.0,
                "rpm": 1480.0,
            },
        )
        p.produce(topic, encode_reading(r), b"pump-stuck", timestamp=ts)
        n += 1
    assert p.flush(30) == 0
    return n


@pytest.mark.timeout(300)
def test_stuck_sensor_fails_the_range_check_and_nothing_trains(
    kafka_bootstrap: str, mlflow_tracking_uri: str, topics: Topics, tmp_path: Path
) -> None:
    end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS
    backfill(kafka_bootstrap, topics, devices=40, days=3, interval_s=300, seed=5, end_ms=end_ms)
    produce_stuck_sensor(kafka_bootstrap, topics.sensor_readings, end_ms - DAY_MS)
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    defs = build_defs(
        {
            "kafka": KafkaResource(
                bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix, partitions=3
            ),
            "storage": HistoryStorage(root=str(tmp_path)),
            "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
            "training": TrainingSettings(model_prefix=prefix, window_days=3),
        }
    )
    day = lambda ms: time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))  # noqa: E731
    result = defs.resolve_job_def("retrain_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": day(end_ms - 3 * DAY_MS),
            "dagster/asset_partition_range_end": day(end_ms - DAY_MS),
        },
        raise_on_error=False,
    )
    assert not result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["history_sensor_ranges"].passed
    failed: Any = checks["history_sensor_ranges"].metadata["failed"].value
    assert [f["column"] for f in failed] == ["temperature"]
    assert checks["history_schema"].passed and checks["history_unique_event_ids"].passed
    materialized = {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }
    assert materialized == {"event_history"}
    assert not (tmp_path / "features").exists()
    client = MlflowClient(mlflow_tracking_uri)
    for base in ("iot-anomaly", "iot-failure-risk"):
        with pytest.raises(MlflowException):
            client.get_registered_model(prefix + base)
