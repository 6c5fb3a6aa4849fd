"""Columnar builders: contract-validated events appended straight into columns."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import ContractError, Maintenance, ReadingContract, parse_event
from features.contract.columns import decode_readings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class ReadingColumns:
    """Sink for `replay`: decodes each batch of readings into columns with the contract's bulk
    decoder; invalid records are counted by the field the contract blames, never kept.
    `sensors`: the dataset's sensor columns, in order; `contract`: the dataset's reading
    contract (`spec.contract`; default: these sensors without range checks)."""

    def __init__(self, sensors: Sequence[str], contract: ReadingContract | None = None) -> None:
        self.sensors = tuple(sensors)
        self.contract = contract or ReadingContract(dict.fromkeys(self.sensors, (-1e15, 1e15)))
        self._event_id: list[pa.Array] = []
        self._device_id: list[pa.Array] = []
        self._ts_ms: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._partition: list[np.ndarray] = []
        self._offset: list[np.ndarray] = []
        self.invalid: Counter[str] = Counter()
        #: Refused records by UTC day (epoch day number) of their record timestamp.
        self.invalid_by_day: dict[int, Counter[str]] = {}

    def __call__(
        self,
        values: Sequence[bytes],
        partitions: Sequence[int],
        offsets: Sequence[int],
        timestamps: Sequence[int] | None = None,
    ) -> None:
        cols, errors = decode_readings(values, self.contract)
        for i, exc in errors:
            self.invalid[exc.field] += 1
            if timestamps is not None:
                day = timestamps[i] // DAY_MS
                self.invalid_by_day.setdefault(day, Counter())[exc.field] += 1
        part = np.asarray(partitions, dtype=np.int32)
        off = np.asarray(offsets, dtype=np.int64)
        if errors:
            part, off = part[cols.index], off[cols.index]
        self._event_id.append(cols.event_id)
        self._device_id.append(cols.device_id)
        self._ts_ms.append(cols.ts_ms)
        n = len(cols.index)
        nan = np.full(n, np.nan)
        self._values.append(
            np.column_stack([cols.sensors.get(s, nan) for s in self.sensors])
            if self.sensors
            else np.zeros((n, 0))
        )
        self._partition.append(part)
        self._offset.append(off)

    def invalid_on(self, day_start_ms: int) -> dict[str, int]:
        """The refused records of the day starting at `day_start_ms`, by field."""
        return dict(self.invalid_by_day.get(day_start_ms // DAY_MS, {}))

    def __len__(self) -> int:
        return sum(len(p) for p in self._partition)

    def table(self) -> pa.Table:
        """The readings in log order (partition, offset); `seq` is the offset (arrival order)."""
        partition = _concat(self._partition, np.int32)
        offset = _concat(self._offset, np.int64)
        order = np.lexsort((offset, partition))
        take = pa.array(order)
        values = np.concatenate(self._values) if self._values else np.zeros((0, len(self.sensors)))
        values = values[order]
        data: dict[str, pa.Array | pa.ChunkedArray | np.ndarray] = {
            "event_id": pa.chunked_array(self._event_id, pa.string()).take(take),
            "device_id": pa.chunked_array(self._device_id, pa.string()).take(take),
            "ts_ms": _concat(self._ts_ms, np.int64)[order],
        }
        for j, s in enumerate(self.sensors):
            data[s] = np.ascontiguousarray(values[:, j])
        data["partition"] = partition[order]
        data["offset"] = offset[order]
        data["seq"] = data["offset"]
        return pa.table(data)

    def frame(self) -> pd.DataFrame:
        """`table()` as a DataFrame (strings as pandas' `str` dtype)."""
        return self.table().to_pandas()


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


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
