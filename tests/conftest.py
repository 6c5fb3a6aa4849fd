"""Session fixtures: a real Kafka 4 broker and a real MLflow tracking server.

Both start on free ports under a temporary EDAML_HOME the first time a test asks for them, and
stop when the session ends (also when a test fails). KAFKA_BOOTSTRAP_SERVERS or
MLFLOW_TRACKING_URI, when set, point the suite at existing servers instead. A server that does
not come up fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edaml.broker import start_private_kafka
from edaml.services import Service, free_port
from edaml.settings import Settings
from edaml.stack import mlflow_server
from streaming.kafka import ensure_topics
from streaming.topics import Topics


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edaml-home")


def _stop_at_end(request: pytest.FixtureRequest, service: Service) -> None:
    request.addfinalizer(service.stop)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, stack_home: Path) -> str:
    """Bootstrap servers of a real broker (ours, or KAFKA_BOOTSTRAP_SERVERS's)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external
    settings = Settings()
    svc = start_private_kafka(
        stack_home, version=settings.kafka_version, jar_cache=settings.jar_cache
    )
    _stop_at_end(request, svc)
    return svc.address


@pytest.fixture(scope="session")
def mlflow_tracking_uri(request: pytest.FixtureRequest, stack_home: Path) -> Iterator[str]:
    """URL of a real MLflow tracking server; MLFLOW_TRACKING_URI points at it for the session."""
    external = os.environ.get("MLFLOW_TRACKING_URI")
    if external:
        yield external
        return
    settings = Settings(home=stack_home, mlflow_port=free_port(), mlflow_tracking_uri=None)
    svc = mlflow_server(settings)
    svc.start()
    _stop_at_end(request, svc)
    svc.wait_healthy()
    os.environ["MLFLOW_TRACKING_URI"] = svc.address
    try:
        yield svc.address
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    """The design's topics under a fresh prefix, created with 3 partitions each keyed topic."""
    t = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=3)
    ensure_topics(kafka_bootstrap, t)
    return t
