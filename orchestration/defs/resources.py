"""Typed resources of the code location: Kafka, history storage, MLflow.

URLs and paths come from the environment through `dg.EnvVar` (the local stack sets
KAFKA_BOOTSTRAP_SERVERS, MLFLOW_TRACKING_URI and EDAML_HOME for the webserver, the daemon and
their runs); an unset variable falls back to the local stack's default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from confluent_kafka import Consumer, Producer

from features.contract.topics import Topics
from orchestration.defs.io_manager import RunStorageIOManager
from orchestration.defs.settings import TrainingSettings
from streaming.kafka import make_consumer, make_producer

#: Environment variable -> value when it is unset (the local stack's defaults).
ENV_DEFAULTS: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    "EDAML_HOME": ".edaml",
    "EDAML_TOPIC_PREFIX": "",
    "EDAML_PARTITIONS": "6",
    # Prepended to the registered model names (tenants and tests apart).
    "EDAML_MODEL_PREFIX": "",
}


def env(name: str) -> str:
    """`dg.EnvVar(name)` when the variable is set (the UI shows where the value comes from and
    the run reads it when it starts), else the local default."""
    return dg.EnvVar(name) if name in os.environ else ENV_DEFAULTS[name]


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster holding the event log, with the deployment's topic prefix."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = 6

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix, partitions=self.partitions)

    def consumer(self, group_id: str, **overrides: object) -> Consumer:
        return make_consumer(self.bootstrap_servers, group_id, **overrides)

    def producer(self, **overrides: object) -> Producer:
        return make_producer(self.bootstrap_servers, **overrides)


class HistoryStorage(dg.ConfigurableResource):
    """Where replayed history lives (per dataset and day: `history/store.py`) and the ground
    truth replays write."""

    #: Where the files live; empty: `<home>/data`.
    root: str = ""
    #: edaml's home folder (EDAML_HOME); empty: `.edaml` in the working directory.
    home: str = ""
    #: Ground-truth fault intervals (device_id, fault_type, start_ms, end_ms, failed), CSV or
    #: Parquet; empty: `<root>/ground_truth/labels.parquet` or `.csv` when present.
    labels_file: str = ""

    @property
    def path(self) -> Path:
        base = Path(self.root) if self.root else Path(self.home or ".edaml").resolve() / "data"
        base.mkdir(parents=True, exist_ok=True)
        return base

    def ground_truth(self) -> pd.DataFrame | None:
        """The ground-truth fault intervals, or None when there are none."""
        candidates = (
            [Path(self.labels_file)]
            if self.labels_file
            else [self.path / "ground_truth" / f"labels.{ext}" for ext in ("parquet", "csv")]
        )
        for p in candidates:
            if p.exists():
                return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        return None


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking server and model registry."""

    tracking_uri: str = "http://127.0.0.1:5000"
    experiment: str = "edaml-training"

    def activate(self) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        mlflow.set_experiment(self.experiment)


def default_resources() -> dict[str, Any]:
    """Resources from the environment (KAFKA_BOOTSTRAP_SERVERS, MLFLOW_TRACKING_URI, EDAML_*)."""
    return {
        "kafka": KafkaResource(
            bootstrap_servers=env("KAFKA_BOOTSTRAP_SERVERS"),
            topic_prefix=env("EDAML_TOPIC_PREFIX"),
            partitions=int(os.environ.get("EDAML_PARTITIONS", ENV_DEFAULTS["EDAML_PARTITIONS"])),
        ),
        "storage": HistoryStorage(home=env("EDAML_HOME")),
        "mlflow": MlflowResource(tracking_uri=env("MLFLOW_TRACKING_URI")),
        "training": TrainingSettings(model_prefix=env("EDAML_MODEL_PREFIX")),
        # Values passed between assets, stored per run (io_manager.py).
        "io_manager": RunStorageIOManager(home=env("EDAML_HOME")),
    }
