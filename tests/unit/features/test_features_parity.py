"""The batch and streaming paths give the same value for every feature of every reading.

The streaming path (numba kernel) is compared with the vectorised numpy batch path, an
independent implementation; the default batch engine (the same kernel over a history) is
compared with it too."""

from __future__ import annotations

import numpy as np
import pytest
from feature_asserts import feature_matrix, mismatches

from features.engine.batch import compute_features, compute_features_vectorised
from features.engine.definitions import HOUR_MS, FeatureSet, Window
from features.engine.online import OnlineFeatures
from features.spec import load_spec
from tests.generators.synth import synthetic_readings, to_readings
from tests.oracles.naive import naive_features

FEATURE_SET = load_spec().feature_set  # the fleet's


def _online(df):  # type: ignore[no-untyped-def]
    on = OnlineFeatures(FEATURE_SET)
    ups = [on.update(r) for r in to_readings(df)]
    return on, ups


def _check(df) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    batch = compute_features_vectorised(df, FEATURE_SET)
    on, ups = _online(df)
    dup = np.array([u.duplicate for u in ups])
    kept = df[~dup]
    # batch rows come back in input order, one per non-duplicate reading
    assert batch["event_id"].tolist() == kept["event_id"].tolist()
    assert batch["late"].tolist() == [u.late for u in ups if not u.duplicate]
    online = np.vstack([u.values for u in ups if u.values is not None])
    assert not (
        errors := mismatches(
            online, feature_matrix(batch, FEATURE_SET), FEATURE_SET.names, rtol=1e-9
        )
    ), errors
    kernel = compute_features(df, FEATURE_SET)
    assert kernel[["event_id", "late"]].equals(batch[["event_id", "late"]])
    assert not (
        errors := mismatches(
            feature_matrix(kernel, FEATURE_SET),
            feature_matrix(batch, FEATURE_SET),
            FEATURE_SET.names,
            rtol=1e-9,
        )
    ), errors
    assert on.duplicate_count == int(dup.sum())
    assert on.late_count == int(batch["late"].sum())
    return int(dup.sum()), int(batch["late"].sum())


def test_parity_small_stream_with_every_kind_of_disorder() -> None:
    df = synthetic_readings(12, 600, seed=7, out_of_order=0.05, late=0.01, duplicates=0.02)
    dups, late = _check(df)
    assert dups > 50 and late > 30  # the stream does exercise both


def test_update_many_equals_update() -> None:
    df = synthetic_readings(8, 400, seed=3, out_of_order=0.05, duplicates=0.02)
    _, ups = _online(df)
    on = OnlineFeatures(FEATURE_SET)
    readings = list(to_readings(df))
    parts = [on.update_many(readings[i : i + 97]) for i in range(0, len(readings), 97)]
    values = np.vstack([p.values for p in parts])
    dup = np.concatenate([p.duplicate for p in parts])
    late = np.concatenate([p.late for p in parts])
    assert dup.tolist() == [u.duplicate for u in ups]
    assert late.tolist() == [u.late for u in ups]
    single = np.vstack(
        [u.values if u.values is not None else np.full(len(FEATURE_SET.names), np.nan) for u in ups]
    )
    assert not (errors := mismatches(values, single, FEATURE_SET.names, rtol=0.0)), errors


@pytest.mark.slow
def test_parity_200k_readings_200_devices() -> None:
    df = synthetic_readings(200, 1000, seed=11, out_of_order=0.01, duplicates=0.005)
    assert len(df) >= 200_000
    dups, _ = _check(df)
    assert dups >= 900


def test_coarse_panes_agree_across_paths_and_windows_start_on_a_pane() -> None:
    """Panes of 10 min in the 1 h window and 3 h in a 24 h one (so pane boundaries matter for
    most readings): streaming, both batch engines and the naive reference agree exactly, and each
    window counts the readings from the start of its first pane, not the last `length` ms."""
    fs = FeatureSet(
        sensors=FEATURE_SET.sensors,
        scales=FEATURE_SET.scales,
        windows=(
            Window("1h", HOUR_MS, ("mean", "std", "min", "max", "slope", "bad"), 10 * 60_000),
            Window("24h", 24 * HOUR_MS, ("mean", "std", "min", "bad"), 3 * HOUR_MS),
        ),
        count_windows=("1h", "24h"),
    )
    df = synthetic_readings(3, 500, seed=5, cadence_ms=120_000, out_of_order=0.05, duplicates=0.02)
    readings = list(to_readings(df))
    on = OnlineFeatures(fs)
    ups = [on.update(r) for r in readings]
    online = np.vstack([u.values for u in ups if u.values is not None])
    kernel = compute_features(df, fs)
    vectorised = compute_features(df, fs, engine="vectorised")
    naive = np.vstack([v for v, _ in naive_features(readings, fs) if v is not None])
    for other in (feature_matrix(kernel, fs), feature_matrix(vectorised, fs)):
        assert not (errors := mismatches(online, other, fs.names, rtol=0.0)), errors
    # the naive reference takes two-pass float statistics, not integer sums
    assert not (errors := mismatches(online, naive, fs.names, rtol=1e-9, atol=1e-12)), errors
    # count_1h by hand: accepted readings of the device in [start of the first pane, M]
    w1h = fs.windows[0]
    acc: dict[str, list[int]] = {}
    mx: dict[str, int] = {}
    differs = 0
    for r, u in zip(readings, ups, strict=True):
        if u.duplicate:
            continue
        m = mx[r.device_id] = max(mx.get(r.device_id, r.ts_ms), r.ts_ms)
        if not u.late:
            acc.setdefault(r.device_id, []).append(r.ts_ms)
        ts = np.asarray(acc.get(r.device_id, []))
        assert u.values is not None
        assert u.values[fs.index["count_1h"]] == np.sum((ts >= w1h.start_ms(m)) & (ts <= m))
        differs += int(np.sum(ts > m - HOUR_MS) != np.sum(ts >= w1h.start_ms(m)))
    assert differs > 100  # the panes changed the window for many readings
