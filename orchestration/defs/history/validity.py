"""Which days training may read: validated days only, each skipped day with its reason.

`select_days(history, days)` is what the training assets call: it returns the days to read
(valid, with content unchanged since they were validated) and, for lineage, every skipped day
with a one-line reason and every day used with a note (a partial first or last day).

Policy for partial days (a replay starting mid-day, a historical file ending mid-day): a day
whose readings cover at least `min_coverage` of the day (default half) is used, as it is; a day
covering less is skipped with its coverage as the reason. Neither ever fails a check: the volume
check compares a day at its own coverage. When no day of the selection is full (a dataset of
short recordings: experiments of minutes or hours, a few hours of 1 Hz data), every partial day
is used, each with a note: there is no continuous stream whose ragged edges to trim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestration.defs.history.store import DatasetHistory

#: A day whose readings cover less of it than this is partial (the cadence's last slot aside).
FULL_COVERAGE = 0.98
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class DaySelection:
    """The days a training run reads, and why the others are left out."""

    used: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def lineage(self) -> dict[str, Any]:
        """For MLflow tags/params and Dagster metadata: days used, skipped (with reasons)."""
        return {"days_used": self.used, "days_skipped": self.skipped, "day_notes": self.notes}

    def lines(self) -> list[str]:
        """One line per skipped day and per note, for logs and the CLI."""
        return [f"{d}: skipped: {why}" for d, why in sorted(self.skipped.items())] + [
            f"{d}: {note}" for d, note in sorted(self.notes.items())
        ]


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")


def day_status(
    history: DatasetHistory, day: str, *, min_coverage: float = MIN_COVERAGE
) -> tuple[bool, str]:
    """(use it?, reason or note) for one day."""
    stats = history.stats(day)
    if stats is None:
        return False, "not replayed (materialise its event_history partition)"
    r = stats.get("readings", {})
    if int(r.get("rows", 0)) == 0:
        return False, "no readings"
    v = history.verdict(day)
    if v is None:
        return False, "not validated: its checks have not run since it was replayed"
    if v.get("digest") != r.get("digest"):
        return False, "replayed again after its checks ran: not validated since"
    if not v.get("valid"):
        errors = v.get("errors") or ["failed its checks"]
        return False, f"failed its checks: {errors[0]}"
    coverage = float(r.get("coverage", 1.0))
    span = f"{_hhmm(r['first_ts_ms'])}-{_hhmm(r['last_ts_ms'])} UTC" if "first_ts_ms" in r else ""
    if coverage < min_coverage:
        return False, (
            f"partial day: readings cover {coverage:.0%} of it ({span}), below {min_coverage:.0%}"
        )
    if coverage < FULL_COVERAGE:
        return True, f"partial day used: readings cover {coverage:.0%} of it ({span})"
    return True, ""


def _coverage(history: DatasetHistory, day: str) -> float:
    stats = history.stats(day) or {}
    r = stats.get("readings", {})
    return float(r.get("coverage", 0.0)) if int(r.get("rows", 0)) else 0.0


def select_days(
    history: DatasetHistory, days: Iterable[str], *, min_coverage: float = MIN_COVERAGE
) -> DaySelection:
    """The valid days among `days` (in order) and the reason for each one left out."""
    used: list[str] = []
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    days = sorted(days)
    if not any(_coverage(history, d) >= FULL_COVERAGE for d in days):
        min_coverage = 0.0  # short recordings only: every partial day is the data
    for d in days:
        ok, why = day_status(history, d, min_coverage=min_coverage)
        if ok:
            used.append(d)
            if why:
                notes[d] = why
        else:
            skipped[d] = why
    return DaySelection(used, skipped, notes)
