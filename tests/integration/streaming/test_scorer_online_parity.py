"""Serving equals training: `edaml serve`, with its default (windowed, online) feature set, scores
simulator readings exactly as the model scores the batch features of the same readings.

The fleet's history goes to Kafka with the simulator's backfill; the test reads it back, computes
the batch features (`features.batch.compute_features`), trains an IsolationForest on them and
registers it; then `edaml serve` (a subprocess, no `--feature-set` flag) scores the topic. Its
ops endpoints are checked while it runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from conftest import LIMITS, collect, docs, read_to_end
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from edaml.services import free_port
from features.batch import compute_features
from features.contract import parse_reading
from features.definitions import FEATURE_SET
from features.model_card import Histogram, ModelCard
from features.readings import SENSORS
from streaming.producers import backfill
from streaming.registry import log_model_version
from streaming.topics import Topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
#: Documented in streaming/ops.py and the issue: events in/out, DLQ, alerts, latency, lag,
#: model versions, breaker state.
METRICS = (
    "edaml_scorer_events_in_total",
    "edaml_scorer_events_out_total",
    "edaml_scorer_dlq_total",
    "edaml_scorer_alerts_total",
    "edaml_scorer_latency_seconds",
    "edaml_scorer_batch_seconds",
    "edaml_scorer_consumer_lag",
    "edaml_scorer_model_version",
    "edaml_scorer_breaker_state",
    "edaml_scorer_transactions_total",
)


def _history(bootstrap: str, topics: Topics) -> pd.DataFrame:
    """The readings of the topic as the scorer will see them; `seq` = arrival (offset) order."""
    rows: list[dict[str, Any]] = []
    for m in read_to_end(bootstrap, topics.sensor_readings, topics.partitions):
        r = parse_reading(m.value() or b"")
        rows.append(
            {
                "event_id": r.event_id,
                "device_id": r.device_id,
                "ts_ms": r.ts_ms,
                "seq": m.offset(),
                **{s: np.nan if r.values.get(s) is None else r.values[s] for s in SENSORS},
            }
        )
    return pd.DataFrame(rows)


def _register(name: str, feats: pd.DataFrame) -> tuple[str, Any]:
    names = list(FEATURE_SET.names)
    X = feats[names]
    model = make_pipeline(
        SimpleImputer(keep_empty_features=True), IsolationForest(n_estimators=30, random_state=0)
    ).fit(X)
    ref = {}
    for c in names:
        x = X[c].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size:
            counts, edges = np.histogram(x, bins=10)
            ref[c] = Histogram(edges.tolist(), (counts / counts.sum()).tolist())
    card = ModelCard(
        model_name=name,
        kind="anomaly",
        feature_set_version=FEATURE_SET.version,
        feature_names=names,
        threshold=float(np.quantile(-model.score_samples(X), 0.99)),
        reference=ref,
        fallback_limits=dict(LIMITS),
        reference_alert_rate=0.01,
    )
    with mlflow.start_run():
        mv = log_model_version(
            model, card, input_example=X.head(3), tags={"test": "parity"}, alias="champion"
        )
    return str(mv.version), model


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serve_scores_online_features_like_the_model_scores_batch_features(
    kafka_bootstrap: str, mlflow_tracking_uri: str, topics: Topics, tmp_path: Path
) -> None:
    backfill(kafka_bootstrap, topics, devices=8, days=1.0, interval_s=120.0, seed=11)
    history = _history(kafka_bootstrap, topics)
    feats = compute_features(history)
    assert len(feats) == len(history) > 5000
    name = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    version, model = _register(name, feats)
    expected = dict(
        zip(feats["event_id"], -model.score_samples(feats[list(FEATURE_SET.names)]), strict=True)
    )

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MLFLOW_TRACKING_URI": mlflow_tracking_uri,
        "EDAML_TOPIC_PREFIX": topics.prefix,
        "EDAML_PARTITIONS": str(topics.partitions),
    }
    cmd = [sys.executable, "-m", "edaml.cli", "serve", "--models", name, "--no-shadow"]
    cmd += ["--group", f"parity-{uuid.uuid4().hex[:6]}", "--metrics-port", str(port)]
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        # /status is the progress signal: wait until every reading is processed
        deadline = time.monotonic() + 120
        status: dict[str, Any] = {}
        while status.get("processed", 0) < len(history):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"processed {status.get('processed')}"
            try:
                code, body = _get(port, "/status")
                status = orjson.loads(body) if code == 200 else {}
            except OSError:
                status = {}  # the ops server is not up yet
            time.sleep(0.2)  # polling a condition with a deadline
        assert status["ready"] is True and status["mode"] == "exactly-once"
        assert status["models"][name]["champion"] == version
        assert status["models"][name]["breaker"] == "closed"
        assert _get(port, "/healthz")[0] == 200
        assert _get(port, "/readyz")[0] == 200
        code, body = _get(port, "/metrics")
        text = body.decode()
        assert code == 200
        missing = [m for m in METRICS if m not in text]
        assert not missing, missing
        assert f"edaml_scorer_events_in_total {float(len(history))}" in text
        assert (
            f'edaml_scorer_model_version{{model="{name}",role="champion"}} {float(version)}' in text
        )
        assert _get(port, "/nothing")[0] == 404

        n = len(history)
        scored = docs(collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= n))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()

    assert sorted(d["reading_event_id"] for d in scored) == sorted(history["event_id"])
    assert {d["feature_set_version"] for d in scored} == {FEATURE_SET.version}
    got = np.array([d["scores"][0]["score"] for d in scored])
    want = np.array([expected[d["reading_event_id"]] for d in scored])
    assert all(d["scores"][0]["model_version"] == version for d in scored)
    assert not any(d["fallback"] for d in scored)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
