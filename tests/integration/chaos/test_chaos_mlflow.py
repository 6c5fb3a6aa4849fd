"""Chaos: the MLflow server stopped while the scorer serves, and stopped right after a
promotion. The scorer (`edaml serve`, default configuration) keeps scoring with the version it
has, stays ready, publishes no `rejected` for a version it merely could not reach, and serves
the promoted version once the registry is back. Each outage lasts 60 s (readiness sampled all
along)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mlflow
import orjson
import pytest
from chaos_support import Serve
from confluent_kafka import Producer
from scorer_test_support import read_to_end, reading, register, valid_bytes

from edaml.services import Service, free_port
from edaml.settings import Settings
from edaml.stack import mlflow_server
from features.contract.topics import Topics
from streaming.registry import set_alias

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 60.0


@pytest.fixture(scope="module")
def private_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("chaos-mlflow")
    svc = mlflow_server(Settings(home=home, mlflow_port=free_port(), mlflow_tracking_uri=None))
    svc.start()
    try:
        svc.wait_healthy()
        yield svc
    finally:
        svc.stop()


def _with_registry(uri: str, fn: object, *args: object, **kw: object) -> object:
    """Call `fn` with MLflow pointed at `uri` (the session's registry restored after)."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return fn(*args, **kw)  # type: ignore[operator]
    finally:
        mlflow.set_tracking_uri(before)


def _send(bootstrap: str, topics: Topics, n: int, base: int) -> set[str]:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    ids = set()
    for i in range(n):
        r = reading(i % 40, base + i)
        ids.add(r.event_id)
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    return ids


def _scored(bootstrap: str, topics: Topics) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in read_to_end(bootstrap, topics.scored, topics.partitions):
        d = orjson.loads(m.value() or b"{}")
        out.setdefault(d["reading_event_id"], []).append(
            "fallback" if d["fallback"] else d["scores"][0]["model_version"]
        )
    return out


def _outage(serve: Serve, seconds: float) -> None:
    """Let an outage last `seconds`, checking all along that the scorer stays ready."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        code, body = serve.get("/readyz")
        assert code == 200, f"not ready while only MLflow is away: {body!r}"
        time.sleep(0.5)  # sampling readiness during the outage window


@pytest.mark.timeout(780)
def test_mlflow_away_during_serving_and_during_a_promotion(
    kafka_bootstrap: str, topics: Topics, private_mlflow: Service, tmp_path: Path
) -> None:
    uri = private_mlflow.address
    name = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    v1 = str(_with_registry(uri, register, name, "anomaly", seed=1))
    serve = Serve(
        kafka_bootstrap, uri, topics, name, f"g-{uuid.uuid4().hex[:6]}", tmp_path / "s.log"
    )
    try:
        serve.wait_until(
            "v1 served",
            lambda: serve.status().get("models", {}).get(name, {}).get("champion") == v1,
            120,
        )

        # 1. the registry goes away while the scorer serves
        ids = _send(kafka_bootstrap, topics, 500, 0)
        private_mlflow.stop()
        ids |= _send(kafka_bootstrap, topics, 500, 1000)
        _outage(serve, OUTAGE_S)
        private_mlflow.start()
        private_mlflow.wait_healthy()
        serve.wait_until("all scored", lambda: set(_scored(kafka_bootstrap, topics)) >= ids, 120)
        assert {v for vs in _scored(kafka_bootstrap, topics).values() for v in vs} == {v1}

        # 2. a promotion, then the registry goes away before the scorer could load it
        v2 = str(_with_registry(uri, register, name, "anomaly", alias=None, seed=2))
        _with_registry(uri, set_alias, name, "champion", v2)
        private_mlflow.stop()
        ids |= _send(kafka_bootstrap, topics, 500, 2000)
        _outage(serve, OUTAGE_S)
        private_mlflow.start()
        private_mlflow.wait_healthy()
        serve.wait_until("v2 served", lambda: serve.status()["models"][name]["champion"] == v2, 180)
        late = _send(kafka_bootstrap, topics, 300, 3000)
        ids |= late
        serve.wait_until("all scored", lambda: set(_scored(kafka_bootstrap, topics)) >= ids, 120)
        scored = _scored(kafka_bootstrap, topics)
        assert set(scored) == ids and Counter(len(v) for v in scored.values()) == {1: len(ids)}
        assert {scored[i][0] for i in late} == {v2}
        assert "fallback" not in {v[0] for v in scored.values()}
        lifecycle = read_to_end(kafka_bootstrap, topics.model_lifecycle, 1)
        assert not [m for m in lifecycle if b'"rejected"' in (m.value() or b"")]
        assert serve.terminate() < 12
    finally:
        serve.kill()
        if not private_mlflow.running():
            private_mlflow.start()
