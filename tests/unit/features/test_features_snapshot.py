"""Per-device state as records (the scorer's state snapshots): exported at any point and
imported into a fresh instance, it gives the same features as the uninterrupted stream."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from feature_asserts import mismatches

from features.contract.readings import SensorReading
from features.engine.online import OnlineFeatures
from features.engine.snapshot import SnapshotError
from features.spec import load_spec
from tests.generators.synth import synthetic_readings, to_readings

FEATURE_SET = load_spec().feature_set  # the fleet's


def _readings(devices: int, per: int, seed: int) -> list[SensorReading]:
    return list(
        to_readings(synthetic_readings(devices, per, seed=seed, out_of_order=0.03, duplicates=0.02))
    )


def _rows(on: OnlineFeatures, rs: list[SensorReading]) -> tuple[np.ndarray, np.ndarray]:
    fb = on.update_many(rs)
    return fb.values[~fb.duplicate], np.stack([fb.duplicate, fb.late])


@pytest.mark.parametrize("cut", [0.3, 0.97])
def test_restored_state_gives_the_uninterrupted_features(cut: float) -> None:
    # 30 h at 30 s: windows full and panes evicted; duplicates resent after the cut count
    rs = _readings(6, 3600, seed=5)
    k = int(len(rs) * cut)
    full = OnlineFeatures(FEATURE_SET)
    full.update_many(rs[:k])
    want, want_flags = _rows(full, rs[k:])

    first = OnlineFeatures(FEATURE_SET)
    first.update_many(rs[:k])
    devices = first.devices()
    records = first.export_devices(devices)
    restored = OnlineFeatures(FEATURE_SET)
    restored.import_devices(devices, records)
    got, got_flags = _rows(restored, rs[k:])
    assert (got_flags == want_flags).all()
    assert not (errors := mismatches(got, want, FEATURE_SET.names, rtol=0.0)), errors


def test_changes_are_tracked_per_device_and_put_back_after_an_abort() -> None:
    rs = _readings(4, 50, seed=2)
    on = OnlineFeatures(FEATURE_SET)
    on.update_many(rs)
    changed, removed = on.take_changes()
    assert sorted(changed) == sorted({r.device_id for r in rs}) and removed == []
    assert on.take_changes() == ([], [])
    one = [r for r in _readings(4, 60, seed=2)[-40:] if r.device_id == rs[0].device_id]
    on.update_many(one)
    assert on.take_changes() == ([rs[0].device_id], [])
    on.mark_changed([rs[1].device_id], ["gone"])
    assert on.take_changes() == ([rs[1].device_id], ["gone"])
    newest = max(r.ts_ms for r in one)
    assert on.drop_idle(newest) == 3
    changed, removed = on.take_changes()
    assert changed == [] and len(removed) == 3


def test_a_bad_record_is_refused_before_anything_changes() -> None:
    rs = _readings(3, 100, seed=3)
    on = OnlineFeatures(FEATURE_SET)
    on.update_many(rs)
    devices = on.devices()
    records = on.export_devices(devices)
    target = OnlineFeatures(FEATURE_SET)
    raw = bytearray(zlib.decompress(records[1][4:]))
    raw[-3] ^= 0xFF  # one flipped bit in the body: the checksum catches it
    bad = [records[0], records[1][:4] + zlib.compress(bytes(raw)), records[2]]
    for broken in (bad, [b"junk"], [records[0][:-5]]):
        with pytest.raises(SnapshotError):
            target.import_devices(devices[: len(broken)], broken)
        assert target.device_count == 0
    head = np.frombuffer(zlib.decompress(records[0][4:]), dtype=np.int64).copy()
    head[0] += 1  # made with one more sensor
    other_layout = records[0][:4] + zlib.compress(head.tobytes())
    with pytest.raises(SnapshotError, match="another layout"):
        target.import_devices(devices[:1], [other_layout])
