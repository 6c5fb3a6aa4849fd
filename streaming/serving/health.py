"""Whether the scorer is alive and ready, with the reason when it is not (pure: the loop
reports what happens, the ops server asks).

- alive (`/healthz`): the loop ran an iteration within `wedged_after_s`.
- ready (`/readyz`): partitions assigned and their feature state complete; no batch that has
  failed `max_batch_failures` times in a row; commits progressing whenever there is lag
  (no commit for `stuck_after_s` while records wait).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Health:
    wedged_after_s: float = 30.0
    stuck_after_s: float = 60.0
    max_batch_failures: int = 3
    started: float = field(default_factory=time.monotonic)
    last_loop: float = field(default_factory=time.monotonic)
    last_commit: float = field(default_factory=time.monotonic)
    assigned: bool = False
    #: partitions whose state could not be restored or rebuilt (never served partially)
    incomplete: set[int] = field(default_factory=set)
    consecutive_failures: int = 0
    last_failure: str = ""
    lag: int = 0

    def loop_tick(self, now: float) -> None:
        self.last_loop = now

    def committed(self, now: float) -> None:
        self.last_commit = now
        self.consecutive_failures = 0
        self.last_failure = ""

    def failed(self, reason: str) -> None:
        self.consecutive_failures += 1
        self.last_failure = reason[:500]

    def idle(self, now: float) -> None:
        """Nothing to commit (no input): progress is not expected, so not stuck."""
        if self.lag == 0:
            self.last_commit = now

    def not_alive_reason(self, now: float) -> str:
        quiet = now - self.last_loop
        if quiet > self.wedged_after_s:
            return f"loop wedged: no iteration for {quiet:.0f} s"
        return ""

    def not_ready_reason(self, now: float) -> str:
        if reason := self.not_alive_reason(now):
            return reason
        if not self.assigned:
            return "no partitions assigned (joining the group or rebalancing)"
        if self.incomplete:
            return f"feature state of partitions {sorted(self.incomplete)} is incomplete"
        if self.consecutive_failures >= self.max_batch_failures:
            return (
                f"the same batch failed {self.consecutive_failures} times in a row "
                f"(last: {self.last_failure})"
            )
        stalled = now - self.last_commit
        if self.lag > 0 and stalled > self.stuck_after_s:
            return f"no commit for {stalled:.0f} s with {self.lag} records waiting"
        return ""

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "alive": not self.not_alive_reason(now),
            "ready": not self.not_ready_reason(now),
            "not_alive_reason": self.not_alive_reason(now),
            "not_ready_reason": self.not_ready_reason(now),
            "seconds_since_commit": round(now - self.last_commit, 3),
            "consecutive_failures": self.consecutive_failures,
            "last_failure": self.last_failure,
            "lag": self.lag,
            "incomplete_partitions": sorted(self.incomplete),
        }
