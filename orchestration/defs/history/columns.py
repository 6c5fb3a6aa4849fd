"""Columnar builders: contract-parsed events appended straight into column lists."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from features.contract import ContractError, Maintenance, parse_event, parse_reading
from features.readings import SENSORS

log = logging.getLogger(__name__)


class ReadingColumns:
    """Sink for `replay`: parses readings with the contract and keeps one list per column."""

    def __init__(self) -> None:
        self.event_id: list[str] = []
        self.device_id: list[str] = []
        self.ts_ms: list[int] = []
        self.values: dict[str, list[float | None]] = {s: [] for s in SENSORS}
        self.partition: list[int] = []
        self.offset: list[int] = []
        self.invalid: Counter[str] = Counter()

    def __call__(self, values: list[bytes], partitions: list[int], offsets: list[int]) -> None:
        ev, dev, ts = self.event_id.append, self.device_id.append, self.ts_ms.append
        cols = [(s, self.values[s].append) for s in SENSORS]
        part, off = self.partition.append, self.offset.append
        for raw, p, o in zip(values, partitions, offsets, strict=True):
            try:
                r = parse_reading(raw)
            except ContractError as exc:
                self.invalid[exc.field] += 1
                continue
            ev(r.event_id)
            dev(r.device_id)
            ts(r.ts_ms)
            v = r.values
            for s, app in cols:
                app(v.get(s))
            part(p)
            off(o)

    def frame(self) -> pd.DataFrame:
        """The readings in log order (partition, offset); `seq` is the offset (arrival order)."""
        data: dict[str, object] = {
            "event_id": pd.array(self.event_id, dtype="str"),
            "device_id": pd.array(self.device_id, dtype="str"),
            "ts_ms": np.asarray(self.ts_ms, dtype=np.int64),
        }
        for s in SENSORS:
            data[s] = np.asarray(self.values[s], dtype=np.float64)  # None -> NaN
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
