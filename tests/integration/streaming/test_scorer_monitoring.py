"""The scorer's monitoring stream: shadow comparisons of champion and challenger, and drift
reports that flag a shifted feature (the signal the Dagster drift sensor retrains on)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from conftest import Running, collect, docs, reading, register, valid_bytes

from features.contract.topics import Topics

pytestmark = pytest.mark.integration


def _send(bootstrap: str, topic: str, n_devices: int, per_device: int, **kw: Any) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for device in range(n_devices):
        for i in range(per_device):
            p.produce(topic, key=f"dev-{device}", value=valid_bytes(reading(device, i, **kw)))
    assert p.flush(30) == 0


def _of(schema: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("schema") == schema]


def test_shadow_and_drift_reports(
    kafka_bootstrap: str,
    topics: Topics,
    run_scorer: Callable[..., Running],
    mlflow_tracking_uri: str,
) -> None:
    name = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    champion = register(name, "anomaly", alias="champion", seed=0)
    challenger = register(name, "anomaly", alias="challenger", seed=1)
    scorer = run_scorer(topics, (name,), shadow=True, report_interval_s=1.0)

    _send(kafka_bootstrap, topics.sensor_readings, 20, 20)
    first = docs(
        collect(
            kafka_bootstrap,
            topics.model_monitoring,
            lambda ms: (
                bool(_of("mlops.shadow_report/v1", docs(ms)))
                and bool(_of("mlops.drift_report/v1", docs(ms)))
            ),
        )
    )
    shadow = _of("mlops.shadow_report/v1", first)[0]
    assert shadow["model_name"] == name
    assert (shadow["champion_version"], shadow["challenger_version"]) == (champion, challenger)
    assert shadow["n_events"] > 0 and 0.0 <= shadow["agreement"] <= 1.0
    calm = _of("mlops.drift_report/v1", first)
    temps = [f for r in calm for f in r["features"] if f["feature"] == "temperature"]
    assert temps and not any(f["drifted"] for f in temps)

    # The same fleet running 20 °C hotter: the temperature feature drifts past its threshold.
    _send(kafka_bootstrap, topics.sensor_readings, 20, 20, temperature=80.0)
    drifted = collect(
        kafka_bootstrap,
        topics.model_monitoring,
        lambda ms: any(
            f["feature"] == "temperature" and f["drifted"]
            for r in _of("mlops.drift_report/v1", docs(ms))
            for f in r["features"]
        ),
    )
    hot = [
        r
        for r in _of("mlops.drift_report/v1", docs(drifted))
        if any(f["feature"] == "temperature" and f["drifted"] for f in r["features"])
    ]
    assert hot and hot[0]["drifted"] and hot[0]["model_version"] == champion
    assert scorer.error is None
