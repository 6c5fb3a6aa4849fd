"""Helpers of the scorer's integration tests: tiny models registered in the real MLflow server,
valid readings, a scorer running in a thread, and read_committed collectors of its outputs."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, KafkaError, Message
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from features.contract import encode_reading
from features.contract.readings import SensorReading
from features.contract.topics import Topics
from features.engine.raw import RAW_FEATURE_SET_VERSION
from features.ml.model_card import ModelCard, SensorLimits
from features.ml.reference import histograms
from features.spec import load_spec
from streaming.registry import log_model_version
from streaming.serving import ScorerService, ServeConfig, feature_source

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

NOMINAL = {"temperature": 60.0, "vibration": 2.5, "pressure": 6.0, "current": 40.0, "rpm": 1500.0}
SPREAD = {"temperature": 5.0, "vibration": 0.5, "pressure": 0.5, "current": 4.0, "rpm": 50.0}
LIMITS = {s: SensorLimits(NOMINAL[s] - 6 * SPREAD[s], NOMINAL[s] + 6 * SPREAD[s]) for s in SENSORS}


def sensor_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({s: rng.normal(NOMINAL[s], SPREAD[s], n) for s in SENSORS})


def card_for(
    name: str,
    kind: str,
    X: pd.DataFrame,
    *,
    fs_version: str = RAW_FEATURE_SET_VERSION,
    threshold: float = 0.6,
) -> ModelCard:
    ref = histograms(X, [str(c) for c in X.columns])
    return ModelCard(
        model_name=name,
        kind=kind,  # type: ignore[arg-type]
        feature_set_version=fs_version,
        feature_names=list(X.columns),
        threshold=threshold,
        reference=ref,
        fallback_limits=dict(LIMITS),
        reference_alert_rate=0.01,
    )


def register(
    name: str,
    kind: str = "anomaly",
    *,
    alias: str | None = "champion",
    variant: str = "good",
    fs_version: str = RAW_FEATURE_SET_VERSION,
    seed: int = 0,
) -> str:
    """Train and register a tiny model; `variant`: good, raises (on negative inputs), nan."""
    X = sensor_frame(500, seed)
    model: Pipeline
    if kind == "anomaly":
        steps: list[Any] = [SimpleImputer()]
        if variant == "raises":
            # sqrt of a negative value is NaN, which the validating step rejects (ValueError);
            # IsolationForest itself accepts NaN since scikit-learn 1.9
            steps = [FunctionTransformer(np.sqrt), FunctionTransformer(validate=True)]
        model = make_pipeline(*steps, IsolationForest(n_estimators=20, random_state=seed)).fit(X)
        threshold = float(np.quantile(-model.score_samples(X), 0.99))
    else:
        y = (X["temperature"] > NOMINAL["temperature"] + SPREAD["temperature"]).astype(int)
        model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y)
        if variant == "nan":
            model[-1].coef_[:] = np.nan
        threshold = 0.5
    card = card_for(name, kind, X, fs_version=fs_version, threshold=threshold)
    with mlflow.start_run():
        mv = log_model_version(
            model, card, input_example=X.head(3), tags={"test": "1"}, alias=alias
        )
    return str(mv.version)


def reading(device: int, i: int, *, temperature: float | None = None) -> SensorReading:
    rng = np.random.default_rng(device * 1_000_003 + i)
    # clipped at 0: the contract's ranges start there (hundreds of thousands of draws reach it)
    values: dict[str, float | None] = {
        s: max(0.0, float(rng.normal(NOMINAL[s], SPREAD[s]))) for s in SENSORS
    }
    if temperature is not None:
        values["temperature"] = temperature
    return SensorReading(
        event_id=str(uuid.uuid4()),
        device_id=f"dev-{device:04d}",
        ts_ms=int(time.time() * 1000),
        values=values,
        site="s1",
        machine_type="pump",
    )


def valid_bytes(r: SensorReading) -> bytes:
    return encode_reading(r)


class Running:
    def __init__(self, service: ScorerService) -> None:
        self.service = service
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(60)


@pytest.fixture(scope="session")
def good_anomaly_model(mlflow_tracking_uri: str) -> str:
    """One healthy `raw/v1` anomaly model (alias champion), registered once per session and
    only read by the tests that share it."""
    name = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    register(name, "anomaly")
    return name


@pytest.fixture
def run_scorer(kafka_bootstrap: str, mlflow_tracking_uri: str) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(
        topics: Topics, models: tuple[str, ...], *, feature_set: str = "raw", **kw: Any
    ) -> Running:
        settings: dict[str, Any] = {
            "group": f"g-{uuid.uuid4().hex[:8]}",
            "metrics_port": None,
            "alias_poll_s": 1.0,
            **kw,
        }
        cfg = ServeConfig(bootstrap=kafka_bootstrap, topics=topics, models=models, **settings)
        r = Running(ScorerService(cfg, features=feature_source(feature_set)))
        r.thread.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def collect(
    bootstrap: str, topic: str, until: Callable[[list[Message]], bool], timeout: float = 60.0
) -> list[Message]:
    """Read `topic` (read_committed, from the start) until `until(messages)` or the timeout."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"c-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(out):
            out.extend(m for m in c.consume(1000, timeout=0.5) if m.error() is None)
    finally:
        c.close()
    return out


def serve_env(bootstrap: str, mlflow_uri: str, topics: Topics) -> dict[str, str]:
    """Environment of an `edaml serve` subprocess pointed at the test's servers and topics."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "EDAML_TOPIC_PREFIX": topics.prefix,
        "EDAML_PARTITIONS": str(topics.partitions),
    }


def docs(msgs: list[Message]) -> list[dict[str, Any]]:
    return [orjson.loads(m.value() or b"null") for m in msgs]


def read_to_end(
    bootstrap: str, topic: str, partitions: int, timeout: float = 120.0
) -> list[Message]:
    """Every committed record of `topic` (read_committed) up to the end of each partition."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[Message] = []
    eof: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(eof) < partitions:
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout}s"
            for m in c.consume(5000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition() or 0)
                    continue
                eof.discard(m.partition())
                out.append(m)
    finally:
        c.close()
    return out
