"""Acceptance of #13: the scorer keeps exactly-once on a replicated cluster while a broker dies.

Three KRaft nodes (combined broker and controller) from the same Maven jars as the local stack;
internal and edaml topics with three replicas and min.insync.replicas 2. The scorer (one
`edaml serve` process, never restarted) scores a stream while one node is killed with SIGKILL and
restarted, and while partition leadership moves back to it (preferred-leader election). Every
input must then appear exactly once in the read_committed output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ElectionType, KafkaException
from confluent_kafka.admin import AdminClient
from production_support import produce_readings, register, scored_ids, start_scorer, stop_scorer

from edaml.broker import start_private_cluster
from edaml.services import Service
from edaml.settings import Settings
from features.contract.topics import Topics
from streaming.kafka import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PER_PHASE = 4000  # readings produced before, during and after the failure


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Service]]:
    settings = Settings()
    nodes = start_private_cluster(
        tmp_path_factory.mktemp("cluster"),
        nodes=3,
        version=settings.kafka_version,
        jar_cache=settings.jar_cache,
        min_isr=2,
    )
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _leaders(admin: AdminClient, topic: str) -> dict[int, int]:
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    return {p: m.leader for p, m in meta.partitions.items()}


def _wait_in_sync(admin: AdminClient, topics: list[str], replicas: int, timeout: float) -> None:
    """Until every partition of `topics` has all `replicas` in its ISR again."""
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=10).topics
        short = [
            (t, p)
            for t in topics
            for p, m in meta[t].partitions.items()
            if len(m.isrs) < replicas or m.leader < 0
        ]
        if not short:
            return
        assert time.monotonic() < deadline, f"replicas not back in sync: {short[:5]}"
        time.sleep(0.5)  # pacing between metadata requests


def test_exactly_once_while_a_broker_is_killed_and_leaders_move(
    cluster: list[Service], mlflow_tracking_uri: str, tmp_path: Path
) -> None:
    bootstrap = ",".join(node.address for node in cluster)
    topics = Topics(
        prefix=f"c{uuid.uuid4().hex[:8]}.",
        partitions=3,
        replication_factor=3,
        min_insync_replicas=2,
    )
    ensure_topics(bootstrap, topics)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(topics.scored, timeout=10).topics[topics.scored]
    assert all(len(m.replicas) == 3 for m in meta.partitions.values())

    model = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    register(model, "anomaly")
    ids = produce_readings(bootstrap, topics.sensor_readings, 0, PER_PHASE)
    log = tmp_path / "serve.log"
    env = {"EDAML_KAFKA_REPLICATION_FACTOR": "3", "EDAML_KAFKA_MIN_INSYNC_REPLICAS": "2"}
    proc = start_scorer(
        bootstrap,
        mlflow_tracking_uri,
        topics,
        model,
        log,
        group=f"g-{uuid.uuid4().hex[:6]}",
        env=env,
    )

    def alive() -> None:
        assert proc.poll() is None, "scorer exited:\n" + log.read_text()[-4000:]

    try:
        # 1. The scorer is working: part of the first phase is committed.
        scored_ids(bootstrap, topics.scored, 3, want=PER_PHASE // 4, timeout=300, alive=alive)
        # 2. SIGKILL the node leading partition 0 of the input, with the scorer mid-stream.
        victim_id = _leaders(admin, topics.sensor_readings)[0]
        victim = cluster[victim_id - 1]
        pid = victim.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # a crash, not a controlled shutdown
        victim.wait_stopped(pid, timeout=30)
        survivors = ",".join(n.address for n in cluster if n is not victim)
        ids |= produce_readings(survivors, topics.sensor_readings, PER_PHASE, PER_PHASE)
        moved = _leaders(AdminClient({"bootstrap.servers": survivors}), topics.sensor_readings)
        assert victim_id not in moved.values(), moved
        # 3. Restart it; once its replicas are in sync, move leadership back to it.
        victim.start()
        victim.wait_healthy()
        every = [topics.name(t) for t in topics.names]
        _wait_in_sync(admin, every, 3, timeout=240)
        # Every partition of the cluster, the group and transaction coordinators' included. A
        # preferred election can be refused for a partition whose ISR the controller has not yet
        # seen the restarted node join, so it is asked again until the node leads again.
        deadline = time.monotonic() + 60
        while victim_id not in _leaders(admin, topics.sensor_readings).values():
            assert time.monotonic() < deadline, (
                f"node {victim_id} never led again: {_leaders(admin, topics.sensor_readings)}"
            )
            with contextlib.suppress(KafkaException):  # per-partition refusals: ask again
                admin.elect_leaders(ElectionType.PREFERRED, None).result(60)
            time.sleep(0.5)  # pacing between metadata requests
        ids |= produce_readings(bootstrap, topics.sensor_readings, 2 * PER_PHASE, PER_PHASE)

        # 4. Everything scored exactly once, by the same scorer process.
        got = scored_ids(bootstrap, topics.scored, 3, want=len(ids), timeout=600, alive=alive)
        alive()
    finally:
        stop_scorer(proc)
    counts = Counter(got)
    dupes = {k: v for k, v in counts.items() if v > 1}
    assert not dupes, f"{len(dupes)} inputs scored more than once"
    assert set(counts) == ids, f"{len(ids - set(counts))} inputs never scored"
