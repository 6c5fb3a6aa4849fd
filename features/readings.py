"""The sensor reading as the rest of edaml sees it, after the contract has parsed it.

The wire format (JSON envelope, schema `iot.sensor_reading/v1`) is parsed and validated in
`features.contract`; this module only holds the in-memory shape that parsing produces and that
the feature paths, the simulator and the scorer share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: The sensors every IoT device reports, in a fixed order (feature columns follow it).
SENSORS: Final[tuple[str, ...]] = ("temperature", "vibration", "pressure", "current", "rpm")

#: Physical units of each sensor, for documentation and reason texts.
UNITS: Final[dict[str, str]] = {
    "temperature": "°C",
    "vibration": "mm/s RMS",
    "pressure": "bar",
    "current": "A",
    "rpm": "rpm",
}


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One reading of one device at one event time.

    `ts_ms` is the event time in milliseconds since the Unix epoch (UTC). A sensor value is
    `None` when the device reported it missing (a dropout); it is never NaN or infinite.
    """

    event_id: str
    device_id: str
    ts_ms: int
    values: dict[str, float | None]
    site: str = ""
    machine_type: str = ""
    extra: dict[str, str] = field(default_factory=dict)
