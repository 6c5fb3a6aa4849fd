"""The arithmetic both feature paths share: the layout of a window's integer sums, and the one
formula that turns them into features (a numpy version over many rows, a scalar version for
one reading; both perform the same IEEE operations in the same order, so they agree bit for bit).

Per window, the sums are a vector of `VEC` integers: `[count, (n, Sq, Sqq, bad, St, Stt, Stq)
per sensor]`, where q is the snapped value `round(x * scale)`, t the time in `time_unit_ms`
units, n the number of present values, bad the number of missing or stuck ones. Raw sums may
wrap modulo 2**64 in numpy; only `count, n, Sq, St` must be exact, and every statistic is taken
from sums re-centred on integer floors of the window means (exact in modular arithmetic), so the
result is the same whatever time origin or wrapping the sums went through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from features.definitions import FeatureSet

NAN = math.nan
PER_SENSOR = 7
N, SQ, SQQ, BAD, ST, STT, STQ = range(PER_SENSOR)


def vec_len(n_sensors: int) -> int:
    return 1 + PER_SENSOR * n_sensors


@dataclass(frozen=True)
class Plan:
    """Indices derived from a feature set, precomputed once."""

    fs: FeatureSet
    n_sensors: int
    n_windows: int
    vec: int
    window_ms: tuple[int, ...]
    minmax_windows: tuple[int, ...]  # windows that need min or max
    longest: int  # index of the longest window (z-scores)
    scales: tuple[float, ...]
    slope_factor: tuple[float, ...]  # per sensor: per-time-unit slope -> per-second, unscaled

    @staticmethod
    def of(fs: FeatureSet) -> Plan:
        ms = tuple(w.length_ms for w in fs.windows)
        return Plan(
            fs=fs,
            n_sensors=len(fs.sensors),
            n_windows=len(fs.windows),
            vec=vec_len(len(fs.sensors)),
            window_ms=ms,
            minmax_windows=tuple(
                i for i, w in enumerate(fs.windows) if "min" in w.aggs or "max" in w.aggs
            ),
            longest=ms.index(max(ms)),
            scales=tuple(float(s) for s in fs.scales),
            slope_factor=tuple(1000.0 / fs.time_unit_ms / s for s in fs.scales),
        )


def finalize_one(
    plan: Plan,
    sums: list[tuple[int, ...]],
    mins: list[list[float]],
    maxs: list[list[float]],
    last: list[float],
    prev: list[float],
    dt_ms: float,
) -> list[float]:
    """Features of one reading (see `finalize_many` for the inputs' meaning)."""
    fs = plan.fs
    out: list[float] = []
    sqrt = math.sqrt
    lw = plan.longest
    aggs_of = [w.aggs for w in fs.windows]
    cache: dict[tuple[int, str], float] = {}
    for i in range(plan.n_sensors):
        base = 1 + PER_SENSOR * i
        scale = plan.scales[i]
        x = last[i]
        stats: list[tuple[float, float, float]] = []  # per window: mean, std, slope
        for w in range(plan.n_windows):
            s = sums[w]
            aggs = aggs_of[w]
            n = s[base]
            mean = std = slope = NAN
            if n > 0:
                sq = s[base + SQ]
                nf = float(n)
                mean = (float(sq) / nf) / scale
                a = sq // n
                sd = sq - n * a
                sdd = s[base + SQQ] - 2 * a * sq + n * a * a
                sdf = float(sd)
                if "std" in aggs or w == lw:
                    v = (float(sdd) - sdf * sdf / nf) / nf
                    std = sqrt(v if v > 0.0 else 0.0) / scale
                if n > 1 and "slope" in aggs:
                    st = s[base + ST]
                    b = st // n
                    stc = float(st - n * b)
                    sttc = s[base + STT] - 2 * b * st + n * b * b
                    stqc = s[base + STQ] - a * st - b * sq + n * a * b
                    vt = float(sttc) - stc * stc / nf
                    if vt > 0.0:
                        slope = ((float(stqc) - stc * sdf / nf) / vt) * plan.slope_factor[i]
            stats.append((mean, std, slope))
            cache[(i, f"mean_{fs.windows[w].name}")] = mean
        mean_l, std_l, _ = stats[lw]
        for a in fs.sensor_aggs:
            if a == "last":
                out.append(x)
            elif a == "delta":
                out.append(x - prev[i])
            else:
                out.append((x - mean_l) / std_l if std_l > 0.0 else NAN)
        for w in range(plan.n_windows):
            aggs = aggs_of[w]
            mean, std, slope = stats[w]
            if "mean" in aggs:
                out.append(mean)
            if "std" in aggs:
                out.append(std)
            if "min" in aggs:
                out.append(mins[w][i])
            if "max" in aggs:
                out.append(maxs[w][i])
            if "slope" in aggs:
                out.append(slope)
            if "bad" in aggs:
                out.append(float(sums[w][base + BAD]))
    names = [w.name for w in fs.windows]
    for cw in fs.count_windows:
        out.append(float(sums[names.index(cw)][0]))
    out.append(dt_ms / 1000.0)
    sidx = {s: k for k, s in enumerate(fs.sensors)}
    for r in fs.ratios:
        i, j = sidx[r.numerator], sidx[r.denominator]
        if r.source == "last":
            num, den = last[i], last[j]
        else:
            num, den = cache[(i, r.source)], cache[(j, r.source)]
        out.append(num / den if den != 0.0 else NAN)
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

    sums: int64 (rows, windows, VEC); mins/maxs: float64 (rows, windows, sensors), NaN when
    the window has no present value or needs no min/max; last/prev: float64 (rows, sensors),
    the reading's own and its predecessor's values (NaN: missing/none); dt_ms: float64 (rows,)
    time since the predecessor. Returns float64 (rows, features) in `plan.fs.names` order.
    """
    fs = plan.fs
    rows = sums.shape[0]
    out = np.empty((rows, len(fs.names)), dtype=np.float64)
    col = 0
    lw = plan.longest
    cache: dict[tuple[int, str], np.ndarray] = {}
    with np.errstate(all="ignore"):
        for i in range(plan.n_sensors):
            base = 1 + PER_SENSOR * i
            scale = plan.scales[i]
            x = last[:, i]
            stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            for w in range(plan.n_windows):
                aggs = fs.windows[w].aggs
                s = sums[:, w, :]
                n = s[:, base]
                has = n > 0
                n1 = np.where(has, n, 1)
                nf = n1.astype(np.float64)
                sq = s[:, base + SQ]
                mean = np.where(has, (sq.astype(np.float64) / nf) / scale, NAN)
                a = sq // n1
                sd = sq - n1 * a
                sdf = sd.astype(np.float64)
                std = np.full(rows, NAN)
                slope = np.full(rows, NAN)
                if "std" in aggs or w == lw:
                    sdd = s[:, base + SQQ] - 2 * a * sq + n1 * a * a
                    v = (sdd.astype(np.float64) - sdf * sdf / nf) / nf
                    std = np.where(has, np.sqrt(np.where(v > 0.0, v, 0.0)) / scale, NAN)
                if "slope" in aggs:
                    st = s[:, base + ST]
                    b = st // n1
                    stc = (st - n1 * b).astype(np.float64)
                    sttc = s[:, base + STT] - 2 * b * st + n1 * b * b
                    stqc = s[:, base + STQ] - a * st - b * sq + n1 * a * b
                    vt = sttc.astype(np.float64) - stc * stc / nf
                    sl = ((stqc.astype(np.float64) - stc * sdf / nf) / vt) * plan.slope_factor[i]
                    slope = np.where((n > 1) & (vt > 0.0), sl, NAN)
                stats.append((mean, std, slope))
                cache[(i, f"mean_{fs.windows[w].name}")] = mean
            mean_l, std_l, _ = stats[lw]
            for agg in fs.sensor_aggs:
                if agg == "last":
                    out[:, col] = x
                elif agg == "delta":
                    out[:, col] = x - prev[:, i]
                else:
                    out[:, col] = np.where(std_l > 0.0, (x - mean_l) / std_l, NAN)
                col += 1
            for w in range(plan.n_windows):
                aggs = fs.windows[w].aggs
                mean, std, slope = stats[w]
                for agg, val in (
                    ("mean", mean),
                    ("std", std),
                    ("min", mins[:, w, i]),
                    ("max", maxs[:, w, i]),
                    ("slope", slope),
                ):
                    if agg in aggs:
                        out[:, col] = val
                        col += 1
                if "bad" in aggs:
                    out[:, col] = sums[:, w, base + BAD]
                    col += 1
        names = [w.name for w in fs.windows]
        for cw in fs.count_windows:
            out[:, col] = sums[:, names.index(cw), 0]
            col += 1
        out[:, col] = dt_ms / 1000.0
        col += 1
        sidx = {s: k for k, s in enumerate(fs.sensors)}
        for r in fs.ratios:
            i, j = sidx[r.numerator], sidx[r.denominator]
            if r.source == "last":
                num, den = last[:, i], last[:, j]
            else:
                num, den = cache[(i, r.source)], cache[(j, r.source)]
            out[:, col] = np.where(den != 0.0, num / den, NAN)
            col += 1
    assert col == len(fs.names)
    return out
