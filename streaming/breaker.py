"""A circuit breaker around one model: closed (use it), open (use fallback rules), half-open (probe).

Pure state machine; the caller reports each call's outcome and passes the clock, so tests
need neither threads nor sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]

#: Numeric codes for the Prometheus gauge.
STATE_CODES: dict[BreakerState, int] = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `open_seconds` lets one probe
    through (half-open); a successful probe closes it, a failed one opens it again."""

    failure_threshold: int = 3
    open_seconds: float = 5.0
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    last_error: str = ""
    trips: int = field(default=0)

    def allow(self, now: float) -> bool:
        """Whether the model may be called now (moves open → half-open when the time is up)."""
        if self.state == "open" and now - self.opened_at >= self.open_seconds:
            self.state = "half-open"
        return self.state != "open"

    def record_success(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.last_error = ""

    def record_failure(self, now: float, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error = error
        if self.state == "half-open" or self.consecutive_failures >= self.failure_threshold:
            if self.state != "open":
                self.trips += 1
            self.state = "open"
            self.opened_at = now

    def reset(self) -> None:
        """A new model version starts with a closed breaker."""
        self.state = "closed"
        self.consecutive_failures = 0
        self.last_error = ""
