"""The history checks judge each day on its own; training reads only the days they passed."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.spec import load_spec
from orchestration.defs.history.assets import coverage, dedupe
from orchestration.defs.history.checks import DayResult, Tolerances, judge_days
from orchestration.defs.history.parquet import content_digest, write_atomic
from orchestration.defs.history.replay import DAY_MS, day_window
from orchestration.defs.history.store import DatasetHistory
from orchestration.defs.history.validity import select_days

SPEC = load_spec("iot-fleet")
NORMAL = {"temperature": 60.0, "vibration": 2.0, "pressure": 6.0, "current": 40.0, "rpm": 1500.0}
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def _frame(day: str, n: int, seed: int, span: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start, _ = day_window(day)
    df = pd.DataFrame(
        {
            "event_id": pd.array(
                [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**62, n)], dtype="str"
            ),
            "device_id": pd.array([f"dev-{i % 20}" for i in range(n)], dtype="str"),
            "ts_ms": np.linspace(start, start + span * DAY_MS - 60_000, n).astype(np.int64),
            **{s: v * (1 + 0.05 * rng.normal(size=n)) for s, v in NORMAL.items()},
            "partition": np.zeros(n, dtype=np.int32),
            "offset": np.arange(n, dtype=np.int64),
        }
    )
    df["seq"] = df["offset"]
    return df


def _store(
    h: DatasetHistory, day: str, df: pd.DataFrame, *, invalid: int = 0, exact: int = 0
) -> None:
    start, _ = day_window(day)
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
    write_atomic(df, h.readings_file(day))
    write_atomic(maint, h.maintenance_file(day))
    cov, first, last = coverage(df["ts_ms"], day, SPEC.cadence_ms)
    h.write_stats(
        day,
        {
            "readings": {
                "rows": len(df),
                "records": len(df) + invalid + exact,
                "invalid": {"sensors": invalid} if invalid else {},
                "duplicates": {"exact": exact, "conflicting": 0},
                "digest": content_digest(df),
                "coverage": cov,
                "first_ts_ms": first,
                "last_ts_ms": last,
            }
        },
    )


def _judge(h: DatasetHistory, days: list[str]) -> dict[str, list[DayResult]]:
    tol = Tolerances(lateness_ms=SPEC.feature_set.lateness_ms)
    return judge_days(h, days, SPEC.expectations, tol, SPEC.name, "run-1")


def _failed(results: list[DayResult], severity: str = "ERROR") -> set[str]:
    return {r.check for r in results if not r.passed and r.severity == severity}


@pytest.fixture
def history(tmp_path: Path) -> DatasetHistory:
    return DatasetHistory.at(tmp_path, SPEC.name, "test")


def test_clean_days_pass_and_all_train(history: DatasetHistory) -> None:
    for i, d in enumerate(DAYS):
        _store(history, d, _frame(d, 2000, i))
    out = _judge(history, DAYS)
    assert all(not _failed(r) and not _failed(r, "WARN") for r in out.values())
    assert select_days(history, DAYS).used == DAYS


def test_a_broken_day_fails_alone_and_training_skips_it_with_the_reason(
    history: DatasetHistory,
) -> None:
    for i, d in enumerate(DAYS):
        df = _frame(d, 2000, i)
        if d == DAYS[1]:
            df.loc[df["device_id"] == "dev-3", "temperature"] = 900.0  # beyond [-60, 400]
        _store(history, d, df)
    out = _judge(history, DAYS)
    assert _failed(out[DAYS[1]]) == {"history_sensor_ranges"}
    assert not _failed(out[DAYS[0]]) and not _failed(out[DAYS[2]])
    message = next(r.message for r in out[DAYS[1]] if not r.passed)
    # The day, the figure, the expected range and what to do next.
    assert message.startswith(f"{DAYS[1]}: temperature: 100 values (5 %")
    assert "[-60.0, 400.0]" in message and "at least 0.999" in message
    assert f"edaml train --dataset iot-fleet --end {DAYS[1]} --days 1" in message
    sel = select_days(history, DAYS)
    assert sel.used == [DAYS[0], DAYS[2]]
    assert sel.skipped[DAYS[1]].startswith("failed its checks: " + DAYS[1] + ": temperature")


def test_one_bad_record_never_fails_a_day(history: DatasetHistory) -> None:
    d = DAYS[0]
    df = _frame(d, 5000, 0)
    df.loc[10, "temperature"] = 900.0  # out of range
    df.loc[11, "ts_ms"] = day_window(d)[0] - 3 * 3_600_000  # hours late
    df.loc[12, "pressure"] = np.nan  # a dropout
    _store(history, d, df, invalid=1)  # and one record the contract refused
    out = _judge(history, [d])
    assert not _failed(out[d]) and not _failed(out[d], "WARN")
    assert select_days(history, [d]).used == [d]


def test_many_late_readings_or_refused_records_fail_the_day(history: DatasetHistory) -> None:
    d1, d2 = DAYS[:2]
    late = _frame(d1, 2000, 0)
    late.loc[:99, "ts_ms"] = day_window(d1)[0] - 3_600_000  # 5 % an hour before the day
    _store(history, d1, late)
    _store(history, d2, _frame(d2, 2000, 1), invalid=40)  # 2 % refused
    out = _judge(history, [d1, d2])
    assert _failed(out[d1]) == {"history_in_window"}
    assert _failed(out[d2]) == {"history_invalid_records"}
    msg = next(r.message for r in out[d2] if not r.passed)
    assert "invalid_fraction: observed 0.0196" in msg and "[0.0, 0.001]" in msg


def test_exact_duplicates_and_low_volume_only_warn(history: DatasetHistory) -> None:
    d1, d2 = DAYS[:2]
    _store(history, d1, _frame(d1, 2000, 0))
    _store(history, d2, _frame(d2, 500, 1), exact=500)  # the same file replayed twice; 1/4 vol.
    out = _judge(history, [d1, d2])
    assert not _failed(out[d2])
    assert _failed(out[d2], "WARN") == {"history_unique_event_ids", "history_volume"}
    assert select_days(history, [d1, d2]).used == [d1, d2]


def test_wrong_types_and_missing_ids_fail_schema_and_nulls(history: DatasetHistory) -> None:
    d = DAYS[0]
    df = _frame(d, 500, 0)
    df["rpm"] = df["rpm"].astype(str)
    df["device_id"] = df["device_id"].where(df.index != 3, None)
    _store(history, d, df)
    assert {"history_schema", "history_nulls"} <= _failed(_judge(history, [d])[d])


def test_a_day_replayed_again_is_not_valid_until_checked_again(history: DatasetHistory) -> None:
    d = DAYS[0]
    _store(history, d, _frame(d, 1000, 0))
    _judge(history, [d])
    assert select_days(history, [d]).used == [d]
    _store(history, d, _frame(d, 1000, 1))  # new content, old verdict
    assert "not validated since" in select_days(history, [d]).skipped[d]
    history.clear_verdict(d)
    assert "not validated" in select_days(history, [d]).skipped[d]
    assert select_days(history, ["2026-02-01"]).skipped["2026-02-01"].startswith("not replayed")


def test_partial_days_are_used_or_skipped_by_their_coverage(history: DatasetHistory) -> None:
    full, most, little = DAYS
    _store(history, full, _frame(full, 1440, 0))
    _store(history, most, _frame(most, 1000, 1, span=0.7))
    _store(history, little, _frame(little, 300, 2, span=0.2))
    out = _judge(history, DAYS)
    # Compared at their coverage, partial days have a normal volume: no check fails.
    assert all(not _failed(r) and not _failed(r, "WARN") for r in out.values())
    sel = select_days(history, DAYS)
    assert sel.used == [full, most]
    assert sel.notes[most].startswith("partial day used: readings cover 70%")
    assert sel.skipped[little].startswith("partial day: readings cover 20% of it (00:00-04:47")
    assert sel.lineage()["days_skipped"] == {little: sel.skipped[little]}


def test_short_recordings_only_every_partial_day_is_used(history: DatasetHistory) -> None:
    # A dataset of short experiments (no day is full): every day's recordings train.
    for i, d in enumerate(DAYS):
        _store(history, d, _frame(d, 300, i, span=0.2))
    _judge(history, DAYS)
    sel = select_days(history, DAYS)
    assert sel.used == DAYS and not sel.skipped
    assert all(sel.notes[d].startswith("partial day used: readings cover 20%") for d in DAYS)


def test_dedupe_keeps_the_first_and_counts_exact_and_conflicting() -> None:
    df = _frame(DAYS[0], 10, 0)
    again = df.iloc[[1, 2, 3]].copy()
    changed = df.iloc[[4]].copy()
    changed["temperature"] = 99.0
    kept, exact, conflicting = dedupe(
        pd.concat([df, again, changed], ignore_index=True), list(NORMAL)
    )
    assert (exact, conflicting) == (3, 1)
    pd.testing.assert_frame_equal(kept, df)


def test_coverage_of_a_day() -> None:
    start, _ = day_window(DAYS[0])
    ts = pd.Series([start + 12 * 3_600_000, start + DAY_MS - 60_000])
    cov, first, last = coverage(ts, DAYS[0], 60_000)
    assert cov == pytest.approx(0.5) and first == ts[0] and last == ts[1]
    assert coverage(pd.Series([], dtype="int64"), DAYS[0], 60_000)[0] == 0.0
