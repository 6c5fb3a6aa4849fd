"""Columnar builders: contract-parsed events appended straight into column lists."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from features.contract import ContractError, Maintenance, parse_event, parse_reading
from features.readings import SENSORS, SensorReading

log = logging.getLogger(__name__)


class ReadingColumns:
    """Sink for `replay`: parses readings with the contract, columns are built once at the end."""

    def __init__(self) -> None:
        self.readings: list[SensorReading] = []
        self.partition: list[int] = []
        self.offset: list[int] = []
        self.invalid: Counter[str] = Counter()

    def __call__(self, values: list[bytes], partitions: list[int], offsets: list[int]) -> None:
        try:
            # The common case: every record is valid (one list comprehension, no appends).
            self.readings.extend([parse_reading(raw) for raw in values])
            self.partition.extend(partitions)
            self.offset.extend(offsets)
            return
        except ContractError:
            pass
        for raw, p, o in zip(values, partitions, offsets, strict=True):
            try:
                r = parse_reading(raw)
            except ContractError as exc:
                self.invalid[exc.field] += 1
                continue
            self.readings.append(r)
            self.partition.append(p)
            self.offset.append(o)

    def frame(self) -> pd.DataFrame:
        """The readings in log order (partition, offset); `seq` is the offset (arrival order)."""
        rs = self.readings
        data: dict[str, object] = {
            "event_id": pd.array([r.event_id for r in rs], dtype="str"),
            "device_id": pd.array([r.device_id for r in rs], dtype="str"),
            "ts_ms": np.fromiter((r.ts_ms for r in rs), dtype=np.int64, count=len(rs)),
        }
        vals = [r.values for r in rs]
        for s in SENSORS:
            data[s] = np.asarray([v.get(s) for v in vals], dtype=np.float64)  # None -> NaN
        data["partition"] = np.asarray(self.partition, dtype=np.int32)
        data["offset"] = np.asarray(self.offset, dtype=np.int64)
        df = pd.DataFrame(data)
        df = df.sort_values(["partition", "offset"], kind="stable", ignore_index=True)
        df["seq"] = df["offset"].to_numpy()
        return df


class MaintenanceColumns:
    """Sink for `replay` of `iot.maintenance`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, str, str, int, int]] = []
        self.invalid: Counter[str] = Counter()

    def __call__(self, values: list[bytes], partitions: list[int], offsets: list[int]) -> None:
        for raw, p, o in zip(values, partitions, offsets, strict=True):
            try:
                e = parse_event(raw)
            except ContractError as exc:
                self.invalid[exc.field] += 1
                continue
            if not isinstance(e, Maintenance):
                self.invalid["schema"] += 1
                continue
            self.rows.append((e.event_id, e.device_id, e.ts_ms, e.kind, e.fault_type, p, o))

    def frame(self) -> pd.DataFrame:
        cols = ["event_id", "device_id", "ts_ms", "kind", "fault_type", "partition", "offset"]
        df = pd.DataFrame(self.rows, columns=cols)
        df = df.astype(
            {
                "event_id": "str",
                "device_id": "str",
                "ts_ms": "int64",
                "kind": "str",
                "fault_type": "str",
                "partition": "int32",
                "offset": "int64",
            }
        )
        return df.sort_values(["partition", "offset"], kind="stable", ignore_index=True)
