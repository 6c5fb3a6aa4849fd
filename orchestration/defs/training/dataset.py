"""An MLflow dataset source that names the Kafka offsets a training set was replayed from."""

from __future__ import annotations

from typing import Any

from mlflow.data.dataset_source import DatasetSource


class KafkaOffsetsSource(DatasetSource):
    """Topic, per-day per-partition offset ranges and the bootstrap servers of a replay."""

    def __init__(self, bootstrap: str, topic: str, offsets: dict[str, dict[str, list[int]]]):
        self.bootstrap = bootstrap
        self.topic = topic
        self.offsets = offsets

    @property
    def uri(self) -> str:
        days = sorted(self.offsets)
        span = f"{days[0]}..{days[-1]}" if days else ""
        return f"kafka://{self.bootstrap}/{self.topic}?days={span}"

    @staticmethod
    def _get_source_type() -> str:
        return "kafka"

    def load(self) -> Any:
        raise NotImplementedError("replay the offsets with orchestration's event_history")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> KafkaOffsetsSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "bootstrap": self.bootstrap,
            "topic": self.topic,
            "offsets": self.offsets,
        }

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> KafkaOffsetsSource:
        return cls(source_dict["bootstrap"], source_dict["topic"], source_dict["offsets"])
