"""Each statistic against a direct computation (tests.oracles.naive), and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from feature_asserts import feature_matrix, mismatches

from features.contract.readings import SensorReading
from features.engine.batch import compute_features, compute_features_vectorised
from features.engine.definitions import MINUTE_MS
from features.engine.online import OnlineFeatures
from features.spec import load_spec
from tests.generators.synth import synthetic_readings, to_readings
from tests.oracles.naive import naive_features

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

FEATURE_SET = load_spec().feature_set  # the fleet's

FS = FEATURE_SET
T0 = 1_767_225_600_000


def _reading(eid: str, ts: int, dev: str = "d1", **values: float | None) -> SensorReading:
    base: dict[str, float | None] = {s: 1.0 for s in SENSORS}
    base.update(values)
    return SensorReading(eid, dev, ts, base)


def _frame(readings: list[SensorReading]) -> pd.DataFrame:
    rows = []
    for seq, r in enumerate(readings):
        row: dict[str, object] = {
            "event_id": r.event_id,
            "device_id": r.device_id,
            "ts_ms": r.ts_ms,
            "seq": seq,
        }
        for s in SENSORS:
            v = r.values.get(s)
            row[s] = np.nan if v is None else v
        rows.append(row)
    return pd.DataFrame(rows)


def _online(readings: list[SensorReading]) -> list[np.ndarray | None]:
    on = OnlineFeatures(FEATURE_SET)
    return [on.update(r).values for r in readings]


def _f(vec: np.ndarray | None, name: str) -> float:
    assert vec is not None
    return float(vec[FS.index[name]])


def test_both_paths_match_direct_computation_on_a_disordered_stream() -> None:
    df = synthetic_readings(
        4, 300, seed=5, out_of_order=0.08, late=0.02, duplicates=0.03, cadence_ms=20_000
    )
    readings = list(to_readings(df))
    ref = naive_features(readings, FS)
    kept = np.vstack([v for v, _ in ref if v is not None])
    batch = compute_features(df, FEATURE_SET)
    vectorised = compute_features_vectorised(df, FEATURE_SET)
    online = np.vstack([v for v in _online(readings) if v is not None])
    assert [late for v, late in ref if v is not None] == batch["late"].tolist()
    assert vectorised["late"].tolist() == batch["late"].tolist()
    # different formulas (two-pass floats vs exact integer sums): rounding-level differences
    for got in (feature_matrix(batch, FS), feature_matrix(vectorised, FS), online):
        assert not (errors := mismatches(got, kept, FS.names, rtol=1e-9, atol=1e-12)), errors


def test_window_statistics_on_a_small_example() -> None:
    vib = [2.0, 2.5, 1.5, 3.0]
    rs = [_reading(f"e{i}", T0 + i * 60_000, vibration=v) for i, v in enumerate(vib)]
    rs.append(_reading("e4", T0 + 4 * 60_000, vibration=None))
    last = _online(rs)[-1]
    # 5-minute window (T0+4min-5min, T0+4min]: all five readings, vibration present in four
    assert _f(last, "vibration__mean_5m") == np.mean(vib)
    assert math.isclose(_f(last, "vibration__std_5m"), float(np.std(vib)), rel_tol=1e-12)
    assert _f(last, "vibration__min_5m") == 1.5
    assert _f(last, "vibration__max_5m") == 3.0
    slope_per_min = np.polyfit(np.arange(4.0), vib, 1)[0]
    assert math.isclose(_f(last, "vibration__slope_5m"), slope_per_min / 60.0, rel_tol=1e-9)
    assert _f(last, "count_5m") == 5.0
    assert math.isnan(_f(last, "vibration__last"))
    assert math.isnan(_f(last, "vibration__delta"))
    # temperature is 1.0 throughout: 4 stuck + 0 missing in the 1 h window; std 0, zscore NaN
    assert _f(last, "temperature__bad_1h") == 4.0
    assert _f(last, "vibration__bad_1h") == 1.0
    assert _f(last, "temperature__std_24h") == 0.0
    assert math.isnan(_f(last, "temperature__zscore"))
    assert _f(last, "dt_prev_s") == 60.0


def test_window_eviction_after_a_gap_and_new_devices() -> None:
    rs = [_reading("a", T0, vibration=5.0), _reading("b", T0 + 10 * MINUTE_MS, vibration=1.0)]
    rs.append(_reading("c", T0 + 11 * MINUTE_MS, dev="d2", vibration=9.0))
    out = _online(rs)
    assert _f(out[1], "count_5m") == 1.0 and _f(out[1], "count_1h") == 2.0
    assert _f(out[1], "vibration__max_5m") == 1.0 and _f(out[1], "vibration__max_1h") == 5.0
    assert _f(out[1], "vibration__delta") == -4.0 and _f(out[1], "dt_prev_s") == 600.0
    assert _f(out[2], "count_1h") == 1.0 and math.isnan(_f(out[2], "dt_prev_s"))


def test_out_of_order_late_and_duplicate_readings() -> None:
    rs = [
        _reading("a", T0, vibration=1.0),
        _reading("b", T0 + 60_000, vibration=3.0),
        _reading("c", T0 + 30_000, vibration=2.0),  # 30 s behind: accepted, inserted
        _reading("d", T0 - 10 * MINUTE_MS, vibration=100.0),  # 11 min behind: late
        _reading("b", T0 + 60_000, vibration=3.0),  # duplicate
        _reading("e", T0 + 90_000, vibration=4.0),
    ]
    on = OnlineFeatures(FEATURE_SET)
    ups = [on.update(r) for r in rs]
    assert [u.duplicate for u in ups] == [False, False, False, False, True, False]
    assert [u.late for u in ups] == [False, False, False, True, False, False]
    assert on.late_count == 1 and on.duplicate_count == 1
    c, d, e = ups[2].values, ups[3].values, ups[5].values
    # c sees the state at the device's max time with itself inserted; its predecessor is a
    assert _f(c, "count_5m") == 3.0 and _f(c, "vibration__mean_5m") == 2.0
    assert _f(c, "vibration__delta") == 1.0 and _f(c, "dt_prev_s") == 30.0
    # d gets features (window of the device's state) but does not enter the state
    assert _f(d, "vibration__last") == 100.0 and _f(d, "count_5m") == 3.0
    assert math.isnan(_f(d, "vibration__delta"))
    assert _f(e, "count_5m") == 4.0 and _f(e, "vibration__max_1h") == 4.0
    assert _f(e, "vibration__delta") == 1.0  # predecessor in event time is b (3.0)
    online = np.vstack([u.values for u in ups if u.values is not None])
    for engine in ("kernel", "vectorised"):
        batch = compute_features(_frame(rs), FEATURE_SET, engine=engine)
        assert batch["event_id"].tolist() == ["a", "b", "c", "d", "e"]
        assert batch["late"].tolist() == [False, False, False, True, False]
        got = feature_matrix(batch, FS)
        assert not (errors := mismatches(got, online, FS.names, rtol=0.0)), errors


@pytest.mark.parametrize("engine", ["kernel", "vectorised"])
def test_no_look_ahead_prefixes_give_the_same_features(engine: str) -> None:
    df = synthetic_readings(6, 400, seed=9, out_of_order=0.05, duplicates=0.02)
    full = compute_features(df, FEATURE_SET, engine=engine).set_index("event_id")  # type: ignore[arg-type]
    for cut in (len(df) // 3, 2 * len(df) // 3):
        part = compute_features(df.iloc[:cut], FEATURE_SET, engine=engine).set_index("event_id")  # type: ignore[arg-type]
        got = feature_matrix(part, FS)
        want = feature_matrix(full.loc[part.index], FS)
        assert not (errors := mismatches(got, want, FS.names, rtol=0.0)), errors


@pytest.mark.parametrize("engine", ["kernel", "vectorised"])
def test_batch_without_seq_uses_row_order_and_accepts_any_row_order_with_seq(engine: str) -> None:
    df = synthetic_readings(5, 300, seed=2, out_of_order=0.05, duplicates=0.02)
    ref = compute_features(df, FEATURE_SET, engine=engine)  # type: ignore[arg-type]
    no_seq = compute_features(df.drop(columns="seq"), FEATURE_SET, engine=engine)  # type: ignore[arg-type]
    assert ref.equals(no_seq)
    shuffled = df.sample(frac=1.0, random_state=1)
    by_seq = compute_features(shuffled, FEATURE_SET, engine=engine)  # type: ignore[arg-type]
    by_seq = by_seq.set_index("event_id").loc[ref["event_id"]]
    assert np.array_equal(feature_matrix(by_seq, FS), feature_matrix(ref, FS), equal_nan=True)


def test_snapping_keeps_statistics_exact_for_constant_values() -> None:
    rs = [_reading(f"e{i}", T0 + i * 1000, pressure=6.123456789) for i in range(200)]
    last = _online(rs)[-1]
    assert _f(last, "pressure__std_1h") == 0.0
    assert _f(last, "pressure__slope_1h") == 0.0
    assert _f(last, "pressure__min_1h") == 6.123456789
