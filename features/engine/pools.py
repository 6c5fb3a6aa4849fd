"""Owner of the compiled kernel's arrays (`features.engine.state`): device slots, chunk pools that
grow and compact, the event-id table, and the driver that resumes the kernel after it asks for
room. Used by `features.engine.online` (one reading or a micro-batch at a time) and `features.engine.batch`
(a whole history in one call)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from features.engine import state as nb
from features.engine.kernel import Plan

log = logging.getLogger(__name__)

_BUF0 = 32  # first buffer chunk of a device (readings)
_DQ0 = 16  # first chunk of a deque
_HT0 = 1024


@dataclass(frozen=True)
class PlanArrays:
    """`Plan` as the flat arrays the kernel takes."""

    pi: np.ndarray
    pw: np.ndarray
    mm_w: np.ndarray
    scales: np.ndarray
    pair_rows: np.ndarray
    fpos: np.ndarray
    sfac: np.ndarray

    @staticmethod
    def of(plan: Plan) -> PlanArrays:
        fs = plan.fs
        mm = plan.minmax_windows
        mm_long = max(mm, key=lambda w: plan.window_ms[w]) if mm else -1
        pi = np.zeros(10, dtype=np.int64)
        pi[nb.P_UNIT] = fs.time_unit_ms
        pi[nb.P_L] = fs.lateness_ms
        pi[nb.P_R] = fs.dedup_horizon_ms
        pi[nb.P_LONG] = plan.longest
        pi[nb.P_MMLONG] = mm_long
        pi[nb.P_DT] = plan.dt
        pi[nb.P_F] = plan.n_features
        pi[nb.P_S] = plan.n_sensors
        pi[nb.P_W] = plan.n_windows
        pi[nb.P_QP] = math.gcd(*(plan.pane_ms[w] for w in mm)) if mm else 1
        panes = [ms // p for ms, p in zip(plan.window_ms, plan.pane_ms, strict=True)]
        pw = np.zeros((plan.n_windows, 3), dtype=np.int64)  # pane ms, panes, first ring row
        pw[:, 0] = plan.pane_ms
        pw[:, 1] = panes
        pw[:, 2] = np.cumsum([0, *panes[:-1]])
        fpos: list[int] = [*plan.last, *plan.delta, *plan.zscore, len(plan.counts)]
        for p, w in plan.counts:
            fpos += [p, w]
        fpos.append(len(plan.ratios))
        for p, a, b in plan.ratios:
            fpos += [p, a, b]
        return PlanArrays(
            pi=pi,
            pw=pw,
            mm_w=np.asarray(mm, dtype=np.int64),
            scales=np.asarray(plan.scales, dtype=np.float64),
            pair_rows=np.asarray(plan.pair_rows, dtype=np.int64).reshape(-1, 11),
            fpos=np.asarray(fpos, dtype=np.int64),
            sfac=np.asarray(plan.slope_factor, dtype=np.float64),
        )


class KernelState:
    """All devices' state; `run` advances it over readings given as arrays."""

    def __init__(self, plan: Plan, *, devices: int = 64) -> None:
        if plan.n_sensors > 32:
            raise ValueError("at most 32 sensors (bad flags are a uint32 bitmask)")
        self.plan = plan
        self.pa = PlanArrays.of(plan)
        self.S = plan.n_sensors
        self.W = plan.n_windows
        self.horizon = plan.fs.dedup_horizon_ms
        self.dev = np.zeros((0, nb.PLO + self.W), dtype=np.int64)
        self.sums = np.zeros((0, self.W, plan.vec), dtype=np.int64)
        self.P = int(self.pa.pw[:, 1].sum())  # pane rows per device
        self.pane = np.zeros((0, self.P, plan.vec), dtype=np.int64)
        self.ptag = np.zeros((0, self.P), dtype=np.int64)
        self.alive = np.zeros(0, dtype=np.bool_)
        self.n_slots = 0
        self.free: list[int] = []
        self.bts = np.zeros(0, dtype=np.int64)
        self.bx = np.zeros((0, self.S), dtype=np.float64)
        self.b_used = 0
        self.qm = np.zeros((0, 4), dtype=np.int64)
        self.qts = np.zeros(0, dtype=np.int64)
        self.qv = np.zeros(0, dtype=np.float64)
        self.q_used = 0
        self.ht = np.zeros((_HT0, 3), dtype=np.int64)
        self.ht[:, nb.HT_SLOT] = nb.EMPTY
        self.ctl = np.zeros(1, dtype=np.int64)
        self._reserve_slots(devices)

    # ── slots ────────────────────────────────────────────────────────────────────────────
    def _reserve_slots(self, n: int) -> None:
        old = len(self.dev)
        if n <= old:
            return
        self.dev = np.concatenate([self.dev, np.zeros((n - old, self.dev.shape[1]), np.int64)])
        self.sums = np.concatenate([self.sums, np.zeros((n - old, *self.sums.shape[1:]), np.int64)])
        self.pane = np.concatenate([self.pane, np.zeros((n - old, *self.pane.shape[1:]), np.int64)])
        self.ptag = np.concatenate([self.ptag, np.zeros((n - old, self.P), np.int64)])
        self.alive = np.concatenate([self.alive, np.zeros(n - old, np.bool_)])
        self.qm = np.concatenate([self.qm, np.zeros((2 * self.S * (n - old), 4), np.int64)])

    def new_slot(self, buffer_cap: int = _BUF0, deque_cap: int = _DQ0) -> int:
        """A slot for a new device, with room for `buffer_cap` readings to begin with."""
        if self.free:
            s = self.free.pop()
        else:
            s = self.n_slots
            self.n_slots += 1
            if s >= len(self.dev):
                self._reserve_slots(max(64, 2 * len(self.dev)))
        self.dev[s] = 0
        self.dev[s, nb.MX] = nb.NEVER
        self.dev[s, nb.PLO :] = nb.NEVER
        self.sums[s] = 0
        self.ptag[s] = nb.NEVER
        self.alive[s] = True
        cap = max(4, buffer_cap)
        self.dev[s, nb.BOFF] = self._alloc_buffer(cap)
        self.dev[s, nb.BCAP] = cap
        for d in range(2 * self.S * s, 2 * self.S * (s + 1)):
            self.qm[d] = (self._alloc_deque(deque_cap), deque_cap, 0, 0)
        return s

    def new_slots(self, n: int) -> list[int]:
        """`n` slots for new devices (room for all of them reserved at once)."""
        need = self.n_slots + max(0, n - len(self.free))
        if need > len(self.dev):
            self._reserve_slots(max(64, 2 * len(self.dev), need))
        cap = n * max(4, _BUF0)
        if self.b_used + cap > len(self.bts):
            self._repack_buffers(cap)
        qcap = 2 * self.S * n * _DQ0
        if self.q_used + qcap > len(self.qts):
            self._repack_deques(qcap)
        return [self.new_slot() for _ in range(n)]

    def free_slots(self, slots: list[int]) -> None:
        for s in slots:
            self.alive[s] = False
            self.dev[s, nb.BCAP] = 0
            self.qm[2 * self.S * s : 2 * self.S * (s + 1), nb.QCAP] = 0
            self.free.append(s)
        self._rehash(len(self.ht))  # forget their event ids before the slots are reused

    # ── pools ────────────────────────────────────────────────────────────────────────────
    def _alloc_buffer(self, cap: int) -> int:
        if self.b_used + cap > len(self.bts):
            self._repack_buffers(cap)
        off = self.b_used
        self.b_used += cap
        return off

    def _repack_buffers(self, extra: int) -> None:
        live = np.flatnonzero(self.alive[: self.n_slots])
        caps = self.dev[live, nb.BCAP]
        size = max(1024, (3 * (int(caps.sum()) + extra)) // 2)
        bts = np.zeros(size, np.int64)
        bx = np.zeros((size, self.S), np.float64)
        pos = 0
        for s, cap in zip(live.tolist(), caps.tolist(), strict=True):
            off, hi = int(self.dev[s, nb.BOFF]), int(self.dev[s, nb.BHI])
            bts[pos : pos + hi] = self.bts[off : off + hi]
            bx[pos : pos + hi] = self.bx[off : off + hi]
            self.dev[s, nb.BOFF] = pos
            pos += cap
        self.bts, self.bx, self.b_used = bts, bx, pos

    def _grow_buffer(self, s: int) -> None:
        cap = int(self.dev[s, nb.BCAP])
        off, hi = int(self.dev[s, nb.BOFF]), int(self.dev[s, nb.BHI])
        old = (self.bts[off : off + hi].copy(), self.bx[off : off + hi].copy())
        self.dev[s, nb.BCAP] = 0  # the old chunk is dead for a repack
        new = self._alloc_buffer(2 * cap)
        self.bts[new : new + hi] = old[0]
        self.bx[new : new + hi] = old[1]
        self.dev[s, nb.BOFF] = new
        self.dev[s, nb.BCAP] = 2 * cap

    def _alloc_deque(self, cap: int) -> int:
        if self.q_used + cap > len(self.qts):
            self._repack_deques(cap)
        off = self.q_used
        self.q_used += cap
        return off

    def _repack_deques(self, extra: int) -> None:
        caps = self.qm[: 2 * self.S * self.n_slots, nb.QCAP]
        size = max(1024, (3 * (int(caps.sum()) + extra)) // 2)
        qts = np.zeros(size, np.int64)
        qv = np.zeros(size, np.float64)
        pos = 0
        for d in np.flatnonzero(caps).tolist():
            off, hi, cap = (int(v) for v in self.qm[d, [nb.QOFF, nb.QHI, nb.QCAP]])
            qts[pos : pos + hi] = self.qts[off : off + hi]
            qv[pos : pos + hi] = self.qv[off : off + hi]
            self.qm[d, nb.QOFF] = pos
            pos += cap
        self.qts, self.qv, self.q_used = qts, qv, pos

    def _grow_deque(self, d: int) -> None:
        cap = int(self.qm[d, nb.QCAP])
        off, hi = int(self.qm[d, nb.QOFF]), int(self.qm[d, nb.QHI])
        old_ts, old_v = self.qts[off : off + hi].copy(), self.qv[off : off + hi].copy()
        self.qm[d, nb.QCAP] = 0
        new = self._alloc_deque(2 * cap)
        self.qts[new : new + hi] = old_ts
        self.qv[new : new + hi] = old_v
        self.qm[d, nb.QOFF] = new
        self.qm[d, nb.QCAP] = 2 * cap

    def reserve_ids(self, n: int) -> None:
        """Size the event-id table for `n` live ids up front (saves sweeps over a history)."""
        cap = _HT0
        while cap * 3 < n * 4:
            cap *= 2
        if cap > len(self.ht):
            self._rehash(cap)

    def _rehash(self, min_cap: int) -> None:
        live = nb.count_live_ids(self.ht, self.dev, self.horizon, -1)
        cap = max(_HT0, min_cap if min_cap > 0 else 0)
        while cap * 45 < live * 100:  # load at most 0.45 after a sweep (0.75 before the next)
            cap *= 2
        self.ht, count = nb.rehash(self.ht, self.dev, self.alive, self.horizon, cap)
        self.ctl[0] = count

    # ── driver ───────────────────────────────────────────────────────────────────────────
    def run(
        self,
        slot: np.ndarray,
        ts: np.ndarray,
        eh: np.ndarray,
        X: np.ndarray,
        out: np.ndarray,
        orow: np.ndarray,
        flags: np.ndarray,
    ) -> None:
        """Advance over readings (slots already assigned), features of reading i into row
        `orow[i]` of `out` (rows, F)."""
        pa = self.pa
        i = 0
        n = len(ts)
        while i < n:
            i, code, owner = nb.advance(
                i, slot, ts, eh, X, out, orow, flags, self.dev, self.sums, self.pane, self.ptag,
                self.bts, self.bx, self.qm, self.qts, self.qv, self.ht, self.ctl, pa.pi, pa.pw, pa.mm_w, pa.scales, pa.pair_rows, pa.fpos, pa.sfac,
            )  # fmt: skip
            if code == nb.GROW_BUFFER:
                self._grow_buffer(owner)
            elif code == nb.GROW_DEQUE:
                self._grow_deque(owner)
            elif code == nb.REHASH:
                self._rehash(0)

    # ── introspection ────────────────────────────────────────────────────────────────────
    def buffered(self, s: int) -> int:
        return int(self.dev[s, nb.BHI] - self.dev[s, nb.BLO])

    def live_ids(self, s: int) -> int:
        return int(nb.count_live_ids(self.ht, self.dev, self.horizon, s))

    def chunk_bytes(self, s: int) -> int:
        """Bytes of the chunks, sums and fields held by one device (its share of the event-id
        table is added by the caller)."""
        per_reading = self.bts.itemsize + self.S * self.bx.itemsize
        qcap = int(self.qm[2 * self.S * s : 2 * self.S * (s + 1), nb.QCAP].sum())
        fixed = self.dev.shape[1] * 8 + self.sums[0].nbytes + 2 * self.S * 4 * 8
        fixed += self.pane[0].nbytes + self.ptag[0].nbytes
        return int(self.dev[s, nb.BCAP]) * per_reading + qcap * 16 + fixed

    def table_bytes(self) -> int:
        return int(self.ht.nbytes)


_COMPILED: list[float] = []


def ensure_compiled(plan: Plan) -> float:
    """Compile or load the kernel once per process; returns the seconds that took."""
    if not _COMPILED:
        _COMPILED.append(warm_up(plan))
    return _COMPILED[0]


def warm_up(plan: Plan) -> float:
    """Compile (or load from the cache) the kernel; returns the seconds it took."""
    t = time.perf_counter()
    st = KernelState(plan, devices=1)
    s = st.new_slot()
    n = 3
    X = np.ones((n, plan.n_sensors))
    out = np.empty((n, plan.n_features))
    st.run(
        np.full(n, s, np.int64),
        np.arange(n, dtype=np.int64) * 1000,
        np.arange(n, dtype=np.int64),
        X,
        out,
        np.arange(n, dtype=np.int64),
        np.zeros(n, np.uint8),
    )
    nb.compact_rows(out, np.ones(n, np.bool_))
    st._rehash(0)
    took = time.perf_counter() - t
    log.debug("feature kernel ready in %.2f s", took)
    return took
