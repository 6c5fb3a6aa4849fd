"""The streaming feature path: per-device state, updated once per reading.

Semantics (shared with `features.engine.batch`, which reproduces them from `(ts_ms, seq)`)
-----------------------------------------------------------------------------------
Readings of one device are taken in *arrival order* (Kafka offset within the device's
partition; call order here). Let M be the device's max event time over every reading that has
arrived so far (before the current one); L = `lateness_ms`, R = `dedup_horizon_ms`.

1. Duplicate: a reading is a duplicate if an earlier arrival of the same device had the same
   `event_id` with event time > M - R. A duplicate changes nothing but M and the duplicate
   count; it gets no features (`values=None`; the batch path drops its row).
2. Late: a non-duplicate reading with `ts < M - L`. It gets features (below) but never enters
   the state, so it changes no other reading's features. Counted in `late_count`.
3. Accepted: every other reading. M becomes max(M, ts).

The features of a reading r are computed, as soon as r arrives, from the *accepted* readings of
its device that arrived no later than r (r itself included when accepted) and whose event time
lies in the window `[start_w(M), M]`, M being the max event time after r. A window of length w
is made of w / p panes of p ms (`Window.pane_ms`, event time floored to p): it starts at the
beginning of the pane w / p - 1 panes before M's pane (`Window.start_ms`), so it spans between
w - p and w, and readings leave it a whole pane at a time. Windows are anchored at the device's
max event time, not at r's own time: for in-order readings (the normal case) the two are the
same; an out-of-order reading (within L) sees the device's latest state with itself inserted.
Because w - p >= L, every accepted reading is inside every window at its arrival.

Per sensor (missing values are excluded from statistics and counted as bad):
- `last`: r's own value (NaN if missing); `delta`: last minus the value of r's predecessor (the
  accepted, already arrived reading just before r in (ts, arrival) order; NaN for late readings);
- `zscore`: (last - mean) / std over the longest window (NaN when std is 0);
- per window: `mean`, `std` (population, ddof=0), `min`, `max`, `slope` (least squares of the
  value over time, per second, times floored to `time_unit_ms`), `bad` (readings in the window
  whose value is missing or *stuck*: equal to its predecessor's at its arrival);
Per device: `count_<w>` (accepted readings in the window), `dt_prev_s` (ts - predecessor's ts).
Ratios: numerator / denominator of the named features, NaN on a zero denominator.

Exactness: statistics are computed from integer window sums of values snapped to 1/scale (see
`features.engine.kernel`), so the streaming and batch paths agree bit for bit and running sums never
drift, however long the device lives. min/max come from monotonic deques over raw values.

State per device (`features.engine.state`, compiled with numba), fixed in size whatever the reading
rate except for the event ids: per window the exact integer sums of each of its panes and of
the whole window (a reading is added to its pane on arrival, a pane is subtracted when the
window's start passes it), a min and a max monotonic deque per sensor over the longest min/max
window holding at most one element per pane, the accepted readings of the last L (a new
reading's predecessor is among them), and the device's event ids of the dedup horizon (a 64-bit
hash of the id with the latest event time, in one table shared by all devices; R defaults to
5 L: more than L catches every duplicate that could enter the state, an older duplicate is
late; the margin catches redeliveries minutes later).
All updates are amortised O(1) except an out-of-order insertion, which costs O(readings within
L). A rebuild needs the readings of the last `rebuild_horizon_ms`.

Event ids are compared by their 64-bit string hash within a device: two distinct ids of one
device alive in the dedup horizon at the same time collide with probability about
n / 2**64 per reading (n ids in the horizon), which would mark a reading duplicate. The batch
path compares the ids themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from features.contract.readings import SensorReading
from features.engine.definitions import FeatureSet
from features.engine.kernel import Plan
from features.engine.pools import KernelState, ensure_compiled
from features.engine.snapshot import export_slots, import_records

_DUP, _LATE = 1, 2


@dataclass(frozen=True, slots=True)
class FeatureUpdate:
    """The result of one reading: features in `feature_set.names` order (None: duplicate)."""

    values: np.ndarray | None
    duplicate: bool
    late: bool


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    """The result of many readings: `values` (rows, features), NaN rows for duplicates."""

    values: np.ndarray
    duplicate: np.ndarray
    late: np.ndarray


class OnlineFeatures:
    """Incremental features per device; see the module docstring for the exact semantics.

    The first instance of a process compiles the kernel (or loads it from numba's cache)."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        self._plan = Plan.of(feature_set)
        ensure_compiled(self._plan)
        self._sensors = feature_set.sensors
        self._reset()
        # reusable one-reading arrays for `update`
        self._one_slot = np.zeros(1, dtype=np.int64)
        self._one_ts = np.zeros(1, dtype=np.int64)
        self._one_eh = np.zeros(1, dtype=np.int64)
        self._one_flag = np.zeros(1, dtype=np.uint8)
        self._rows = np.arange(4096, dtype=np.int64)

    def _reset(self) -> None:
        self._st = KernelState(self._plan)
        self._slots: dict[str, int] = {}
        #: slots whose state changed since `take_changes` (for the state snapshots)
        self._touched = np.zeros(len(self._st.dev), dtype=np.bool_)
        self._removed: set[str] = set()
        self.late_count = 0
        self.duplicate_count = 0

    # ── public API ───────────────────────────────────────────────────────────────────────
    def update(self, reading: SensorReading) -> FeatureUpdate:
        s = self._slots.get(reading.device_id)
        if s is None:
            s = self._slots[reading.device_id] = self._st.new_slot()
        self._one_slot[0] = s
        self._one_ts[0] = reading.ts_ms
        self._one_eh[0] = hash(reading.event_id)
        get = reading.values.get
        X = np.array([[get(c) for c in self._sensors]], dtype=np.float64)
        out = np.empty((1, self._plan.n_features))
        st = self._st
        st.run(self._one_slot, self._one_ts, self._one_eh, X, out, self._rows, self._one_flag)
        self._touch(self._one_slot)
        flag = int(self._one_flag[0])
        if flag == _DUP:
            self.duplicate_count += 1
            return FeatureUpdate(None, True, False)
        if flag == _LATE:
            self.late_count += 1
        return FeatureUpdate(out[0], False, flag == _LATE)

    def update_many(self, readings: Iterable[SensorReading]) -> FeatureBatch:
        """Same as `update` for each reading in order, in one call of the kernel."""
        rs = readings if isinstance(readings, list) else list(readings)
        vals = [r.values for r in rs]
        X = np.empty((len(rs), len(self._sensors)), dtype=np.float64)
        for c, name in enumerate(self._sensors):
            X[:, c] = [v.get(name) for v in vals]  # None -> NaN
        return self._advance(
            [r.device_id for r in rs],
            np.array([r.ts_ms for r in rs], dtype=np.int64),
            np.array([hash(r.event_id) for r in rs], dtype=np.int64),
            X,
        )

    def update_columns(
        self,
        device_ids: list[str],
        ts_ms: np.ndarray,
        event_hash: np.ndarray,
        sensors: Mapping[str, np.ndarray],
    ) -> FeatureBatch:
        """`update_many` of readings given as columns (no object per reading): device ids,
        event times, `hash(event_id)` of each (int64) and each sensor's values (NaN where
        missing; a sensor of the feature set absent from `sensors` is missing everywhere)."""
        n = len(device_ids)
        X = np.full((n, len(self._sensors)), np.nan)
        for c, name in enumerate(self._sensors):
            col = sensors.get(name)
            if col is not None:
                X[:, c] = col
        return self._advance(device_ids, ts_ms, event_hash, X)

    def _advance(
        self, device_ids: list[str], ts_ms: np.ndarray, event_hash: np.ndarray, X: np.ndarray
    ) -> FeatureBatch:
        n = len(device_ids)
        slots = self._slots
        get = slots.get
        sl = list(map(get, device_ids))
        if None in sl:
            new = list(dict.fromkeys(d for d, s in zip(device_ids, sl, strict=True) if s is None))
            for d, s in zip(new, self._st.new_slots(len(new)), strict=True):
                slots[d] = s
            sl = list(map(slots.__getitem__, device_ids))
        slot = np.array(sl, dtype=np.int64)
        out = np.empty((n, self._plan.n_features))
        flags = np.zeros(n, dtype=np.uint8)
        if n > len(self._rows):
            self._rows = np.arange(n, dtype=np.int64)
        ts = np.ascontiguousarray(ts_ms, dtype=np.int64)
        self._st.run(slot, ts, event_hash, X, out, self._rows, flags)
        self._touch(slot)
        dup = flags == _DUP
        late = flags == _LATE
        self.duplicate_count += int(dup.sum())
        self.late_count += int(late.sum())
        return FeatureBatch(out, dup, late)

    def rebuild(self, readings: Iterable[SensorReading]) -> None:
        """Forget all state and counters, then feed `readings` (in arrival order). To serve
        exactly the features of the full history, they must cover the last
        `feature_set.rebuild_horizon_ms` of event time of every device."""
        self._reset()
        batch: list[SensorReading] = []
        for r in readings:
            batch.append(r)
            if len(batch) >= 4096:
                self.update_many(batch)
                batch = []
        if batch:
            self.update_many(batch)
        self.late_count = 0
        self.duplicate_count = 0

    def drop_idle(self, before_ms: int) -> int:
        """Forget devices whose max event time is before `before_ms`; returns how many."""
        mx = self._st.dev[:, 0]
        idle = [d for d, s in self._slots.items() if mx[s] < before_ms]
        if idle:
            self._st.free_slots([self._slots.pop(d) for d in idle])
            self._removed.update(idle)
        return len(idle)

    # ── state snapshots (streaming.serving.snapshots) ────────────────────────────────────
    def _touch(self, slots: np.ndarray) -> None:
        if len(self._touched) < len(self._st.dev):
            grown = np.zeros(len(self._st.dev), dtype=np.bool_)
            grown[: len(self._touched)] = self._touched
            self._touched = grown
        self._touched[slots] = True

    def take_changes(self) -> tuple[list[str], list[str]]:
        """(devices whose state changed, devices forgotten) since the last call; the tracking
        starts afresh."""
        touched = self._touched
        changed = [d for d, s in self._slots.items() if s < len(touched) and touched[s]]
        removed = sorted(self._removed - self._slots.keys())
        self._touched = np.zeros(len(self._st.dev), dtype=np.bool_)
        self._removed = set()
        return changed, removed

    def mark_changed(self, devices: Iterable[str], removed: Iterable[str] = ()) -> None:
        """Count `devices` as changed again (and `removed` as forgotten): their snapshot was
        not committed."""
        slots = [s for d in devices if (s := self._slots.get(d)) is not None]
        if slots:
            self._touch(np.asarray(slots, dtype=np.int64))
        self._removed.update(removed)

    def devices(self) -> list[str]:
        return list(self._slots)

    def has_device(self, device_id: str) -> bool:
        return device_id in self._slots

    def export_devices(self, devices: Sequence[str]) -> list[bytes]:
        """The state of each device (known to this instance) as one record (`features.engine.snapshot`)."""
        return export_slots(self._st, [self._slots[d] for d in devices])

    def import_devices(self, devices: Sequence[str], records: Sequence[bytes]) -> None:
        """Restore devices from their records (devices already known are replaced). Raises
        `features.engine.snapshot.SnapshotError` for a bad record, before anything is changed."""
        known = [self._slots[d] for d in devices if d in self._slots]
        slots = import_records(self._st, records)  # checks every record first
        if known:
            self._st.free_slots(known)
        for d, s in zip(devices, slots, strict=True):
            self._slots[d] = s

    @property
    def device_count(self) -> int:
        return len(self._slots)

    def memory_bytes(self, device_id: str | None = None) -> int:
        """Bytes of state of one device (or the mean over devices when None): its chunks of
        the pools (capacity, not just use), its sums and fields, and an equal share of the
        event-id table."""
        if not self._slots:
            return 0
        share = self._st.table_bytes() // len(self._slots)
        if device_id is None:
            total = sum(self._st.chunk_bytes(s) for s in self._slots.values())
            return total // len(self._slots) + share
        return self._st.chunk_bytes(self._slots[device_id]) + share

    def state_sizes(self, device_id: str) -> tuple[int, int]:
        """(buffered readings, remembered event ids) of a device: for tests and diagnostics."""
        s = self._slots[device_id]
        return self._st.buffered(s), self._st.live_ids(s)
