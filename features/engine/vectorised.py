"""The batch feature path written in vectorised numpy, independent of the compiled kernel that
`features.engine.batch.compute_features` runs by default (`engine="vectorised"` selects this one; the
parity tests hold the two, and the streaming path, equal).

It reproduces `features.engine.online` exactly (same semantics, documented there) from `(ts_ms, seq)`:

- arrival order per device is `seq` (row order when absent); M is a per-device running max;
  duplicates and late readings follow from it and from a running max per (device, event_id);
- window sums are differences of exact int64 prefix sums over the device's accepted readings
  sorted by (ts, seq), between `searchsorted` bounds of `[start_w(M), M]` (the window's first
  pane on, `features.engine.definitions.Window.start_ms`). The only readings of that
  range that had *not* arrived yet when r arrived are out-of-order readings j arriving after r
  (ts_j >= M_r - L); each such j is subtracted from the contiguous run of rows (in arrival
  order) it must not reach, with a difference array;
- min/max come from a sparse table (range-minimum queries, built level by level), the excluded
  not-yet-arrived positions splitting a row's range into gaps;
- predecessors skip the same not-yet-arrived positions.

Everything is numpy over all devices at once; nothing loops per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.engine.definitions import FeatureSet
from features.engine.kernel import BAD, PER_SENSOR, SQ, SQQ, ST, STQ, STT, Plan, finalize_many

_NEVER = -(2**62)
_CHUNK = 4096


def compute_features_vectorised(readings: pd.DataFrame, feature_set: FeatureSet) -> pd.DataFrame:
    """Features of every distinct reading (first arrival of an event id per device wins).

    Input columns: `event_id`, `device_id`, `ts_ms` (int64), one float64 column per sensor
    (NaN = missing), optional `seq` (arrival order within the device). Output: `event_id`,
    `device_id`, `ts_ms`, `late`, then one float64 column per `feature_set.names`, rows in
    input order.
    """
    fs = feature_set
    plan = Plan.of(fs)
    n_in = len(readings)
    names = list(fs.names)
    if n_in == 0:
        return empty_features(names)

    dev_codes, _ = pd.factorize(readings["device_id"], sort=False)
    ts_in = readings["ts_ms"].to_numpy(dtype=np.int64)
    seq_in = (
        readings["seq"].to_numpy(dtype=np.int64)
        if "seq" in readings.columns
        else np.arange(n_in, dtype=np.int64)
    )
    order = np.lexsort((np.arange(n_in), seq_in, dev_codes))  # arrival order, by device
    dev = dev_codes[order].astype(np.int64)
    ts = ts_in[order]
    xv = readings[list(fs.sensors)].to_numpy(dtype=np.float64)[order]

    n = n_in
    start = np.flatnonzero(np.r_[True, dev[1:] != dev[:-1]])
    t_lo = int(ts.min())
    # one int64 key orders (device, time): device * big + time offset
    span = int(ts.max()) - t_lo + fs.longest_window_ms + fs.dedup_horizon_ms + 1
    big = np.int64(1 << (span.bit_length() + 1))
    if (int(dev.max()) + 2) * int(big) >= 1 << 62:
        raise ValueError("too many devices for the event-time span of one batch")

    # ── M, duplicates, late ──────────────────────────────────────────────────────────────
    key = dev * big + (ts - t_lo)
    M_key = np.maximum.accumulate(key)  # per device running max: devices are increasing blocks
    M = M_key - dev * big + t_lo
    M0 = np.empty(n, dtype=np.int64)
    M0[1:] = M[:-1]
    M0[start] = _NEVER
    eid_codes = pd.factorize(readings["event_id"], sort=False)[0][order]
    grp = pd.Series(ts).groupby([dev, eid_codes], sort=False)
    seen = grp.cummax().groupby([dev, eid_codes], sort=False).shift(1).to_numpy()
    has_seen = ~np.isnan(seen.astype(np.float64))
    seen_i = np.where(has_seen, np.nan_to_num(seen.astype(np.float64)), 0).astype(np.int64)
    dup = has_seen & (seen_i > M0 - fs.dedup_horizon_ms)
    late = ~dup & (ts < M0 - fs.lateness_ms)
    acc = ~dup & ~late

    # ── accepted readings sorted by (device, ts, arrival) ────────────────────────────────
    acc_rows = np.flatnonzero(acc)
    srt = acc_rows[np.lexsort((acc_rows, ts[acc_rows], dev[acc_rows]))]
    m = len(srt)
    spos = np.full(n, -1, dtype=np.int64)
    spos[srt] = np.arange(m)
    s_key = key[srt]
    s_dev = dev[srt]
    s_start = np.searchsorted(s_key, s_dev * big - big // 2)  # device's first sorted position
    s_ts = ts[srt]
    s_xv = xv[srt]

    # ── not-yet-arrived exclusions: accepted j excluded from rows [a_j, j) ──────────────────
    a = np.searchsorted(M_key, key[srt], side="left")
    ex_j = np.flatnonzero(a < srt)  # sorted positions of accepted readings with a run
    run_lo, run_hi = a[ex_j], srt[ex_j]
    lens = run_hi - run_lo
    pair_row = np.repeat(run_lo, lens) + _ranges(lens)
    pair_pos = np.repeat(ex_j, lens)
    o = np.lexsort((pair_pos, pair_row))
    pair_row, pair_pos = pair_row[o], pair_pos[o]

    # ── predecessors (for delta, stuck, dt) ──────────────────────────────────────────────
    own = spos  # sorted position of accepted rows, -1 otherwise
    below = (own[pair_row] >= 0) & (pair_pos < own[pair_row])
    br, bp = pair_row[below], pair_pos[below]
    d = own[br] - 1 - bp
    ob = np.lexsort((d, br))
    br, d = br[ob], d[ob]
    grp_first = np.r_[True, br[1:] != br[:-1]] if len(br) else np.zeros(0, dtype=bool)
    rank = np.arange(len(br)) - np.maximum.accumulate(np.where(grp_first, np.arange(len(br)), 0))
    skip = np.zeros(n, dtype=np.int64)
    np.add.at(skip, br[d == rank], 1)
    prev_pos = np.where(acc, own - 1 - skip, -1)
    has_prev = acc & (prev_pos >= 0)
    has_prev[acc] &= prev_pos[acc] >= s_start[np.maximum(own[acc], 0)]
    pp = np.where(has_prev, prev_pos, 0)
    prev = np.where(has_prev[:, None], s_xv[pp] if m else np.nan, np.nan)
    dt_ms = np.where(has_prev, (ts - (s_ts[pp] if m else 0)).astype(np.float64), np.nan)

    # ── contributions, prefix sums ───────────────────────────────────────────────────────
    S = len(fs.sensors)
    present = ~np.isnan(xv)
    with np.errstate(invalid="ignore"):
        stuck = has_prev[:, None] & present & (xv == prev)
    bad = (~present) | stuck
    scales = np.asarray(fs.scales, dtype=np.int64)
    # contributions of the accepted readings in sorted order, one contiguous row per sum
    qs = np.where(present[srt], np.rint(np.where(present[srt], xv[srt], 0.0) * scales), 0).astype(
        np.int64
    )
    ps = present[srt].astype(np.int64)
    t = ts[srt] // fs.time_unit_ms
    c = np.empty((plan.vec, m), dtype=np.int64)
    c[0] = 1
    for i in range(S):
        b = 1 + PER_SENSOR * i
        q_i = qs[:, i]
        c[b] = ps[:, i]
        c[b + SQ] = q_i
        np.multiply(q_i, q_i, out=c[b + SQQ])
        c[b + BAD] = bad[srt, i]
        np.multiply(t, ps[:, i], out=c[b + ST])
        np.multiply(c[b + ST], t, out=c[b + STT])
        np.multiply(t, q_i, out=c[b + STQ])
    P = np.zeros((plan.vec, m + 1), dtype=np.int64)
    np.cumsum(c, axis=1, out=P[:, 1:])
    # corrections: row r loses every j in its exclusion set
    corr_rows, corr_inv = np.unique(pair_row, return_inverse=True)
    corr = np.zeros((len(corr_rows), plan.vec), dtype=np.int64)
    np.add.at(corr, corr_inv, c[:, pair_pos].T)

    # ── window bounds, min/max ───────────────────────────────────────────────────────────
    W = plan.n_windows
    bounds = []
    for w in range(W):
        p, panes = plan.pane_ms[w], plan.window_ms[w] // plan.pane_ms[w]
        start = (M // p - panes + 1) * p  # windows begin on a pane boundary
        lo = np.searchsorted(s_key, dev * big + (start - 1 - t_lo), side="right")
        hi = np.searchsorted(s_key, dev * big + (M - t_lo), side="right")
        bounds.append((lo, hi))
    mins = np.full((n, W, S), np.nan)
    maxs = np.full((n, W, S), np.nan)
    if m and plan.minmax_windows:
        mm = plan.minmax_windows
        k = len(mm)
        # all windows' queries at once: row r of window number j is query j * n + r
        lo = np.concatenate([bounds[w][0] for w in mm])
        hi = np.concatenate([bounds[w][1] for w in mm])
        pr = np.concatenate([pair_row + j * n for j in range(k)])
        pp = np.tile(pair_pos, k)
        mn, mx = _range_min_max(s_xv, lo, hi, pr, pp)
        for j, w in enumerate(mm):
            mins[:, w, :] = mn[j * n : (j + 1) * n]
            maxs[:, w, :] = mx[j * n : (j + 1) * n]

    # ── assemble rows (in input order), finalize in chunks ───────────────────────────────
    out_rows = np.flatnonzero(~dup)
    # computed in arrival order (device by device: sequential memory access), then put back
    # into input order
    perm = np.argsort(order[out_rows], kind="stable")
    corr_at = np.full(n, -1, dtype=np.int64)
    corr_at[corr_rows] = np.arange(len(corr_rows))
    values = np.empty((len(names), len(out_rows)), dtype=np.float64)  # feature-major
    for k in range(0, len(out_rows), _CHUNK):
        rows = out_rows[k : k + _CHUNK]
        sums = np.empty((W, plan.vec, len(rows)), dtype=np.int64)
        ci = corr_at[rows]
        has_c = np.flatnonzero(ci >= 0)
        for w in range(W):
            lo, hi = bounds[w]
            np.subtract(P[:, hi[rows]], P[:, lo[rows]], out=sums[w])
            sums[w][:, has_c] -= corr[ci[has_c]].T
        values[:, k : k + _CHUNK] = finalize_many(
            plan, sums, mins[rows], maxs[rows], xv[rows], prev[rows], dt_ms[rows]
        ).T
    values = values[:, perm]
    out_rows = out_rows[perm]
    src = order[out_rows]
    res = pd.DataFrame(
        {
            "event_id": readings["event_id"].take(src).reset_index(drop=True),
            "device_id": readings["device_id"].take(src).reset_index(drop=True),
            "ts_ms": ts[out_rows],
            "late": late[out_rows],
        }
    )
    feats = pd.DataFrame(values.T, columns=names, copy=False)
    return pd.concat([res, feats], axis=1)


def empty_features(names: list[str]) -> pd.DataFrame:
    """The output of a feature path for no readings (its columns and dtypes)."""
    empty = pd.DataFrame({"event_id": pd.Series(dtype=object)})
    empty["device_id"] = pd.Series(dtype=object)
    empty["ts_ms"] = pd.Series(dtype=np.int64)
    empty["late"] = pd.Series(dtype=bool)
    for name in names:
        empty[name] = pd.Series(dtype=np.float64)
    return empty


def _ranges(lens: np.ndarray) -> np.ndarray:
    """Concatenation of arange(l) for l in lens."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lens)
    idx = np.arange(total, dtype=np.int64)
    return idx - np.repeat(ends - lens, lens)


def _range_min_max(
    V: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    pair_row: np.ndarray,
    pair_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row r: min and max of V[lo_r:hi_r] (NaN ignored) over positions not excluded by
    the (pair_row, pair_pos) pairs (sorted by row, then position, all inside [lo, hi))."""
    n = len(lo)
    # queries: whole range for rows without exclusions, gaps for the others
    excluded_rows = np.unique(pair_row)
    plain = np.ones(n, dtype=bool)
    plain[excluded_rows] = False
    q_row = [np.flatnonzero(plain)]
    q_lo = [lo[plain]]
    q_hi = [hi[plain]]
    if len(pair_row):
        first = np.r_[True, pair_row[1:] != pair_row[:-1]]
        last = np.r_[pair_row[1:] != pair_row[:-1], True]
        gap_lo = np.where(first, lo[pair_row], np.r_[0, pair_pos[:-1] + 1])
        q_row += [pair_row, pair_row[last]]
        q_lo += [gap_lo, pair_pos[last] + 1]
        q_hi += [pair_pos, hi[pair_row[last]]]
    rows = np.concatenate(q_row)
    qlo = np.concatenate(q_lo)
    qhi = np.concatenate(q_hi)
    vmin = np.where(np.isnan(V), np.inf, V)
    vmax = np.where(np.isnan(V), -np.inf, V)
    rmin = np.full((len(rows), V.shape[1]), np.inf)
    rmax = np.full((len(rows), V.shape[1]), -np.inf)
    length = qhi - qlo
    ok = length > 0
    level = np.zeros(len(rows), dtype=np.int64)
    level[ok] = np.floor(np.log2(length[ok])).astype(np.int64)
    # guard against log2 rounding at exact powers of two
    level[ok] -= (np.left_shift(1, level[ok]) > length[ok]).astype(np.int64)
    level[ok] += (np.left_shift(1, level[ok] + 1) <= length[ok]).astype(np.int64)
    tmin, tmax = vmin, vmax
    top = int(level[ok].max()) if ok.any() else -1
    for k in range(top + 1):
        sel = np.flatnonzero(ok & (level == k))
        if len(sel):
            a, b = qlo[sel], qhi[sel] - (1 << k)
            rmin[sel] = np.minimum(tmin[a], tmin[b])
            rmax[sel] = np.maximum(tmax[a], tmax[b])
        if k < top:
            h = 1 << k
            tmin = np.minimum(tmin[:-h], tmin[h:])
            tmax = np.maximum(tmax[:-h], tmax[h:])
    out_min = np.full((n, V.shape[1]), np.inf)
    out_max = np.full((n, V.shape[1]), -np.inf)
    n_plain = len(q_row[0])
    out_min[q_row[0]] = rmin[:n_plain]
    out_max[q_row[0]] = rmax[:n_plain]
    np.minimum.at(out_min, rows[n_plain:], rmin[n_plain:])
    np.maximum.at(out_max, rows[n_plain:], rmax[n_plain:])
    out_min[np.isinf(out_min)] = np.nan
    out_max[np.isinf(out_max)] = np.nan
    return out_min, out_max
