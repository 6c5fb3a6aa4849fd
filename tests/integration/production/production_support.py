"""Shared by the production tests: the scorer as a subprocess, inputs, and what it wrote.

The scorer's own test helpers (tiny models registered in MLflow, valid readings) live in
tests/integration/streaming/conftest.py; they are loaded from there, not copied.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer

from features.contract.topics import Topics

ROOT = Path(__file__).resolve().parents[3]


def _scorer_helpers() -> ModuleType:
    path = ROOT / "tests" / "integration" / "streaming" / "conftest.py"
    spec = importlib.util.spec_from_file_location("edaml_scorer_test_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _scorer_helpers()
register: Callable[..., str] = helpers.register


def produce_readings(
    bootstrap: str, topic: str, start: int, count: int, client: Mapping[str, Any] | None = None
) -> set[str]:
    """`count` valid readings of 50 devices (acks=all, idempotent); return their event ids."""
    p = Producer({**(client or {}), "bootstrap.servers": bootstrap, "enable.idempotence": True})
    ids: set[str] = set()
    for i in range(start, start + count):
        r = helpers.reading(i % 50, i)
        ids.add(r.event_id)
        p.produce(topic, key=r.device_id, value=helpers.valid_bytes(r))
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(120) == 0, "inputs not acknowledged"
    return ids


def start_scorer(
    bootstrap: str,
    mlflow_uri: str,
    topics: Topics,
    model: str,
    log: Path,
    *,
    group: str,
    env: Mapping[str, str] | None = None,
    stderr: int | None = None,
) -> subprocess.Popen[bytes]:
    """`edaml serve` exactly-once on `topics` with one instance id, output to `log`."""
    full_env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "EDAML_TOPIC_PREFIX": topics.prefix,
        "EDAML_PARTITIONS": str(topics.partitions),
        **(env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "edaml.cli",
        "serve",
        "--feature-set",
        "raw",
        "--models",
        model,
        "--group",
        group,
        "--instance-id",
        "prod-test",
        "--metrics-port",
        "-1",
        "--no-shadow",
        "--batch-size",
        "500",
        "--commit-interval-ms",
        "100",
    ]
    out = log.open("ab")
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT if stderr is None else stderr,
    )


def stop_scorer(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the scorer is still closing after two minutes (its shutdown is
    not what these tests check)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def scored_ids(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    want: int,
    timeout: float,
    alive: Callable[[], None],
    client: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every committed (read_committed) record of `topic` as reading event ids, read until `want`
    records arrived and every partition is at its end; `alive` raises if the scorer died."""
    c = Consumer(
        {
            **(client or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    ids: list[str] = []
    eof: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(ids) < want or len(eof) < partitions:
            alive()
            assert time.monotonic() < deadline, f"only {len(ids)} of {want} scored in time"
            for m in c.consume(5000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition() or 0)
                    continue
                eof.discard(m.partition() or 0)
                ids.append(orjson.loads(m.value() or b"null")["reading_event_id"])
    finally:
        c.close()
    return ids
