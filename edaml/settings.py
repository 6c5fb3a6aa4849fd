"""All of edaml's settings in one object, read from the environment (prefix EDAML_) and flags.

Standard variables of the ecosystem win where they exist: KAFKA_BOOTSTRAP_SERVERS,
MLFLOW_TRACKING_URI and DAGSTER_HOME. When one is set, edaml uses that server instead of
starting its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.contract.topics import Topics


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDAML_", extra="ignore")

    home: Path = Field(default=Path(".edaml"), description="Root of local stack data and logs")
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "EDAML_KAFKA_BOOTSTRAP_SERVERS"),
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "EDAML_MLFLOW_TRACKING_URI"),
    )
    kafka_properties: Path | None = Field(
        default=None,
        description="A file of Kafka client properties (`key=value` lines) for every client; "
        "EDAML_KAFKA_<PROPERTY> variables override it (streaming/kafka.py reads both)",
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="Copies of each topic edaml creates (3 on a cluster)"
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None, ge=1, description="min.insync.replicas of the topics edaml creates"
    )
    topic_partitions: dict[str, int] = Field(
        default_factory=dict,
        description='Partitions per topic by design name, JSON: {"iot.sensor-readings": 12}',
    )
    profile: Literal["local", "production"] = Field(
        default="local",
        description="local: MLflow and Dagster on sqlite; production: both on a PostgreSQL "
        "server the stack runs (initdb under <home>/postgres)",
    )
    postgres_port: int = 5432
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"
    mlflow_port: int = 5000
    dagster_port: int = 3000
    scorer_port: int = 8000
    host: str = "127.0.0.1"
    topic_prefix: str = ""
    partitions: int = 6
    jar_cache: Path = Field(
        default=Path.home() / ".cache" / "edaml" / "kafka-jars",
        description="Where Maven's copy of the broker jars is kept (outside the repo)",
    )

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.host}:{self.mlflow_port}"

    @property
    def topics(self) -> Topics:
        return Topics(
            prefix=self.topic_prefix,
            partitions=self.partitions,
            replication_factor=self.kafka_replication_factor,
            min_insync_replicas=self.kafka_min_insync_replicas,
            topic_partitions=self.topic_partitions,
        )

    @property
    def home_abs(self) -> Path:
        return self.home.resolve()
