"""Isolating a record that makes every transaction containing it fail (pure).

After a failed transaction the loop re-reads from the committed offsets. A batch that fails
again is retried with half as many records (`limit`), down to one; a transaction of one record
that fails `retries_single` times marks that record as poison, and the loop sends it to the
DLQ with the error instead of scoring it. While bisecting, the limit only grows back (doubling)
after `successes_to_grow` commits in a row, so a poison record at the head of one partition is
cornered even when other partitions' records come first. Only failures the data can cause
count (a broker outage shrinks nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RecordId = tuple[str, int, int]  # topic, partition, offset


@dataclass(slots=True)
class Bisector:
    batch_size: int
    retries_single: int = 2
    successes_to_grow: int = 3
    limit: int = 0
    single_failures: int = 0
    last_single: RecordId | None = None
    successes: int = 0
    #: records found to break their transaction, with the error that did
    poison: dict[RecordId, BaseException] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.limit = self.limit or self.batch_size

    def failed(self, n_records: int, only: RecordId | None, exc: BaseException) -> None:
        """A transaction of `n_records` input records failed (`only`: the record, when one)."""
        self.successes = 0
        if n_records == 1 and only is not None:
            if only != self.last_single:
                self.last_single, self.single_failures = only, 0
            self.single_failures += 1
            if self.single_failures >= self.retries_single:
                self.poison[only] = exc
                self.single_failures = 0
            return
        self.single_failures = 0
        if n_records > 1:
            self.limit = max(1, min(self.limit, n_records) // 2)

    def succeeded(self) -> None:
        self.single_failures = 0
        if self.limit >= self.batch_size:
            return
        self.successes += 1
        if self.successes >= self.successes_to_grow:
            self.successes = 0
            self.limit = min(self.batch_size, self.limit * 2)

    def take_poison(self, rid: RecordId) -> BaseException | None:
        return self.poison.pop(rid, None) if self.poison else None
