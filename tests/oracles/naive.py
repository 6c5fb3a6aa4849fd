"""A direct, slow implementation of the feature semantics (`features.engine.online` docstring): every
window is recomputed from the raw readings for every reading. The reference the tests check
both paths against, and the baseline of the benchmark. Statistics use numpy's two-pass
formulas on the snapped values, not the integer sums of the fast paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from features.contract.readings import SensorReading
from features.engine.definitions import WINDOW_AGGS, FeatureSet


@dataclass
class _Acc:
    ts: int
    seq: int
    x: np.ndarray  # raw values, NaN missing
    bad: np.ndarray  # missing or stuck at arrival


@dataclass
class _Dev:
    m: int
    arrivals: list[tuple[str, int]]  # (event_id, ts) of every arrival
    acc: list[_Acc]


def naive_features(
    readings: Iterable[SensorReading], fs: FeatureSet
) -> list[tuple[np.ndarray | None, bool]]:
    """Per reading in arrival order: (features or None for a duplicate, late)."""
    devs: dict[str, _Dev] = {}
    out: list[tuple[np.ndarray | None, bool]] = []
    scales = np.asarray(fs.scales, dtype=np.float64)
    longest = max(fs.windows, key=lambda w: w.length_ms)
    for seq, r in enumerate(readings):
        d = devs.setdefault(r.device_id, _Dev(-(2**62), [], []))
        m0 = d.m
        dup = any(e == r.event_id and t > m0 - fs.dedup_horizon_ms for e, t in d.arrivals)
        d.arrivals.append((r.event_id, r.ts_ms))
        d.m = max(m0, r.ts_ms)
        if dup:
            out.append((None, False))
            continue
        x = np.array(
            [np.nan if r.values.get(s) is None else float(r.values[s]) for s in fs.sensors]  # type: ignore[arg-type]
        )
        late = r.ts_ms < m0 - fs.lateness_ms
        prev = np.full(len(fs.sensors), np.nan)
        dt = np.nan
        if not late:
            before = [a for a in d.acc if (a.ts, a.seq) < (r.ts_ms, seq)]
            p = max(before, key=lambda a: (a.ts, a.seq)) if before else None
            if p is not None:
                prev, dt = p.x, float(r.ts_ms - p.ts)
            bad = np.isnan(x) | (x == prev)
            d.acc.append(_Acc(r.ts_ms, seq, x, bad))
        m = d.m
        feats: dict[str, float] = {}
        for w in fs.windows:
            rows = [a for a in d.acc if w.start_ms(m) <= a.ts <= m]
            feats[f"count_{w.name}"] = float(len(rows))
            for i, s in enumerate(fs.sensors):
                pres = [a for a in rows if not np.isnan(a.x[i])]
                qv = np.array([np.rint(a.x[i] * scales[i]) for a in pres])
                tv = np.array([a.ts // fs.time_unit_ms for a in pres], dtype=np.float64)
                stats = dict.fromkeys(WINDOW_AGGS, np.nan)
                stats["bad"] = float(sum(int(a.bad[i]) for a in rows))
                if len(pres):
                    stats["mean"] = float(qv.mean() / scales[i])
                    stats["std"] = float(qv.std() / scales[i])
                    stats["min"] = float(min(a.x[i] for a in pres))
                    stats["max"] = float(max(a.x[i] for a in pres))
                    tc = tv - tv.mean()
                    den = float((tc * tc).sum())
                    if len(pres) > 1 and den > 0:
                        slope = float((tc * (qv - qv.mean())).sum() / den)
                        stats["slope"] = slope * 1000.0 / fs.time_unit_ms / scales[i]
                for a, v in stats.items():
                    feats[f"{s}__{a}_{w.name}"] = v
        for i, s in enumerate(fs.sensors):
            feats[f"{s}__last"] = float(x[i])
            feats[f"{s}__delta"] = float(x[i] - prev[i])
            mean, std = feats[f"{s}__mean_{longest.name}"], feats[f"{s}__std_{longest.name}"]
            feats[f"{s}__zscore"] = float((x[i] - mean) / std) if std > 0 else np.nan
        feats["dt_prev_s"] = dt / 1000.0
        for ratio in fs.ratios:
            key = "__" + ratio.source if ratio.source != "last" else "__last"
            num, den = feats[ratio.numerator + key], feats[ratio.denominator + key]
            feats[ratio.name] = num / den if den != 0 and not np.isnan(den) else np.nan
        out.append((np.array([feats[n] for n in fs.names]), late))
    return out
