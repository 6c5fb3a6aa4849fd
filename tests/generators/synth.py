"""A small synthetic reading stream (random walks) for the feature paths' tests and benchmark.

Not the fleet simulator: just enough disorder to exercise the semantics — jittered cadence,
gaps, dropouts, stuck runs, equal timestamps, out-of-order arrivals within and beyond the
lateness bound, and duplicates (the same event re-sent later).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from features.contract.readings import SensorReading

#: Column names of the synthetic readings (shaped like the fleet's, for the feature tests).
SENSORS = ("temperature", "vibration", "pressure", "current", "rpm")

_BASE = np.array([60.0, 2.0, 6.0, 40.0, 1500.0])
_STEP = np.array([0.05, 0.02, 0.01, 0.3, 5.0])


def synthetic_readings(
    n_devices: int,
    per_device: int,
    *,
    seed: int = 0,
    cadence_ms: int = 30_000,
    out_of_order: float = 0.01,
    late: float = 0.002,
    duplicates: float = 0.005,
    dropout: float = 0.02,
    stuck: float = 0.03,
    lateness_ms: int = 120_000,
    t0_ms: int = 1_767_225_600_000,
) -> pd.DataFrame:
    """Readings in global arrival order; `seq` is the arrival rank (increasing per device)."""
    rng = np.random.default_rng(seed)
    n = n_devices * per_device
    dev = np.repeat(np.arange(n_devices), per_device)
    steps = rng.integers(cadence_ms // 2, cadence_ms * 3 // 2, size=n)
    steps[rng.random(n) < 0.002] *= 200  # gaps of hours
    steps[rng.random(n) < 0.01] = 0  # equal timestamps
    first = np.r_[True, dev[1:] != dev[:-1]]
    steps[first] = rng.integers(0, cadence_ms * 10, size=n_devices)
    grp_start = np.flatnonzero(first)
    cs = np.cumsum(steps)
    ts = t0_ms + cs - np.repeat(cs[grp_start] - steps[grp_start], per_device)
    walk = rng.normal(0.0, 1.0, size=(n, len(SENSORS))) * _STEP
    walk[first] = rng.normal(0.0, 5.0, size=(n_devices, len(SENSORS))) * _STEP
    cw = np.cumsum(walk, axis=0)
    vals = _BASE + cw - np.repeat(cw[grp_start] - walk[grp_start], per_device, axis=0)
    vals = np.abs(vals)
    for _ in range(3):  # stuck runs: repeat the previous value
        rep = (rng.random((n, len(SENSORS))) < stuck) & ~first[:, None]
        prev = np.roll(vals, 1, axis=0)
        vals = np.where(rep, prev, vals)
    vals[:, 3][rng.random(n) < 0.003] = 0.0  # current off
    vals[rng.random((n, len(SENSORS))) < dropout] = np.nan
    ids = np.array([f"{rng.integers(1 << 62):016x}-{i}" for i in range(n)], dtype=object)
    # arrival times: most on time, some within the lateness bound, a few beyond it
    delay = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    ooo = u < out_of_order
    delay[ooo] = rng.integers(1, lateness_ms, size=int(ooo.sum()))
    lt = (u >= out_of_order) & (u < out_of_order + late)
    delay[lt] = rng.integers(lateness_ms + cadence_ms * 2, lateness_ms * 10, size=int(lt.sum()))
    arrival = ts + delay
    df = pd.DataFrame(vals, columns=list(SENSORS))
    df.insert(0, "ts_ms", ts.astype(np.int64))
    df.insert(0, "device_id", np.array([f"dev-{d:04d}" for d in dev], dtype=object))
    df.insert(0, "event_id", ids)
    df["_arr"] = arrival
    dups = df[rng.random(n) < duplicates].copy()
    dups["_arr"] = dups["_arr"] + rng.integers(0, lateness_ms * 3, size=len(dups))
    df = pd.concat([df, dups], ignore_index=True)
    df = df.sort_values(["_arr"], kind="stable").reset_index(drop=True)
    df["seq"] = np.arange(len(df), dtype=np.int64)
    return df.drop(columns="_arr")


def to_readings(df: pd.DataFrame) -> Iterator[SensorReading]:
    """The rows as `SensorReading`s, in row order (NaN -> None); every column but the ids,
    time and `seq` is a sensor."""
    sensors = [c for c in df.columns if c not in ("event_id", "device_id", "ts_ms", "seq")]
    cols = [df[s].to_numpy() for s in sensors]
    for k, (eid, dev, ts) in enumerate(
        zip(df["event_id"].tolist(), df["device_id"].tolist(), df["ts_ms"].tolist(), strict=True)
    ):
        values: dict[str, float | None] = {}
        for s, col in zip(sensors, cols, strict=True):
            v = float(col[k])
            values[s] = None if v != v else v
        yield SensorReading(eid, dev, int(ts), values)
