from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from features.contract import Maintenance, SensorReading, encode, encode_reading
from orchestration.defs.history.columns import MaintenanceColumns, ReadingColumns
from orchestration.defs.history.replay import day_window
from orchestration.defs.training.build import sample_rows, split_by_days, split_by_time
from orchestration.defs.training.window import window_days


def test_split_holds_out_the_latest_days_by_event_time() -> None:
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    ts = np.array([day_window(d)[0] + 1000 for d in days] * 2)
    rows = pd.DataFrame({"ts_ms": ts, "x": np.arange(6)})
    split = split_by_days(rows, days, holdout_days=1)
    assert split.holdout_days == ["2026-01-03"] and split.train_days == days[:2]
    assert (split.holdout["ts_ms"] >= day_window("2026-01-03")[0]).all()
    assert len(split.train) == 4 and len(split.holdout) == 2
    with pytest.raises(ValueError):
        split_by_days(rows, days[:1], holdout_days=1)


def test_a_short_dataset_holds_out_the_latest_share_of_its_rows() -> None:
    # A few hours of 1 Hz data on one day: no whole day to hold out.
    start = day_window("2020-03-01")[0] + 9 * 3_600_000
    rows = pd.DataFrame({"ts_ms": start + 1000 * np.arange(10_000)})
    split = split_by_time(rows, ["2020-03-01"], holdout_days=None, holdout=0.2)
    assert len(split.holdout) == 2000 and len(split.train) == 8000
    assert split.train["ts_ms"].max() < split.holdout["ts_ms"].min()
    assert split.train_days == split.holdout_days == ["2020-03-01"]
    # The embargo (failure labels horizon) leaves a gap before the hold-out.
    gap = split_by_time(rows, ["2020-03-01"], holdout_days=None, holdout=0.2, embargo_ms=60_000)
    assert len(gap.holdout) == 2000 and len(gap.train) == 8000 - 60
    assert gap.embargoed_rows == 60
    with pytest.raises(ValueError, match="no training"):
        split_by_time(rows, ["2020-03-01"], holdout_days=None, holdout=0.2, embargo_ms=10**9)


def test_two_weeks_hold_out_whole_days_and_explicit_days_win() -> None:
    days = [f"2026-01-{d:02d}" for d in range(1, 15)]
    ts = np.concatenate([day_window(d)[0] + 60_000 * np.arange(1440) for d in days])
    rows = pd.DataFrame({"ts_ms": ts})
    split = split_by_time(rows, days, holdout_days=None, holdout=0.2)
    # 20 % of 14 days, cut at the next day boundary: the latest 2 whole days (the fleet's).
    assert split.holdout_days == days[-2:] and split.train_days == days[:-2]
    assert len(split.holdout) == 2 * 1440
    three = split_by_time(rows, days, holdout_days=3, holdout=0.2)
    assert three.holdout_days == days[-3:]


def test_sample_keeps_every_positive_and_reweights_negatives() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"ts_ms": np.arange(10_000), "y": (rng.random(10_000) < 0.02).astype(int)})
    s = sample_rows(df, "y", max_rows=2_000, seed=1)
    assert len(s) == 2_000 and s["y"].sum() == df["y"].sum()
    # Weighted, the sample stands for the whole set.
    assert abs(s["weight"].sum() - len(df)) < 1e-6
    assert s["ts_ms"].is_monotonic_increasing


def test_window_days_ends_at_the_run_partition() -> None:
    stored = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05"]
    assert window_days(stored, "2026-01-03", 2) == ["2026-01-02", "2026-01-03"]
    assert window_days(stored, None, 3) == ["2026-01-03", "2026-01-05"]
    assert window_days([], None, 3) == []


def test_reading_columns_parse_with_the_contract_and_count_rejects() -> None:
    ok = SensorReading(
        str(uuid.uuid4()),
        "pump-1",
        1_767_225_600_000,
        {"temperature": 60.0, "vibration": None, "pressure": 6.0, "current": 40.0, "rpm": 1500.0},
    )
    sink = ReadingColumns(("temperature", "vibration", "pressure", "current", "rpm"))
    sink(
        [encode_reading(ok), b"{not json", b'{"schema": "iot.sensor_reading/v9"}'],
        [1, 1, 0],
        [7, 8, 3],
    )
    df = sink.frame()
    assert len(df) == 1 and df.loc[0, "event_id"] == ok.event_id
    assert np.isnan(df["vibration"].iloc[0]) and df["temperature"].iloc[0] == 60.0
    assert df.loc[0, "seq"] == 7 and df.loc[0, "ts_ms"] == ok.ts_ms
    assert sum(sink.invalid.values()) == 2


def test_maintenance_columns_keep_only_maintenance_events() -> None:
    m = Maintenance(str(uuid.uuid4()), "pump-1", 1_767_225_600_000, "failure", "bearing")
    sink = MaintenanceColumns()
    sink(
        [encode(m), encode_reading(SensorReading(str(uuid.uuid4()), "p", 1, {"rpm": 1.0}))],
        [0, 0],
        [0, 1],
    )
    df = sink.frame()
    assert df["kind"].tolist() == ["failure"] and df["fault_type"].tolist() == ["bearing"]
    assert sink.invalid["schema"] == 1


def test_embargo_leaves_the_horizon_before_the_holdout_out_of_training() -> None:
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    cut = day_window("2026-01-03")[0]
    hour = 3_600_000
    ts = np.array([cut - 30 * hour, cut - 7 * hour, cut - 5 * hour, cut - 1, cut, cut + hour])
    rows = pd.DataFrame({"ts_ms": ts})
    split = split_by_days(rows, days, holdout_days=1, embargo_ms=6 * hour)
    assert split.train["ts_ms"].tolist() == [cut - 30 * hour, cut - 7 * hour]
    assert split.holdout["ts_ms"].tolist() == [cut, cut + hour]  # the hold-out is untouched
    assert split.embargoed_rows == 2 and split.embargo_ms == 6 * hour
    assert len(split_by_days(rows, days, holdout_days=1).train) == 4
    with pytest.raises(ValueError):
        split_by_days(rows, days, holdout_days=1, embargo_ms=-1)
