"""Chaos: the broker killed with SIGKILL in the middle of the scorer's transactions and
started again, with poison (malformed records, event times far in the future and the past)
mixed into the input; and SIGTERM while the broker is away. The scorer is `edaml serve` in its
default configuration. After each: every valid reading scored exactly once (read_committed),
the poison in the DLQ with reasons, the served version the alias's."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from chaos_support import ChaosBroker, Serve
from confluent_kafka import Consumer, Message, Producer
from mlflow import MlflowClient
from scorer_test_support import read_to_end, reading, valid_bytes

from features.contract.topics import Topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 12_000


def _poison() -> dict[str, bytes]:
    def at(ts: str) -> bytes:
        doc = orjson.loads(valid_bytes(reading(7, 0)))
        doc["ts"] = ts
        return orjson.dumps(doc)

    return {
        "far-future": at("9999-12-31T23:59:59.000Z"),
        "next-year": at(time.strftime("%Y-12-31T00:00:00.000Z", time.gmtime(time.time() + 4e7))),
        "far-past": at("1971-01-01T00:00:00.000Z"),
        "bad-json": b"{not json",
        "empty": b"",
    }


def _headers(m: Message) -> dict[str, str]:
    raw: Any = m.headers() or []
    return {k: v.decode(errors="replace") for k, v in raw if isinstance(v, bytes)}


def _produce(bootstrap: str, topics: Topics) -> set[str]:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    ids: set[str] = set()
    poison = list(_poison().items())
    every = N // len(poison)  # one poison record every `every` readings, from N / 10 on
    for i in range(N):
        r = reading(i % 150, i)
        ids.add(r.event_id)
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
        if i % every == N // 10 and poison:
            kind, raw = poison.pop()
            p.produce(
                topics.sensor_readings,
                key=r.device_id,
                value=raw,
                headers=[("kind", kind.encode())],
            )
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0 and not poison
    return ids


def _scored_so_far(c: Consumer, seen: list[int]) -> int:
    seen[0] += sum(1 for m in c.consume(5000, timeout=0.2) if m.error() is None)
    return seen[0]


def _serve(broker: ChaosBroker, mlflow_uri: str, topics: Topics, model: str, log: Path) -> Serve:
    return Serve(broker.address, mlflow_uri, topics, model, f"g-{uuid.uuid4().hex[:6]}", log)


@pytest.mark.timeout(420)
def test_broker_killed_mid_transaction_and_restarted(
    chaos_kafka: ChaosBroker,
    chaos_topics: Topics,
    mlflow_tracking_uri: str,
    good_anomaly_model: str,
    tmp_path: Path,
) -> None:
    bootstrap, topics = chaos_kafka.address, chaos_topics
    ids = _produce(bootstrap, topics)
    serve = _serve(
        chaos_kafka, mlflow_tracking_uri, topics, good_anomaly_model, tmp_path / "serve.log"
    )
    progress = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"w-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_uncommitted",  # sees open transactions: the kill lands mid-one
        }
    )
    progress.subscribe([topics.scored])
    seen = [0]
    try:
        deadline = time.monotonic() + 180
        while _scored_so_far(progress, seen) < N // 4:
            assert serve.proc.poll() is None, serve.tail()
            assert time.monotonic() < deadline, f"no progress:\n{serve.tail()}"
        progress.close()
        chaos_kafka.kill9()
        down_at = time.monotonic()
        serve.wait_until(
            "readiness failing with the broker away",
            lambda: serve.get("/readyz")[0] == 503 or time.monotonic() - down_at > 20,
            60,
        )
        chaos_kafka.restart()

        serve.wait_until("ready again", lambda: serve.get("/readyz")[0] == 200, 180)
        got: list[Message] = []
        deadline = time.monotonic() + 180
        while len({orjson.loads(m.value() or b"{}")["reading_event_id"] for m in got}) < len(ids):
            assert time.monotonic() < deadline, f"only {len(got)} of {len(ids)}:\n{serve.tail()}"
            got = read_to_end(bootstrap, topics.scored, topics.partitions)
        counts = Counter(orjson.loads(m.value() or b"{}")["reading_event_id"] for m in got)
        assert set(counts) == ids and max(counts.values()) == 1  # exactly once
        versions = {orjson.loads(m.value() or b"{}")["scores"][0]["model_version"] for m in got}
        alias = MlflowClient().get_model_version_by_alias(good_anomaly_model, "champion").version
        assert versions == {str(alias)}
        assert serve.status()["models"][good_anomaly_model]["champion"] == str(alias)

        dlq = read_to_end(bootstrap, topics.dlq, topics.partitions)
        by_kind = {_headers(m).get("kind"): _headers(m) for m in dlq}
        assert set(by_kind) == set(_poison()) and len(dlq) == len(by_kind)
        for kind in ("far-future", "next-year", "far-past"):
            assert by_kind[kind]["edaml.error.stage"] == "event-time", by_kind[kind]
        assert "ahead of the scorer's clock" in by_kind["far-future"]["edaml.error.reason"]
        assert "behind the newest event time" in by_kind["far-past"]["edaml.error.reason"]
        assert by_kind["bad-json"]["edaml.error.stage"] == "parse"

        assert serve.terminate() < 12
        assert serve.proc.returncode == 0, serve.tail()
    finally:
        serve.kill()


@pytest.mark.timeout(240)
def test_sigterm_with_the_broker_away_exits_in_bounded_time_and_logs_little(
    chaos_kafka: ChaosBroker,
    chaos_topics: Topics,
    mlflow_tracking_uri: str,
    good_anomaly_model: str,
    tmp_path: Path,
) -> None:
    bootstrap, topics = chaos_kafka.address, chaos_topics
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(500):
        r = reading(i % 20, i)
        p.produce(topics.sensor_readings, key=r.device_id, value=valid_bytes(r))
    assert p.flush(30) == 0
    log = tmp_path / "serve.log"
    serve = _serve(chaos_kafka, mlflow_tracking_uri, topics, good_anomaly_model, log)
    try:
        serve.wait_until("ready", lambda: serve.get("/readyz")[0] == 200, 120)
        chaos_kafka.kill9()
        # the clients retry the connection every few tens of ms: give them time to flood
        deadline = time.monotonic() + 15
        serve.wait_until("15 s with the broker away", lambda: time.monotonic() > deadline, 30)
        took = serve.terminate()
        assert took < 12, f"took {took:.1f}s to stop:\n{serve.tail()}"
        text = log.read_text(errors="replace")
        refused = sum("Connection refused" in line for line in text.splitlines())
        assert refused < 20, f"{refused} connection-refused lines"
        assert "Kafka broker unreachable" in text
    finally:
        serve.kill()
        chaos_kafka.restart()
