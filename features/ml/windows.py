"""NAB-style window scoring: anomaly windows detected, false alarms outside them, and when.

A window is a closed time span `[start_ms, end_ms]` around a labelled anomaly (NAB's
`combined_windows.json`, or a run of consecutive 1 rows of a label column). Over one entity's
time-ordered rows and their alert flags:

- a window is *detected* when at least one row inside it is flagged;
- an *alert episode* is a run of consecutive flagged rows; it is a *false alarm* when none of its
  rows lies inside a window (an episode that runs into a window is an early detection, not a
  false alarm); false alarms per day divide by the entity's time span in days;
- the *lead time* of a detected window is measured to its start: first flagged row inside the
  window minus the window start (0 = alerted as the window opened). NAB centres its windows on
  the labelled anomaly, so a lead time below half the window width is an alert that came before
  the labelled instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class WindowScores:
    windows: int
    detected: int
    false_alarms: int
    days: float
    lead_times_h: list[float] = field(default_factory=list)

    @property
    def false_alarms_per_day(self) -> float:
        return self.false_alarms / self.days if self.days > 0 else 0.0

    @property
    def median_lead_time_h(self) -> float:
        return float(np.median(self.lead_times_h)) if self.lead_times_h else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "windows": float(self.windows),
            "windows_detected": float(self.detected),
            "false_alarms": float(self.false_alarms),
            "days": self.days,
            "false_alarms_per_day": self.false_alarms_per_day,
            "median_lead_time_h": self.median_lead_time_h,
        }


def to_ms(times: Iterable[object]) -> np.ndarray:
    """Epoch milliseconds of naive (taken as UTC) or aware timestamps."""
    ts = pd.to_datetime(pd.Series(list(times)), utc=True).dt.as_unit("ms")
    return ts.astype("int64").to_numpy(np.int64)


def load_nab_windows(path: str | Path) -> dict[str, list[Window]]:
    """NAB's windows file: `{"realKnownCause/x.csv": [[start, end], ...]}` as Windows per key."""
    raw = orjson.loads(Path(path).read_bytes())
    out: dict[str, list[Window]] = {}
    for key, spans in raw.items():
        ms = to_ms([t for span in spans for t in span]) if spans else np.array([], np.int64)
        out[key] = [Window(int(ms[2 * i]), int(ms[2 * i + 1])) for i in range(len(spans))]
    return out


def windows_from_labels(ts_ms: np.ndarray, labels: np.ndarray) -> list[Window]:
    """Runs of consecutive 1 labels (rows in time order) as windows from first to last row."""
    y = np.asarray(labels).astype(bool)
    ts = np.asarray(ts_ms, dtype=np.int64)
    edges = np.diff(np.concatenate([[0], y.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [Window(int(ts[s]), int(ts[e])) for s, e in zip(starts, ends, strict=True)]


def labels_from_windows(ts_ms: np.ndarray, windows: list[Window]) -> np.ndarray:
    """1 for rows inside any window, else 0."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    y = np.zeros(len(ts), dtype=np.int8)
    for w in windows:
        y[(ts >= w.start_ms) & (ts <= w.end_ms)] = 1
    return y


def window_scores(ts_ms: np.ndarray, flagged: np.ndarray, windows: list[Window]) -> WindowScores:
    """Scores of one entity's rows (sorted by time here) against its windows."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    ts, f = ts[order], np.asarray(flagged).astype(bool)[order]
    inside = labels_from_windows(ts, windows).astype(bool)
    leads: list[float] = []
    detected = 0
    for w in windows:
        hit = f & (ts >= w.start_ms) & (ts <= w.end_ms)
        if hit.any():
            detected += 1
            leads.append((int(ts[np.argmax(hit)]) - w.start_ms) / HOUR_MS)
    edges = np.diff(np.concatenate([[0], f.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    touches = np.array([inside[s:e].any() for s, e in zip(starts, ends, strict=True)], dtype=bool)
    days = (int(ts[-1]) - int(ts[0])) / DAY_MS if len(ts) > 1 else 0.0
    return WindowScores(len(windows), detected, int(np.sum(~touches)), days, leads)


def combine(scores: Iterable[WindowScores]) -> WindowScores:
    """Totals over entities (false alarms per day then divide by the summed days)."""
    items = list(scores)
    return WindowScores(
        windows=sum(s.windows for s in items),
        detected=sum(s.detected for s in items),
        false_alarms=sum(s.false_alarms for s in items),
        days=float(sum(s.days for s in items)),
        lead_times_h=[x for s in items for x in s.lead_times_h],
    )


def window_scores_by_entity(
    entities: np.ndarray,
    ts_ms: np.ndarray,
    flagged: np.ndarray,
    windows: Mapping[str, list[Window]],
) -> dict[str, WindowScores]:
    """`window_scores` of each entity (an entity without windows has 0 windows)."""
    keys = np.asarray(entities).astype(str)
    out: dict[str, WindowScores] = {}
    for key in sorted(set(keys.tolist())):
        rows = keys == key
        out[key] = window_scores(ts_ms[rows], np.asarray(flagged)[rows], windows.get(key, []))
    return out
