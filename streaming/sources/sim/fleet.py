"""The simulated fleet: which devices exist, where, of which type, with their own quirks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streaming.sources.sim.profiles import FAULTS, MACHINES, SITES


@dataclass(frozen=True, slots=True)
class Fleet:
    """Static per-device properties, one array entry per device (index = device number)."""

    device_ids: list[str]
    machine_types: list[str]
    sites: list[str]
    machine: np.ndarray  # index into MACHINES
    site: np.ndarray  # index into SITES
    rated_rpm: np.ndarray
    temp_rise: np.ndarray
    base_vibration: np.ndarray
    rated_pressure: np.ndarray
    rated_current: np.ndarray
    thermal_tau_s: np.ndarray
    ambient_c: np.ndarray
    ambient_swing_c: np.ndarray
    utc_offset_h: np.ndarray
    temp_offset: np.ndarray  # this unit runs a bit warmer or cooler
    allowed: np.ndarray  # (n, len(FAULTS)) bool: fault types this machine can have

    @property
    def size(self) -> int:
        return len(self.device_ids)


def make_fleet(n: int, rng: np.random.Generator) -> Fleet:
    weights = np.array([m.weight for m in MACHINES])
    machine = rng.choice(len(MACHINES), size=n, p=weights / weights.sum())
    site = rng.integers(0, len(SITES), size=n)

    def per_machine(attr: str) -> np.ndarray:
        return np.array([getattr(m, attr) for m in MACHINES], dtype=np.float64)[machine]

    def per_site(attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in SITES], dtype=np.float64)[site]

    allowed_by_machine = np.array(
        [[m.name in f.machines for f in FAULTS] for m in MACHINES], dtype=bool
    )
    names = [MACHINES[m].name for m in machine]
    return Fleet(
        device_ids=[f"{name}-{i:05d}" for i, name in enumerate(names)],
        machine_types=names,
        sites=[SITES[s].name for s in site],
        machine=machine,
        site=site,
        rated_rpm=per_machine("rated_rpm") * rng.normal(1.0, 0.01, n),
        temp_rise=per_machine("temp_rise") * rng.normal(1.0, 0.06, n),
        base_vibration=per_machine("base_vibration") * rng.lognormal(0.0, 0.15, n),
        rated_pressure=per_machine("rated_pressure") * rng.normal(1.0, 0.03, n),
        rated_current=per_machine("rated_current") * rng.normal(1.0, 0.03, n),
        thermal_tau_s=per_machine("thermal_tau_s"),
        ambient_c=per_site("ambient_c"),
        ambient_swing_c=per_site("ambient_swing_c"),
        utc_offset_h=per_site("utc_offset_h"),
        temp_offset=rng.normal(0.0, 1.5, n),
        allowed=allowed_by_machine[machine],
    )
