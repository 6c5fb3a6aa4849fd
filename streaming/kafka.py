"""A thin layer over confluent-kafka: client construction, topic creation, readiness."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streaming.topics import TOPIC_CONFIGS, Topics

log = logging.getLogger(__name__)

Config = dict[str, Any]
R = TypeVar("R")

#: Errors a partition answers with while its leader is still being elected (a fresh topic, a
#: broker that just started): retried by `retry_leaderless`, never shown to the user.
LEADERLESS: frozenset[int] = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
    }
)


def producer_config(bootstrap: str, **overrides: Any) -> Config:
    conf: Config = {
        "bootstrap.servers": bootstrap,
        # Idempotence: retries never duplicate or reorder a partition's records.
        "enable.idempotence": True,
        # Batch for throughput: a few ms of linger fills batches at high rates.
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }
    conf.update(overrides)
    return conf


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> Config:
    conf: Config = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        # Offsets are committed by the application after its output is produced.
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # read_committed: never see records of aborted (or still open) transactions.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }
    conf.update(overrides)
    return conf


def make_producer(bootstrap: str, **overrides: Any) -> Producer:
    return Producer(producer_config(bootstrap, **overrides))


def make_consumer(bootstrap: str, group_id: str, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(bootstrap, group_id, **overrides))


def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    names: Iterable[str] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create the design's topics (or `names` of them) that do not exist yet; return the created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = list(names) if names is not None else list(TOPIC_CONFIGS)
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(
            topics.name(t),
            num_partitions=topics.partitions_of(t),
            replication_factor=1,
            config=dict(TOPIC_CONFIGS.get(t, {})),
        )
        for t in wanted
        if topics.name(t) not in existing
    ]
    created: list[str] = []
    if not new:
        wait_for_leaders(admin, [topics.name(t) for t in wanted], timeout=timeout)
        return created
    for name, fut in admin.create_topics(new, request_timeout=timeout).items():
        try:
            fut.result(timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
    wait_for_leaders(admin, [topics.name(t) for t in wanted], timeout=timeout)
    return created


def wait_for_leaders(admin: AdminClient, names: Iterable[str], *, timeout: float = 30.0) -> None:
    """Block until every partition of `names` has a leader: a topic just created answers
    NOT_LEADER_FOR_PARTITION to offset and fetch requests for a moment."""
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending:
        topics = admin.list_topics(timeout=timeout).topics
        pending = {
            n
            for n in pending
            if n not in topics
            or not topics[n].partitions
            or any(p.leader < 0 for p in topics[n].partitions.values())
        }
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader after {timeout:.0f}s for {sorted(pending)}")
        time.sleep(0.05)  # pacing between metadata requests


def retry_leaderless(call: Callable[[], R], *, timeout: float = 30.0) -> R:
    """`call()`, retried while Kafka answers that a partition has no leader yet (bounded by
    `timeout`). Metadata can name a leader a moment before the leader serves offset requests,
    so every watermark, offset or fetch-position call after a topic is created goes through
    here (or through `watermarks`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            code = err.code() if isinstance(err, KafkaError) else None
            if code not in LEADERLESS or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # pacing between retries while the leader is elected


def watermarks(
    consumer: Consumer, topic: str, *, timeout: float = 30.0
) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of `topic`, waiting for leaders (bounded)."""

    def read() -> dict[int, tuple[int, int]]:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            err = meta.error if meta is not None and meta.error is not None else None
            raise KafkaException(err or KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        out: dict[int, tuple[int, int]] = {}
        for p in sorted(meta.partitions):
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            out[p] = (lo, hi)
        return out

    return retry_leaderless(read, timeout=timeout)


def create_topic(
    bootstrap: str, name: str, *, partitions: int = 1, config: Mapping[str, str] | None = None
) -> None:
    """Create one topic by its full name (idempotent)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))]
    )[name]
    try:
        fut.result(30)
    except KafkaException as exc:
        err = exc.args[0]
        if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise


def _accepts_connections(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until_ready(bootstrap: str, *, timeout: float = 60.0) -> None:
    """Block until a client can list topics and create one (an open port is not enough)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not _accepts_connections(bootstrap):
            last = ConnectionRefusedError(f"nothing listens on {bootstrap}")
            time.sleep(0.2)  # retry pacing while the broker boots, not a readiness guess
            continue
        try:
            # log_level 0: a broker that is still booting is expected, not worth a log line.
            admin = AdminClient(
                {"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0}
            )
            admin.list_topics(timeout=2)
            create_topic(bootstrap, "__edaml_ready")
            return
        except KafkaException as exc:
            last = exc
            time.sleep(0.2)  # retry pacing while the broker boots, not a readiness guess
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last}")
