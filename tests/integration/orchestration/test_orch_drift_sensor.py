"""drift_sensor against a real broker: drift requests one retrain, then cools down."""

from __future__ import annotations

import time
import uuid

import dagster as dg
import pytest

from features.contract import DriftReport, FeatureDrift, Heartbeat, encode
from features.contract.topics import Topics
from orchestration.definitions import defs
from orchestration.defs.resources import KafkaResource
from streaming.kafka import make_producer

pytestmark = pytest.mark.integration

drift_sensor = defs.resolve_sensor_def("drift_sensor")


def _report(drifted: bool) -> DriftReport:
    now = int(time.time() * 1000)
    return DriftReport(
        event_id=str(uuid.uuid4()),
        ts_ms=now,
        model_name="iot-anomaly",
        model_version="3",
        window_start_ms=now - 600_000,
        window_end_ms=now,
        n_events=1000,
        features=[
            FeatureDrift("vibration__mean_1h", "psi", 0.4 if drifted else 0.01, 0.2, drifted)
        ],
        drifted=drifted,
    )


def _send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = make_producer(bootstrap)
    for v in values:
        p.produce(topic, v, b"iot-anomaly")
    assert p.flush(10) == 0


def test_drift_requests_one_retrain_then_cools_down(kafka_bootstrap: str, topics: Topics) -> None:
    kafka = KafkaResource(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix, partitions=topics.partitions
    )
    topic = topics.model_monitoring
    heartbeat = Heartbeat(
        event_id=str(uuid.uuid4()),
        ts_ms=int(time.time() * 1000),
        service="scorer",
        instance="a",
        status="ok",
    )
    _send(kafka_bootstrap, topic, [encode(_report(False)), encode(heartbeat), b"not json"])
    ctx = dg.build_sensor_context(cursor=None, resources={"kafka": kafka})
    quiet = drift_sensor(ctx)
    assert isinstance(quiet, dg.SensorResult)
    assert not quiet.run_requests and quiet.skip_reason is not None
    assert "no drift" in (quiet.skip_reason.skip_message or "")

    _send(kafka_bootstrap, topic, [encode(_report(True)), encode(_report(True))])
    ctx = dg.build_sensor_context(cursor=quiet.cursor, resources={"kafka": kafka})
    fired = drift_sensor(ctx)
    assert isinstance(fired, dg.SensorResult)
    assert fired.run_requests is not None and len(fired.run_requests) == 1  # deduplicated
    request = fired.run_requests[0]
    assert request.tags["edaml/trigger"] == "drift" and request.partition_key
    # The drift figures land on the champion asset's page (one observation per model).
    (obs,) = fired.asset_events
    assert isinstance(obs, dg.AssetObservation)
    assert obs.asset_key == dg.AssetKey(["iot_fleet", "anomaly_champion"])
    assert obs.metadata["drift/drifted"].value is True
    assert obs.metadata["drift/drifted_features"].value

    # More drift inside the cooldown: no second request; nothing new: no request either.
    _send(kafka_bootstrap, topic, [encode(_report(True))])
    ctx = dg.build_sensor_context(cursor=fired.cursor, resources={"kafka": kafka})
    cooling = drift_sensor(ctx)
    assert isinstance(cooling, dg.SensorResult)
    assert not cooling.run_requests
    assert "cooling down" in (cooling.skip_reason.skip_message or "")  # type: ignore[union-attr]
    ctx = dg.build_sensor_context(cursor=cooling.cursor, resources={"kafka": kafka})
    again = drift_sensor(ctx)
    assert isinstance(again, dg.SensorResult) and not again.run_requests
    assert "no drift" in (again.skip_reason.skip_message or "")  # type: ignore[union-attr]
