"""`PartitionedFeatures`: one features instance per partition gives, reading for reading, the
features of one instance over everything (devices are keyed: a device lives in one partition),
and a partition's state is dropped or rebuilt without touching the others'."""

from __future__ import annotations

from functools import partial

import numpy as np

from features.contract.readings import SensorReading
from features.engine.online import OnlineFeatures
from features.spec import load_spec
from streaming.serving.device_state import PartitionedFeatures

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

FEATURE_SET = load_spec().feature_set  # the fleet's

MIN = 60_000


def _readings(n: int, devices: int = 6, seed: int = 3) -> list[SensorReading]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = i % devices
        ts = 1_700_000_000_000 + (i // devices) * 20_000 + int(rng.integers(-5_000, 5_000))
        vals: dict[str, float | None] = {s: float(rng.normal(10 + d, 1)) for s in SENSORS}
        out.append(SensorReading(f"e{i}", f"dev-{d}", ts, vals))
    out.append(out[7])  # a duplicate
    return out


def _key(r: SensorReading) -> tuple[str, int]:
    return ("t", int(r.device_id.split("-")[1]) % 3)


def test_routed_features_equal_one_instance_over_all_readings() -> None:
    rs = _readings(900)
    one = OnlineFeatures(FEATURE_SET).update_many(rs)
    parted = PartitionedFeatures(partial(OnlineFeatures, FEATURE_SET))
    got = [
        parted.update_routed(rs[i : i + 97], [_key(r) for r in rs[i : i + 97]])
        for i in range(0, len(rs), 97)
    ]
    values = np.vstack([g.values for g in got])
    np.testing.assert_array_equal(np.concatenate([g.duplicate for g in got]), one.duplicate)
    np.testing.assert_array_equal(np.concatenate([g.late for g in got]), one.late)
    np.testing.assert_array_equal(values[~one.duplicate], one.values[~one.duplicate])
    assert parted.partitions == {("t", 0), ("t", 1), ("t", 2)}
    assert parted.rebuild_horizon_ms == FEATURE_SET.rebuild_horizon_ms


def test_a_partition_rebuilt_from_its_history_serves_what_it_served_before() -> None:
    rs = _readings(1200)
    history, rest = rs[:900], rs[900:]
    keys = [_key(r) for r in rs]
    kept = PartitionedFeatures(partial(OnlineFeatures, FEATURE_SET))
    kept.update_routed(history, keys[:900])
    want = kept.update_routed(rest, keys[900:])

    rebuilt = PartitionedFeatures(partial(OnlineFeatures, FEATURE_SET))
    rebuilt.update_routed(history, keys[:900])
    lost = ("t", 1)
    rebuilt.drop([lost])
    assert lost not in rebuilt.partitions
    rebuilt.feed(lost, [r for r, k in zip(history, keys, strict=False) if k == lost])
    got = rebuilt.update_routed(rest, keys[900:])
    np.testing.assert_array_equal(got.values, want.values)

    rebuilt.keep_only([("t", 0)])
    assert rebuilt.partitions == {("t", 0)}
