"""The declarative feature set: which features exist, over which windows, and its version.

One `FeatureSet` drives both computation paths (`features.engine.batch` over history, `features.engine.online`
per reading); each dataset's comes from its spec (`features.spec.DatasetSpec.feature_set`, with
windows defaulting from the cadence). `feature_set.names` is the column order of every feature
vector, and `feature_set.version` is a short hash of the canonical definitions (plus a
semantics revision), so it changes whenever any definition changes.

Names: `<sensor>__<agg>_<window>` (e.g. `vibration__slope_5m`), `<sensor>__last|delta|zscore`,
`count_<window>`, `dt_prev_s`, and the cross-sensor ratios (`vibration_per_current`, ...).
The exact meaning of each aggregate, and how late, duplicate and out-of-order readings are
treated, is documented in `features.engine.online` (the two paths share it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Final, Literal

#: Bump when the *meaning* of an aggregate changes without any definition changing.
SEMANTICS_REVISION: Final = 2  # 2: windows start on pane boundaries; dedup horizon 5 x lateness

#: Panes per window when a window does not name its pane length (see `Window`).
PANES_PER_WINDOW: Final = 60

WindowAgg = Literal["mean", "std", "min", "max", "slope", "bad"]
WINDOW_AGGS: Final[tuple[WindowAgg, ...]] = ("mean", "std", "min", "max", "slope", "bad")
SensorAgg = Literal["last", "delta", "zscore"]
SENSOR_AGGS: Final[tuple[SensorAgg, ...]] = ("last", "delta", "zscore")

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS


@dataclass(frozen=True)
class Window:
    """An event-time window ending at the device's max event time M, and the aggregates computed
    over it per sensor.

    The window is made of `length_ms / pane_ms` panes (event time floored to `pane_ms`): it holds
    the readings from the start of the pane `length_ms / pane_ms - 1` panes before M's pane, up
    to M, so its span is between `length_ms - pane_ms` and `length_ms`. Readings leave a window a
    whole pane at a time, which lets the state keep one sum per pane instead of every reading:
    memory per device is independent of the reading rate. `pane_ms=0` means
    `length_ms / PANES_PER_WINDOW` (the feature set resolves it).
    """

    name: str
    length_ms: int
    aggs: tuple[WindowAgg, ...]
    pane_ms: int = 0

    @property
    def panes(self) -> int:
        return self.length_ms // self.pane_ms

    def start_ms(self, m: int) -> int:
        """First event time inside the window when the device's max event time is `m`."""
        return (m // self.pane_ms - self.panes + 1) * self.pane_ms


def _with_pane(w: Window) -> Window:
    """`w` with its pane length resolved: the largest divisor of the length not above
    `length / PANES_PER_WINDOW`."""
    if w.pane_ms:
        return w
    pane = max(1, w.length_ms // PANES_PER_WINDOW)
    while w.length_ms % pane:
        pane -= 1
    return Window(w.name, w.length_ms, w.aggs, pane)


@dataclass(frozen=True)
class Ratio:
    """`numerator / denominator` of two sensors' `source` features (`last` or e.g. `mean_5m`);
    NaN when either is missing or the denominator is 0."""

    name: str
    numerator: str
    denominator: str
    source: str = "last"


@dataclass(frozen=True)
class FeatureSet:
    """Definitions of a feature set. Instances are immutable; see module docstring."""

    sensors: tuple[str, ...]
    #: Per sensor: values are snapped to integers `round(x * scale)` before window statistics,
    #: so every window sum is an exact integer (both paths agree bit for bit, sums never drift).
    #: 1/scale is far finer than any real sensor's resolution.
    scales: tuple[int, ...]
    windows: tuple[Window, ...]
    sensor_aggs: tuple[SensorAgg, ...] = SENSOR_AGGS
    #: Reading counts per window, in the order of `windows` (by name).
    count_windows: tuple[str, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    #: A reading more than this far behind the device's max event time is late.
    lateness_ms: int = 2 * MINUTE_MS
    #: Event ids are remembered while their event time is within this of the device's max
    #: (default: five times the lateness bound). Longer than the lateness bound, so a duplicate that
    #: could enter the state is always caught; an older one is late and changes nothing.
    dedup_horizon_ms: int = 0
    #: Time resolution of slopes (times are floored to it); slopes are per second.
    time_unit_ms: int = 100
    revision: int = SEMANTICS_REVISION

    def __post_init__(self) -> None:
        if len(self.scales) != len(self.sensors) or any(s <= 0 for s in self.scales):
            raise ValueError("one positive integer scale per sensor")
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names) or not self.windows:
            raise ValueError("window names must be unique and at least one window is needed")
        object.__setattr__(self, "windows", tuple(_with_pane(w) for w in self.windows))
        for w in self.windows:
            if w.pane_ms <= 0 or w.length_ms % w.pane_ms:
                raise ValueError(f"window {w.name}: pane_ms must divide length_ms")
            if w.length_ms - w.pane_ms < self.lateness_ms:
                raise ValueError(
                    f"window {w.name} must be at least one pane longer than the lateness bound"
                )
            if bad := set(w.aggs) - set(WINDOW_AGGS):
                raise ValueError(f"unknown aggregates {bad} in window {w.name}")
        if set(self.count_windows) - set(names):
            raise ValueError("count_windows must name windows")
        if self.dedup_horizon_ms <= 0:
            object.__setattr__(self, "dedup_horizon_ms", 5 * self.lateness_ms)
        if self.dedup_horizon_ms <= self.lateness_ms:
            raise ValueError("dedup_horizon_ms must be longer than lateness_ms")
        for r in self.ratios:
            if r.numerator not in self.sensors or r.denominator not in self.sensors:
                raise ValueError(f"ratio {r.name}: unknown sensor")
            if r.source == "last" and "last" not in self.sensor_aggs:
                raise ValueError(f"ratio {r.name}: needs the `last` features")
            if r.source != "last" and r.source not in self._window_feature_suffixes():
                raise ValueError(f"ratio {r.name}: unknown source {r.source}")

    def _window_feature_suffixes(self) -> set[str]:
        return {f"{a}_{w.name}" for w in self.windows for a in w.aggs}

    @property
    def longest_window_ms(self) -> int:
        return max(w.length_ms for w in self.windows)

    @property
    def rebuild_horizon_ms(self) -> int:
        """Event time a state rebuild must cover before the first reading it is to serve."""
        return self.dedup_horizon_ms + self.longest_window_ms + self.lateness_ms

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Column order of every feature vector."""
        out: list[str] = []
        for s in self.sensors:
            out.extend(f"{s}__{a}" for a in self.sensor_aggs)
            for w in self.windows:
                out.extend(f"{s}__{a}_{w.name}" for a in WINDOW_AGGS if a in w.aggs)
        out.extend(f"count_{w}" for w in self.count_windows)
        out.append("dt_prev_s")
        out.extend(r.name for r in self.ratios)
        if len(set(out)) != len(out):
            raise ValueError("feature names collide")
        return tuple(out)

    def canonical(self) -> str:
        """Canonical JSON of the definitions (the input of `version`)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @cached_property
    def version(self) -> str:
        return "fs-" + hashlib.sha256(self.canonical().encode()).hexdigest()[:12]

    @cached_property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}
