"""Columnar decoding of many sensor readings at once (the history replay's fast path).

`decode_readings` accepts exactly what `features.contract.parse_reading` accepts, record for
record, without building a `SensorReading` per record. A batch is first read into columns —
by Arrow's JSON reader when it safely can (`contract_columns_arrow`), else by one `orjson.loads`
per record (`contract_columns_orjson`) — and every column is then checked over the whole batch
(`contract_columns_checks`: UUIDs and timestamps digit by digit in numpy, ids once per distinct
value, sensor ranges as numpy comparisons). A record that is not the plain common case — a
missing optional field, an unknown sensor, `extra`, another timestamp spelling, or anything
wrong — is *suspect*, and suspects go through `parse_reading` itself, which either returns the
reading (its values fill the row) or raises the very `ContractError` the record gets in
`errors`. The batch paths only ever accept records that `parse_reading` accepts, with the same
values, so both agree by design (and a property test holds them to it).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import ReadingContract
from features.contract.columns_arrow import load_arrow
from features.contract.columns_checks import (
    RawColumns,
    check_event_ids,
    check_ids,
    check_sensors,
    check_ts,
    iso_ts_to_ms,
    string_array,
)
from features.contract.columns_orjson import load_orjson
from features.contract.fields import ContractError
from features.contract.readings import SensorReading

__all__ = ["DecodedReadings", "decode_readings", "iso_ts_to_ms"]


@dataclass(frozen=True, slots=True)
class DecodedReadings:
    """The valid readings of a batch as columns, in input order.

    `index[k]` is the position in the input of row `k`. Sensor columns hold NaN where the
    reading had null or did not report that sensor; sensors the contract does not declare are
    not kept.
    """

    index: np.ndarray
    event_id: pa.StringArray
    device_id: pa.StringArray
    site: pa.StringArray
    machine_type: pa.StringArray
    ts_ms: np.ndarray
    sensors: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.index)


Errors = list[tuple[int, ContractError]]


@contextmanager
def _collector_paused() -> Iterator[None]:
    # The general loader allocates two dicts per record, all acyclic and gone with the batch:
    # the cyclic collector would only walk them (and the rest of the heap) again and again,
    # about a third of the decode time in a process with a large heap (Dagster's).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode_readings(
    values: Sequence[bytes],
    contract: ReadingContract,
    *,
    engine: Literal["auto", "orjson"] = "auto",
) -> tuple[DecodedReadings, Errors]:
    """Parse and validate a batch of `iot.sensor_reading/v1` records into columns, one per
    sensor the `contract` (a dataset spec's `spec.contract`) declares.

    Returns the valid readings as columns and, for every invalid record, its position in
    `values` and the `ContractError` that `parse_reading` raises for it. A bad record never
    aborts the batch. `engine`: "auto" (Arrow's reader when it can take the batch, else orjson),
    "orjson" (always the per-record loader; for tests and benchmarks).
    """
    if engine not in ("auto", "orjson"):
        raise ValueError(f"unknown engine {engine!r}")
    with _collector_paused():
        raw = load_arrow(values, contract) if engine == "auto" else None
        if raw is None:
            raw = load_orjson(values, contract)
        return _checked(values, raw, contract)


def _decoded(
    index: np.ndarray, strings: list[pa.StringArray], ts: np.ndarray, sensors: dict[str, np.ndarray]
) -> DecodedReadings:
    event_id, device_id, site, machine_type = strings
    return DecodedReadings(index, event_id, device_id, site, machine_type, ts, sensors)


def _checked(
    values: Sequence[bytes], raw: RawColumns, contract: ReadingContract
) -> tuple[DecodedReadings, Errors]:
    n = len(values)
    suspect = raw.suspect
    check_event_ids(raw.event_id, suspect)
    ts_ms = check_ts(raw.ts, suspect)
    check_ids(raw.device_id, suspect, required=True)
    check_ids(raw.site, suspect, required=False)
    check_ids(raw.machine_type, suspect, required=False)
    check_sensors(raw.sensors, suspect, contract)
    strings = [raw.event_id, raw.device_id, raw.site, raw.machine_type]
    sensors = raw.sensors
    errors: Errors = []
    if not suspect.any():
        index = np.arange(n, dtype=np.int64)
        return _decoded(index, strings, ts_ms, sensors), errors

    accepted: list[tuple[int, SensorReading]] = []
    for i in np.flatnonzero(suspect).tolist():
        try:
            accepted.append((i, contract.parse_reading(values[i])))
        except ContractError as exc:
            errors.append((i, exc))
    if accepted:
        rows = np.array([i for i, _ in accepted], dtype=np.int64)
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        fields = ("event_id", "device_id", "site", "machine_type")
        for k, name in enumerate(fields):
            new = string_array([getattr(r, name) for _, r in accepted])
            strings[k] = pc.replace_with_mask(strings[k], pa.array(mask), new)
        ts_ms[rows] = [r.ts_ms for _, r in accepted]
        for s in contract.sensors:
            got = [r.values.get(s) for _, r in accepted]
            sensors[s][rows] = np.array(got, dtype=np.float64)  # None -> NaN
    keep = np.ones(n, dtype=bool)
    keep[[i for i, _ in errors]] = False
    index = np.flatnonzero(keep)
    if errors:
        take = pa.array(keep)
        strings = [s.filter(take) for s in strings]
        ts_ms = ts_ms[index]
        sensors = {s: col[index] for s, col in sensors.items()}
    return _decoded(index, strings, ts_ms, sensors), errors
