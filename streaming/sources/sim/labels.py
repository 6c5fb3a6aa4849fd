"""Writing the simulator's ground truth (one row per machine fault) for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from streaming.sources.sim.engine import FaultLabel

LABEL_COLUMNS = ("device_id", "fault_type", "start_ms", "end_ms", "failed")


def labels_table(labels: Sequence[FaultLabel]) -> pa.Table:
    """Columns: device_id, fault_type, start_ms, end_ms (null while ongoing), failed."""
    return pa.table(
        {
            "device_id": pa.array([x.device_id for x in labels], pa.string()),
            "fault_type": pa.array([x.fault_type for x in labels], pa.string()),
            "start_ms": pa.array([x.start_ms for x in labels], pa.int64()),
            "end_ms": pa.array([x.end_ms for x in labels], pa.int64()),
            "failed": pa.array([x.failed for x in labels], pa.bool_()),
        }
    )


def write_labels(labels: Sequence[FaultLabel], path: Path) -> Path:
    """Write labels as Parquet (`.parquet`) or CSV (anything else); return the path."""
    table = labels_table(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path
