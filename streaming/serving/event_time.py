"""The scorer's event-time policy (pure): which readings are too far ahead of the clock or too
far behind their partition's event time to be scored.

A reading's event time (`ts` in the payload) is untrusted input. It never becomes a record
timestamp (outputs are stamped with processing time, which the broker always accepts), and it
only enters the feature state when it passes two checks:

- **future skew**: at most `future_skew_ms` ahead of the scorer's clock (default 1 h, the
  broker's own default tolerance). A reading from year 9999 would otherwise move its device's
  event-time watermark beyond every later reading, which would all count as late.
- **past horizon**: at most `past_horizon_ms` behind the *partition's* event-time watermark
  (the newest accepted event time in that input partition), not behind the wall clock, so a
  replay of history (NAB's 2014 series through `edaml serve --dataset nab`) is scored like live
  data. None turns the check off. A dataset spec sets it (its `event_time.past_horizon`
  setting maps to `ServeConfig.past_horizon_ms`).

The watermark only moves with readings that passed the future check, so one reading can move it
by at most the skew. Within a micro-batch, the check uses the newest accepted event time of the
batch's partition (the state the partition has when the batch commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from features.contract.fields import format_ts

PartitionKey = tuple[str, int]

DEFAULT_FUTURE_SKEW_MS = 3_600_000
DEFAULT_PAST_HORIZON_MS = 7 * 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class Refusal:
    """Index of a refused reading in its batch and the reason, in words."""

    index: int
    reason: str


@dataclass(slots=True)
class EventTimePolicy:
    future_skew_ms: int = DEFAULT_FUTURE_SKEW_MS
    past_horizon_ms: int | None = DEFAULT_PAST_HORIZON_MS
    #: newest accepted event time per input partition
    watermarks: dict[PartitionKey, int] = field(default_factory=dict)

    def check(self, ts_ms: np.ndarray, keys: Sequence[PartitionKey], now_ms: int) -> list[Refusal]:
        """Refusals among readings with event times `ts_ms` from partitions `keys` (advances
        the partitions' watermarks over the accepted ones). Columnar: no per-reading Python
        work unless a reading is refused."""
        n = len(ts_ms)
        if not n:
            return []
        ahead = ts_ms > now_ms + self.future_skew_ms
        refused = [
            Refusal(
                int(i),
                f"event time {_fmt(int(ts_ms[i]))} is more than "
                f"{self.future_skew_ms / 1000:.0f} s ahead of the scorer's clock "
                f"({_fmt(now_ms)})",
            )
            for i in np.flatnonzero(ahead).tolist()
        ]
        first = keys[0]
        if all(k == first for k in keys):
            groups: list[tuple[PartitionKey, np.ndarray]] = [(first, np.arange(n))]
        else:
            by: dict[PartitionKey, list[int]] = {}
            for i, k in enumerate(keys):
                by.setdefault(k, []).append(i)
            groups = [(k, np.asarray(ix, dtype=np.intp)) for k, ix in by.items()]
        for key, ix in groups:
            ok = ix[~ahead[ix]]
            if not len(ok):
                continue
            wm = max(self.watermarks.get(key, -(2**62)), int(ts_ms[ok].max()))
            if self.past_horizon_ms is not None:
                floor = wm - self.past_horizon_ms
                old = ok[ts_ms[ok] < floor]
                refused.extend(
                    Refusal(
                        int(i),
                        f"event time {_fmt(int(ts_ms[i]))} is more than "
                        f"{self.past_horizon_ms / 1000:.0f} s behind the newest event time "
                        f"of partition {key[1]} ({_fmt(wm)})",
                    )
                    for i in old.tolist()
                )
            self.watermarks[key] = wm
        refused.sort(key=lambda r: r.index)
        return refused

    def observe(self, key: PartitionKey, ts_ms: int) -> None:
        """Advance a partition's watermark (a rebuild or restore replays its readings)."""
        if ts_ms > self.watermarks.get(key, -(2**62)):
            self.watermarks[key] = ts_ms

    def forget(self, keys: Sequence[PartitionKey] | set[PartitionKey]) -> None:
        for k in keys:
            self.watermarks.pop(k, None)


def _fmt(ts_ms: int) -> str:
    try:
        return format_ts(ts_ms)
    except (ValueError, OverflowError, OSError):
        return f"{ts_ms} ms"
