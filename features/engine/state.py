"""The compiled streaming kernel: per-device state in flat numpy arrays, advanced by numba.

Semantics are those of `features.engine.online` (its docstring); this module only holds the data
layout and the loops. State of device `s` (a slot index):

- `dev[s]`: `MX` (max event time), the buffer chunk (`BOFF`, `BCAP`, `BLO`, `BHI`, relative to
  `BOFF`) and `PLO + w`, the index of the first pane inside window w;
- the buffer: accepted readings sorted by (ts, arrival), from the last one at or before
  `MX - lateness` on (the only readings a new reading's predecessor can be): `bts` (event time),
  `bx` (raw values, NaN missing). It spans the lateness bound, not the windows;
- `sums[s, w]`: the exact integer sums of window w (layout in `features.engine.kernel`), and per window
  a ring of its panes' sums `pane[s, off_w + k % panes_w]` tagged `ptag` with the pane index k:
  a reading is added to its pane and to the window when accepted, a whole pane is subtracted
  when the window's start passes it (int64 sums wrap, which the re-centred formulas of `_kernel`
  tolerate). Fixed size per device, whatever the reading rate;
- per sensor a min and a max monotonic deque over the longest min/max window: chunks of
  `qts`/`qv` described by `qm[s * 2S + j]` (`QOFF`, `QCAP`, `QLO`, `QHI`), j < S min of sensor
  j, j >= S max of sensor j - S (stored negated). Keys are event times floored to the gcd of
  the min/max windows' panes, at most one element per key: bounded by the panes, not the rate;
- event ids: one open-addressing table for all devices, rows (hash, latest event time, slot);
  entries older than the dedup horizon are swept when the table fills up.

Chunks live in shared pools; when a chunk is full the kernel compacts it in place if enough of
it is dead, otherwise it stops and asks the caller (`features.engine.pools`) to move it to a bigger
chunk, then the caller resumes at the same reading (nothing was changed for it yet).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from features.engine.kernel import BAD, PER_SENSOR, SQ, SQQ, ST, STQ, STT

# dev fields (PLO + w: index of the first pane of window w)
MX, BOFF, BCAP, BLO, BHI, PLO = 0, 1, 2, 3, 4, 5
# deque meta fields
QOFF, QCAP, QLO, QHI = 0, 1, 2, 3
# plan ints (`pi`)
P_UNIT, P_L, P_R, P_LONG, P_MMLONG, P_DT, P_F, P_S, P_W, P_QP = range(10)
# stop codes
DONE, GROW_BUFFER, GROW_DEQUE, REHASH = 0, 1, 2, 3
NEVER = -(2**62)
EMPTY = -1
HT_H, HT_TS, HT_SLOT = 0, 1, 2
NAN = math.nan


@njit(cache=True, inline="always")
def _bisect_right(a: np.ndarray, x: int, lo: int, hi: int) -> int:
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def _mix(h: int, s: int) -> int:
    z = h ^ (s * -7046029254386353131)  # 0x9E3779B97F4A7C15
    z ^= (z >> 31) & 0x1FFFFFFFF
    z *= -4658895280553007687  # 0xBF58476D1CE4E5B9
    z ^= (z >> 29) & 0x7FFFFFFFF
    return z


@njit(cache=True)
def _ht_find(ht: np.ndarray, h: int, s: int) -> int:
    """Row of (h, s) in the table (rows: hash, latest event time, slot), or of the empty row
    where it would go."""
    mask = len(ht) - 1
    k = _mix(h, s) & mask
    while ht[k, HT_SLOT] != EMPTY:
        if ht[k, HT_H] == h and ht[k, HT_SLOT] == s:
            return k
        k = (k + 1) & mask
    return k


@njit(cache=True)
def rehash(
    ht: np.ndarray, dev: np.ndarray, alive: np.ndarray, horizon: int, new_cap: int
) -> tuple[np.ndarray, int]:
    """A table of `new_cap` rows holding the entries still within their device's horizon."""
    nt = np.zeros((new_cap, 3), dtype=np.int64)
    nt[:, HT_SLOT] = EMPTY
    count = 0
    for k in range(len(ht)):
        s = ht[k, HT_SLOT]
        if s == EMPTY or not alive[s] or ht[k, HT_TS] <= dev[s, MX] - horizon:
            continue
        j = _ht_find(nt, ht[k, HT_H], s)
        nt[j] = ht[k]
        count += 1
    return nt, count


@njit(cache=True)
def count_live_ids(ht: np.ndarray, dev: np.ndarray, horizon: int, only: int) -> int:
    """Entries within their device's horizon (of slot `only`, or all when negative)."""
    c = 0
    for k in range(len(ht)):
        s = ht[k, HT_SLOT]
        if s != EMPTY and (only < 0 or s == only) and ht[k, HT_TS] > dev[s, MX] - horizon:
            c += 1
    return c


@njit(cache=True)
def ids_of_slots(
    ht: np.ndarray, dev: np.ndarray, horizon: int, want: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Live entries (hash, event time) of the slots where `want` is true, grouped by slot:
    rows `starts[s]:starts[s + 1]` are slot s's (for the state snapshots)."""
    counts = np.zeros(len(dev) + 1, dtype=np.int64)
    for k in range(len(ht)):
        s = ht[k, HT_SLOT]
        if s != EMPTY and want[s] and ht[k, HT_TS] > dev[s, MX] - horizon:
            counts[s + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    out = np.empty((starts[-1], 2), dtype=np.int64)
    for k in range(len(ht)):
        s = ht[k, HT_SLOT]
        if s != EMPTY and want[s] and ht[k, HT_TS] > dev[s, MX] - horizon:
            out[fill[s], 0] = ht[k, HT_H]
            out[fill[s], 1] = ht[k, HT_TS]
            fill[s] += 1
    return out, starts


@njit(cache=True)
def insert_ids(ht: np.ndarray, rows: np.ndarray) -> int:
    """Insert rows (hash, event time, slot) into the table (room is the caller's); returns
    how many were new."""
    n = 0
    for i in range(len(rows)):
        k = _ht_find(ht, rows[i, 0], rows[i, 2])
        if ht[k, HT_SLOT] == EMPTY:
            n += 1
        ht[k, HT_H] = rows[i, 0]
        ht[k, HT_TS] = rows[i, 1]
        ht[k, HT_SLOT] = rows[i, 2]
    return n


@njit(cache=True)
def _contrib(
    sums_w: np.ndarray,
    sign: int,
    t: int,
    x: np.ndarray,
    badm: int,
    scales: np.ndarray,
) -> None:
    """sums_w += sign * contribution of one reading (time unit t, raw values x, bad bits)."""
    sums_w[0] += sign
    for i in range(len(scales)):
        b = 1 + PER_SENSOR * i
        bad = (badm >> i) & 1
        xi = x[i]
        if xi != xi:
            sums_w[b + BAD] += sign * bad
            continue
        q = np.int64(np.rint(xi * scales[i]))
        sums_w[b] += sign
        sums_w[b + SQ] += sign * q
        sums_w[b + SQQ] += sign * (q * q)
        sums_w[b + BAD] += sign * bad
        sums_w[b + ST] += sign * t
        sums_w[b + STT] += sign * (t * t)
        sums_w[b + STQ] += sign * (t * q)


@njit(cache=True)
def _deque_push(qm: np.ndarray, d: int, qts: np.ndarray, qv: np.ndarray, t: int, x: float) -> None:
    """Insert (t, x) into min-deque d (room for one more element is guaranteed)."""
    off = qm[d, QOFF]
    lo = off + qm[d, QLO]
    hi = off + qm[d, QHI]
    if hi == lo or qts[hi - 1] <= t:
        k = hi
    else:
        k = _bisect_right(qts, t, lo, hi)
        if k < hi and x >= qv[k]:
            return  # not a candidate; nothing before it changes either
    if k > lo and qts[k - 1] == t and qv[k - 1] <= x:
        return  # same key (pane), leaves with it, no smaller: at most one element per key
    j = k
    while j > lo and qv[j - 1] >= x:
        j -= 1
    if j < k:  # replace [j, k) by the new element
        qv[j] = x
        qts[j] = t
        gap = k - j - 1
        if gap:
            for m in range(k, hi):
                qv[m - gap] = qv[m]
                qts[m - gap] = qts[m]
        qm[d, QHI] -= gap
    else:  # insert at k
        for m in range(hi, k, -1):
            qv[m] = qv[m - 1]
            qts[m] = qts[m - 1]
        qv[k] = x
        qts[k] = t
        qm[d, QHI] += 1


@njit(cache=True)
def _room_deque(qm: np.ndarray, d: int, qts: np.ndarray, qv: np.ndarray) -> bool:
    if qm[d, QHI] < qm[d, QCAP]:
        return True
    lo = qm[d, QLO]
    if lo * 4 < qm[d, QCAP]:
        return False
    off = qm[d, QOFF]
    n = qm[d, QHI] - lo
    for m in range(n):
        qts[off + m] = qts[off + lo + m]
        qv[off + m] = qv[off + lo + m]
    qm[d, QLO] = 0
    qm[d, QHI] = n
    return True


@njit(cache=True)
def _room_buffer(dev: np.ndarray, s: int, bts: np.ndarray, bx: np.ndarray) -> bool:
    if dev[s, BHI] < dev[s, BCAP]:
        return True
    lo = dev[s, BLO]
    if lo * 4 < dev[s, BCAP]:
        return False
    off = dev[s, BOFF]
    n = dev[s, BHI] - lo
    for m in range(n):
        bts[off + m] = bts[off + lo + m]
        for i in range(bx.shape[1]):
            bx[off + m, i] = bx[off + lo + m, i]
    dev[s, BLO] = 0
    dev[s, BHI] = n
    return True


@njit(cache=True, inline="always")
def _start(m: int, pane: int, panes: int) -> int:
    """First event time of a window of `panes` panes of `pane` ms when the max time is m."""
    return (m // pane - panes + 1) * pane


@njit(cache=True)
def _evict_panes(
    s: int, w: int, mx: int, dev: np.ndarray, sums: np.ndarray, pane: np.ndarray,
    ptag: np.ndarray, pw: np.ndarray,
) -> None:  # fmt: skip
    """Subtract from window w's sums every pane that starts before the window at `mx`."""
    p, n, base = pw[w, 0], pw[w, 1], pw[w, 2]
    kmin = mx // p - n + 1
    plo = dev[s, PLO + w]
    if kmin <= plo:
        return
    V = sums.shape[2]
    if kmin - plo >= n:  # every stored pane is out
        for r in range(base, base + n):
            if ptag[s, r] != NEVER:
                for v in range(V):
                    sums[s, w, v] -= pane[s, r, v]
                ptag[s, r] = NEVER
    else:
        for j in range(plo, kmin):
            r = base + j % n
            if ptag[s, r] == j:
                for v in range(V):
                    sums[s, w, v] -= pane[s, r, v]
                ptag[s, r] = NEVER
    dev[s, PLO + w] = kmin


@njit(cache=True)
def advance(
    i0: int,
    slot: np.ndarray,
    ts: np.ndarray,
    eh: np.ndarray,
    X: np.ndarray,
    out: np.ndarray,
    orow: np.ndarray,
    flags: np.ndarray,
    dev: np.ndarray,
    sums: np.ndarray,
    pane: np.ndarray,
    ptag: np.ndarray,
    bts: np.ndarray,
    bx: np.ndarray,
    qm: np.ndarray,
    qts: np.ndarray,
    qv: np.ndarray,
    ht: np.ndarray,
    ctl: np.ndarray,
    pi: np.ndarray,
    pw: np.ndarray,
    mm_w: np.ndarray,
    scales: np.ndarray,
    pair_rows: np.ndarray,
    fpos: np.ndarray,
    sfac: np.ndarray,
) -> tuple[int, int, int]:
    """Readings i0.. of (slot, ts, event hash, values X) in arrival order: features into row
    `orow[i]` of `out`, flags[i] (1 duplicate, 2 late). Returns (next reading, stop code,
    owner)."""
    unit = pi[P_UNIT]
    L = pi[P_L]
    R = pi[P_R]
    mml = pi[P_MMLONG]
    qp = pi[P_QP]
    S = pi[P_S]
    W = pi[P_W]
    S2 = 2 * S
    max_load = (len(ht) * 3) // 4
    mins = np.empty((W, S))
    maxs = np.empty((W, S))
    prev = np.empty(S)
    cv = np.empty(sums.shape[2], dtype=np.int64)
    for i in range(i0, len(ts)):
        s = slot[i]
        t = ts[i]
        # room first: nothing may change for reading i before a stop
        if not _room_buffer(dev, s, bts, bx):
            return i, GROW_BUFFER, s
        for j in range(S2):
            if not _room_deque(qm, s * S2 + j, qts, qv):
                return i, GROW_DEQUE, s * S2 + j
        if ctl[0] + 1 > max_load:
            return i, REHASH, 0
        m0 = dev[s, MX]
        # 1. duplicates
        k = _ht_find(ht, eh[i], s)
        dup = False
        if ht[k, HT_SLOT] == EMPTY:
            ht[k, HT_H] = eh[i]
            ht[k, HT_TS] = t
            ht[k, HT_SLOT] = s
            ctl[0] += 1
        else:
            dup = ht[k, HT_TS] > m0 - R
            if ht[k, HT_TS] < t:
                ht[k, HT_TS] = t
        mx = m0 if t <= m0 else t
        dev[s, MX] = mx
        if dup:
            flags[i] = 1
            out[orow[i], :] = NAN
            continue
        # 2. windows at mx: whole panes leave
        for w in range(W):
            _evict_panes(s, w, mx, dev, sums, pane, ptag, pw)
        # 3. late or accepted
        late = t < m0 - L
        x = X[i]
        dt = NAN
        prev[:] = NAN
        off = dev[s, BOFF]
        if late:
            flags[i] = 2
        else:
            flags[i] = 0
            lo = off + dev[s, BLO]
            hi = off + dev[s, BHI]
            p = hi if hi == lo or bts[hi - 1] <= t else _bisect_right(bts, t, lo, hi)
            if p > lo:
                prev[:] = bx[p - 1]
                dt = float(t - bts[p - 1])
            badm = 0
            for c in range(S):
                if x[c] != x[c] or x[c] == prev[c]:
                    badm |= 1 << c
            for m in range(hi, p, -1):
                bts[m] = bts[m - 1]
                bx[m] = bx[m - 1]
            bts[p] = t
            bx[p] = x
            dev[s, BHI] += 1
            cv[:] = 0
            _contrib(cv, 1, t // unit, x, badm, scales)
            for w in range(W):
                kp = t // pw[w, 0]
                r = pw[w, 2] + kp % pw[w, 1]
                if ptag[s, r] != kp:
                    ptag[s, r] = kp
                    pane[s, r, :] = 0
                for v in range(len(cv)):
                    pane[s, r, v] += cv[v]
                    sums[s, w, v] += cv[v]
            tq = (t // qp) * qp
            for c in range(S):
                if x[c] == x[c]:
                    _deque_push(qm, s * S2 + c, qts, qv, tq, x[c])
                    _deque_push(qm, s * S2 + S + c, qts, qv, tq, -x[c])
        # 4. the buffer keeps the last reading at or before mx - L (a predecessor) and later
        b = dev[s, BLO]
        bh = dev[s, BHI]
        thr_l = mx - L
        while b + 1 < bh and bts[off + b + 1] <= thr_l:
            b += 1
        dev[s, BLO] = b
        # 5. min and max
        mins[:] = NAN
        maxs[:] = NAN
        if mml >= 0:
            thr_long = _start(mx, pw[mml, 0], pw[mml, 1]) - 1
            for j in range(S2):
                d = s * S2 + j
                qoff = qm[d, QOFF]
                qlo = qoff + qm[d, QLO]
                qhi = qoff + qm[d, QHI]
                while qlo < qhi and qts[qlo] <= thr_long:
                    qlo += 1
                qm[d, QLO] = qlo - qoff
                if qlo == qhi:
                    continue
                c = j if j < S else j - S
                sign = 1.0 if j < S else -1.0
                for w in mm_w:
                    if w == mml:
                        v = qv[qlo]
                    else:
                        kk = _bisect_right(qts, _start(mx, pw[w, 0], pw[w, 1]) - 1, qlo, qhi)
                        if kk == qhi:
                            continue
                        v = qv[kk]
                    if j < S:
                        mins[w, c] = sign * v
                    else:
                        maxs[w, c] = sign * v
        finalize(out[orow[i]], sums[s], mins, maxs, x, prev, dt, scales, pair_rows, fpos, sfac, pi)
    return len(ts), DONE, 0


@njit(cache=True)
def compact_rows(out: np.ndarray, keep: np.ndarray) -> int:
    """Move the kept rows of `out` to its front, in order; returns how many."""
    k = 0
    for r in range(len(keep)):
        if keep[r]:
            if k != r:
                out[k] = out[r]
            k += 1
    return k


@njit(cache=True)
def finalize(
    out: np.ndarray,
    sums: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    last: np.ndarray,
    prev: np.ndarray,
    dt_ms: float,
    scales: np.ndarray,
    pair_rows: np.ndarray,
    fpos: np.ndarray,
    sfac: np.ndarray,
    pi: np.ndarray,
) -> None:
    """Features of one reading: `features.engine.kernel.finalize_one`, compiled (same operations).

    fpos: rows `last`, `delta`, `zscore` positions per sensor (first 3*S entries), then
    (position, window) of the counts, then (position, num, den) of the ratios; see `plan_arrays`.
    """
    S = pi[P_S]
    out[:] = NAN
    for r in range(pair_rows.shape[0]):
        row = pair_rows[r]
        w, i, base, pmean, pstd = row[0], row[1], row[2], row[3], row[4]
        pmin, pmax, pslope, pbad = row[5], row[6], row[7], row[8]
        need_std, is_long = row[9] != 0, row[10] != 0
        s = sums[w]
        n = s[base]
        if pbad >= 0:
            out[pbad] = float(s[base + BAD])
        if n <= 0:
            continue
        scale = scales[i]
        sq = s[base + SQ]
        nf = float(n)
        mean = (float(sq) / nf) / scale
        if pmean >= 0:
            out[pmean] = mean
        if pmin >= 0:
            out[pmin] = mins[w, i]
        if pmax >= 0:
            out[pmax] = maxs[w, i]
        a = sq // n
        sdf = float(sq - n * a)
        if need_std:
            sdd = s[base + SQQ] - 2 * a * sq + n * a * a
            v = (float(sdd) - sdf * sdf / nf) / nf
            std = math.sqrt(v if v > 0.0 else 0.0) / scale
            if pstd >= 0:
                out[pstd] = std
            zp = fpos[2 * S + i]
            if is_long and zp >= 0 and std > 0.0:
                out[zp] = (last[i] - mean) / std
        if pslope >= 0 and n > 1:
            st = s[base + ST]
            b = st // n
            stc = float(st - n * b)
            sttc = s[base + STT] - 2 * b * st + n * b * b
            stqc = s[base + STQ] - a * st - b * sq + n * a * b
            vt = float(sttc) - stc * stc / nf
            if vt > 0.0:
                out[pslope] = ((float(stqc) - stc * sdf / nf) / vt) * sfac[i]
    for i in range(S):
        if fpos[i] >= 0:
            out[fpos[i]] = last[i]
        if fpos[S + i] >= 0:
            out[fpos[S + i]] = last[i] - prev[i]
    k = 3 * S
    nc = fpos[k]
    for c in range(nc):
        out[fpos[k + 1 + 2 * c]] = float(sums[fpos[k + 2 + 2 * c], 0])
    k += 1 + 2 * nc
    if pi[P_DT] >= 0:
        out[pi[P_DT]] = dt_ms / 1000.0
    nr = fpos[k]
    for c in range(nr):
        p = fpos[k + 1 + 3 * c]
        den = out[fpos[k + 3 + 3 * c]]
        if den != 0.0:
            out[p] = out[fpos[k + 2 + 3 * c]] / den
