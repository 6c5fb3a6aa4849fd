"""A circuit breaker around one model: closed (use it), open (use fallback rules), half-open (probe).

The breaker is a pure state machine; the caller reports each call's outcome and passes the
clock, so tests need neither threads nor sleeps. `DeadlineWorker` gives a model call a real
deadline (the call runs on a worker thread; the caller waits at most the deadline).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

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


class DeadlineWorker:
    """Runs calls on its own daemon thread and waits for each at most a deadline: a model
    that hangs costs the caller the deadline, not the stream. A call that overruns is
    abandoned (its thread finishes, or not, in the background) and the next call gets a new
    worker."""

    def __init__(self, name: str = "model-call") -> None:
        self.name = name
        self._jobs: (
            queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] | None
        ) = None
        self.abandoned = 0

    def call(self, fn: Callable[[], T], timeout_s: float) -> T:
        jobs = self._jobs
        if jobs is None:
            jobs = self._jobs = queue.SimpleQueue()
            threading.Thread(target=_work, args=(jobs,), name=self.name, daemon=True).start()
        box: list[Any] = []
        done = threading.Event()
        jobs.put((fn, box, done))
        if not done.wait(timeout_s):
            self._jobs = None  # the worker is stuck in `fn`: leave it behind
            self.abandoned += 1
            raise TimeoutError(f"no answer within {timeout_s:.3f}s")
        ok, value = box
        if not ok:
            raise value
        return value


def _work(jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]]) -> None:
    while True:
        fn, box, done = jobs.get()
        try:
            box[:] = [True, fn()]
        except BaseException as exc:
            box[:] = [False, exc]
        done.set()
