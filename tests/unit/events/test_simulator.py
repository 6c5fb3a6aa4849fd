"""The simulator: deterministic for a seed, plausible, and its failures announce themselves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from features.spec import load_spec
from streaming.sources.sim import FAULTS, SimConfig, Simulator, Step

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names
SENSOR_RANGES = FLEET.ranges

HOUR_MS = 3_600_000
FAULT = {f.name: f for f in FAULTS}
DIRECTION = {"temperature": 1, "vibration": 1, "pressure": -1, "current": 1, "rpm": -1}


@dataclass
class Run:
    sim: Simulator
    ts: np.ndarray  # (steps, n)
    values: np.ndarray  # (steps, n, 5)
    fault: np.ndarray  # (steps, n)
    running: np.ndarray  # (steps, n)
    steps: list[Step]


def _run(devices: int, days: float, interval_s: float, seed: int) -> Run:
    sim = Simulator(SimConfig(devices=devices, seed=seed, interval_s=interval_s))
    steps = [sim.step() for _ in range(round(days * 86400 / interval_s))]
    return Run(
        sim,
        np.stack([s.ts_ms for s in steps]),
        np.stack([s.values for s in steps]),
        np.stack([s.fault for s in steps]),
        np.stack([s.running for s in steps]),
        steps,
    )


@pytest.fixture(scope="module", params=[11, 12])
def fleet_run(request: pytest.FixtureRequest) -> Run:
    """300 devices for 14 days at one reading per 10 minutes."""
    return _run(300, 14, 600, request.param)


def test_same_seed_same_everything_other_seed_differs() -> None:
    a, b, c = _run(50, 2, 300, 5), _run(50, 2, 300, 5), _run(50, 2, 300, 6)
    np.testing.assert_array_equal(a.values, b.values)  # NaN positions included
    np.testing.assert_array_equal(a.ts, b.ts)
    assert [s.event_ids.to_pylist() for s in a.steps] == [s.event_ids.to_pylist() for s in b.steps]
    assert [s.maintenance for s in a.steps] == [s.maintenance for s in b.steps]
    assert a.sim.labels() == b.sim.labels()
    assert a.sim.fleet.device_ids == b.sim.fleet.device_ids
    assert not np.array_equal(np.nan_to_num(a.values), np.nan_to_num(c.values))


def test_one_reading_per_device_per_step_at_event_time(fleet_run: Run) -> None:
    ts, n = fleet_run.ts, fleet_run.sim.size
    interval = fleet_run.sim.interval_ms
    assert ts.shape == (2016, n)
    np.testing.assert_array_equal(np.diff(ts, axis=0), interval)  # fixed phase per device
    start = fleet_run.sim.config.start_ms
    assert ((ts[0] >= start) & (ts[0] < start + interval)).all()
    ids = np.concatenate([s.event_ids.to_numpy(zero_copy_only=False) for s in fleet_run.steps])
    assert len(np.unique(ids)) == ids.size


def test_values_are_within_the_contract_and_look_physical(fleet_run: Run) -> None:
    v = fleet_run.values
    for j, name in enumerate(SENSORS):
        lo, hi = SENSOR_RANGES[name]
        col = v[..., j]
        assert np.nanmin(col) >= lo and np.nanmax(col) <= hi
    running = fleet_run.running & (fleet_run.fault < 0)
    temp, rpm = v[..., 0][running], v[..., 4][running]
    assert 20 < np.nanmedian(temp) < 80
    assert 500 < np.nanmedian(rpm) < 3000
    dropouts = np.isnan(v).mean()
    assert 0.0002 < dropouts < 0.005  # configured 0.1 % per sensor reading
    # A daily load cycle: mean current differs between the busiest and the quietest local hour.
    local = fleet_run.ts + (fleet_run.sim.fleet.utc_offset_h * HOUR_MS).astype(np.int64)
    hour = (local // HOUR_MS) % 24
    cur = np.where(running, v[..., 3], np.nan)
    by_hour = [np.nanmean(cur[hour == h]) for h in range(24)]
    assert max(by_hour) > 1.15 * min(by_hour)


def test_stuck_sensors_repeat_their_value(fleet_run: Run) -> None:
    v = fleet_run.values[..., 3]  # current is noisy: equal neighbours only when stuck
    same = (v[1:] == v[:-1]) & (fleet_run.running[1:] & fleet_run.running[:-1])
    assert same.sum() > 10


def test_dozens_of_failures_and_repairs(fleet_run: Run) -> None:
    labels = fleet_run.sim.labels()
    failed = [x for x in labels if x.failed]
    assert len(failed) >= 24
    assert 0.03 <= len({x.device_id for x in failed}) / 300 <= 0.3
    assert any(not x.failed and x.end_ms is not None for x in labels)  # repaired first
    events = [m for s in fleet_run.steps for m in s.maintenance]
    failures = [m for m in events if m.kind == "failure"]
    assert sorted((m.device_id, m.ts_ms) for m in failures) == sorted(
        (x.device_id, x.end_ms) for x in failed
    )
    for m in failures:  # every failure is followed by its repair (or the run ends first)
        later = [e for e in events if e.device_id == m.device_id and e.ts_ms > m.ts_ms]
        assert not later or (later[0].kind, later[0].fault_type) == ("repair", m.fault_type)


def _healthy_fit(run: Run, machine: str, j: int) -> tuple[np.ndarray, float]:
    """OLS of sensor j on (1, rpm, rpm², time-of-day sin/cos, site) over healthy running readings of
    one machine type: what a simple model learns as "normal". Returns coefficients and the
    (robust) standard deviation of relative residuals."""
    cols = np.array([m == machine for m in run.sim.fleet.machine_types])
    ok = (run.fault < 0) & run.running & cols[None, :]
    x, y = _design(run, ok), run.values[..., j][ok]
    keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    coef, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
    rel = (y[keep] - x[keep] @ coef) / np.abs(x[keep] @ coef)
    return coef, float(1.4826 * np.median(np.abs(rel - np.median(rel))))  # robust: spikes


def _design(run: Run, mask: np.ndarray) -> np.ndarray:
    rpm = run.values[..., 4][mask] / 1000
    phase = 2 * np.pi * ((run.ts[mask] // 60_000) % 1440) / 1440
    site = np.broadcast_to(run.sim.fleet.site[None, :], mask.shape)[mask]
    sites = [(site == s).astype(float) for s in range(1, int(run.sim.fleet.site.max()) + 1)]
    return np.stack([np.ones_like(rpm), rpm, rpm**2, np.sin(phase), np.cos(phase), *sites], axis=1)


def test_every_failure_is_preceded_by_its_degradation_signal(fleet_run: Run) -> None:
    """Gradual faults: from 3 h to 1 h before the failure, the fault's primary sensor sits
    more than 3 healthy standard deviations off what a healthy-fit model expects. Sudden
    faults: the same from their onset (a step) to the failure."""
    fleet = fleet_run.sim.fleet
    index = {d: i for i, d in enumerate(fleet.device_ids)}
    fits: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
    failures = [x for x in fleet_run.sim.labels() if x.failed]
    assert failures
    for label in failures:
        fault = FAULT[label.fault_type]
        i, j = index[label.device_id], SENSORS.index(fault.primary)
        assert label.end_ms is not None
        if fault.sudden:
            lo, hi = label.start_ms, label.end_ms
        else:
            assert label.end_ms - label.start_ms >= fault.min_h * HOUR_MS * 0.5
            lo, hi = label.end_ms - 3 * HOUR_MS, label.end_ms - HOUR_MS
        rows = np.flatnonzero((fleet_run.ts[:, i] >= lo) & (fleet_run.ts[:, i] < hi))
        if len(rows) == 0:  # failed before the run had 3 h of history
            assert label.end_ms - fleet_run.ts[0, i] < 3 * HOUR_MS
            continue
        key = (fleet.machine_types[i], j)
        if key not in fits:
            fits[key] = _healthy_fit(fleet_run, *key)
        coef, sd = fits[key]
        mask = np.zeros(fleet_run.ts.shape, dtype=bool)
        mask[rows, i] = True
        expected = _design(fleet_run, mask) @ coef
        rel = (fleet_run.values[rows, i, j] - expected) / np.abs(expected)
        shift = np.nanmedian(rel) * DIRECTION[fault.primary]
        assert shift > 3 * sd, (label, fault.primary, shift, sd)


def test_ten_thousand_devices_step_together() -> None:
    sim = Simulator(SimConfig(devices=10_000, seed=4, interval_s=60))
    steps = [sim.step() for _ in range(3)]
    for s in steps:
        assert s.values.shape == (10_000, 5) and s.ts_ms.shape == (10_000,)
    assert len(set(sim.fleet.device_ids)) == 10_000
    assert {m for m in sim.fleet.machine_types} == {"pump", "compressor", "fan", "conveyor"}
    assert len(set(sim.fleet.sites)) == 3
    ids = {i for s in steps for i in s.event_ids.to_pylist()}
    assert len(ids) == 30_000
