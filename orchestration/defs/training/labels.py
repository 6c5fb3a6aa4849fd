"""Labels from the event log: failure within a horizon (maintenance) and anomaly intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _rows_by_time(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows' device and event time with their position `_i`, sorted by time (merge_asof)."""
    return pd.DataFrame(
        {
            "device_id": rows["device_id"].astype(str).to_numpy(),
            "ts_ms": rows["ts_ms"].to_numpy(np.int64),
            "_i": np.arange(len(rows)),
        }
    ).sort_values("ts_ms", kind="stable")


def time_to_next_failure(rows: pd.DataFrame, maintenance: pd.DataFrame) -> np.ndarray:
    """Milliseconds from each row (device_id, ts_ms) to its device's next failure (inf: none)."""
    out = np.full(len(rows), np.inf)
    if len(rows) == 0 or len(maintenance) == 0:
        return out
    fail = maintenance.loc[maintenance["kind"] == "failure", ["device_id", "ts_ms"]]
    if fail.empty:
        return out
    left = _rows_by_time(rows)
    right = pd.DataFrame(
        {
            "device_id": fail["device_id"].astype(str).to_numpy(),
            "ts_ms": fail["ts_ms"].to_numpy(np.int64),
            "fail_ms": fail["ts_ms"].to_numpy(np.int64),
        }
    ).sort_values("ts_ms", kind="stable")
    merged = pd.merge_asof(
        left, right, on="ts_ms", by="device_id", direction="forward", allow_exact_matches=False
    )
    delta = (merged["fail_ms"] - merged["ts_ms"]).to_numpy(np.float64)
    out[merged["_i"].to_numpy()] = np.where(np.isnan(delta), np.inf, delta)
    return out


def failure_labels(rows: pd.DataFrame, maintenance: pd.DataFrame, horizon_ms: int) -> np.ndarray:
    """1 where the row's device fails within `horizon_ms` after the row, else 0."""
    return (time_to_next_failure(rows, maintenance) <= horizon_ms).astype(np.int8)


def anomaly_labels(rows: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """1 where the row falls inside a ground-truth fault interval [start_ms, end_ms] of its device
    (intervals of one device do not overlap; a null end_ms means ongoing)."""
    out = np.zeros(len(rows), dtype=np.int8)
    if len(rows) == 0 or len(truth) == 0:
        return out
    left = _rows_by_time(rows)
    right = pd.DataFrame(
        {
            "device_id": truth["device_id"].astype(str).to_numpy(),
            "ts_ms": truth["start_ms"].to_numpy(np.int64),
            # A fault still ongoing at the end of the data has no end yet.
            "end_ms": pd.to_numeric(truth["end_ms"]).astype("float64").fillna(np.inf).to_numpy(),
        }
    ).sort_values("ts_ms", kind="stable")
    merged = pd.merge_asof(left, right, on="ts_ms", by="device_id", direction="backward")
    inside = (merged["ts_ms"] <= merged["end_ms"]).fillna(False).to_numpy(bool)
    out[merged["_i"].to_numpy()] = inside.astype(np.int8)
    return out
