"""What the simulated fleet is made of: machine types, sites and fault types (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class MachineProfile:
    """Nominal behaviour of one machine type at full load."""

    name: str
    rated_rpm: float
    temp_rise: float  # °C above ambient at full load
    base_vibration: float  # mm/s RMS at rated speed
    rated_pressure: float  # bar at full load
    rated_current: float  # A at full load
    thermal_tau_s: float  # time constant of the casing temperature
    weight: float  # share of the fleet


MACHINES: Final[tuple[MachineProfile, ...]] = (
    MachineProfile("pump", 1480.0, 32.0, 2.2, 6.0, 42.0, 900.0, 0.35),
    MachineProfile("compressor", 2950.0, 48.0, 3.1, 8.5, 95.0, 1200.0, 0.25),
    MachineProfile("fan", 980.0, 18.0, 1.6, 0.4, 16.0, 600.0, 0.2),
    MachineProfile("conveyor", 1450.0, 24.0, 2.6, 2.0, 28.0, 800.0, 0.2),
)


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    ambient_c: float  # mean ambient temperature
    ambient_swing_c: float  # half the day/night difference
    utc_offset_h: int  # local time drives the daily load cycle


SITES: Final[tuple[Site, ...]] = (
    Site("plant-north", 16.0, 3.0, 1),
    Site("plant-south", 27.0, 5.0, -5),
    Site("plant-east", 21.0, 4.0, 8),
)
SITE_INDEX: Final[dict[str, int]] = {s.name: i for i, s in enumerate(SITES)}


@dataclass(frozen=True, slots=True)
class FaultType:
    """A machine fault. Effects scale with severity s = health² in [0, 1] (wear accelerates).

    Gradual faults grow over `min_h`..`max_h` hours; sudden ones start with a step
    (`initial_health`) and fail within hours. `machines` limits where a fault can happen.
    """

    name: str
    min_h: float
    max_h: float
    temp_add: float  # °C at s = 1
    vib_mult: float  # extra vibration, in units of the base vibration, at s = 1
    pressure_frac: float  # fraction of pressure lost at s = 1
    current_frac: float  # extra current, as a fraction, at s = 1
    rpm_frac: float  # fraction of speed lost at s = 1
    primary: str  # the sensor that shows it first and most
    sudden: bool = False
    initial_health: float = 0.0
    machines: tuple[str, ...] = ("pump", "compressor", "fan", "conveyor")


FAULTS: Final[tuple[FaultType, ...]] = (
    FaultType("bearing_wear", 48, 168, 14.0, 6.0, 0.0, 0.06, 0.01, "vibration"),
    FaultType("cooling_loss", 24, 96, 38.0, 0.3, 0.0, 0.08, 0.0, "temperature"),
    FaultType(
        "seal_leak", 36, 144, 4.0, 0.4, 0.45, 0.12, 0.0, "pressure", machines=("pump", "compressor")
    ),
    FaultType("winding_insulation", 24, 72, 12.0, 0.5, 0.0, 0.35, 0.03, "current"),
    FaultType(
        "impeller_damage",
        0.5,
        3,
        3.0,
        5.0,
        0.2,
        0.1,
        0.02,
        "vibration",
        True,
        0.55,
        ("pump", "compressor", "fan"),
    ),
    FaultType("belt_jam", 0.5, 2, 6.0, 2.5, 0.0, 0.45, 0.12, "current", True, 0.55, ("conveyor",)),
)
FAULT_INDEX: Final[dict[str, int]] = {f.name: i for i, f in enumerate(FAULTS)}


@dataclass(frozen=True, slots=True)
class Firmware:
    """A sensor firmware rolled out at `from_ms` to the devices of `site` (every site when
    empty): from then on the sensor reports `value * scale + offset` (a recalibration, a new
    unit convention). Nothing about the machine changes; only what its sensor says does."""

    name: str
    sensor: str
    from_ms: int
    offset: float = 0.0
    scale: float = 1.0
    site: str = ""
