"""The device simulator: a pure, seeded, vectorised core (no Kafka here)."""

from __future__ import annotations

from streaming.sources.sim.engine import FaultLabel, SimConfig, Simulator, Step
from streaming.sources.sim.labels import labels_table, write_labels
from streaming.sources.sim.profiles import (
    FAULTS,
    MACHINES,
    SITES,
    FaultType,
    Firmware,
    MachineProfile,
    Site,
)

__all__ = [
    "FAULTS",
    "MACHINES",
    "SITES",
    "FaultLabel",
    "FaultType",
    "Firmware",
    "MachineProfile",
    "SimConfig",
    "Simulator",
    "Site",
    "Step",
    "labels_table",
    "write_labels",
]
