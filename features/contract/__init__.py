"""The event contract: versioned JSON events, their parsing and validation.

Every event is a JSON object with an envelope — `schema` ("name/version"), `event_id` (UUID),
`ts` (event time, ISO-8601 UTC with milliseconds, "2026-11-28T01:02:03.456Z") — plus its body.
A sensor reading (`iot.sensor_reading/v1`) looks like::

    {"schema": "iot.sensor_reading/v1", "event_id": "…", "ts": "2026-11-28T01:02:03.456Z",
     "device_id": "pump-0001", "site": "plant-a", "machine_type": "pump",
     "values": {"temperature": 61.2, "vibration": 2.31, "pressure": 6.1, "current": 41.0,
                "rpm": 1480.0},
     "extra": {"firmware": "1.2"}}

`values` maps sensor names to numbers or null (a dropout). A dataset's `ReadingContract` (from
its spec: `features.spec.DatasetSpec.contract`) checks the sensors the spec declares against
their physical ranges; other sensors are allowed when their name is plain
(`[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}`) and their value finite with |x| <= 1e15, which is all the
module-level functions (`parse_reading`, `encode_reading`, ..., the `GENERIC` contract) check.
`site`, `machine_type` and `extra` may be missing.

Anything wrong — bytes that are not UTF-8, bad JSON, a missing field, a wrong type, NaN or
infinity, a value out of range, an oversize event or an unknown schema — raises `ContractError`
(a `ValueError`) with `.field` (where) and `.reason` (what), and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from features.contract.codec import codec_for
from features.contract.events import (
    Alert,
    AlertKind,
    Decision,
    DriftReport,
    FeatureDrift,
    Heartbeat,
    LifecycleAction,
    Maintenance,
    MaintenanceKind,
    ModelLifecycleEvent,
    ModelScore,
    ReasonCode,
    ScoredEvent,
    ShadowReport,
)
from features.contract.fields import (
    _UUID_RE,
    MAX_EVENT_BYTES,
    MAX_ID_LEN,
    MAX_READING_BYTES,
    NAME_RE,
    ContractError,
    _second_cache,
    check_ts_ms,
    check_uuid,
    format_ts,
    parse_ts,
)
from features.contract.readings import SensorReading

__all__ = [
    "EVENT_TYPES",
    "GENERIC",
    "MAX_EVENT_BYTES",
    "MAX_READING_BYTES",
    "SCHEMAS",
    "Alert",
    "AlertKind",
    "ContractError",
    "Decision",
    "DriftReport",
    "Event",
    "FeatureDrift",
    "Heartbeat",
    "LifecycleAction",
    "Maintenance",
    "MaintenanceKind",
    "ModelLifecycleEvent",
    "ModelScore",
    "ReadingContract",
    "ReasonCode",
    "ScoredEvent",
    "SensorReading",
    "ShadowReport",
    "encode",
    "encode_reading",
    "format_ts",
    "parse_event",
    "parse_reading",
    "parse_ts",
    "reading_to_doc",
    "validate_reading",
]

READING_SCHEMA: Final = "iot.sensor_reading/v1"

#: Schema name of every event type (the `schema` field on the wire).
SCHEMAS: Final[dict[type, str]] = {
    SensorReading: READING_SCHEMA,
    Maintenance: "iot.maintenance/v1",
    ScoredEvent: "iot.scored/v1",
    Alert: "iot.alert/v1",
    ModelLifecycleEvent: "mlops.model_lifecycle/v1",
    DriftReport: "mlops.drift_report/v1",
    ShadowReport: "mlops.shadow_report/v1",
    Heartbeat: "mlops.heartbeat/v1",
}
#: The dataclass behind every schema.
EVENT_TYPES: Final[dict[str, type]] = {v: k for k, v in SCHEMAS.items()}

Event = (
    SensorReading
    | Maintenance
    | ScoredEvent
    | Alert
    | ModelLifecycleEvent
    | DriftReport
    | ShadowReport
    | Heartbeat
)

_OTHER_RANGE: Final = (-1e15, 1e15)
MAX_SENSORS: Final = 64
MAX_EXTRA: Final = 32
MAX_EXTRA_VALUE_LEN: Final = 256


# ── sensor reading: the hot path ─────────────────────────────────────────────────────────────


def _load(raw: bytes | bytearray | memoryview | str, limit: int) -> Any:
    if not isinstance(raw, bytes | bytearray | memoryview | str):
        raise ContractError("$", f"expected bytes, got {type(raw).__name__}")
    if len(raw) > limit:
        raise ContractError("$", f"event of {len(raw)} bytes exceeds the limit of {limit}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("$", f"not valid UTF-8 JSON: {exc}") from None
    if type(doc) is not dict:
        raise ContractError("$", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _unknown_schema(schema: object, expected: str | None = None) -> ContractError:
    if type(schema) is not str:
        return ContractError("schema", f"expected a schema string like {READING_SCHEMA!r}")
    if expected is not None:
        return ContractError("schema", f"expected {expected!r}, got {schema[:80]!r}")
    return ContractError("schema", f"unknown schema or version {schema[:80]!r}")


def _id(d: dict[str, Any], key: str, required: bool) -> str:
    v = d.get(key)
    if type(v) is str and 0 < len(v) <= MAX_ID_LEN and v.isprintable():
        return v
    if v is None and not required and key not in d:
        return ""
    if type(v) is str and v == "" and not required:
        return v
    if v is None:
        raise ContractError(key, "required field is missing" if key not in d else "is null")
    if type(v) is not str:
        raise ContractError(key, f"expected a string, got {type(v).__name__}")
    if not v:
        raise ContractError(key, "must not be empty")
    if len(v) > MAX_ID_LEN:
        raise ContractError(key, f"longer than {MAX_ID_LEN} characters ({len(v)})")
    raise ContractError(key, "contains control characters")


def _extra(v: Any) -> dict[str, str]:
    if type(v) is not dict:
        raise ContractError("extra", f"expected an object of strings, got {type(v).__name__}")
    if len(v) > MAX_EXTRA:
        raise ContractError("extra", f"more than {MAX_EXTRA} entries ({len(v)})")
    for k, x in v.items():
        if NAME_RE.fullmatch(k) is None:
            raise ContractError(f"extra.{k[:64]}", "key must be 1-64 characters [A-Za-z0-9_.:-]")
        if type(x) is not str or len(x) > MAX_EXTRA_VALUE_LEN or not x.isprintable():
            raise ContractError(
                f"extra.{k}", f"expected a printable string of at most {MAX_EXTRA_VALUE_LEN} chars"
            )
    return v


_uuid_match = _UUID_RE.fullmatch
_second_get = _second_cache.get


def _values_fast_source(sensors: tuple[str, ...]) -> str:
    """Source of `fast(values)`: the dict itself when it holds exactly `sensors`, all floats
    within their ranges (one comparison chain, no loop: the common reading), else None."""
    lines = ["def fast(values):", f"    if len(values) != {len(sensors)}:", "        return None"]
    lines.append("    get = values.get")
    conds = []
    for i, s in enumerate(sensors):
        lines.append(f"    v{i} = get({s!r})")
        conds.append(f"type(v{i}) is float and LO{i} <= v{i} <= HI{i}")
    lines.append("    if " + " and ".join(conds) + ":")
    lines.append("        return values")
    lines.append("    return None")
    return "\n".join(lines)


class ReadingContract:
    """The sensor-reading contract of one dataset: its sensors' physical ranges (inclusive).

    Built from a dataset spec (`features.spec.DatasetSpec.contract`). A value of a declared
    sensor outside its range is refused; other sensors are accepted when their name is plain
    and their value finite with |x| <= 1e15. The check of the usual reading (exactly the
    declared sensors, all floats in range) is generated from the sensor names at construction,
    so it is as fast for any spec as a hand-unrolled one.
    """

    def __init__(self, ranges: dict[str, tuple[float, float]] | None = None) -> None:
        self.ranges: dict[str, tuple[float, float]] = {
            k: (float(lo), float(hi)) for k, (lo, hi) in (ranges or {}).items()
        }
        for name, (lo, hi) in self.ranges.items():
            if NAME_RE.fullmatch(name) is None:
                raise ValueError(f"sensor name {name!r} must be 1-64 characters [A-Za-z0-9_.:-]")
            if not -1e15 <= lo <= hi <= 1e15:
                raise ValueError(f"sensor {name}: range [{lo:g}, {hi:g}] is not ordered")
        self.sensors: tuple[str, ...] = tuple(self.ranges)
        self._range_get = self.ranges.get
        self._known: set[str] = set(self.ranges)
        self._fast: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
        if 0 < len(self.sensors) <= 32:
            env: dict[str, Any] = {}
            for i, s in enumerate(self.sensors):
                env[f"LO{i}"], env[f"HI{i}"] = self.ranges[s]
            exec(_values_fast_source(self.sensors), env)
            self._fast = env["fast"]

    def __repr__(self) -> str:
        return f"ReadingContract({self.ranges!r})"

    def _values(self, v: Any) -> dict[str, float | None]:
        if type(v) is not dict:
            raise ContractError(
                "values", "required field is missing" if v is None else "expected an object"
            )
        n = len(v)
        if n == 0 or n > MAX_SENSORS:
            raise ContractError("values", f"expected 1 to {MAX_SENSORS} sensors, got {n}")
        out: dict[str, float | None] = {}
        known = self._known
        for name, x in v.items():
            rng = self._range_get(name)
            if rng is None:
                if name not in known:
                    if NAME_RE.fullmatch(name) is None:
                        raise ContractError(
                            f"values.{name[:64]}",
                            "sensor name must be 1-64 characters [A-Za-z0-9_.:-]",
                        )
                    if len(known) < 10_000:
                        known.add(name)
                rng = _OTHER_RANGE
            t = type(x)
            if t is float:
                if not rng[0] <= x <= rng[1]:
                    raise ContractError(
                        f"values.{name}", f"{x!r} is not finite or outside [{rng[0]:g}, {rng[1]:g}]"
                    )
                out[name] = x
            elif x is None:
                out[name] = None
            elif t is int:
                if not rng[0] <= x <= rng[1]:
                    raise ContractError(
                        f"values.{name}", f"{x!r} is outside [{rng[0]:g}, {rng[1]:g}]"
                    )
                out[name] = float(x)
            else:
                raise ContractError(
                    f"values.{name}", f"expected a number or null, got {t.__name__}"
                )
        return out

    def reading_from_doc(self, d: dict[str, Any]) -> SensorReading:
        # The hot path: common cases are checked inline (each function call costs ~0.1 µs); any
        # doubt goes to the general checks, which also produce the error.
        event_id: Any = d.get("event_id")
        if type(event_id) is not str or len(event_id) != 36 or _uuid_match(event_id) is None:
            check_uuid(event_id, "event_id")
        device_id = d.get("device_id")
        if (
            type(device_id) is not str
            or not 0 < len(device_id) <= MAX_ID_LEN
            or not device_id.isprintable()
        ):
            device_id = _id(d, "device_id", True)
        site = d.get("site", "")
        if type(site) is not str or len(site) > MAX_ID_LEN or not site.isprintable():
            site = _id(d, "site", False)
        machine_type = d.get("machine_type", "")
        if (
            type(machine_type) is not str
            or len(machine_type) > MAX_ID_LEN
            or not machine_type.isprintable()
        ):
            machine_type = _id(d, "machine_type", False)
        ts = d.get("ts")
        ts_ms = -1
        if type(ts) is str and len(ts) == 24 and ts[23] == "Z" and ts[19] == ".":
            secs = _second_get(ts[:19])
            frac = ts[20:23]
            if secs is not None and frac.isascii() and frac.isdigit():
                ts_ms = secs + int(frac)
        if ts_ms < 0:
            if ts is None:
                raise ContractError("ts", "required field is missing")
            ts_ms = parse_ts(ts, "ts")
        values = d.get("values")
        out: dict[str, float | None] | None = None
        if type(values) is dict:
            # The usual reading: the declared sensors, all present, floats within range.
            # Checked without a loop, and orjson's dict is kept rather than copied.
            if self._fast is not None:
                out = self._fast(values)
            if out is None and 0 < len(values) <= MAX_SENSORS:
                out = {}
                range_get = self._range_get
                for name, x in values.items():
                    if type(x) is float:
                        rng = range_get(name)
                        if rng is not None and rng[0] <= x <= rng[1]:
                            out[name] = x
                            continue
                    out = None  # anything unusual: the general check decides
                    break
        if out is None:
            out = self._values(values)
        extra = d.get("extra")
        return SensorReading(
            event_id,
            device_id,
            ts_ms,
            out,
            site,
            machine_type,
            {} if extra is None else _extra(extra),
        )

    def parse_reading(self, raw: bytes | bytearray | memoryview | str) -> SensorReading:
        """Parse and validate one `iot.sensor_reading/v1` event."""
        d = _load(raw, MAX_READING_BYTES)
        schema = d.get("schema")
        if schema != READING_SCHEMA:
            raise _unknown_schema(schema, READING_SCHEMA)
        return self.reading_from_doc(d)

    def validate_reading(self, r: SensorReading) -> SensorReading:
        """Check a reading built in memory; return it normalised (ints→floats)."""
        if type(r) is not SensorReading:
            raise ContractError("$", f"expected a SensorReading, got {type(r).__name__}")
        return self.reading_from_doc(reading_to_doc(r))

    def encode_reading(self, r: SensorReading) -> bytes:
        """Validate a reading and encode it as `iot.sensor_reading/v1` JSON bytes."""
        doc = reading_to_doc(r)
        self.reading_from_doc(doc)
        return orjson.dumps(doc)

    def encode(self, event: Event) -> bytes:
        """Validate any contract event (readings against this contract) and encode it."""
        if type(event) is SensorReading:
            return self.encode_reading(event)
        return encode(event)

    def parse_event(self, raw: bytes) -> Event:
        """Parse and validate any contract event (readings against this contract)."""
        return _parse_event(raw, self)


#: The contract without declared sensors: any plain sensor name, finite |x| <= 1e15.
GENERIC: Final = ReadingContract({})


def _reading_from_doc(d: dict[str, Any]) -> SensorReading:
    return GENERIC.reading_from_doc(d)


def parse_reading(raw: bytes) -> SensorReading:
    """Parse and validate one `iot.sensor_reading/v1` event."""
    return GENERIC.parse_reading(raw)


def reading_to_doc(r: SensorReading) -> dict[str, Any]:
    """The JSON document of a reading (not validated)."""
    doc: dict[str, Any] = {
        "schema": READING_SCHEMA,
        "event_id": r.event_id,
        "ts": format_ts(check_ts_ms(r.ts_ms, "ts")),
        "device_id": r.device_id,
        "site": r.site,
        "machine_type": r.machine_type,
        "values": r.values,
    }
    if r.extra:
        doc["extra"] = r.extra
    return doc


def validate_reading(r: SensorReading) -> SensorReading:
    """Check a reading built in memory against the contract; return it normalised (ints→floats)."""
    return GENERIC.validate_reading(r)


def encode_reading(r: SensorReading) -> bytes:
    """Validate a reading and encode it as `iot.sensor_reading/v1` JSON bytes."""
    return GENERIC.encode_reading(r)


# ── every event ──────────────────────────────────────────────────────────────────────────────


def encode(event: Event) -> bytes:
    """Validate any contract event and encode it as JSON bytes with its envelope."""
    cls = type(event)
    if cls is SensorReading:
        return encode_reading(event)  # type: ignore[arg-type]
    schema = SCHEMAS.get(cls)
    if schema is None:
        raise ContractError("$", f"{cls.__name__} is not a contract event")
    codec = codec_for(cls)
    doc = {"schema": schema, **codec.encode(event)}
    codec.decode(doc)
    out = orjson.dumps(doc)
    if len(out) > MAX_EVENT_BYTES:
        raise ContractError(
            "$", f"event of {len(out)} bytes exceeds the limit of {MAX_EVENT_BYTES}"
        )
    return out


def parse_event(raw: bytes) -> Event:
    """Parse and validate any contract event, dispatching on its `schema`."""
    return _parse_event(raw, GENERIC)


def _parse_event(raw: bytes, contract: ReadingContract) -> Event:
    d = _load(raw, MAX_EVENT_BYTES)
    schema = d.get("schema")
    if schema == READING_SCHEMA:
        if len(raw) > MAX_READING_BYTES:
            raise ContractError(
                "$", f"reading of {len(raw)} bytes exceeds the limit of {MAX_READING_BYTES}"
            )
        return contract.reading_from_doc(d)
    cls = EVENT_TYPES.get(schema) if type(schema) is str else None
    if cls is None:
        raise _unknown_schema(schema)
    event: Event = codec_for(cls).decode(d)
    return event
