"""Columnar decoding of many sensor readings at once (the history replay's fast path).

`decode_readings` accepts exactly what `features.contract.parse_reading` accepts, record for
record, without building a `SensorReading` per record: each record is `orjson.loads`-ed, then
every field is pulled out as a column and checked over the whole batch (set of types, unique ids,
UUIDs by one regex over an Arrow array, timestamps digit by digit in numpy, sensor ranges as
numpy comparisons). A record that is not the plain common case — a missing optional field, an
unknown sensor, `extra`, another timestamp spelling, or anything wrong — is *suspect*, and
suspects go through `parse_reading` itself, which either returns the reading (its values fill the
row) or raises the very `ContractError` the record gets in `errors`. The fast path only ever
accepts records that `parse_reading` accepts, with the same values, so both agree by design (and
a property test holds them to it).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import READING_SCHEMA, SENSOR_RANGES, parse_reading
from features.contract_fields import MAX_ID_LEN, MAX_READING_BYTES, ContractError
from features.readings import SENSORS

__all__ = ["DecodedReadings", "decode_readings", "iso_ts_to_ms"]

_UUID_DASHES: Final = np.array([8, 13, 18, 23])
_UUID_HEX: Final = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_IS_HEX: Final = np.zeros(256, dtype=bool)
_IS_HEX[np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)] = True
_FIELDS: Final = ("schema", "event_id", "ts", "device_id", "site", "machine_type", "values")
_GETTERS: Final = tuple(itemgetter(k) for k in _FIELDS)
_SENSOR_GETTERS: Final = tuple(itemgetter(s) for s in SENSORS)
_NUMBER_TYPES: Final = frozenset({float, int, type(None)})
# A valid reading that stands in for a suspect row while the columns are checked (its row is
# overwritten by `parse_reading`'s result, or dropped as an error, at the end).
_TEMPLATE: Final[dict[str, Any]] = {
    "schema": READING_SCHEMA,
    "event_id": "00000000-0000-0000-0000-000000000000",
    "ts": "1970-01-01T00:00:00.000Z",
    "device_id": "-",
    "site": "",
    "machine_type": "",
    "values": dict.fromkeys(SENSORS, 0.0),
}


@dataclass(frozen=True, slots=True)
class DecodedReadings:
    """The valid readings of a batch as columns, in input order.

    `index[k]` is the position in the input of row `k`. Sensor columns hold NaN where the
    reading had null or did not report that sensor; other sensors than `SENSORS` are not kept.
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


# ── timestamps ───────────────────────────────────────────────────────────────────────────────

_TS_DIGITS: Final = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22])
_TS_SEPS: Final = np.array([4, 7, 10, 13, 16, 19, 23])
_TS_SEP_CHARS: Final = np.frombuffer(b"--T::.Z", dtype=np.uint8)
_MONTH_DAYS: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    out: np.ndarray = era * 146097 + doe - 719468
    return out


def iso_ts_to_ms(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical "YYYY-MM-DDTHH:MM:SS.mmmZ" timestamps, as an (n, 24) uint8 array, to epoch ms.

    Returns (ts_ms, ok): `ok` is False where a row is not a valid timestamp in that exact form
    (its ts_ms is then meaningless); valid means what `features.contract_fields.parse_ts` means.
    """
    n = len(chars)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    digits = chars[:, _TS_DIGITS].astype(np.int64) - 48
    ok = ((digits >= 0) & (digits <= 9)).all(axis=1)
    ok &= (chars[:, _TS_SEPS] == _TS_SEP_CHARS).all(axis=1)
    digits[~ok] = 0
    dg = digits
    year = dg[:, 0] * 1000 + dg[:, 1] * 100 + dg[:, 2] * 10 + dg[:, 3]
    month = dg[:, 4] * 10 + dg[:, 5]
    day = dg[:, 6] * 10 + dg[:, 7]
    hh = dg[:, 8] * 10 + dg[:, 9]
    mi = dg[:, 10] * 10 + dg[:, 11]
    ss = dg[:, 12] * 10 + dg[:, 13]
    ms = dg[:, 14] * 100 + dg[:, 15] * 10 + dg[:, 16]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    mdays = _MONTH_DAYS[np.where(month_ok, month, 0)] + (leap & (month == 2))
    ok &= month_ok & (day >= 1) & (day <= mdays)
    ok &= (year >= 1970) & (hh <= 23) & (mi <= 59) & (ss <= 59)
    days = _days_from_civil(year, month, day)
    ts: np.ndarray = ((days * 24 + hh) * 60 + mi) * 60_000 + ss * 1000 + ms
    return ts, ok


def _fixed_width(col: list[Any], width: int, filler: str, suspect: np.ndarray) -> np.ndarray:
    """A column of strings as an (n, width) uint8 array of their UTF-8 bytes; rows that are not
    strings of `width` bytes are suspect and hold `filler` meanwhile."""
    n = len(col)
    if set(map(type, col)) != {str}:
        for i, x in enumerate(col):
            if type(x) is not str:
                suspect[i] = True
                col[i] = filler
    arr = pa.array(col, type=pa.string())
    wrong = pc.binary_length(arr).to_numpy(zero_copy_only=False) != width
    if wrong.any():
        suspect |= wrong
        rows = [filler if w else x for x, w in zip(col, wrong.tolist(), strict=True)]
        arr = pa.array(rows, type=pa.string())
    _, offsets, data = arr.buffers()
    start = int(np.frombuffer(offsets, dtype=np.int32, count=1, offset=arr.offset * 4)[0])
    return np.frombuffer(data, dtype=np.uint8, count=n * width, offset=start).reshape(n, width)


def _ts_column(ts: list[Any], suspect: np.ndarray) -> np.ndarray:
    ms, ok = iso_ts_to_ms(_fixed_width(ts, 24, _TEMPLATE["ts"], suspect))
    suspect |= ~ok
    return ms


# ── ids ──────────────────────────────────────────────────────────────────────────────────────


def _id_ok(x: object, required: bool) -> bool:
    return type(x) is str and (0 if required else -1) < len(x) <= MAX_ID_LEN and x.isprintable()


def _check_ids(col: list[Any], suspect: np.ndarray, required: bool) -> None:
    """Mark rows whose id is not a printable string of at most MAX_ID_LEN characters (and not
    empty, if `required`); checked once per distinct value when the values are hashable."""
    try:
        distinct = set(col)
    except TypeError:  # an unhashable value (a list, an object): a bad row for sure
        distinct = None
    if distinct is not None and all(_id_ok(x, required) for x in distinct):
        return
    for i, x in enumerate(col):
        if not _id_ok(x, required):
            suspect[i] = True
            col[i] = _TEMPLATE["device_id"]


def _check_event_ids(col: list[Any], suspect: np.ndarray) -> None:
    """Mark rows whose event_id is not a UUID string (8-4-4-4-12 hex digits)."""
    chars = _fixed_width(col, 36, _TEMPLATE["event_id"], suspect)
    ok = _IS_HEX[chars[:, _UUID_HEX]].all(axis=1) & (chars[:, _UUID_DASHES] == 45).all(axis=1)
    suspect |= ~ok


# ── sensor values ────────────────────────────────────────────────────────────────────────────


def _sensor_columns(vals: list[Any], suspect: np.ndarray) -> dict[str, np.ndarray]:
    """The five standard sensors as float64 columns (null -> NaN); any row that is not exactly
    those five with numbers in range becomes suspect."""
    if set(map(type, vals)) != {dict} or set(map(len, vals)) != {5}:
        for i, v in enumerate(vals):
            if type(v) is not dict or len(v) != 5:
                suspect[i] = True
                vals[i] = _TEMPLATE["values"]
    out: dict[str, np.ndarray] = {}
    for name, get in zip(SENSORS, _SENSOR_GETTERS, strict=True):
        try:
            col = list(map(get, vals))
        except KeyError:  # a row with another sensor instead of this one
            col = []
            for i, v in enumerate(vals):
                x = v.get(name, 0.0)
                if name not in v:
                    suspect[i] = True
                col.append(x)
        if not set(map(type, col)) <= _NUMBER_TYPES:  # bool, str, list...: suspect
            for i, x in enumerate(col):
                if type(x) not in _NUMBER_TYPES:
                    suspect[i] = True
                    col[i] = None
        try:
            arr = np.array(col, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float64
            for i, x in enumerate(col):
                if type(x) is int and abs(x) > 1e300:
                    suspect[i] = True
                    col[i] = None
            arr = np.array(col, dtype=np.float64)
        lo, hi = SENSOR_RANGES[name]
        with np.errstate(invalid="ignore"):
            suspect |= ~(np.isnan(arr) | ((arr >= lo) & (arr <= hi)))
        out[name] = arr
    return out


# ── the batch ────────────────────────────────────────────────────────────────────────────────


def _load(values: Sequence[Any], suspect: np.ndarray) -> list[Any]:
    """One `orjson.loads` per record; a record that is not a JSON object within the size limit
    is suspect (its row holds the template meanwhile)."""
    loads = orjson.loads
    docs: list[Any] | None = None
    try:
        if max(map(len, values), default=0) <= MAX_READING_BYTES:
            docs = list(map(loads, values))
    except (TypeError, ValueError):  # not bytes, or bad JSON (orjson.JSONDecodeError)
        docs = None
    if docs is None:  # record by record
        docs = []
        for raw in values:
            try:
                docs.append(loads(raw) if len(raw) <= MAX_READING_BYTES else None)
            except (TypeError, ValueError):
                docs.append(None)
    if set(map(type, docs)) != {dict}:
        for i, d in enumerate(docs):
            if type(d) is not dict:
                suspect[i] = True
                docs[i] = _TEMPLATE
    return docs


def _columns(docs: list[dict[str, Any]], suspect: np.ndarray) -> list[list[Any]]:
    try:
        cols = [list(map(get, docs)) for get in _GETTERS]
    except KeyError:  # optional fields missing (default ""), or required ones (suspect)
        cols = [[d.get(k, "") for d in docs] for k in _FIELDS]
        for i, d in enumerate(docs):
            if not all(k in d for k in ("schema", "event_id", "ts", "device_id", "values")):
                suspect[i] = True
    if set(map(len, docs)) - {7}:  # other keys, perhaps `extra`: checked by parse_reading
        for i, d in enumerate(docs):
            if d.get("extra") is not None:
                suspect[i] = True
    schema = cols[0]
    if set(schema) != {READING_SCHEMA}:
        for i, s in enumerate(schema):
            if s != READING_SCHEMA:
                suspect[i] = True
    return cols


def _strings(col: list[Any]) -> pa.StringArray:
    out: pa.StringArray = pa.array(col, type=pa.string())
    return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A batch allocates two dicts per record, all acyclic and gone when the batch is: the cyclic
    # collector would only walk them (and the rest of the heap) again and again, which costs
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
) -> tuple[DecodedReadings, list[tuple[int, ContractError]]]:
    """Parse and validate a batch of `iot.sensor_reading/v1` records into columns.

    Returns the valid readings as columns and, for every invalid record, its position in
    `values` and the `ContractError` that `parse_reading` raises for it. A bad record never
    aborts the batch.
    """
    with _collector_paused():
        return _decode(values)


def _decode(values: Sequence[bytes]) -> tuple[DecodedReadings, list[tuple[int, ContractError]]]:
    n = len(values)
    if n == 0:
        empty = pa.array([], type=pa.string())
        no_rows = np.zeros(0, dtype=np.int64)
        no_values = {name: np.zeros(0, dtype=np.float64) for name in SENSORS}
        return DecodedReadings(no_rows, empty, empty, empty, empty, no_rows, no_values), []
    suspect = np.zeros(n, dtype=bool)
    docs = _load(values, suspect)
    _, event_id, ts, device_id, site, machine_type, vals = _columns(docs, suspect)
    del docs
    _check_event_ids(event_id, suspect)
    _check_ids(device_id, suspect, required=True)
    _check_ids(site, suspect, required=False)
    _check_ids(machine_type, suspect, required=False)
    ts_ms = _ts_column(ts, suspect)
    sensors = _sensor_columns(vals, suspect)

    errors: list[tuple[int, ContractError]] = []
    if not suspect.any():
        index = np.arange(n, dtype=np.int64)
        eid, dev, sit, mt = (_strings(c) for c in (event_id, device_id, site, machine_type))
        return DecodedReadings(index, eid, dev, sit, mt, ts_ms, sensors), errors

    keep = np.ones(n, dtype=bool)
    for i in np.flatnonzero(suspect).tolist():
        try:
            r = parse_reading(values[i])
        except ContractError as exc:
            errors.append((i, exc))
            keep[i] = False
            continue
        event_id[i], device_id[i], site[i], machine_type[i] = (
            r.event_id,
            r.device_id,
            r.site,
            r.machine_type,
        )
        ts_ms[i] = r.ts_ms
        for name in SENSORS:
            x = r.values.get(name)
            sensors[name][i] = np.nan if x is None else x
    index = np.flatnonzero(keep)
    kept = keep.tolist()

    def strings(col: list[Any]) -> pa.StringArray:
        return _strings(
            col if len(index) == n else [x for x, k in zip(col, kept, strict=True) if k]
        )

    return (
        DecodedReadings(
            index,
            strings(event_id),
            strings(device_id),
            strings(site),
            strings(machine_type),
            ts_ms[index],
            {name: col[index] for name, col in sensors.items()},
        ),
        errors,
    )
