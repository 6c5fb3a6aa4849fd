"""Servers for benchmarks: the ones named by KAFKA_BOOTSTRAP_SERVERS / MLFLOW_TRACKING_URI, or
private ones started on free ports for the run and stopped after it.

    from stackutil import kafka_broker
    with kafka_broker() as bootstrap:
        ...
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:  # run as a script from bench/, or imported as bench.stackutil
    from _harness import replace_section
except ImportError:  # pragma: no cover
    from bench._harness import replace_section  # noqa: F401

from edaml.broker import start_private_kafka
from edaml.services import free_port
from edaml.settings import Settings
from edaml.stack import mlflow_server


@contextmanager
def kafka_broker(heap: str = "1g") -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="edaml-bench-") as home:
        svc = start_private_kafka(
            Path(home), version=settings.kafka_version, jar_cache=settings.jar_cache, heap=heap
        )
        try:
            yield svc.address
        finally:
            svc.stop()


@contextmanager
def mlflow_tracking() -> Iterator[str]:
    external = os.environ.get("MLFLOW_TRACKING_URI")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="edaml-bench-mlflow-") as home:
        svc = mlflow_server(
            Settings(home=Path(home), mlflow_port=free_port(), mlflow_tracking_uri=None)
        )
        svc.start()
        try:
            svc.wait_healthy()
            os.environ["MLFLOW_TRACKING_URI"] = svc.address
            yield svc.address
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            svc.stop()
