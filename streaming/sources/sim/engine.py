"""The simulator's core: one `step()` advances every device by one interval, vectorised.

Physics, per device: an operating regime (idle, normal, peak) that switches every couple of
hours, more often towards peak during the local day shift; a daily ambient cycle; casing
temperature that follows load with a thermal lag; vibration growing with speed²; pressure and
current following load. Machine faults degrade a health value h from 0 to 1 (effects scale
with h², so wear accelerates); at h = 1 the machine fails, stops for hours and is repaired.
Gradual faults take days, sudden ones start with a step and fail within hours; a degrading
machine may get a preventive repair first. Sensor faults (stuck values, dropouts, spikes) sit
on top and are not machine faults. Everything is drawn from one seeded generator: the same
seed gives the same fleet, readings, event ids and maintenance events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pyarrow as pa

from features.contract import Maintenance
from features.contract.bulk import uuid4_strings
from features.spec import load_spec
from streaming.sources.sim.fleet import Fleet, make_fleet
from streaming.sources.sim.profiles import FAULTS, SITE_INDEX, Firmware

#: The dataset this simulator produces: its spec (datasets/iot-fleet.yaml) declares the sensors,
#: their physical ranges (readings are clipped into them) and the readings' contract.
FLEET: Final = load_spec("iot-fleet")
SENSORS: Final = FLEET.sensor_names
T, V, P, C, R = range(5)  # column of each sensor in SENSORS order
assert SENSORS == ("temperature", "vibration", "pressure", "current", "rpm"), SENSORS
HOUR_MS: Final = 3_600_000
_LEVELS: Final = np.array([0.15, 0.65, 0.95])  # load of idle, normal, peak

# Effect coefficients per fault type; the extra last row (index -1 = healthy) is all zeros.
_TEMP = np.array([f.temp_add for f in FAULTS] + [0.0])
_VIB = np.array([f.vib_mult for f in FAULTS] + [0.0])
_PRES = np.array([f.pressure_frac for f in FAULTS] + [0.0])
_CURR = np.array([f.current_frac for f in FAULTS] + [0.0])
_RPM = np.array([f.rpm_frac for f in FAULTS] + [0.0])
_GRADUAL = np.array([not f.sudden for f in FAULTS])
_LO = np.array([FLEET.ranges[s][0] for s in SENSORS])
_HI = np.array([FLEET.ranges[s][1] for s in SENSORS])
_DECIMALS = (2, 3, 3, 2, 1)


@dataclass(frozen=True, slots=True)
class SimConfig:
    devices: int = 1000
    seed: int = 0
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    interval_s: float = 60.0
    #: "random": each device reports at its own fixed offset within the interval;
    #: "even": offsets spread evenly (live mode: a steady stream of events).
    phase: Literal["random", "even"] = "random"
    gradual_faults_per_day: float = 0.01  # onset rate per healthy device
    sudden_faults_per_day: float = 0.0025
    preventive_repairs_per_hour: float = 0.008  # once health > 0.6
    stuck_per_sensor_per_day: float = 0.01
    dropout_prob: float = 0.001
    spike_prob: float = 0.0005
    #: Sensor firmware rollouts (see `Firmware`), applied from their time on.
    firmware: tuple[Firmware, ...] = ()


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """Ground truth of one machine fault. `end_ms` is the failure time (failed) or the repair
    time (repaired first); None while the fault is still developing when the run ends."""

    device_id: str
    fault_type: str
    start_ms: int
    end_ms: int | None
    failed: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One reading per device. `values` is (n, 5) in SENSORS order, NaN = dropout. `fault`
    (-1 = healthy), `health` and `running` are ground truth, not part of the readings."""

    index: int
    ts_ms: np.ndarray
    values: np.ndarray
    event_ids: pa.Array
    maintenance: list[Maintenance]
    fault: np.ndarray
    health: np.ndarray
    running: np.ndarray


@dataclass
class _Open:
    fault: int
    start_ms: int
    labels: list[FaultLabel] = field(default_factory=list)


class Simulator:
    """A fleet of devices; `step()` returns the next reading of every device."""

    def __init__(self, config: SimConfig) -> None:
        if config.devices < 1 or config.interval_s <= 0:
            raise ValueError("devices must be >= 1 and interval_s > 0")
        self.config = config
        root = np.random.SeedSequence(config.seed)
        fleet_seq, phys_seq, id_seq = root.spawn(3)
        self.fleet: Fleet = make_fleet(config.devices, np.random.default_rng(fleet_seq))
        self._rng = np.random.default_rng(phys_seq)
        self._ids = np.random.default_rng(id_seq)
        n = config.devices
        self.interval_ms = round(config.interval_s * 1000)
        if config.phase == "even":
            self.phase_ms = (np.arange(n) * self.interval_ms) // n
        else:
            self.phase_ms = self._rng.integers(0, self.interval_ms, n)
        self.steps_done = 0
        self._labels: list[FaultLabel] = []
        rng, f = self._rng, self.fleet
        self._regime = rng.choice(3, size=n, p=[0.3, 0.55, 0.15])
        self._load_noise = np.zeros(n)
        self._fault = np.full(n, -1, dtype=np.int64)
        self._health = np.zeros(n)
        self._rate = np.zeros(n)  # health per second
        self._onset = np.zeros(n, dtype=np.int64)
        self._down_until = np.zeros(n, dtype=np.int64)  # > 0: stopped for maintenance
        self._failed = np.zeros(n, dtype=bool)  # the stop follows a failure
        self._stuck_until = np.zeros((n, 5), dtype=np.int64)
        self._stuck_value = np.zeros((n, 5))
        self._last = np.full((n, 5), np.nan)
        self._temp = f.ambient_c + f.temp_rise * _LEVELS[self._regime] ** 1.3 + f.temp_offset
        self._seed_initial_faults()

    # ── public ───────────────────────────────────────────────────────────────────────────────

    @property
    def size(self) -> int:
        return self.fleet.size

    def step_time_ms(self, index: int) -> int:
        return self.config.start_ms + index * self.interval_ms

    def step(self) -> Step:
        k = self.steps_done
        t = self.step_time_ms(k)
        ts = t + self.phase_ms
        events = self._maintenance(ts)
        values = self._sensors(t)
        self._apply_firmware(t, values)
        self._sensor_faults(t, values)
        running = self._down_until == 0
        self.steps_done += 1
        return Step(
            index=k,
            ts_ms=ts.astype(np.int64),
            values=values,
            event_ids=uuid4_strings(self._ids, self.size),
            maintenance=events,
            fault=self._fault.copy(),
            health=self._health.copy(),
            running=running,
        )

    def labels(self) -> list[FaultLabel]:
        """Every fault so far: finished ones, then those still developing (end_ms None)."""
        ongoing = [
            FaultLabel(
                self.fleet.device_ids[i],
                FAULTS[self._fault[i]].name,
                int(self._onset[i]),
                None,
                False,
            )
            for i in np.flatnonzero((self._fault >= 0) & (self._down_until == 0))
        ]
        return [*self._labels, *ongoing]

    # ── machine faults and maintenance ───────────────────────────────────────────────────────

    def _seed_initial_faults(self) -> None:
        """Start in steady state: some devices are already part-way into a gradual fault."""
        c, rng = self.config, self._rng
        mean_days = float(np.mean([(f.min_h + f.max_h) / 48 for f in FAULTS if not f.sudden]))
        u = rng.random(self.size)
        for i in np.flatnonzero(u < c.gradual_faults_per_day * mean_days):
            self._start_fault(int(i), c.start_ms, gradual=True, health=rng.uniform(0.0, 0.8))

    def _start_fault(self, i: int, now_ms: int, *, gradual: bool, health: float = -1.0) -> None:
        rng = self._rng
        choices = np.flatnonzero(self.fleet.allowed[i] & (gradual == _GRADUAL))
        if len(choices) == 0:
            return
        fi = int(choices[rng.integers(0, len(choices))])
        fault = FAULTS[fi]
        duration_s = rng.uniform(fault.min_h, fault.max_h) * 3600
        h0 = fault.initial_health if health < 0 else health
        self._fault[i] = fi
        self._health[i] = h0
        self._rate[i] = (1.0 - fault.initial_health) / duration_s
        self._onset[i] = now_ms - int(max(h0 - fault.initial_health, 0.0) / self._rate[i] * 1000)

    def _maintenance(self, ts: np.ndarray) -> list[Maintenance]:
        c, rng, f = self.config, self._rng, self.fleet
        dt = c.interval_s
        events: list[Maintenance] = []

        def emit(i: int, kind: Literal["failure", "repair"], fi: int) -> None:
            eid = uuid4_strings(self._ids, 1)[0].as_py()
            events.append(
                Maintenance(
                    eid,
                    f.device_ids[i],
                    int(ts[i]),
                    kind,
                    FAULTS[fi].name,
                    f.sites[i],
                    f.machine_types[i],
                )
            )

        # Stops that end now: the repair is done, the machine runs healthy again.
        for i in np.flatnonzero((self._down_until > 0) & (ts >= self._down_until)):
            emit(int(i), "repair", int(self._fault[i]))
            self._down_until[i] = 0
            self._fault[i] = -1
            self._health[i] = 0.0
            self._failed[i] = False

        degrading = (self._fault >= 0) & (self._down_until == 0)
        self._health[degrading] += self._rate[degrading] * dt
        u_prev = rng.random(self.size)
        p_prev = 1.0 - math.exp(-c.preventive_repairs_per_hour * dt / 3600)
        stop_h = rng.uniform(1.0, 3.0, self.size)
        fail_stop_h = rng.uniform(2.0, 12.0, self.size)
        for i in np.flatnonzero(degrading & (self._health >= 1.0)):
            self._health[i] = 1.0
            self._failed[i] = True
            self._down_until[i] = ts[i] + int(fail_stop_h[i] * HOUR_MS)
            emit(int(i), "failure", int(self._fault[i]))
            self._close(int(i), int(ts[i]), failed=True)
        preventive = degrading & (self._health > 0.6) & (self._health < 1.0) & (u_prev < p_prev)
        for i in np.flatnonzero(preventive):
            self._down_until[i] = ts[i] + int(stop_h[i] * HOUR_MS)
            self._close(int(i), int(self._down_until[i]), failed=False)

        healthy = (self._fault < 0) & (self._down_until == 0)
        u_g, u_s = rng.random(self.size), rng.random(self.size)
        p_g = 1.0 - math.exp(-c.gradual_faults_per_day * dt / 86400)
        p_s = 1.0 - math.exp(-c.sudden_faults_per_day * dt / 86400)
        for i in np.flatnonzero(healthy & (u_g < p_g)):
            self._start_fault(int(i), int(ts[i]), gradual=True)
        for i in np.flatnonzero(healthy & (u_g >= p_g) & (u_s < p_s)):
            self._start_fault(int(i), int(ts[i]), gradual=False)
        return events

    def _close(self, i: int, end_ms: int, *, failed: bool) -> None:
        self._labels.append(
            FaultLabel(
                self.fleet.device_ids[i],
                FAULTS[self._fault[i]].name,
                int(self._onset[i]),
                end_ms,
                failed,
            )
        )

    # ── physics ──────────────────────────────────────────────────────────────────────────────

    def _sensors(self, t_ms: int) -> np.ndarray:
        c, rng, f, n = self.config, self._rng, self.fleet, self.size
        dt = c.interval_s
        hour = (t_ms / HOUR_MS + f.utc_offset_h) % 24.0
        daily = 0.5 - 0.5 * np.cos(2 * np.pi * (hour - 4.0) / 24.0)  # peaks mid-afternoon

        # Regime switches: on average every 2 h, towards peak during the day shift.
        u_sw, u_to = rng.random(n), rng.random(n)
        switch = u_sw < 1.0 - math.exp(-dt / 7200)
        p_idle = 0.5 - 0.4 * daily
        p_peak = 0.1 + 0.3 * daily
        new = np.where(u_to < p_idle, 0, np.where(u_to < p_idle + p_peak, 2, 1))
        self._regime = np.where(switch, new, self._regime)
        a = math.exp(-dt / 1800)
        self._load_noise = a * self._load_noise + math.sqrt(1 - a * a) * rng.normal(0, 0.04, n)
        load = np.clip(_LEVELS[self._regime] * (0.85 + 0.15 * daily) + self._load_noise, 0.05, 1.1)

        running = self._down_until == 0
        s = np.where(running, self._health**2, 0.0)
        fi = self._fault
        ambient = f.ambient_c + f.ambient_swing_c * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        target = (
            ambient
            + f.temp_offset
            + np.where(running, f.temp_rise * load**1.3 + _TEMP[fi] * s, 0.0)
        )
        self._temp += (target - self._temp) * (1.0 - np.exp(-dt / f.thermal_tau_s))

        out = np.empty((n, 5))
        noise = rng.normal(0.0, 1.0, (n, 5))
        rpm = f.rated_rpm * (0.6 + 0.4 * load) * (1.0 - _RPM[fi] * s)
        out[:, T] = self._temp + 0.25 * noise[:, T]
        speed2 = (rpm / f.rated_rpm) ** 2
        out[:, V] = (
            f.base_vibration
            * (0.3 + 0.7 * speed2)
            * (1.0 + _VIB[fi] * s)
            * np.exp(0.08 * noise[:, V])
        )
        out[:, P] = f.rated_pressure * (
            (0.25 + 0.75 * load) * (1.0 - _PRES[fi] * s) + 0.015 * noise[:, P]
        )
        out[:, C] = f.rated_current * (
            (0.3 + 0.7 * load) * (1.0 + _CURR[fi] * s) + 0.01 * noise[:, C]
        )
        out[:, R] = rpm + 0.002 * f.rated_rpm * noise[:, R]
        stopped = ~running
        if stopped.any():
            out[stopped, V] = 0.05 * np.abs(noise[stopped, V])
            out[stopped, P] = 0.01 * np.abs(noise[stopped, P])
            out[stopped, C] = 0.2 * np.abs(noise[stopped, C])
            out[stopped, R] = 0.0
        return out

    def _apply_firmware(self, t_ms: int, values: np.ndarray) -> None:
        for fw in self.config.firmware:
            if t_ms < fw.from_ms:
                continue
            col = SENSORS.index(fw.sensor)
            rows = slice(None) if not fw.site else self.fleet.site == SITE_INDEX[fw.site]
            values[rows, col] = values[rows, col] * fw.scale + fw.offset

    def _sensor_faults(self, t_ms: int, values: np.ndarray) -> None:
        c, rng, n = self.config, self._rng, self.size
        u_stuck, u_spike, u_drop = rng.random((n, 5)), rng.random((n, 5)), rng.random((n, 5))
        stuck_h = rng.uniform(1.0, 12.0, (n, 5))
        spike = rng.uniform(1.5, 3.0, (n, 5))
        p_stuck = 1.0 - math.exp(-c.stuck_per_sensor_per_day * c.interval_s / 86400)
        start = (self._stuck_until <= t_ms) & (u_stuck < p_stuck) & ~np.isnan(self._last)
        self._stuck_until[start] = t_ms + (stuck_h[start] * HOUR_MS).astype(np.int64)
        self._stuck_value[start] = self._last[start]
        stuck = self._stuck_until > t_ms
        np.copyto(values, self._stuck_value, where=stuck)
        spikes = (u_spike < c.spike_prob) & ~stuck
        values[spikes] *= spike[spikes]
        np.clip(values, _LO, _HI, out=values)
        for j, d in enumerate(_DECIMALS):
            np.round(values[:, j], d, out=values[:, j])
        self._last = values.copy()
        values[(u_drop < c.dropout_prob) & ~stuck] = np.nan
