"""Any CSV of sensor data as contract readings (the pure part of `edaml replay`; no Kafka here).

The layout is detected from the header and the first rows: the delimiter (`,;\\t|`), the
timestamp column (named, or the first column whose values parse as date-times), the device id
(a column, or the file name), label columns (ground truth, kept out of `values`), numeric columns
(sensor values; names are normalised and may go beyond the five standard sensors) and text
columns (`extra`). With a dataset spec (`layout_for_spec`), the spec decides: its time and
entity columns, its label columns (optional per file), its sensors (other columns are left out).
Each data row becomes a `RowOk` or, when it cannot be turned into a valid reading, a `RowError`
carrying the row's original bytes, its line number, the stage and the error.

Many files are distinct entities: the entity of a file without an entity column is its path
relative to the files' common root (`entity_names`: `runs/a/0.csv` and `runs/b/0.csv` become
`a/0` and `b/0`; one file, or files side by side, keep their stem), and event ids are UUIDv5 of
that relative path and the line, so they are unique per file and row and stable across replays.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from features.contract import GENERIC, ContractError, ReadingContract, SensorReading

if TYPE_CHECKING:
    from features.spec import DatasetSpec

TIMESTAMP_NAMES: Final = ("timestamp", "ts", "time", "datetime", "date", "event_time", "time_stamp")
DEVICE_NAMES: Final = ("device_id", "device", "deviceid", "machine_id", "asset_id", "unit_id")
LABEL_NAMES: Final = (
    "label",
    "labels",
    "anomaly",
    "anomalies",
    "is_anomaly",
    "anomaly_label",
    "changepoint",
    "change_point",
    "failure",
    "fault",
    "is_fault",
    "attack",
    "outlier",
    "target",
    "machine_status",
)
#: Cells read as a missing value (a dropout, null in the reading).
MISSING: Final = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "NA", "N/A", "None", "-"})
#: Label values meaning "nothing to report".
NORMAL_LABELS: Final = frozenset({"", "0", "0.0", "false", "False", "normal", "NORMAL", "no", "ok"})
_T = TypeVar("_T")
_NAMESPACE: Final = uuid.UUID("6f1c1a52-5d3e-4d7e-9a57-1f0e1f6c2b11")
_FORMATS: Final = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")


@dataclass(frozen=True, slots=True)
class CsvLayout:
    delimiter: str
    columns: tuple[str, ...]
    timestamp_column: str
    device_id_column: str | None
    sensors: dict[str, str]  # column → sensor name in `values`
    text_columns: tuple[str, ...]  # → `extra`
    label_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RowOk:
    line: int
    reading: SensorReading
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    raw: bytes
    stage: str  # "parse" (the row's cells) or "validate" (the reading against the contract)
    error: Exception
    device_id: str
    ts_ms: int  # the row's time if known, else the last good time of the file (for ordering)


# ── cells ────────────────────────────────────────────────────────────────────────────────────


def parse_timestamp(text: str) -> int:
    """A date-time cell to epoch milliseconds (naive times are UTC; numbers are epoch s or ms)."""
    s = text.strip()
    if not s:
        raise ValueError("empty timestamp")
    try:
        x = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"not a timestamp: {s!r}")
        return round(x if x > 1e11 else x * 1000)
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        for fmt in _FORMATS:
            try:
                t = dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"not a timestamp: {s[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    ms = round(t.timestamp() * 1000)
    if ms < 0:
        raise ValueError(f"timestamp before 1970: {s!r}")
    return ms


def parse_number(text: str) -> float | None:
    """A numeric cell: a finite float, or None for a missing value."""
    s = text.strip()
    if s in MISSING:
        return None
    x = float(s)  # ValueError for text
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {s!r}")
    return x


def sensor_name(column: str, index: int) -> str:
    """A column name as a contract sensor name: `[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}`."""
    name = re.sub(r"[^a-z0-9_.:\-]+", "_", column.strip().lower()).strip("_.:-")[:64]
    return name or f"column_{index}"


# ── layout ───────────────────────────────────────────────────────────────────────────────────


def _sample(path: Path, n: int) -> tuple[str, list[str], list[list[str]]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        head = f.read(64 * 1024)
    try:
        delimiter = csv.Sniffer().sniff(head.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(head.splitlines()[: n + 1], delimiter=delimiter))
    if not rows or not any(c.strip() for c in rows[0]):
        raise ValueError(f"{path}: no header row")
    return delimiter, [c.strip() for c in rows[0]], rows[1:]


def _find(
    columns: Sequence[str], wanted: str | None, names: Sequence[str], what: str
) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{what} column {wanted!r} not in {list(columns)}")
        return wanted
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _share(values: list[str], ok: type[float] | None = None) -> float:
    cells = [v for v in values if v.strip() not in MISSING]
    if not cells:
        return 0.0
    good = 0
    for v in cells:
        try:
            parse_number(v) if ok is float else parse_timestamp(v)
            good += 1
        except ValueError:
            pass
    return good / len(cells)


def detect_layout(
    path: Path,
    *,
    timestamp_column: str | None = None,
    device_id_column: str | None = None,
    label_columns: Sequence[str] = (),
    sample_rows: int = 200,
) -> CsvLayout:
    delimiter, columns, rows = _sample(path, sample_rows)
    if len(set(columns)) != len(columns):
        raise ValueError(f"{path}: duplicate column names in {columns}")

    def col(i: int) -> list[str]:
        return [r[i] for r in rows if len(r) == len(columns)]

    ts_col = _find(columns, timestamp_column, TIMESTAMP_NAMES, "timestamp")
    if ts_col is None:
        ts_col = next(
            (
                c
                for i, c in enumerate(columns)
                if _share(col(i), float) < 0.5 and _share(col(i)) > 0.9
            ),
            None,
        )
    if ts_col is None:
        raise ValueError(f"{path}: no timestamp column found; name one with --timestamp-column")
    dev_col = _find(columns, device_id_column, DEVICE_NAMES, "device id")
    for c in label_columns:
        if c not in columns:
            raise ValueError(f"label column {c!r} not in {columns}")
    labels = tuple(label_columns) or tuple(c for c in columns if c.lower() in LABEL_NAMES)
    sensors: dict[str, str] = {}
    text: list[str] = []
    for i, c in enumerate(columns):
        if c in (ts_col, dev_col) or c in labels:
            continue
        if _share(col(i), float) > 0.5:  # most cells numbers: a sensor (bad cells → DLQ)
            sensors[c] = sensor_name(c, i)
        else:
            text.append(c)
    if len(set(sensors.values())) != len(sensors):
        raise ValueError(f"{path}: columns {list(sensors)} collide as sensor names")
    if not sensors:
        raise ValueError(f"{path}: no numeric sensor column found")
    return CsvLayout(delimiter, tuple(columns), ts_col, dev_col, sensors, tuple(text), labels)


# ── rows ─────────────────────────────────────────────────────────────────────────────────────


def layout_for_spec(path: Path, spec: DatasetSpec) -> CsvLayout:
    """The layout of `path` as a dataset spec declares it: the spec's time and entity columns,
    its label columns where the file has them (a file without one is labelled as the spec's
    label source says, never an error), and the columns whose normalised names are the spec's
    sensors (other columns are left out of the readings)."""
    delimiter, columns, _rows = _sample(path, 1)
    present = set(columns)
    ts_col = spec.event_time.column
    if ts_col is not None and ts_col not in present:
        raise ValueError(f"{path}: no time column {ts_col!r} (spec event_time.column)")
    if ts_col is None:
        ts_col = detect_layout(path).timestamp_column
    dev_col = spec.entity.column
    if dev_col is not None and dev_col not in present:
        raise ValueError(f"{path}: no entity column {dev_col!r} (spec entity.column)")
    labels = tuple(c for c in spec.label_columns if c in present)
    sensors = {
        c: sensor_name(c, i)
        for i, c in enumerate(columns)
        if c not in (ts_col, dev_col) and c not in labels and sensor_name(c, i) in spec.sensors
    }
    if not sensors:
        raise ValueError(
            f"{path}: none of the spec's sensors ({', '.join(spec.sensor_names)}) is a column "
            f"of {columns}"
        )
    return CsvLayout(delimiter, tuple(columns), ts_col, dev_col, sensors, (), labels)


def relative_paths(paths: Sequence[Path], roots: Sequence[Path] = ()) -> dict[Path, str]:
    """Each file's path relative to the common root of `roots` (when every file lies under it;
    e.g. the files a spec was made from) or else of `paths`. One file, or files side by side,
    keep their name."""
    resolved = [p.resolve() for p in paths]
    root = _common_root([r.resolve() for r in roots]) if roots else None
    if root is None or not all(r.is_relative_to(root) for r in resolved):
        root = _common_root(resolved)
    out = {}
    for p, r in zip(paths, resolved, strict=True):
        out[p] = (r.relative_to(root) if root is not None else Path(r.name)).as_posix()
    return out


def entity_of(relative_path: str) -> str:
    """A file's entity name: its relative path without the suffix (`a/0.csv` -> `a/0`)."""
    return Path(relative_path).with_suffix("").as_posix()


def _common_root(paths: Sequence[Path]) -> Path | None:
    if not paths:
        return None
    return Path(os.path.commonpath([p.parent for p in paths]))


def read_rows(
    path: Path,
    layout: CsvLayout,
    *,
    device_id: str | None = None,
    contract: ReadingContract = GENERIC,
    id_key: str | None = None,
) -> Iterator[RowOk | RowError]:
    """Every data row of `path` as a reading or an error, in file order (blank lines skipped).

    `device_id`: the entity of a file without an entity column (default: the file's stem).
    `contract`: the dataset's reading contract (default: any sensors, no ranges). Event ids are
    UUIDv5 of `id_key` (default: the file name; `replay_csv` uses the path relative to the
    files' common root) and the line, so replaying a file twice gives the same ids and two
    files never share one.
    """
    device = device_id or path.stem
    key = id_key if id_key is not None else path.name
    validate_reading = contract.validate_reading
    index = {c: i for i, c in enumerate(layout.columns)}
    ts_i = index[layout.timestamp_column]
    dev_i = index[layout.device_id_column] if layout.device_id_column else None
    sensors = [(index[c], c, name) for c, name in layout.sensors.items()]
    texts = [(index[c], c) for c in layout.text_columns]
    labels = [(index[c], c) for c in layout.label_columns]
    width = len(layout.columns)
    buf: list[str] = []
    last_ts = 0

    def lines() -> Iterator[str]:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            for line in f:
                buf.append(line)
                yield line

    reader = csv.reader(lines(), delimiter=layout.delimiter)
    next(reader, None)  # header
    buf.clear()
    for cells in reader:
        raw = "".join(buf)
        buf.clear()
        line = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        dev = device
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            yield RowError(
                line,
                _bytes(raw),
                "parse",
                ContractError("$", "row is not valid UTF-8"),
                dev,
                last_ts,
            )
            continue
        try:
            if len(cells) != width:
                raise ContractError("$", f"expected {width} fields, got {len(cells)}")
            if dev_i is not None:
                dev = cells[dev_i].strip() or device
            ts_ms = _cell(parse_timestamp, cells[ts_i], layout.timestamp_column)
            values = {name: _cell(parse_number, cells[i], c) for i, c, name in sensors}
            extra = {sensor_name(c, i): cells[i].strip() for i, c in texts if cells[i].strip()}
        except ContractError as exc:
            yield RowError(line, _bytes(raw), "parse", exc, dev, last_ts)
            continue
        event_id = str(uuid.uuid5(_NAMESPACE, f"{key}:{line}"))
        try:
            reading = validate_reading(SensorReading(event_id, dev, ts_ms, values, extra=extra))
        except ContractError as exc:
            yield RowError(line, _bytes(raw), "validate", exc, dev, ts_ms)
            continue
        last_ts = ts_ms
        yield RowOk(line, reading, {c: cells[i].strip() for i, c in labels})


def _cell(parse: Callable[[str], _T], text: str, column: str) -> _T:
    try:
        return parse(text)
    except ValueError as exc:
        raise ContractError(column, str(exc)) from None


def _bytes(raw: str) -> bytes:
    return raw.encode("utf-8", "surrogateescape")


# ── ground truth ─────────────────────────────────────────────────────────────────────────────


def find_windows_file(csv_path: Path) -> Path | None:
    """NAB's layout: `<root>/data/<group>/<file>.csv` with `<root>/labels/combined_windows.json`."""
    for parent in csv_path.resolve().parents:
        candidate = parent / "labels" / "combined_windows.json"
        if candidate.is_file():
            return candidate
    return None


def anomaly_windows(windows: dict[str, list[list[str]]], csv_path: Path) -> list[tuple[int, int]]:
    """The labelled windows of one file from a NAB-style `{"group/file.csv": [[start, end]]}`."""
    parts = csv_path.resolve().parts
    for key, spans in windows.items():
        kparts = tuple(Path(key).parts)
        if parts[-len(kparts) :] == kparts:
            return [(parse_timestamp(a), parse_timestamp(b)) for a, b in spans]
    return []


@dataclass
class LabelRuns:
    """Label columns as intervals: consecutive rows of one device with the same non-normal value
    of a label column make one (device_id, "column:value", start_ms, end_ms) run."""

    runs: list[tuple[str, str, int, int]] = field(default_factory=list)
    _open: dict[tuple[str, str], tuple[str, int, int]] = field(default_factory=dict)

    def add(self, device_id: str, ts_ms: int, labels: dict[str, str]) -> None:
        for column, value in labels.items():
            key = (device_id, column)
            cur = self._open.get(key)
            if cur is not None and cur[0] == value:
                self._open[key] = (value, cur[1], ts_ms)
                continue
            if cur is not None:
                self.runs.append((device_id, f"{column}:{cur[0]}", cur[1], cur[2]))
                del self._open[key]
            if value not in NORMAL_LABELS:
                self._open[key] = (value, ts_ms, ts_ms)

    def close(self) -> list[tuple[str, str, int, int]]:
        for (device_id, column), (value, start, end) in self._open.items():
            self.runs.append((device_id, f"{column}:{value}", start, end))
        self._open.clear()
        return self.runs
