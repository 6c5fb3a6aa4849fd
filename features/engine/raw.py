"""The simplest feature set the scorer can serve: a reading's own sensor values (`raw/v1`).

No per-device history, so no warm-up; duplicates are recognised by event id within a bounded
memory. Used for models that need no windows (a dataset spec's `models.anomaly.input: raw`),
and by the scorer's tests and benchmark so they do not depend on the windowed feature set's
evolution. The columns are the dataset's sensors, in the spec's order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from features.contract.readings import SensorReading

RAW_FEATURE_SET_VERSION: Final = "raw/v1"


@dataclass(frozen=True, slots=True)
class RawUpdate:
    values: np.ndarray | None
    duplicate: bool
    late: bool


class RawFeatures:
    """Feature rows of `sensors`' latest values (NaN where a reading lacks one)."""

    def __init__(self, sensors: Sequence[str], remember: int = 100_000) -> None:
        self.names: tuple[str, ...] = tuple(sensors)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def update(self, reading: SensorReading) -> RawUpdate:
        if reading.event_id in self._seen:
            return RawUpdate(None, True, False)
        self._seen[reading.event_id] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        v = reading.values
        row = np.array(
            [np.nan if (x := v.get(s)) is None else x for s in self.names], dtype=np.float64
        )
        return RawUpdate(row, False, False)
