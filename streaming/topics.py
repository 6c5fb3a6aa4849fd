"""Topic names and their layout. Names are settings: a prefix keeps tests and tenants apart."""

from __future__ import annotations

from dataclasses import dataclass, field

SENSOR_READINGS = "iot.sensor-readings"
MAINTENANCE = "iot.maintenance"
SCORED = "iot.scored"
ALERTS = "iot.alerts"
DLQ = "iot.dlq"
MODEL_LIFECYCLE = "mlops.model-lifecycle"
MODEL_MONITORING = "mlops.model-monitoring"

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
}

#: Topics keyed by device and spread over partitions; the others are small and ordered.
PARTITIONED = frozenset({SENSOR_READINGS, MAINTENANCE, SCORED, ALERTS, DLQ})


@dataclass(frozen=True, slots=True)
class Topics:
    """The concrete topic names for one deployment (or one test): `prefix` + design name."""

    prefix: str = ""
    partitions: int = 6
    names: tuple[str, ...] = field(default=tuple(TOPIC_CONFIGS))

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

    def partitions_of(self, topic: str) -> int:
        return self.partitions if topic in PARTITIONED else 1
