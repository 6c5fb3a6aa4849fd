"""Per-device feature state kept per input partition, so one partition's state can be rebuilt
or dropped (rebalance, aborted transaction) without touching the others'.

Devices are keyed, so a device lives in exactly one partition and its readings arrive in that
partition's order; one features instance per partition therefore gives the same features as one
instance over everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.contract.readings import SensorReading

PartitionKey = tuple[str, int]
_NO_PARTITION: PartitionKey = ("", -1)


@dataclass(frozen=True, slots=True)
class RoutedBatch:
    """Features of many readings in input order: `values` (rows, features), NaN rows for
    duplicates."""

    values: np.ndarray
    duplicate: np.ndarray
    late: np.ndarray


def _run(inst: Any, readings: list[SensorReading]) -> RoutedBatch:
    many = getattr(inst, "update_many", None)
    if many is not None:
        fb = many(readings)
        return RoutedBatch(
            np.asarray(fb.values, dtype=np.float64),
            np.asarray(fb.duplicate, dtype=bool),
            np.asarray(fb.late, dtype=bool),
        )
    ups = [inst.update(r) for r in readings]
    width = next((len(u.values) for u in ups if u.values is not None), 0)
    values = np.full((len(ups), width), np.nan)
    for i, u in enumerate(ups):
        if u.values is not None:
            values[i] = u.values
    return RoutedBatch(
        values,
        np.array([u.duplicate for u in ups], dtype=bool),
        np.array([u.late for u in ups], dtype=bool),
    )


class PartitionedFeatures:
    """One features instance (made by `factory`) per partition key."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._parts: dict[PartitionKey, Any] = {}
        probe = factory()
        fs = getattr(probe, "feature_set", None)
        #: event time a rebuild must cover for exact features (0: the features keep no history)
        self.rebuild_horizon_ms: int = int(getattr(fs, "rebuild_horizon_ms", 0))
        #: the feature set's version (a snapshot of another is not restored)
        self.version: str = str(getattr(fs, "version", ""))
        #: whether a partition's state can be written as records and restored from them
        self.supports_snapshots: bool = hasattr(probe, "export_devices")

    def _get(self, key: PartitionKey) -> Any:
        inst = self._parts.get(key)
        if inst is None:
            inst = self._parts[key] = self._factory()
        return inst

    @property
    def partitions(self) -> set[PartitionKey]:
        return set(self._parts)

    @property
    def instances(self) -> dict[PartitionKey, Any]:
        """The features instance of each partition (read only)."""
        return self._parts

    def drop(self, keys: Iterable[PartitionKey]) -> None:
        for k in keys:
            self._parts.pop(k, None)

    def keep_only(self, keys: Iterable[PartitionKey]) -> None:
        wanted = set(keys)
        self.drop([k for k in self._parts if k not in wanted])

    def reset(self, key: PartitionKey) -> None:
        """Start a partition's state afresh (empty)."""
        self._parts[key] = self._factory()

    def feed(self, key: PartitionKey, readings: list[SensorReading]) -> None:
        """Advance a partition's state over `readings` (a rebuild); counters stay at zero."""
        inst = self._get(key)
        _run(inst, readings)
        for counter in ("late_count", "duplicate_count"):
            if hasattr(inst, counter):
                setattr(inst, counter, 0)

    def update(self, reading: SensorReading) -> Any:
        """One reading of an unknown partition (tests and tools without Kafka)."""
        return self._get(_NO_PARTITION).update(reading)

    def update_routed(
        self, readings: list[SensorReading], keys: Sequence[PartitionKey]
    ) -> RoutedBatch:
        """Features of `readings` (in order), each in the state of its partition `keys[i]`."""
        first = keys[0] if keys else _NO_PARTITION
        if all(k == first for k in keys):
            return _run(self._get(first), readings)
        parts = [
            (ix, _run(self._get(k), [readings[i] for i in ix.tolist()]))
            for k, ix in _groups(keys).items()
        ]
        return _merge(len(readings), parts)

    def update_routed_columns(
        self,
        keys: Sequence[PartitionKey],
        device_ids: list[str],
        ts_ms: np.ndarray,
        event_hash: np.ndarray,
        sensors: Mapping[str, np.ndarray],
    ) -> RoutedBatch | None:
        """`update_routed` of readings given as columns (`OnlineFeatures.update_columns`);
        None, with no state touched, when the features take no columns."""
        if not keys:
            return None
        first = keys[0]
        if not hasattr(self._get(first), "update_columns"):
            return None

        def run(key: PartitionKey, ix: np.ndarray | None) -> RoutedBatch:
            inst = self._get(key)
            if ix is None:
                fb = inst.update_columns(device_ids, ts_ms, event_hash, sensors)
            else:
                fb = inst.update_columns(
                    [device_ids[i] for i in ix.tolist()],
                    ts_ms[ix],
                    event_hash[ix],
                    {k: v[ix] for k, v in sensors.items()},
                )
            return RoutedBatch(fb.values, fb.duplicate, fb.late)

        if all(k == first for k in keys):
            return run(first, None)
        return _merge(len(keys), [(ix, run(k, ix)) for k, ix in _groups(keys).items()])


def _groups(keys: Sequence[PartitionKey]) -> dict[PartitionKey, np.ndarray]:
    """Row positions of each partition key, in order."""
    groups: dict[PartitionKey, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return {k: np.asarray(ix, dtype=np.int64) for k, ix in groups.items()}


def _merge(n: int, parts: list[tuple[np.ndarray, RoutedBatch]]) -> RoutedBatch:
    """The partitions' results back in input order."""
    values = np.full((n, max(p.values.shape[1] for _, p in parts)), np.nan)
    dup = np.zeros(n, dtype=bool)
    late = np.zeros(n, dtype=bool)
    for idx, part in parts:
        if part.values.shape[1] == values.shape[1]:  # 0 columns: all duplicates
            values[idx] = part.values
        dup[idx] = part.duplicate
        late[idx] = part.late
    return RoutedBatch(values, dup, late)
