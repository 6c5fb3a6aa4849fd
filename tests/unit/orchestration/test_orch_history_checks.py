from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from features.readings import SENSORS
from orchestration.defs.history.checks import HistoryCheckConfig, evaluate_history
from orchestration.defs.history.parquet import content_digest, write_atomic
from orchestration.defs.history.replay import day_window
from orchestration.defs.resources import HistoryStorage

NORMAL = {"temperature": 60.0, "vibration": 2.0, "pressure": 6.0, "current": 40.0, "rpm": 1500.0}


def _store_day(storage: HistoryStorage, day: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start, end = day_window(day)
    df = pd.DataFrame(
        {
            "event_id": pd.array(
                [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**62, n)], dtype="str"
            ),
            "device_id": pd.array([f"dev-{i % 20}" for i in range(n)], dtype="str"),
            "ts_ms": np.sort(rng.integers(start, end, n)).astype(np.int64),
            **{s: v * (1 + 0.05 * rng.normal(size=n)) for s, v in NORMAL.items()},
            "partition": np.zeros(n, dtype=np.int32),
            "offset": np.arange(n, dtype=np.int64),
        }
    )
    df["seq"] = df["offset"]
    maint = pd.DataFrame(
        {
            "event_id": [str(uuid.uuid4())],
            "device_id": ["dev-1"],
            "ts_ms": [start + 1000],
            "kind": ["failure"],
            "fault_type": ["bearing"],
            "partition": [0],
            "offset": [0],
        }
    )
    write_atomic(df, storage.readings_file(day))
    write_atomic(maint, storage.maintenance_file(day))
    stats = {"readings": {"rows": n, "records": n, "invalid": {}, "digest": content_digest(df)}}
    storage.file("history", "stats", f"date={day}.json").write_text(json.dumps(stats))
    return df


def _failed(outcomes: dict[str, list]) -> set[str]:
    return {name for name, results in outcomes.items() if any(not r.success for r in results)}


def test_clean_history_passes_every_suite(tmp_path: Path) -> None:
    storage = HistoryStorage(root=str(tmp_path))
    for i, day in enumerate(["2026-01-01", "2026-01-02", "2026-01-03"]):
        _store_day(storage, day, 2000, i)
    out = evaluate_history(storage, ["2026-01-02", "2026-01-03"], HistoryCheckConfig())
    assert set(out) >= {"history_schema", "history_sensor_ranges", "history_volume"}
    assert _failed(out) == set()


def test_a_sensor_stuck_far_out_of_range_fails_the_range_suite(tmp_path: Path) -> None:
    storage = HistoryStorage(root=str(tmp_path))
    _store_day(storage, "2026-01-01", 2000, 0)
    df = _store_day(storage, "2026-01-02", 2000, 1)
    df.loc[df["device_id"] == "dev-3", "temperature"] = 390.0  # stuck, inside the wire contract
    write_atomic(df, storage.readings_file("2026-01-02"))
    out = evaluate_history(storage, ["2026-01-02"], HistoryCheckConfig())
    assert _failed(out) == {"history_sensor_ranges"}
    bad = next(r for r in out["history_sensor_ranges"] if not r.success)
    assert bad.column == "temperature" and bad.details["unexpected_count"] == 100


def test_duplicates_out_of_window_rows_and_a_volume_drop_are_caught(tmp_path: Path) -> None:
    storage = HistoryStorage(root=str(tmp_path))
    _store_day(storage, "2026-01-01", 2000, 0)
    _store_day(storage, "2026-01-02", 2000, 1)
    df = _store_day(storage, "2026-01-03", 300, 2)  # a sixth of the usual volume
    ids = df["event_id"].tolist()
    ids[5] = ids[6]
    df["event_id"] = pd.array(ids, dtype="str")
    df.loc[7, "ts_ms"] = day_window("2026-01-03")[1] + 5000  # tomorrow
    write_atomic(df, storage.readings_file("2026-01-03"))
    out = evaluate_history(storage, ["2026-01-03"], HistoryCheckConfig())
    assert _failed(out) == {"history_unique_event_ids", "history_in_window", "history_volume"}


def test_wrong_types_and_missing_ids_fail_schema_and_nulls(tmp_path: Path) -> None:
    storage = HistoryStorage(root=str(tmp_path))
    df = _store_day(storage, "2026-01-01", 500, 0)
    df["rpm"] = df["rpm"].astype(str)
    df["device_id"] = df["device_id"].where(df.index != 3, None)
    write_atomic(df, storage.readings_file("2026-01-01"))
    out = evaluate_history(storage, ["2026-01-01"], HistoryCheckConfig())
    assert {"history_schema", "history_nulls"} <= _failed(out)
    assert all(np.isfinite(df[s]).all() for s in SENSORS if s != "rpm")
