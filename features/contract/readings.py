"""The sensor reading as the rest of edaml sees it, after the contract has parsed it.

The wire format (JSON envelope, schema `iot.sensor_reading/v1`) is parsed and validated in
`features.contract`; this module only holds the in-memory shape that parsing produces and that
the feature paths, the simulator and the scorer share. Which sensors a dataset has, their
units and ranges, is declared in its spec (`features.spec`, `datasets/<name>.yaml`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
