"""The arithmetic both feature paths share: the layout of a window's integer sums, and the one
formula that turns them into features (a numpy version over many rows, a scalar version for
one reading; both perform the same IEEE operations in the same order, so they agree bit for bit).

Per window, the sums are a vector of `VEC` integers: `[count, (n, Sq, Sqq, bad, St, Stt, Stq)
per sensor]`, where q is the snapped value `round(x * scale)`, t the time in `time_unit_ms`
units, n the number of present values, bad the number of missing or stuck ones. Raw sums may
wrap modulo 2**64 in numpy; only `count, n, Sq, St` must be exact, and every statistic is taken
from sums re-centred on integer floors of the window means (exact in modular arithmetic), so the
result is the same whatever time origin or wrapping the sums went through. Exact as long as,
per window, n * (value range / resolution)**2 and n * (length / time unit)**2 stay below 2**63.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from features.engine.definitions import FeatureSet

NAN = math.nan
PER_SENSOR = 7
N, SQ, SQQ, BAD, ST, STT, STQ = range(PER_SENSOR)


def vec_len(n_sensors: int) -> int:
    return 1 + PER_SENSOR * n_sensors


@dataclass(frozen=True)
class Pair:
    """Where one (sensor, window)'s statistics go in the feature vector (-1: not wanted)."""

    w: int
    i: int
    base: int  # offset of the sensor's sums in the window vector
    mean: int
    std: int
    min: int
    max: int
    slope: int
    bad: int
    need_std: bool  # std wanted, or needed by the z-score
    is_long: bool  # the z-score's window


@dataclass(frozen=True)
class Plan:
    """Positions and constants derived from a feature set, precomputed once."""

    fs: FeatureSet
    n_sensors: int
    n_windows: int
    vec: int
    window_ms: tuple[int, ...]
    pane_ms: tuple[int, ...]  # per window (see `features.engine.definitions.Window`)
    minmax_windows: tuple[int, ...]
    longest: int
    scales: tuple[float, ...]
    slope_factor: tuple[float, ...]  # per sensor: per-time-unit slope -> per second, unscaled
    pairs: tuple[Pair, ...]  # sensor-major
    last: tuple[int, ...]
    delta: tuple[int, ...]
    zscore: tuple[int, ...]
    counts: tuple[tuple[int, int], ...]  # (position, window)
    dt: int
    ratios: tuple[tuple[int, int, int], ...]  # (position, numerator pos, denominator pos)
    n_features: int
    _pair_rows: tuple[tuple[int, int, int, int, int, int, int, int, int, bool, bool], ...] = field(
        default=(), repr=False, compare=False
    )

    @property
    def pair_rows(
        self,
    ) -> tuple[tuple[int, int, int, int, int, int, int, int, int, bool, bool], ...]:
        """`pairs` as plain tuples (unpacking is much cheaper than attribute access)."""
        return self._pair_rows

    def __post_init__(self) -> None:
        rows = tuple(
            (p.w, p.i, p.base, p.mean, p.std, p.min, p.max, p.slope, p.bad, p.need_std, p.is_long)
            for p in self.pairs
        )
        object.__setattr__(self, "_pair_rows", rows)

    @staticmethod
    def of(fs: FeatureSet) -> Plan:
        idx = fs.index
        ms = tuple(w.length_ms for w in fs.windows)
        longest = ms.index(max(ms))
        wnames = [w.name for w in fs.windows]
        zs = "zscore" in fs.sensor_aggs

        def pos(name: str) -> int:
            return idx.get(name, -1)

        pairs = []
        for i, s in enumerate(fs.sensors):
            for w, win in enumerate(fs.windows):
                p = {
                    a: pos(f"{s}__{a}_{win.name}")
                    for a in ("mean", "std", "min", "max", "slope", "bad")
                }
                pairs.append(
                    Pair(
                        w=w,
                        i=i,
                        base=1 + PER_SENSOR * i,
                        **p,
                        need_std=p["std"] >= 0 or (zs and w == longest),
                        is_long=w == longest,
                    )
                )
        return Plan(
            fs=fs,
            n_sensors=len(fs.sensors),
            n_windows=len(fs.windows),
            vec=vec_len(len(fs.sensors)),
            window_ms=ms,
            pane_ms=tuple(w.pane_ms for w in fs.windows),
            minmax_windows=tuple(
                i for i, w in enumerate(fs.windows) if "min" in w.aggs or "max" in w.aggs
            ),
            longest=longest,
            scales=tuple(float(s) for s in fs.scales),
            slope_factor=tuple(1000.0 / fs.time_unit_ms / s for s in fs.scales),
            pairs=tuple(pairs),
            last=tuple(pos(f"{s}__last") for s in fs.sensors),
            delta=tuple(pos(f"{s}__delta") for s in fs.sensors),
            zscore=tuple(pos(f"{s}__zscore") for s in fs.sensors),
            counts=tuple((pos(f"count_{c}"), wnames.index(c)) for c in fs.count_windows),
            dt=pos("dt_prev_s"),
            ratios=tuple(
                (
                    pos(r.name),
                    pos(f"{r.numerator}__{r.source}"),
                    pos(f"{r.denominator}__{r.source}"),
                )
                for r in fs.ratios
            ),
            n_features=len(fs.names),
        )


def finalize_one(
    plan: Plan,
    sums: Sequence[Sequence[int]],
    mins: Sequence[Sequence[float]],
    maxs: Sequence[Sequence[float]],
    last: Sequence[float],
    prev: Sequence[float],
    dt_ms: float,
) -> list[float]:
    """Features of one reading (see `finalize_many` for the inputs' meaning)."""
    out = [NAN] * plan.n_features
    sqrt = math.sqrt
    scales = plan.scales
    sfac = plan.slope_factor
    zpos = plan.zscore
    for w, i, base, pmean, pstd, pmin, pmax, pslope, pbad, need_std, is_long in plan.pair_rows:
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
            out[pmin] = mins[w][i]
        if pmax >= 0:
            out[pmax] = maxs[w][i]
        a = sq // n
        sdf = float(sq - n * a)
        if need_std:
            sdd = s[base + SQQ] - 2 * a * sq + n * a * a
            v = (float(sdd) - sdf * sdf / nf) / nf
            std = sqrt(v if v > 0.0 else 0.0) / scale
            if pstd >= 0:
                out[pstd] = std
            if is_long and zpos[i] >= 0 and std > 0.0:
                out[zpos[i]] = (last[i] - mean) / std
        if pslope >= 0 and n > 1:
            st = s[base + ST]
            b = st // n
            stc = float(st - n * b)
            sttc = s[base + STT] - 2 * b * st + n * b * b
            stqc = s[base + STQ] - a * st - b * sq + n * a * b
            vt = float(sttc) - stc * stc / nf
            if vt > 0.0:
                out[pslope] = ((float(stqc) - stc * sdf / nf) / vt) * sfac[i]
    for i, p in enumerate(plan.last):
        if p >= 0:
            out[p] = last[i]
    for i, p in enumerate(plan.delta):
        if p >= 0:
            out[p] = last[i] - prev[i]
    for p, w in plan.counts:
        out[p] = float(sums[w][0])
    if plan.dt >= 0:
        out[plan.dt] = dt_ms / 1000.0
    for p, a_, b_ in plan.ratios:
        den = out[b_]
        if den != 0.0:
            out[p] = out[a_] / den
    return out


def finalize_many(
    plan: Plan,
    sums: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    last: np.ndarray,
    prev: np.ndarray,
    dt_ms: np.ndarray,
) -> np.ndarray:
    """Features of many readings.

    sums: int64 (windows, VEC, rows) (each sum a contiguous row); mins/maxs: float64 (rows, windows, sensors), NaN when
    the window has no present value or needs no min/max; last/prev: float64 (rows, sensors),
    the reading's own and its predecessor's values (NaN: missing/none); dt_ms: float64 (rows,)
    time since the predecessor. Returns float64 (rows, features) in `plan.fs.names` order
    (a transposed view: each feature is contiguous).
    """
    rows = sums.shape[2]
    out = np.full((plan.n_features, rows), NAN)  # one contiguous row per feature
    with np.errstate(all="ignore"):
        for pr in plan.pairs:
            s = sums[pr.w]
            base = pr.base
            i = pr.i
            n = s[base]
            if pr.bad >= 0:
                out[pr.bad] = s[base + BAD]
            has = n > 0
            n1 = np.where(has, n, 1)
            nf = n1.astype(np.float64)
            sq = s[base + SQ]
            mean = (sq.astype(np.float64) / nf) / plan.scales[i]
            if pr.mean >= 0:
                out[pr.mean] = np.where(has, mean, NAN)
            if pr.min >= 0:
                out[pr.min] = mins[:, pr.w, i]
            if pr.max >= 0:
                out[pr.max] = maxs[:, pr.w, i]
            a = sq // n1
            sdf = (sq - n1 * a).astype(np.float64)
            if pr.need_std:
                sdd = s[base + SQQ] - 2 * a * sq + n1 * a * a
                v = (sdd.astype(np.float64) - sdf * sdf / nf) / nf
                std = np.sqrt(np.where(v > 0.0, v, 0.0)) / plan.scales[i]
                if pr.std >= 0:
                    out[pr.std] = np.where(has, std, NAN)
                if pr.is_long and plan.zscore[i] >= 0:
                    z = (last[:, i] - mean) / std
                    out[plan.zscore[i]] = np.where(has & (std > 0.0), z, NAN)
            if pr.slope >= 0:
                st = s[base + ST]
                b = st // n1
                stc = (st - n1 * b).astype(np.float64)
                sttc = s[base + STT] - 2 * b * st + n1 * b * b
                stqc = s[base + STQ] - a * st - b * sq + n1 * a * b
                vt = sttc.astype(np.float64) - stc * stc / nf
                sl = ((stqc.astype(np.float64) - stc * sdf / nf) / vt) * plan.slope_factor[i]
                out[pr.slope] = np.where((n > 1) & (vt > 0.0), sl, NAN)
        for i, p in enumerate(plan.last):
            if p >= 0:
                out[p] = last[:, i]
        for i, p in enumerate(plan.delta):
            if p >= 0:
                out[p] = last[:, i] - prev[:, i]
        for p, w in plan.counts:
            out[p] = sums[w, 0]
        if plan.dt >= 0:
            out[plan.dt] = dt_ms / 1000.0
        for p, a_, b_ in plan.ratios:
            den = out[b_]
            out[p] = np.where(den != 0.0, out[a_] / den, NAN)
    return out.T
