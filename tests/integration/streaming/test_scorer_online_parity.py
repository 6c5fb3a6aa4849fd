"""Serving equals training, also across restarts: `edaml serve`, with its default (windowed,
online) feature set, scores simulator readings exactly as the model scores the batch features of
the full history of the same readings.

A day of a small fleet's history goes to Kafka; the test reads it back, computes the batch
features (`features.engine.batch.compute_features`), trains an IsolationForest on them and registers
it; then `edaml serve` (a subprocess, no `--feature-set` flag) scores the topic (its ops
endpoints are checked while it runs) and stops on SIGTERM. The next 90 minutes of readings go to
Kafka, a second run restores its per-device state from the state snapshot the first wrote
(`streaming.serving.snapshots`: in the same transactions as its offsets) and scores them, and is
killed with SIGKILL; another 90 minutes, a third run restores from the snapshot plus the input
since it. Then the fallbacks: a corrupt device record, and a snapshot of another feature-set
version, each followed by another 90 minutes and a run that re-reads the input instead (the
first run's path: the 1 h and 24 h windows need most of the day). Every committed score equals
the model's score of the batch features of the whole history: restored or re-read, the state is
the uninterrupted one.
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
from features.contract import parse_reading
from features.contract.bulk import encode_readings_bulk, reading_prefixes
from features.contract.topics import Topics
from features.engine.batch import compute_features
from features.ml.model_card import ModelCard
from features.ml.reference import histograms
from features.spec import load_spec
from streaming.kafka import make_producer
from streaming.registry import log_model_version
from streaming.sources.producers import EventSink
from streaming.sources.sim import SimConfig, Simulator

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

FEATURE_SET = load_spec().feature_set  # the fleet's

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
#: Documented in streaming/serving/ops.py and the issue: events in/out, DLQ, alerts, latency, lag,
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


DEVICES, INTERVAL_S = 8, 30.0
DAY_STEPS = 86_400 // int(INTERVAL_S)  # 2880 steps: 23,040 readings, ~7,700 a partition
MORE_STEPS = 5_400 // int(INTERVAL_S)  # 90 minutes: 1,440 readings


class Fleet:
    """A continuous simulated history, produced in slices (keyed by device, timestamp = ts)."""

    def __init__(self, bootstrap: str, topic: str, *, steps: int, seed: int = 11) -> None:
        interval_ms = int(INTERVAL_S * 1000)
        end_ms = int(time.time() * 1000) // interval_ms * interval_ms
        cfg = SimConfig(
            devices=DEVICES, seed=seed, start_ms=end_ms - steps * interval_ms, interval_s=INTERVAL_S
        )
        self.sim = Simulator(cfg)
        f = self.sim.fleet
        self.prefixes = reading_prefixes(f.device_ids, f.sites, f.machine_types)
        self.keys = [d.encode() for d in f.device_ids]
        self.bootstrap, self.topic = bootstrap, topic

    def produce(self, steps: int) -> int:
        sink = EventSink(self.bootstrap)
        for _ in range(steps):
            st = self.sim.step()
            values = encode_readings_bulk(
                st.event_ids, st.ts_ms, self.prefixes, st.values, FLEET.contract
            )
            sink.produce_many(self.topic, values, self.keys, st.ts_ms.tolist())
        sink.close()
        return steps * DEVICES


def _register(name: str, feats: pd.DataFrame) -> tuple[str, Any]:
    names = list(FEATURE_SET.names)
    X = feats[names]
    model = make_pipeline(
        SimpleImputer(keep_empty_features=True), IsolationForest(n_estimators=30, random_state=0)
    ).fit(X)
    ref = histograms(X, names)
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


class Serve:
    """`edaml serve` as a subprocess with a fixed group and instance id (restarts resume)."""

    def __init__(self, bootstrap: str, uri: str, topics: Topics, name: str, tmp: Path) -> None:
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MLFLOW_TRACKING_URI": uri,
            "EDAML_TOPIC_PREFIX": topics.prefix,
            "EDAML_PARTITIONS": str(topics.partitions),
        }
        tag = uuid.uuid4().hex[:6]
        self.cmd = [sys.executable, "-m", "edaml.cli", "serve", "--models", name, "--no-shadow"]
        # static membership: a restarted instance takes the partitions back at once
        self.cmd += ["--group", f"parity-{tag}", "--instance-id", f"parity-{tag}"]
        self.tmp = tmp
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.runs += 1
        self.port = free_port()
        self.log = self.tmp / f"serve-{self.runs}.log"
        cmd = [*self.cmd, "--metrics-port", str(self.port)]
        out = self.log.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=out)

    def status_when(self, done: Any, timeout: float = 240.0) -> dict[str, Any]:
        """/status once `done(status)` holds (polled against a deadline)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while not (status and done(status)):
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"status {status}"
            try:
                code, body = _get(self.port, "/status")
                status = orjson.loads(body) if code == 200 else {}
            except OSError:
                status = {}  # the ops server is not up yet
            time.sleep(0.2)  # polling a condition with a deadline
        return status

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        assert code == (0 if sig == signal.SIGTERM else -sig), self.log.read_text()[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


def _state_records(bootstrap: str, topics: Topics) -> dict[tuple[int, bytes], Any]:
    """The latest committed record of each (partition, key) of the state topic."""
    latest: dict[tuple[int, bytes], Any] = {}
    for m in read_to_end(bootstrap, topics.scorer_state, topics.partitions):
        latest[(m.partition(), m.key() or b"")] = m
    return latest


def _corrupt_a_device(bootstrap: str, topics: Topics) -> int:
    """A device's latest state record with a damaged body; returns its partition."""
    latest = _state_records(bootstrap, topics)
    m = next(m for (_p, k), m in sorted(latest.items()) if k.startswith(b"d:") and m.value())
    value = bytearray(m.value())
    value[-10] ^= 0xFF
    p = make_producer(bootstrap)
    p.produce(topics.scorer_state, bytes(value), m.key(), partition=m.partition())
    p.flush(30)
    return int(m.partition())


def _other_version(bootstrap: str, topics: Topics) -> int:
    """One partition's marker rewritten as if made for another feature-set version."""
    latest = _state_records(bootstrap, topics)
    m = next(m for (_p, k), m in sorted(latest.items()) if k == b"m")
    marker = {**orjson.loads(m.value()), "feature_set": "fs-000000000000"}
    p = make_producer(bootstrap)
    p.produce(topics.scorer_state, orjson.dumps(marker), b"m", partition=m.partition())
    p.flush(30)
    return int(m.partition())


def test_serve_scores_like_the_batch_features_of_the_full_history_across_restarts(
    kafka_bootstrap: str, mlflow_tracking_uri: str, topics: Topics, tmp_path: Path
) -> None:
    fleet = Fleet(kafka_bootstrap, topics.sensor_readings, steps=DAY_STEPS + 4 * MORE_STEPS)
    n1 = fleet.produce(DAY_STEPS)
    history = _history(kafka_bootstrap, topics)
    feats = compute_features(history, FEATURE_SET)
    assert len(feats) == len(history) == n1
    name = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    version, model = _register(name, feats)

    serve = Serve(kafka_bootstrap, mlflow_tracking_uri, topics, name, tmp_path)
    try:
        # 1. a first start (nothing committed: nothing to rebuild), stopped by SIGTERM
        serve.start()
        status = serve.status_when(lambda s: s["processed"] >= n1)
        assert status["ready"] is True and status["mode"] == "exactly-once"
        assert status["models"][name]["champion"] == version
        assert status["models"][name]["breaker"] == "closed"
        assert status["rebuild"]["records"] == 0
        port = serve.port
        assert _get(port, "/healthz")[0] == 200
        assert _get(port, "/readyz")[0] == 200
        code, body = _get(port, "/metrics")
        text = body.decode()
        assert code == 200
        missing = [m for m in METRICS if m not in text]
        assert not missing, missing
        assert f"edaml_scorer_events_in_total {float(n1)}" in text
        assert (
            f'edaml_scorer_model_version{{model="{name}",role="champion"}} {float(version)}' in text
        )
        assert _get(port, "/nothing")[0] == 404
        collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= n1)
        # the snapshot catches up with the input within a round (10 s) of the last reading
        serve.status_when(lambda s: s["snapshots"]["partitions_behind"] == 0, timeout=60)
        serve.stop(signal.SIGTERM)

        # 2. a restart after a clean stop: the state comes from the snapshot (no input
        # re-read: it is at the committed offsets), then the next 90 minutes; then SIGKILL
        n2 = fleet.produce(MORE_STEPS)
        serve.start()
        status = serve.status_when(lambda s: s["processed"] >= n2)
        last = status["rebuild"]["last"]
        assert (last["source"], last["devices"], last["records"]) == ("snapshot", DEVICES, 0)
        collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= n1 + n2)
        serve.stop(signal.SIGKILL)

        # 3. a restart after a crash: the snapshot, then the input since its marker
        n3 = fleet.produce(MORE_STEPS)
        serve.start()
        status = serve.status_when(lambda s: s["processed"] >= n3)
        last = status["rebuild"]["last"]
        assert (last["source"], last["devices"]) == ("snapshot", DEVICES)
        assert last["records"] <= n2  # at most what came since the first run's snapshot
        n = n1 + n2 + n3
        collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= n)
        serve.status_when(lambda s: s["snapshots"]["partitions_behind"] == 0, timeout=60)
        serve.stop(signal.SIGTERM)

        # 4. a corrupt device record, then (5.) a marker of another feature-set version: the
        # affected partitions re-read the input, the others restore
        for damage, why in ((_corrupt_a_device, "corrupt"), (_other_version, "feature set")):
            part = damage(kafka_bootstrap, topics)
            more = fleet.produce(MORE_STEPS)
            n += more
            serve.start()
            status = serve.status_when(lambda s, more=more: s["processed"] >= more)
            reread = [r for r in status["restores"] if r["source"] == "re-read"]
            assert len(reread) == 1 and why in reread[0]["reason"], status["restores"]
            assert reread[0]["ranges"] and all(
                k.endswith(f"[{part}]") for k in reread[0]["ranges"]
            ), reread
            assert reread[0]["records"] > 0
            collect(kafka_bootstrap, topics.scored, lambda ms, n=n: len(ms) >= n)
            serve.status_when(lambda s: s["snapshots"]["partitions_behind"] == 0, timeout=60)
            serve.stop(signal.SIGTERM)
        scored = docs(collect(kafka_bootstrap, topics.scored, lambda ms: len(ms) >= n))
    finally:
        serve.kill()

    history = _history(kafka_bootstrap, topics)
    assert len(history) == n
    feats = compute_features(history, FEATURE_SET)
    expected = dict(
        zip(feats["event_id"], -model.score_samples(feats[list(FEATURE_SET.names)]), strict=True)
    )
    # exactly once, across the SIGTERM and the SIGKILL
    assert sorted(d["reading_event_id"] for d in scored) == sorted(history["event_id"])
    assert {d["feature_set_version"] for d in scored} == {FEATURE_SET.version}
    assert all(d["scores"][0]["model_version"] == version for d in scored)
    assert not any(d["fallback"] for d in scored)
    got = np.array([d["scores"][0]["score"] for d in scored])
    want = np.array([expected[d["reading_event_id"]] for d in scored])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
