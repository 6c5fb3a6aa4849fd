"""The snapshot's bookkeeping without a broker: rounds spread over transactions (at most
`max_devices` each), records of an aborted transaction written again, the marker only once a
round is whole, and what the committed records restore equals the live state."""

from __future__ import annotations

import functools
import time

import numpy as np

from features.engine.online import OnlineFeatures
from features.spec import load_spec
from streaming.serving.device_state import PartitionedFeatures
from streaming.serving.snapshots import MARKER, Marker, Restored, Snapshots
from tests.generators.synth import synthetic_readings, to_readings

FS = load_spec().feature_set
KEY = ("in", 0)


class Log:
    """A partition of the state topic: records of committed transactions only."""

    def __init__(self) -> None:
        self.committed: dict[bytes, bytes | None] = {}
        self.open: list[tuple[bytes, bytes | None]] = []

    def produce(self, topic: str, *, key: bytes, value: bytes | None, partition: int) -> None:
        assert (topic, partition) == ("state", 0)
        self.open.append((key, value))

    def commit(self) -> None:
        self.committed.update(self.open)
        self.open = []

    def abort(self) -> None:
        self.open = []


def test_rounds_aborts_and_markers_restore_the_live_state() -> None:
    rs = list(to_readings(synthetic_readings(8, 200, seed=6, duplicates=0.01)))
    live = PartitionedFeatures(functools.partial(OnlineFeatures, FS))
    snaps = Snapshots(
        bootstrap="unused", topic="state", group="g", feature_set=FS.version,
        interval_s=5.0, max_devices=3, timeout_s=1.0,
    )  # fmt: skip
    log = Log()
    live.update_routed(rs[:1000], [KEY] * 1000)
    changed, _gone = live.instances[KEY].take_changes()  # as after a re-read
    snaps.rebuilt(KEY, 1000, changed, Restored())  # a fresh generation: every device
    t = time.monotonic()
    # round 1: 8 devices, 3 a transaction; the second transaction aborts and is written again
    sent: list[int] = []
    for txn in range(5):
        snaps.write(log.produce, live, {KEY: 1000}, {KEY: 5}, now=t)
        sent.append(sum(1 for k, _v in log.open if k.startswith(b"d:")))
        if txn == 1:
            log.abort()
            snaps.aborted()
        else:
            log.commit()
            snaps.committed()
    assert sent == [3, 3, 3, 2, 0]
    assert Marker.decode(log.committed[MARKER] or b"").offset == 1000
    assert snaps.behind() == 0
    # more input; the next round (interval passed) takes only the devices that changed
    two = [r for r in rs[1000:] if r.device_id in {"dev-0000", "dev-0001"}][:50]
    live.update_routed(two, [KEY] * len(two))
    snaps.write(log.produce, live, {KEY: 1500}, {KEY: 9}, now=t + 3)  # before the interval: nothing
    assert log.open == []
    snaps.write(log.produce, live, {KEY: 1500}, {KEY: 9}, now=t + 7)
    assert {k for k, _v in log.open} == {MARKER} | {f"d:{r.device_id}".encode() for r in two}
    log.commit()
    snaps.committed()

    # what the committed records restore equals the live state
    restored = Restored()
    snaps._decode(log.committed, restored)
    assert restored.marker is not None and restored.marker.offset == 1500
    assert restored.marker.watermark == 9
    assert sorted(restored.devices) == sorted(live.instances[KEY].devices())
    assert snaps.why_not(restored, 1500, 0) is None
    other = Snapshots(
        bootstrap="unused", topic="state", group="g", feature_set="fs-other",
        interval_s=5.0, max_devices=3, timeout_s=1.0,
    )  # fmt: skip
    assert "feature set" in (other.why_not(restored, 1500, 0) or "")
    assert "retention" in (snaps.why_not(restored, 1500, 1501) or "")
    back = OnlineFeatures(FS)
    devices = list(restored.devices)
    back.import_devices(devices, [restored.devices[d][1] for d in devices])
    rest = rs[1000:]
    want = live.instances[KEY].update_many(rest)
    got = back.update_many(rest)
    assert (got.duplicate == want.duplicate).all()
    ok = ~want.duplicate
    np.testing.assert_array_equal(got.values[ok], want.values[ok])  # NaN equal to NaN
    assert np.isfinite(got.values[ok]).any()
