"""A thin layer over confluent-kafka: client construction, topic creation, readiness.

Every producer, consumer and admin client edaml makes goes through `client_config`, which layers
the deployment's client properties over edaml's defaults: a properties file named by
EDAML_KAFKA_PROPERTIES (`key=value` lines, as for Kafka's Java tools), then variables
EDAML_KAFKA_<PROPERTY> (`EDAML_KAFKA_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`). That
is how a secured cluster (SASL, TLS) is reached by the CLI, the Dagster assets and the scorer.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from features.contract.topics import TOPIC_CONFIGS, Topics

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

ENV_PREFIX = "EDAML_KAFKA_"
PROPERTIES_VAR = "EDAML_KAFKA_PROPERTIES"
#: Variables under ENV_PREFIX that are edaml's own settings (edaml/settings.py), not client
#: properties; tests/unit checks that the list matches the settings.
EDAML_KAFKA_SETTINGS = frozenset(
    {
        "BOOTSTRAP_SERVERS",
        "PORT",
        "CONTROLLER_PORT",
        "VERSION",
        "HEAP",
        "PROPERTIES",
        "REPLICATION_FACTOR",
        "MIN_INSYNC_REPLICAS",
    }
)


#: Headers of a dead-letter record: `edaml.error.<name>` (Kafka Connect's convention, our prefix).
ERROR_HEADER_PREFIX = "edaml.error."


def error_headers(
    stage: str, exc: BaseException, origin: Mapping[str, object]
) -> list[tuple[str, bytes]]:
    """The one dead-letter header schema of edaml: where the record came from (`origin`: topic,
    partition, offset and instance for the scorer; file and row for a replay), the stage that
    refused it, the exception's class and message, and the field and reason it names."""
    h = ERROR_HEADER_PREFIX
    out = [(h + k, str(v).encode("utf-8", "replace")) for k, v in origin.items()]
    out += [
        (h + "stage", stage.encode()),
        (h + "exception.class", type(exc).__name__.encode()),
        (h + "exception.message", str(exc)[:2000].encode("utf-8", "replace")),
        (h + "field", str(getattr(exc, "field", "")).encode("utf-8", "replace")),
        (h + "reason", str(getattr(exc, "reason", exc))[:2000].encode("utf-8", "replace")),
    ]
    return out


class KafkaSettingsError(ValueError):
    """The client properties (file or variables) cannot be used; the message says which."""


def parse_properties(text: str, *, source: str = "properties") -> Config:
    """`key=value` (or `key: value`) lines; blank lines and `#`/`!` comments are skipped."""
    conf: Config = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if cut < 0:
            raise KafkaSettingsError(f"{source}:{lineno}: expected `key=value`, got {line!r}")
        conf[line[:cut].strip()] = line[cut + 1 :].strip()
    return conf


def env_properties(environ: Mapping[str, str]) -> Config:
    """Client properties from EDAML_KAFKA_<PROPERTY> variables (`_` becomes `.`, lower case)."""
    return {
        key[len(ENV_PREFIX) :].lower().replace("_", "."): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :] not in EDAML_KAFKA_SETTINGS
    }


def deployment_properties(environ: Mapping[str, str] | None = None) -> Config:
    """The deployment's client properties: the file of EDAML_KAFKA_PROPERTIES, then variables."""
    env = os.environ if environ is None else environ
    conf: Config = {}
    path = env.get(PROPERTIES_VAR)
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise KafkaSettingsError(
                f"{PROPERTIES_VAR}={path}: cannot read the file ({exc.strerror}); "
                "fix the path or unset the variable"
            ) from None
        conf.update(parse_properties(text, source=path))
    conf.update(env_properties(env))
    return conf


def client_config(
    bootstrap: str, defaults: Mapping[str, Any] | None = None, **overrides: Any
) -> Config:
    """The one place a client's configuration is assembled: edaml's `defaults` for the client
    kind, then the deployment's properties (file, variables), then the caller's `overrides`
    (what the code needs to be correct, e.g. `transactional.id`). `bootstrap` always wins: it is
    the cluster the caller was told to use."""
    conf: Config = dict(defaults or {})
    conf.update(deployment_properties())
    conf.update(overrides)
    conf["bootstrap.servers"] = bootstrap
    return conf


def producer_config(bootstrap: str, **overrides: Any) -> Config:
    defaults: Config = {
        # Idempotence: retries never duplicate or reorder a partition's records.
        "enable.idempotence": True,
        # Batch for throughput: a few ms of linger fills batches at high rates.
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }
    return client_config(bootstrap, defaults, **overrides)


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> Config:
    defaults: Config = {
        # Offsets are committed by the application after its output is produced.
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # read_committed: never see records of aborted (or still open) transactions.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }
    return client_config(bootstrap, defaults, **{"group.id": group_id, **overrides})


def make_producer(bootstrap: str, **overrides: Any) -> Producer:
    return Producer(producer_config(bootstrap, **overrides))


def make_consumer(bootstrap: str, group_id: str, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(bootstrap, group_id, **overrides))


def make_admin(bootstrap: str, **overrides: Any) -> AdminClient:
    return AdminClient(client_config(bootstrap, **overrides))


def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    names: Iterable[str] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create the design's topics (or `names` of them) that do not exist yet; return the created.
    Partitions per topic, the replication factor and `min.insync.replicas` come from `topics`."""
    admin = make_admin(bootstrap)
    wanted = list(names) if names is not None else list(TOPIC_CONFIGS)
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(
            topics.name(t),
            num_partitions=topics.partitions_of(t),
            replication_factor=topics.replication_factor,
            config=topics.config_of(t),
        )
        for t in wanted
        if topics.name(t) not in existing
    ]
    created = _create(admin, new, timeout) if new else []
    wait_for_leaders(admin, [topics.name(t) for t in wanted], timeout=timeout)
    return created


def _create(admin: AdminClient, new: list[NewTopic], timeout: float) -> list[str]:
    """Create `new` topics; those that exist already are not an error. Return the created."""
    created: list[str] = []
    for name, fut in admin.create_topics(new, request_timeout=timeout).items():
        try:
            fut.result(timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
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
    bootstrap: str,
    name: str,
    *,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    replication_factor: int = 1,
    client: Mapping[str, Any] | None = None,
) -> None:
    """Create one topic by its full name (idempotent). `client`: extra client properties."""
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config=dict(config or {}),
    )
    _create(make_admin(bootstrap, **(client or {})), [topic], 30.0)


class KafkaAccessError(RuntimeError):
    """The cluster cannot be used with these settings; the message says why and what to set."""


#: librdkafka error codes that mean: the credentials or the TLS set-up were refused.
_AUTH_CODES = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._SSL,
}


def check_access(bootstrap: str, *, timeout: float = 30.0) -> None:
    """Fail fast, in one message, when the cluster refuses edaml's credentials or cannot be
    reached: the client's own log lines are silenced, the error is raised instead."""
    errors: list[KafkaError] = []
    admin = make_admin(bootstrap, log_level=0, error_cb=errors.append)
    try:
        admin.list_topics(timeout=timeout)
        return
    except KafkaException as exc:
        errors.append(exc.args[0])
    admin.poll(0.5)  # serves error_cb: the authentication error arrives there, not in `exc`
    refused = next(
        (e for e in errors if isinstance(e, KafkaError) and e.code() in _AUTH_CODES), None
    )
    if refused is not None:
        conf = deployment_properties()
        who = f" as {conf['sasl.username']!r}" if "sasl.username" in conf else ""
        raise KafkaAccessError(
            f"Kafka at {bootstrap} refused the connection{who}: {refused.str()} "
            "(check EDAML_KAFKA_SASL_USERNAME / EDAML_KAFKA_SASL_PASSWORD, "
            "EDAML_KAFKA_SSL_CA_LOCATION or the EDAML_KAFKA_PROPERTIES file)"
        )
    last = errors[-1].str() if errors and isinstance(errors[-1], KafkaError) else "no answer"
    raise KafkaAccessError(
        f"Kafka at {bootstrap} did not answer within {timeout:.0f}s ({last}); "
        "check KAFKA_BOOTSTRAP_SERVERS and EDAML_KAFKA_SECURITY_PROTOCOL"
    )


def _accepts_connections(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until_ready(
    bootstrap: str, *, timeout: float = 60.0, client: Mapping[str, Any] | None = None
) -> None:
    """Block until a client can list topics and create one (an open port is not enough).
    `client`: extra client properties (a secured broker's)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not _accepts_connections(bootstrap):
            last = ConnectionRefusedError(f"nothing listens on {bootstrap}")
            time.sleep(0.2)  # retry pacing while the broker boots, not a readiness guess
            continue
        try:
            # log_level 0: a broker that is still booting is expected, not worth a log line.
            conf = {**(client or {}), "socket.timeout.ms": 2000, "log_level": 0}
            make_admin(bootstrap, **conf).list_topics(timeout=2)
            create_topic(bootstrap, "__edaml_ready", client=conf)
            return
        except KafkaException as exc:
            last = exc
            time.sleep(0.2)  # retry pacing while the broker boots, not a readiness guess
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last}")
