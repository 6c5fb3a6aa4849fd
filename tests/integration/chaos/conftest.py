"""Chaos suite fixtures: a Kafka broker of the suite's own (killed with SIGKILL and restarted
by the tests, so the session's broker is never disturbed), and the scorer fixtures of
tests/integration/streaming."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from chaos_support import ChaosBroker, support

from edaml.broker import start_private_kafka
from edaml.settings import Settings
from features.contract.topics import Topics

run_scorer = support.run_scorer
good_anomaly_model = support.good_anomaly_model


@pytest.fixture(scope="module")
def chaos_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosBroker]:
    settings = Settings()
    home = tmp_path_factory.mktemp("chaos-kafka")
    svc = start_private_kafka(home, version=settings.kafka_version, jar_cache=settings.jar_cache)
    broker = ChaosBroker(svc)
    try:
        yield broker
    finally:
        svc.stop()


@pytest.fixture
def chaos_topics(chaos_kafka: ChaosBroker) -> Topics:
    from streaming.kafka import ensure_topics

    chaos_kafka.restart()  # a previous test may have left it down
    t = Topics(prefix=f"c{os.urandom(5).hex()}.", partitions=3)
    ensure_topics(chaos_kafka.address, t)
    return t
