"""The streaming feature path: per-device state, updated once per reading.

Semantics (shared with `features.batch`, which reproduces them from `(ts_ms, seq)`)
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
lies in the window `(M - w, M]`, M being the max event time after r. Windows are anchored at the
device's max event time, not at r's own time: for in-order readings (the normal case) the two
are the same; an out-of-order reading (within L) sees the device's latest state with itself
inserted. Because w > L, every accepted reading is inside every window at its arrival.

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
`features._kernel`), so the streaming and batch paths agree bit for bit and running sums never
drift, however long the device lives. min/max come from monotonic deques over raw values.

State per device: the accepted readings of the longest window plus one (a list sorted by event
time with exact prefix sums; out-of-order readings are inserted, which re-adds their
contribution to the few prefix entries after them), a min and a max deque per sensor, the event
ids of the dedup horizon. All updates are amortised O(1) except an out-of-order insertion, which
costs O(readings within L). A rebuild needs the readings of the last `rebuild_horizon_ms`.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import add, sub

import numpy as np

from features._kernel import PER_SENSOR, Plan, finalize_many, finalize_one
from features.definitions import FEATURE_SET, FeatureSet
from features.readings import SensorReading

NAN = float("nan")
_NEVER = -(2**62)
#: Re-origin the time of a device's sums when it drifts this many time units from the origin,
#: so that window sums of t**2 stay well inside int64.
_REBASE_UNITS = 1 << 22
_TRIM = 512
_MASK64 = (1 << 64) - 1


#: late, window sums, window mins, window maxs, own values, predecessor's values, dt (ms)
_Raw = tuple[
    bool,
    list[tuple[int, ...]],
    list[Sequence[float]],
    list[Sequence[float]],
    tuple[float, ...],
    tuple[float, ...],
    float,
]


@dataclass(frozen=True, slots=True)
class FeatureUpdate:
    """The result of one reading: features in `FEATURE_SET.names` order (None: duplicate)."""

    values: np.ndarray | None
    duplicate: bool
    late: bool


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    """The result of many readings: `values` (rows, features), NaN rows for duplicates."""

    values: np.ndarray
    duplicate: np.ndarray
    late: np.ndarray


class _MonoDeque:
    """Candidates for the minimum of every suffix (by (ts, arrival)) of a device's readings:
    the elements strictly smaller than everything after them. A window's minimum is its first
    candidate. Kept as two lists with a dead prefix (`head`)."""

    __slots__ = ("head", "ts", "v")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.v: list[float] = []
        self.head = 0

    def push(self, ts: int, x: float) -> None:
        v = self.v
        tl = self.ts
        if not tl or tl[-1] <= ts:  # in order
            head = self.head
            while len(v) > head and v[-1] >= x:
                v.pop()
                tl.pop()
            v.append(x)
            tl.append(ts)
            return
        k = bisect_right(tl, ts, self.head)
        if k < len(v) and x >= v[k]:
            return  # not a candidate; nothing before it changes either
        j = k
        while j > self.head and v[j - 1] >= x:
            j -= 1
        v[j:k] = [x]
        tl[j:k] = [ts]

    def evict(self, threshold: int) -> None:
        """Drop candidates with ts <= threshold."""
        tl = self.ts
        h = self.head
        n = len(tl)
        while h < n and tl[h] <= threshold:
            h += 1
        if h > _TRIM and h * 2 > n:
            del tl[:h]
            del self.v[:h]
            h = 0
        self.head = h

    def first_after(self, threshold: int) -> float:
        k = bisect_right(self.ts, threshold, self.head)
        return self.v[k] if k < len(self.v) else NAN

    def front(self) -> float:
        return self.v[self.head] if self.head < len(self.v) else NAN


class _Device:
    __slots__ = (
        "P",
        "entries",
        "fifo",
        "ids",
        "lo",
        "maxq",
        "minq",
        "mx",
        "t0",
        "ts",
    )

    def __init__(self, n_sensors: int, n_windows: int, t0: int) -> None:
        self.mx = _NEVER
        self.ids: dict[str, int] = {}
        self.fifo: deque[tuple[int, str]] = deque()
        self.ts: list[int] = []  # accepted readings, sorted by (ts, arrival)
        self.entries: list[tuple[tuple[float, ...], tuple[int, ...]]] = []  # (values, bad)
        self.P: list[tuple[int, ...]] = []  # prefix sums including the entry
        self.lo = [0] * n_windows  # first entry inside each window
        self.minq = [_MonoDeque() for _ in range(n_sensors)]
        self.maxq = [_MonoDeque() for _ in range(n_sensors)]  # over negated values
        self.t0 = t0


class OnlineFeatures:
    """Incremental features per device; see the module docstring for the exact semantics."""

    def __init__(self, feature_set: FeatureSet = FEATURE_SET) -> None:
        self.feature_set = feature_set
        self._plan = Plan.of(feature_set)
        self._devices: dict[str, _Device] = {}
        self.late_count = 0
        self.duplicate_count = 0
        p = self._plan
        self._zero = (0,) * p.vec
        self._missing = (0, 0, 0, 1, 0, 0, 0)
        self._sensors = feature_set.sensors
        self._scales = feature_set.scales
        self._unit = feature_set.time_unit_ms
        self._L = feature_set.lateness_ms
        self._R = feature_set.dedup_horizon_ms
        self._wms = p.window_ms
        self._lw = p.longest
        mm = p.minmax_windows
        self._mm = mm
        self._mm_longest = max(mm, key=lambda w: p.window_ms[w]) if mm else -1
        self._nan_row = (NAN,) * p.n_sensors
        self._nan_rows: list[Sequence[float]] = [self._nan_row] * p.n_windows
        self._mm_short = tuple(w for w in mm if w != self._mm_longest)

    # ── public API ───────────────────────────────────────────────────────────────────────
    def update(self, reading: SensorReading) -> FeatureUpdate:
        raw = self._advance(reading)
        if raw is None:
            return FeatureUpdate(None, True, False)
        late, sums, mins, maxs, last, prev, dt = raw
        vals = finalize_one(self._plan, sums, mins, maxs, last, prev, dt)
        return FeatureUpdate(np.array(vals, dtype=np.float64), False, late)

    def update_many(self, readings: Iterable[SensorReading]) -> FeatureBatch:
        """Same as `update` for each reading in order, with the arithmetic vectorised."""
        raws = [self._advance(r) for r in readings]
        p = self._plan
        n = len(raws)
        dup = np.array([r is None for r in raws], dtype=bool)
        late = np.array([r is not None and r[0] for r in raws], dtype=bool)
        values = np.full((n, len(self.feature_set.names)), NAN)
        kept = [r for r in raws if r is not None]
        if kept:
            k = len(kept)
            w, nv, ns = p.n_windows, p.vec, p.n_sensors
            flat_sums = [tuple(chain.from_iterable(r[1])) for r in kept]
            try:
                sums = np.array(flat_sums, dtype=np.int64)
            except OverflowError:  # wrap like numpy's cumulative sums do (see _kernel)
                wrapped = [[v & _MASK64 for v in row] for row in flat_sums]
                sums = np.array(wrapped, dtype=np.uint64).view(np.int64)
            floats = np.array(
                [(*chain(*r[2], *r[3]), *r[4], *r[5], r[6]) for r in kept], dtype=np.float64
            )
            mm = w * ns
            values[~dup] = finalize_many(
                p,
                np.ascontiguousarray(sums.reshape(k, w, nv).transpose(1, 2, 0)),
                floats[:, :mm].reshape(k, w, ns),
                floats[:, mm : 2 * mm].reshape(k, w, ns),
                floats[:, 2 * mm : 2 * mm + ns],
                floats[:, 2 * mm + ns : 2 * mm + 2 * ns],
                floats[:, -1],
            )
        return FeatureBatch(values, dup, late)

    def rebuild(self, readings: Iterable[SensorReading]) -> None:
        """Forget all state and counters, then feed `readings` (in arrival order). To serve
        exactly the features of the full history, they must cover the last
        `feature_set.rebuild_horizon_ms` of event time of every device."""
        self._devices.clear()
        for r in readings:
            self._advance(r)
        self.late_count = 0
        self.duplicate_count = 0

    def drop_idle(self, before_ms: int) -> int:
        """Forget devices whose max event time is before `before_ms`; returns how many."""
        idle = [d for d, st in self._devices.items() if st.mx < before_ms]
        for d in idle:
            del self._devices[d]
        return len(idle)

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def memory_bytes(self, device_id: str | None = None) -> int:
        """Estimated bytes of state of one device (or the mean over devices when None)."""
        if device_id is None:
            if not self._devices:
                return 0
            return sum(self._mem(d) for d in self._devices.values()) // len(self._devices)
        return self._mem(self._devices[device_id])

    # ── internals ────────────────────────────────────────────────────────────────────────
    def _mem(self, st: _Device) -> int:
        size = sys.getsizeof
        n = len(st.ts)
        total = size(st) + size(st.ts) + size(st.entries) + size(st.P) + size(st.ids)
        total += size(st.fifo)
        if n:
            e = st.entries[-1]
            p = st.P[-1]
            per = size(st.ts[-1]) + size(e) + size(e[0]) + size(e[1]) + size(p)
            per += sum(size(v) for v in e[0]) + sum(size(v) for v in p)
            total += n * per
        if st.fifo:
            ts, eid = st.fifo[-1]
            total += len(st.fifo) * (size((ts, eid)) + size(eid) + size(ts) + 64)
        for q in (*st.minq, *st.maxq):
            total += size(q.ts) + size(q.v) + (len(q.ts) - q.head) * 56
        return total

    def _contribution(
        self, t: int, xs: tuple[float, ...], bads: tuple[int, ...]
    ) -> tuple[int, ...]:
        c: list[int] = [1]
        scales = self._scales
        for i, x in enumerate(xs):
            if x != x:
                c.extend(self._missing)
            else:
                q = round(x * scales[i])
                c.extend((1, q, q * q, bads[i], t, t * t, t * q))
        return tuple(c)

    def _rebase(self, st: _Device, t0: int) -> None:
        st.t0 = t0
        unit = self._unit
        acc = self._zero
        newP = []
        for ts, (xs, bads) in zip(st.ts, st.entries, strict=True):
            acc = tuple(map(add, acc, self._contribution(ts // unit - t0, xs, bads)))
            newP.append(acc)
        st.P = newP

    def _advance(self, r: SensorReading) -> _Raw | None:
        ts = r.ts_ms
        st = self._devices.get(r.device_id)
        if st is None:
            st = _Device(len(self._sensors), len(self._wms), ts // self._unit)
            self._devices[r.device_id] = st
        m0 = st.mx
        # 1. duplicates (and the bounded id memory: ids whose latest time is within R of mx)
        eid = r.event_id
        ids = st.ids
        seen = ids.get(eid)
        dup = seen is not None and seen > m0 - self._R
        ids[eid] = ts if seen is None or seen < ts else seen
        mx = m0 if ts <= m0 else ts
        st.mx = mx
        fifo = st.fifo
        fifo.append((ts, eid))
        horizon = mx - self._R
        while fifo[0][0] <= horizon:
            old = fifo.popleft()[1]
            got = ids.get(old)
            if got is not None and got <= horizon:
                del ids[old]
        if dup:
            self.duplicate_count += 1
            return None
        # 2. late or accepted
        vals = r.values
        sensors = self._sensors
        late = ts < m0 - self._L
        tsl = st.ts
        P = st.P
        entries = st.entries
        minq = st.minq
        maxq = st.maxq
        prev: tuple[float, ...]
        if late:
            self.late_count += 1
            xs = tuple(NAN if (v := vals.get(s)) is None else float(v) for s in sensors)
            prev = self._nan_row
            dt = NAN
        else:
            p = bisect_right(tsl, ts)
            in_order = p == len(tsl)
            if p > 0:
                prev = entries[p - 1][0]
                dt = float(ts - tsl[p - 1])
            else:
                prev = self._nan_row
                dt = NAN
            tu = ts // self._unit - st.t0
            if tu > _REBASE_UNITS or tu < -_REBASE_UNITS:
                self._rebase(st, ts // self._unit)
                P = st.P
                tu = 0
            xl: list[float] = []
            bl: list[int] = []
            c: list[int] = [1]
            scales = self._scales
            for i, s in enumerate(sensors):
                v = vals.get(s)
                if v is None:
                    xl.append(NAN)
                    bl.append(1)
                    c.extend(self._missing)
                    continue
                x = float(v)
                xl.append(x)
                bad = 1 if x == prev[i] else 0
                bl.append(bad)
                q = round(x * scales[i])
                c.extend((1, q, q * q, bad, tu, tu * tu, tu * q))
                if in_order:  # monotonic deques, inlined (the common case)
                    d = minq[i]
                    dv = d.v
                    dts = d.ts
                    h = d.head
                    while len(dv) > h and dv[-1] >= x:
                        dv.pop()
                        dts.pop()
                    dv.append(x)
                    dts.append(ts)
                    d = maxq[i]
                    dv = d.v
                    dts = d.ts
                    h = d.head
                    nx = -x
                    while len(dv) > h and dv[-1] >= nx:
                        dv.pop()
                        dts.pop()
                    dv.append(nx)
                    dts.append(ts)
                else:
                    minq[i].push(ts, x)
                    maxq[i].push(ts, -x)
            xs = tuple(xl)
            ct = tuple(c)
            if in_order:
                P.append(tuple(map(add, P[-1], ct)) if P else ct)
                tsl.append(ts)
                entries.append((xs, tuple(bl)))
            else:
                base = P[p - 1] if p > 0 else self._zero
                P.insert(p, tuple(map(add, base, ct)))
                for k in range(p + 1, len(P)):
                    P[k] = tuple(map(add, P[k], ct))
                tsl.insert(p, ts)
                entries.insert(p, (xs, tuple(bl)))
        # 3. windows: evict, then sums, min and max
        lo = st.lo
        n = len(tsl)
        sums: list[tuple[int, ...]] = []
        zero = self._zero
        end = P[-1] if P else zero
        for w, wms in enumerate(self._wms):
            thr = mx - wms
            k = lo[w]
            while k < n and tsl[k] <= thr:
                k += 1
            lo[w] = k
            sums.append(tuple(map(sub, end, P[k - 1])) if k > 0 else end)
        klong = lo[self._lw]
        if klong > _TRIM + 1:
            cut = klong - 1
            del tsl[:cut]
            del P[:cut]
            del entries[:cut]
            for w in range(len(lo)):
                lo[w] -= cut
        mins: list[Sequence[float]] = self._nan_rows[:]
        maxs: list[Sequence[float]] = self._nan_rows[:]
        mm_long = self._mm_longest
        if mm_long >= 0:
            thr_long = mx - self._wms[mm_long]
            short = self._mm_short
            thr_short = [mx - self._wms[w] for w in short]
            for qs, out, sign in ((minq, mins, 1.0), (maxq, maxs, -1.0)):
                front: list[float] = []
                sh: list[list[float]] = [[] for _ in short]
                for d in qs:
                    dts = d.ts
                    h = d.head
                    if h < len(dts) and dts[h] <= thr_long:
                        h = bisect_right(dts, thr_long, h)
                        if h > _TRIM:
                            del dts[:h]
                            del d.v[:h]
                            h = 0
                        d.head = h
                    dv = d.v
                    nd = len(dv)
                    if h == nd:
                        front.append(NAN)
                        for lst in sh:
                            lst.append(NAN)
                        continue
                    front.append(sign * dv[h])
                    for lst, thr in zip(sh, thr_short, strict=True):
                        k = bisect_right(dts, thr, h)
                        lst.append(sign * dv[k] if k < nd else NAN)
                out[mm_long] = front
                for j, w in enumerate(short):
                    out[w] = sh[j]
        return late, sums, mins, maxs, xs, prev, dt


assert PER_SENSOR == 7
