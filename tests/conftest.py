"""Session fixtures: a real Kafka 4 broker and a real MLflow tracking server.

Both start on free ports under a temporary EDAML_HOME the first time a test asks for them, and
stop when the session ends (also when a test fails). KAFKA_BOOTSTRAP_SERVERS or
MLFLOW_TRACKING_URI, when set, point the suite at existing servers instead. A server that does
not come up fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edaml.broker import start_private_kafka
from edaml.services import Service, free_port
from edaml.settings import Settings
from edaml.stack import Stack, dagster_config, init_dagster_home, mlflow_server
from features.contract.topics import Topics
from streaming.kafka import ensure_topics

if TYPE_CHECKING:
    import dagster as dg


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


@dataclass(frozen=True)
class PostgresBackend:
    """The stack's production profile: MLflow on PostgreSQL, a Dagster home on PostgreSQL."""

    tracking_uri: str
    dagster_home: Path


@pytest.fixture(scope="session")
def postgres_backend(request: pytest.FixtureRequest) -> PostgresBackend:
    """A PostgreSQL server (the machine's binaries, initdb on first use), an MLflow server whose
    backend store is on it, and a Dagster home whose run, event and schedule storage is on it.
    The home is outside pytest's private temp folder: as root, PostgreSQL runs as `postgres`,
    which must be able to reach it."""
    home = Path(tempfile.mkdtemp(prefix="edaml-pg-"))
    home.chmod(0o755)
    settings = Settings(
        home=home,
        profile="production",
        host="127.0.0.1",
        postgres_port=free_port(),
        mlflow_port=free_port(),
        mlflow_tracking_uri=None,
        kafka_bootstrap_servers="unused:9092",  # Kafka is the session broker, not this stack's
    )
    stack = Stack(settings)
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    request.addfinalizer(stack.down)
    stack.up(only={"postgres", "mlflow"})
    init_dagster_home(home / "dagster", dagster_config(settings))
    return PostgresBackend(settings.tracking_uri, home / "dagster")


@pytest.fixture(params=["sqlite", "postgres"])
def retrain_storage(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Callable[[], dg.DagsterInstance]]:
    """(MLflow URI, Dagster instance factory) of each storage profile: the sqlite default, and
    the production profile (MLflow's backend store and Dagster's run, event and schedule
    storage on PostgreSQL)."""
    import dagster as dg
    import mlflow

    if request.param == "sqlite":
        return request.getfixturevalue("mlflow_tracking_uri"), dg.DagsterInstance.ephemeral
    pg: PostgresBackend = request.getfixturevalue("postgres_backend")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg.tracking_uri)
    previous = mlflow.get_tracking_uri()
    request.addfinalizer(lambda: mlflow.set_tracking_uri(previous))
    return pg.tracking_uri, lambda: dg.DagsterInstance.from_config(str(pg.dagster_home))
