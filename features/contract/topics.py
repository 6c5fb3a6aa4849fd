"""Topic names and their layout. Names are settings: a prefix keeps tests and tenants apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SENSOR_READINGS = "iot.sensor-readings"
MAINTENANCE = "iot.maintenance"
SCORED = "iot.scored"
ALERTS = "iot.alerts"
DLQ = "iot.dlq"
MODEL_LIFECYCLE = "mlops.model-lifecycle"
MODEL_MONITORING = "mlops.model-monitoring"
SCORER_STATE = "iot.scorer-state"

#: Every topic of the design, with the configs it needs beyond the broker's defaults.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    SENSOR_READINGS: {"message.timestamp.type": "CreateTime", "retention.ms": "-1"},
    MAINTENANCE: {"message.timestamp.type": "CreateTime", "retention.ms": "-1"},
    SCORED: {"retention.ms": str(7 * 24 * 3600 * 1000)},
    ALERTS: {"retention.ms": str(30 * 24 * 3600 * 1000)},
    DLQ: {"retention.ms": "-1", "max.message.bytes": str(4 * 1024 * 1024)},
    # Lifecycle and monitoring streams are small and read from the start by newcomers.
    MODEL_LIFECYCLE: {"retention.ms": "-1"},
    MODEL_MONITORING: {"retention.ms": str(30 * 24 * 3600 * 1000)},
    # The scorer's per-device feature state (streaming.serving.snapshots), one partition per
    # input partition. Compacted: the latest record of each device and the partition's marker
    # are kept, so a restore reads about one record per device whatever the service's age.
    # Small segments and a low dirty ratio let the cleaner keep up with frequent snapshots.
    SCORER_STATE: {
        "cleanup.policy": "compact",
        "segment.bytes": str(64 * 1024 * 1024),
        "segment.ms": str(10 * 60 * 1000),
        "min.cleanable.dirty.ratio": "0.2",
        "max.message.bytes": str(8 * 1024 * 1024),
    },
}

#: Topics keyed by device and spread over partitions; the others are small and ordered.
PARTITIONED = frozenset({SENSOR_READINGS, MAINTENANCE, SCORED, ALERTS, DLQ, SCORER_STATE})


@dataclass(frozen=True, slots=True)
class Topics:
    """The concrete topic names for one deployment (or one test): `prefix` + design name, and
    how they are laid out when edaml creates them: `partitions` for each keyed topic unless
    `topic_partitions` names the topic (by its design name), `replication_factor` copies, and
    `min_insync_replicas` (None: the broker's default) for acknowledged writes."""

    prefix: str = ""
    partitions: int = 6
    names: tuple[str, ...] = field(default=tuple(TOPIC_CONFIGS))
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    topic_partitions: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.topic_partitions) - set(TOPIC_CONFIGS))
        if unknown:
            raise ValueError(
                f"topic_partitions names unknown topic(s) {unknown}; use design names from "
                f"{sorted(TOPIC_CONFIGS)}"
            )

    def name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    @property
    def sensor_readings(self) -> str:
        return self.name(SENSOR_READINGS)

    @property
    def maintenance(self) -> str:
        return self.name(MAINTENANCE)

    @property
    def scored(self) -> str:
        return self.name(SCORED)

    @property
    def alerts(self) -> str:
        return self.name(ALERTS)

    @property
    def dlq(self) -> str:
        return self.name(DLQ)

    @property
    def model_lifecycle(self) -> str:
        return self.name(MODEL_LIFECYCLE)

    @property
    def model_monitoring(self) -> str:
        return self.name(MODEL_MONITORING)

    @property
    def scorer_state(self) -> str:
        return self.name(SCORER_STATE)

    def partitions_of(self, topic: str) -> int:
        if topic in self.topic_partitions:
            return self.topic_partitions[topic]
        if topic == SCORER_STATE:  # input partition p's state lives in partition p
            return self.partitions_of(SENSOR_READINGS)
        return self.partitions if topic in PARTITIONED else 1

    def config_of(self, topic: str) -> dict[str, str]:
        """The topic configs edaml creates `topic` with (design configs and min.insync.replicas)."""
        conf = dict(TOPIC_CONFIGS.get(topic, {}))
        if self.min_insync_replicas is not None:
            conf["min.insync.replicas"] = str(self.min_insync_replicas)
        return conf
