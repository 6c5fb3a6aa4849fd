"""Batch checks behind `features.contract.columns`: each marks the rows that are not the plain
common case as *suspect* (they go through `parse_reading` afterwards); none ever rejects alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import READING_SCHEMA, ReadingContract
from features.contract.fields import MAX_ID_LEN

# A valid reading that stands in for a suspect row while the columns are checked (its row is
# overwritten by `parse_reading`'s result, or dropped as an error, at the end).
TEMPLATE: Final[dict[str, Any]] = {
    "schema": READING_SCHEMA,
    "event_id": "00000000-0000-0000-0000-000000000000",
    "ts": "1970-01-01T00:00:00.000Z",
    "device_id": "-",
    "site": "",
    "machine_type": "",
    "values": {},
}


def template_values(contract: ReadingContract) -> dict[str, float]:
    """A stand-in `values` for a suspect row: every declared sensor at 0.0 (the row is decided
    by `parse_reading` later)."""
    return dict.fromkeys(contract.sensors, 0.0)


@dataclass(slots=True)
class RawColumns:
    """A batch's fields as columns, before the checks: strings without nulls (suspect rows may
    hold a filler), sensors as float64 with NaN for null or absent."""

    event_id: pa.StringArray
    ts: pa.StringArray
    device_id: pa.StringArray
    site: pa.StringArray
    machine_type: pa.StringArray
    sensors: dict[str, np.ndarray]
    suspect: np.ndarray


def string_array(col: list[Any]) -> pa.StringArray:
    out: pa.StringArray = pa.array(col, type=pa.string())
    return out


def _data(arr: pa.StringArray) -> np.ndarray:
    """The bytes of all the array's strings, back to back."""
    _, offsets, data = arr.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    start, end = int(bounds[0]), int(bounds[-1])
    if data is None or end == start:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)


def fixed_width(arr: pa.StringArray, width: int, filler: str, suspect: np.ndarray) -> np.ndarray:
    """The strings as an (n, width) array of their UTF-8 bytes; rows of another byte length are
    suspect and hold `filler` there."""
    wrong = pc.binary_length(arr).to_numpy(zero_copy_only=False) != width
    if wrong.any():
        suspect |= wrong
        arr = pc.if_else(pa.array(wrong), filler, arr)
    return _data(arr).reshape(len(arr), width)


# ── event ids ────────────────────────────────────────────────────────────────────────────────

_UUID_DASHES: Final = np.array([8, 13, 18, 23])
_UUID_HEX: Final = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_IS_HEX: Final = np.zeros(256, dtype=bool)
_IS_HEX[np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)] = True


def check_event_ids(arr: pa.StringArray, suspect: np.ndarray) -> None:
    """Rows whose event_id is not a UUID string (8-4-4-4-12 hex digits) are suspect."""
    chars = fixed_width(arr, 36, TEMPLATE["event_id"], suspect)
    ok = _IS_HEX[chars[:, _UUID_HEX]].all(axis=1) & (chars[:, _UUID_DASHES] == 45).all(axis=1)
    suspect |= ~ok


# ── ids ──────────────────────────────────────────────────────────────────────────────────────


def check_ids(arr: pa.StringArray, suspect: np.ndarray, *, required: bool) -> None:
    """Rows whose id is longer than MAX_ID_LEN characters, empty (if `required`) or not
    printable are suspect; printability is checked once per distinct value unless every byte is
    printable ASCII."""
    lengths = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
    suspect |= lengths > MAX_ID_LEN
    if required:
        suspect |= lengths == 0
    data = _data(arr)
    if ((data >= 0x20) & (data <= 0x7E)).all():
        return
    bad = [s for s in pc.unique(arr).to_pylist() if not s.isprintable()]
    if bad:
        suspect |= pc.is_in(arr, pa.array(bad, type=pa.string())).to_numpy(zero_copy_only=False)


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
    (its ts_ms is then meaningless); valid means what `features.contract.fields.parse_ts` means.
    """
    if len(chars) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    dg = chars[:, _TS_DIGITS].astype(np.int64) - 48
    ok = ((dg >= 0) & (dg <= 9)).all(axis=1)
    ok &= (chars[:, _TS_SEPS] == _TS_SEP_CHARS).all(axis=1)
    dg[~ok] = 0
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


def check_ts(arr: pa.StringArray, suspect: np.ndarray) -> np.ndarray:
    """Epoch milliseconds of canonical timestamps; rows of any other spelling are suspect."""
    ms, ok = iso_ts_to_ms(fixed_width(arr, 24, TEMPLATE["ts"], suspect))
    suspect |= ~ok
    return ms


# ── sensor values ────────────────────────────────────────────────────────────────────────────


def check_sensors(
    sensors: dict[str, np.ndarray], suspect: np.ndarray, contract: ReadingContract
) -> None:
    """Rows with a value outside its sensor's range (the contract's), infinite, or a negative
    zero (which may have been the integer -0, that is 0.0) are suspect; NaN means null here."""
    for name, arr in sensors.items():
        lo, hi = contract.ranges[name]
        with np.errstate(invalid="ignore"):
            suspect |= ~(np.isnan(arr) | ((arr >= lo) & (arr <= hi)))
        suspect |= (arr == 0) & np.signbit(arr)
