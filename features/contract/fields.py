"""Building blocks of the event contract: the one error type, timestamps, ids and field checks.

Everything here is hand-written (no pydantic) because it sits on the hot path of every reading.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Final

#: Largest event (bytes on the wire) the contract accepts for a sensor reading, and for others.
MAX_READING_BYTES: Final = 16 * 1024
MAX_EVENT_BYTES: Final = 1024 * 1024
#: Longest id-like string (device id, site, model name, version...).
MAX_ID_LEN: Final = 128
#: Longest free-text string (reason texts, fault descriptions).
MAX_TEXT_LEN: Final = 1024
#: Most items of any list or map inside an event.
MAX_ITEMS: Final = 256


class ContractError(ValueError):
    """An event does not follow the contract. `field` says where (a JSON path, `$` for the whole
    event), `reason` what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason))


# ── timestamps ───────────────────────────────────────────────────────────────────────────────

_TS_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|\+00:00)", re.ASCII
)
_MAX_TS_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z
_day_cache: dict[str, int] = {}
_date_cache: dict[int, str] = {}
_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()


def _days(date_part: str, field: str) -> int:
    days = _day_cache.get(date_part)
    if days is None:
        try:
            d = _dt.date.fromisoformat(date_part)
        except ValueError:
            raise ContractError(field, f"invalid calendar date {date_part!r}") from None
        days = d.toordinal() - _EPOCH_ORDINAL
        if len(_day_cache) > 100_000:
            _day_cache.clear()
        _day_cache[date_part] = days
    return days


_second_cache: dict[str, int] = {}


def parse_ts(value: object, field: str = "ts") -> int:
    """ISO-8601 UTC ("2026-11-28T01:02:03.456Z") to epoch milliseconds."""
    # Fast path: the canonical form, whose whole seconds were seen before (events come in bursts
    # of nearby times, so a small cache of validated "YYYY-MM-DDTHH:MM:SS" prefixes hits often).
    if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
        secs = _second_cache.get(value[:19])
        frac = value[20:23]
        if secs is not None and frac.isascii() and frac.isdigit():
            return secs + int(frac)
        ms = _parse_ts_slow(value, field)
        if len(_second_cache) > 200_000:
            _second_cache.clear()
        _second_cache[value[:19]] = ms - ms % 1000
        return ms
    return _parse_ts_slow(value, field)


def _parse_ts_slow(value: object, field: str) -> int:
    if type(value) is not str:
        raise ContractError(
            field, f"expected an ISO-8601 UTC timestamp string, got {_tname(value)}"
        )
    m = _TS_RE.fullmatch(value)
    if m is None:
        raise ContractError(
            field, f"expected ISO-8601 UTC like 2026-11-28T01:02:03.456Z, got {value[:40]!r}"
        )
    hh, mi, ss, frac = int(m[4]), int(m[5]), int(m[6]), m[7]
    if hh > 23 or mi > 59 or ss > 59:
        raise ContractError(field, f"invalid time of day in {value!r}")
    if m[1] < "1970":
        raise ContractError(field, f"timestamp before 1970 in {value!r}")
    ms = int((frac + "00")[:3]) if frac else 0
    days = _days(value[:10], field)
    return ((days * 24 + hh) * 60 + mi) * 60_000 + ss * 1000 + ms


def format_ts(ts_ms: int) -> str:
    """Epoch milliseconds to ISO-8601 UTC with milliseconds and a Z."""
    secs, ms = divmod(ts_ms, 1000)
    days, rem = divmod(secs, 86400)
    date = _date_cache.get(days)
    if date is None:
        date = _dt.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
        if len(_date_cache) > 100_000:
            _date_cache.clear()
        _date_cache[days] = date
    hh, rem = divmod(rem, 3600)
    mi, ss = divmod(rem, 60)
    return f"{date}T{hh:02d}:{mi:02d}:{ss:02d}.{ms:03d}Z"


def check_ts_ms(value: object, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_TS_MS:
        raise ContractError(field, f"expected epoch milliseconds in 1970..9999, got {value!r}")
    return value


# ── ids and strings ──────────────────────────────────────────────────────────────────────────

_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: Names of sensors beyond the standard five (and of metrics, features): short and plain.
NAME_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}", re.ASCII)


def _tname(value: object) -> str:
    return "null" if value is None else type(value).__name__


def check_uuid(value: object, field: str) -> str:
    if type(value) is not str or len(value) != 36 or _UUID_RE.fullmatch(value) is None:
        raise ContractError(field, f"expected a UUID string, got {_short(value)}")
    return value


def check_id(value: object, field: str, *, allow_empty: bool = False) -> str:
    """A printable identifier of at most MAX_ID_LEN characters."""
    if type(value) is not str:
        raise ContractError(field, f"expected a string, got {_tname(value)}")
    n = len(value)
    if n > MAX_ID_LEN:
        raise ContractError(field, f"longer than {MAX_ID_LEN} characters ({n})")
    if n == 0 and not allow_empty:
        raise ContractError(field, "must not be empty")
    if not value.isprintable():
        raise ContractError(field, "contains control characters")
    return value


def check_text(value: object, field: str, max_len: int = MAX_TEXT_LEN) -> str:
    if type(value) is not str:
        raise ContractError(field, f"expected a string, got {_tname(value)}")
    if len(value) > max_len:
        raise ContractError(field, f"longer than {max_len} characters ({len(value)})")
    return value


def check_name(value: object, field: str) -> str:
    if type(value) is not str or NAME_RE.fullmatch(value) is None:
        raise ContractError(
            field, f"expected a name of 1-64 characters [A-Za-z0-9_.:-], got {_short(value)}"
        )
    return value


def check_float(
    value: object, field: str, lo: float = -1e15, hi: float = 1e15, *, nullable: bool = False
) -> float | None:
    """A finite JSON number within [lo, hi] (ints are accepted and become floats)."""
    t = type(value)
    if t is float:
        if lo <= value <= hi:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        raise ContractError(field, f"{value!r} is not finite or outside [{lo:g}, {hi:g}]")
    if t is int:
        if lo <= value <= hi:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
        raise ContractError(field, f"{value!r} is outside [{lo:g}, {hi:g}]")
    if value is None and nullable:
        return None
    raise ContractError(field, f"expected a number, got {_tname(value)}")


def check_int(value: object, field: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ContractError(field, f"expected an integer in [{lo}, {hi}], got {_short(value)}")
    return value


def check_bool(value: object, field: str) -> bool:
    if type(value) is not bool:
        raise ContractError(field, f"expected true or false, got {_tname(value)}")
    return value


def check_list(value: object, field: str) -> list[Any]:
    if type(value) is not list:
        raise ContractError(field, f"expected a list, got {_tname(value)}")
    if len(value) > MAX_ITEMS:
        raise ContractError(field, f"more than {MAX_ITEMS} items ({len(value)})")
    return value


def check_map(value: object, field: str, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    if type(value) is not dict:
        raise ContractError(field, f"expected an object, got {_tname(value)}")
    if len(value) > max_items:
        raise ContractError(field, f"more than {max_items} entries ({len(value)})")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
