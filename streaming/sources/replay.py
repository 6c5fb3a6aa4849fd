"""`replay_csv`: CSV files of sensor data into Kafka, one reading per row.

Rows of several files are merged by event time. With `speed`, the original spacing between
events is kept, divided by `speed`; without it, rows go out as fast as possible. A row that
cannot become a valid reading goes to the DLQ topic with its original bytes and the reason in
`edaml.error.*` headers (file, row, stage, field, reason, exception class and message), and is
counted: nothing is dropped silently. Ground truth (label columns, NAB anomaly windows) can be
written to a labels file in the simulator's format.

With a dataset spec (`spec=`), the spec decides the layout of every file (`layout_for_spec`),
the contract rows are validated against, and the NAB-style windows file. Files are distinct
entities (path relative to the common root of the spec's `files`, or of the files given) with
event ids unique per file and row. A file without the spec's label column is not an error: its
rows are normal or unlabelled as the label source's `missing` says (counted per file).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.contract import GENERIC, ReadingContract
from features.contract.topics import Topics
from streaming.kafka import error_headers
from streaming.sources.producers import EventSink, Progress
from streaming.sources.replay_csv import (
    LabelRuns,
    RowError,
    RowOk,
    anomaly_windows,
    detect_layout,
    entity_of,
    find_windows_file,
    layout_for_spec,
    read_rows,
    relative_paths,
)
from streaming.sources.sim.engine import FaultLabel
from streaming.sources.sim.labels import write_labels

if TYPE_CHECKING:
    from features.spec import DatasetSpec

log = logging.getLogger(__name__)


@dataclass
class FileStats:
    rows: int = 0
    produced: int = 0
    dlq: int = 0
    entity: str = ""
    #: The file lacks the spec's label column: its rows count as "normal" or "unlabelled".
    labels_missing: str = ""


@dataclass
class ReplayStats:
    rows: int = 0
    produced: int = 0
    dlq: int = 0
    labels: int = 0
    elapsed_s: float = 0.0
    files: dict[str, FileStats] = field(default_factory=dict)


def row_error_headers(path: Path, err: RowError) -> list[tuple[str, bytes]]:
    """The DLQ headers of a row that failed: its file and row, then the scorer's schema."""
    return error_headers(f"replay.{err.stage}", err.error, {"file": path, "row": err.line})


def _tagged(
    path: Path, rows: Iterator[RowOk | RowError]
) -> Iterator[tuple[int, Path, RowOk | RowError]]:
    for row in rows:
        yield (row.reading.ts_ms if isinstance(row, RowOk) else row.ts_ms), path, row


def replay_csv(
    bootstrap: str,
    topics: Topics,
    paths: Sequence[Path],
    *,
    spec: DatasetSpec | None = None,
    contract: ReadingContract | None = None,
    speed: float | None = None,
    device_id_column: str | None = None,
    timestamp_column: str | None = None,
    label_columns: Sequence[str] = (),
    device_ids: Mapping[Path, str] | None = None,
    windows_path: Path | None = None,
    labels_path: Path | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    producer_overrides: Mapping[str, Any] | None = None,
) -> ReplayStats:
    """Replay CSV files as readings; return counts per file. `speed=None` means as fast as
    possible. `windows_path` is a NAB-style labels JSON (the spec's, else found next to NAB
    data). `spec`: the dataset (layout, contract, labels); without it the layout is detected and
    rows are checked against `contract` (default: the generic one, no sensor ranges)."""
    if speed is not None and speed <= 0:
        raise ValueError("speed must be > 0")
    paths = [Path(p) for p in paths]
    stop = stop or threading.Event()
    stats = ReplayStats(files={str(p): FileStats() for p in paths})
    streams = []
    truth: list[FaultLabel] = []
    if contract is None:
        contract = spec.contract if spec is not None else GENERIC
    roots = [spec.resolve(f) for f in spec.files] if spec is not None else []
    rel = relative_paths(paths, roots)
    if windows_path is None and spec is not None:
        windows_path = spec.windows_file
    for p in paths:
        if spec is not None:
            layout = layout_for_spec(p, spec)
        else:
            layout = detect_layout(
                p,
                timestamp_column=timestamp_column,
                device_id_column=device_id_column,
                label_columns=label_columns,
            )
        device = (device_ids or {}).get(p) or entity_of(rel[p])
        fstats = stats.files[str(p)]
        fstats.entity = device
        if spec is not None and spec.label_columns and not layout.label_columns:
            fstats.labels_missing = spec.missing_labels
            log.info("replay %s: no label column, its rows are %s", p, spec.missing_labels)
        log.info("replay %s as %s: %s", p, device, layout)
        rows = read_rows(p, layout, device_id=device, contract=contract, id_key=rel[p])
        streams.append(_tagged(p, rows))
        wfile = windows_path or find_windows_file(p)
        if wfile is not None and layout.device_id_column is None:
            spans = anomaly_windows(json.loads(wfile.read_text()), p)
            truth += [FaultLabel(device, "anomaly_window", a, b, False) for a, b in spans]
    runs = LabelRuns()
    sink = EventSink(bootstrap, **dict(producer_overrides or {}))
    t0 = time.monotonic()
    first_ts: int | None = None
    try:
        for ts, path, row in heapq.merge(*streams, key=lambda x: x[0]):
            if stop.is_set():
                break
            fstats = stats.files[str(path)]
            fstats.rows += 1
            stats.rows += 1
            if isinstance(row, RowError):
                sink.produce(
                    topics.dlq,
                    row.raw,
                    row.device_id.encode(),
                    headers=row_error_headers(path, row),
                )
                fstats.dlq += 1
                stats.dlq += 1
                continue
            if speed is not None:
                first_ts = ts if first_ts is None else first_ts
                wait = t0 + (ts - first_ts) / 1000 / speed - time.monotonic()
                if wait > 0:
                    stop.wait(wait)  # pacing to the original spacing, scaled
            r = row.reading
            sink.produce(
                topics.sensor_readings,
                contract.encode_reading(r),
                r.device_id.encode(),
                timestamp=min(ts, int(time.time() * 1000)),  # Kafka refuses the future
            )
            runs.add(r.device_id, ts, row.labels)
            fstats.produced += 1
            stats.produced += 1
            if progress is not None and stats.rows % 1000 == 0:
                progress(stats.rows, None)
    finally:
        sink.close()
    if progress is not None:
        progress(stats.rows, stats.rows)
    stats.elapsed_s = time.monotonic() - t0
    truth += [FaultLabel(d, kind, a, b, False) for d, kind, a, b in runs.close()]
    stats.labels = len(truth)
    if labels_path is not None:
        write_labels(truth, labels_path)
    log.info("replay: %d rows, %d produced, %d to the DLQ", stats.rows, stats.produced, stats.dlq)
    return stats
