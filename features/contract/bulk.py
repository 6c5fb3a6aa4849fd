"""Columnar encoding of many sensor readings at once (the simulator's and backfill's fast path).

Encoding one reading at a time costs a few microseconds of Python; here a whole step of the
simulator (one reading per device) is formatted by Arrow's compute kernels in C, giving the same
JSON that `features.contract.encode_reading` would (numbers may be spelled differently, e.g. `70`
for `70.0`, which parses to the same value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import READING_SCHEMA, ReadingContract
from features.contract.fields import ContractError, check_id, format_ts

_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36 characters of a UUID string.
_HEX_POS: Final = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def uuid4_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """`n` random version-4 UUID strings drawn from `rng` (so deterministic for a seed)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, _HEX_POS] = digits
    return pa.array(out.view("S36").ravel()).cast(pa.string())


def iso_timestamps(ts_ms: np.ndarray) -> pa.Array:
    """Epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" strings, digit by digit in numpy
    (several times faster than Arrow's strftime; dates come from `format_ts`, once per day)."""
    n = len(ts_ms)
    days, in_day = np.divmod(ts_ms, 86_400_000)
    uniq, inv = np.unique(days, return_inverse=True)
    dates = np.array([format_ts(int(d) * 86_400_000)[:10] for d in uniq], dtype="S10")
    out = np.empty((n, 24), dtype=np.uint8)
    out[:, :10] = dates.view(np.uint8).reshape(-1, 10)[inv.ravel()]
    zero = ord("0")
    for col, value in (
        (11, in_day // 36_000_000),
        (12, in_day // 3_600_000 % 10),
        (14, in_day // 600_000 % 6),
        (15, in_day // 60_000 % 10),
        (17, in_day // 10_000 % 6),
        (18, in_day // 1000 % 10),
        (20, in_day // 100 % 10),
        (21, in_day // 10 % 10),
        (22, in_day % 10),
    ):
        out[:, col] = zero + value
    for col, char in ((10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")):
        out[:, col] = ord(char)
    return pa.array(out.view("S24").ravel()).cast(pa.string())


def reading_prefixes(
    device_ids: Sequence[str], sites: Sequence[str], machine_types: Sequence[str]
) -> pa.Array:
    """Per device, the constant middle of its readings' JSON (validated once, here)."""
    out = []
    for dev, site, mt in zip(device_ids, sites, machine_types, strict=True):
        check_id(dev, "device_id")
        check_id(site, "site", allow_empty=True)
        check_id(mt, "machine_type", allow_empty=True)
        body = orjson.dumps({"device_id": dev, "site": site, "machine_type": mt}).decode()
        out.append(f'",{body[1:-1]},"values":{{')
    return pa.array(out, type=pa.string())


def encode_readings_bulk(
    event_ids: pa.Array,
    ts_ms: np.ndarray,
    prefixes: pa.Array,
    values: np.ndarray,
    contract: ReadingContract,
) -> list[str]:
    """JSON of `len(ts_ms)` readings: `values` is (n, len(contract.sensors)) float, columns in
    the contract's sensor order, NaN meaning a dropout.

    Values must be finite (or NaN) and inside the contract's ranges; the check is vectorised.
    """
    n = len(ts_ms)
    sensors = contract.sensors
    if values.shape != (n, len(sensors)) or len(event_ids) != n or len(prefixes) != n:
        raise ValueError("event_ids, ts_ms, prefixes and values must describe the same readings")
    for j, name in enumerate(sensors):
        lo, hi = contract.ranges[name]
        col = values[:, j]
        bad = ~(np.isnan(col) | ((col >= lo) & (col <= hi)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ContractError(f"values.{name}", f"{col[i]!r} outside [{lo:g}, {hi:g}] (row {i})")
    if n and (ts_ms.min() < 0 or ts_ms.max() > 253402300799999):
        raise ContractError("ts", "timestamps must lie in 1970..9999")
    ts = iso_timestamps(ts_ms.astype(np.int64))
    parts: list[pa.Array | str] = [f'{{"schema":"{READING_SCHEMA}","event_id":"', event_ids]
    parts += ['","ts":"', ts, prefixes]
    for j, name in enumerate(sensors):
        col = pc.cast(pa.array(values[:, j], from_pandas=True), pa.string())
        parts += [f'{"," if j else ""}"{name}":', pc.fill_null(col, "null")]
    parts.append("}}")
    joined = pc.binary_join_element_wise(*parts, "")
    out: list[str] = joined.to_pylist()
    return out
