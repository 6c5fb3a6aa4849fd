"""A first dataset spec proposed from sample data (the pure part of `edaml dataset init`).

Given each file's sniffed layout (delimiter, time column, entity column) and its rows as a
frame, `propose_spec` returns the spec document and the notes a person should review:

- label columns: every column with a label-like name whose values are 0/1 (or true/false) is a
  label, never a sensor; a label column some files lack makes those files `missing: normal`
  (a clean reference run, say);
- sensors: the other numeric columns, units left blank, physical range proposed from the data
  with a margin of half the observed span on each side (rounded outward);
- cadence: the median spacing of consecutive readings of one entity;
- the models: the anomaly model `auto` (training picks the best kind), its inputs normalised
  per entity against the entity's own history when there are several entities (one model then
  serves entities of any scale);
- the event-time policy: no past horizon (historical data must replay and serve);
- features: the cadence's default windows (about 5, 60 and 1440 readings), except for short
  recordings (experiment files of minutes or hours, SKAB-like): each channel's value and its
  mean and std over about 10 and 60 readings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

#: Names (lower case) that make a 0/1 column a label; also any name containing these stems.
LABEL_HINTS: Final = (
    "label",
    "anomaly",
    "anomalies",
    "is_anomaly",
    "changepoint",
    "change_point",
    "fault",
    "failure",
    "attack",
    "outlier",
    "target",
)
_LABEL_STEMS: Final = ("anomal", "label", "fault", "changepoint", "change_point", "outlier")


@dataclass(frozen=True)
class FileSample:
    """One file, as sniffed: where it is, its layout, and its data rows.

    `frame` holds `ts_ms` (int64, epoch ms) and the file's other columns as read (numbers as
    float64 where they parse); `entity` is the file's entity when `entity_column` is None."""

    path: str
    delimiter: str
    time_column: str
    entity_column: str | None
    entity: str
    frame: pd.DataFrame
    #: column name in the file -> sensor name in readings (normalised)
    sensor_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Proposal:
    spec: dict[str, Any]
    inferred: list[str]
    review: list[str]


def is_label_like(name: str, values: pd.Series) -> bool:
    """A label-like name and only 0/1 (or booleans) as values."""
    low = name.strip().lower()
    if low not in LABEL_HINTS and not any(s in low for s in _LABEL_STEMS):
        return False
    v = values.dropna()
    if v.empty:
        return True
    if v.dtype == bool:
        return True
    if v.dtype == object:
        return set(v.astype(str).str.strip().str.lower()) <= {"0", "1", "true", "false"}
    return set(np.unique(v.to_numpy(np.float64)).tolist()) <= {0.0, 1.0}


def _round_out(x: float, up: bool) -> float:
    """`x` rounded outward to 3 significant digits."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    k = 10 ** (math.floor(math.log10(abs(x))) - 2)
    return float(f"{(math.ceil(x / k) if up else math.floor(x / k)) * k:.12g}")


def proposed_range(lo: float, hi: float) -> tuple[float, float]:
    """The observed [lo, hi] widened by half its span on each side (at least 1 % of the
    magnitude, or 1 for a constant 0), rounded outward; a non-negative sensor stays >= 0."""
    span = hi - lo
    margin = max(span / 2, 0.01 * max(abs(lo), abs(hi)), 1.0 if span == 0 and hi == 0 else 0.0)
    low, high = lo - margin, hi + margin
    if lo >= 0 > low:
        low = 0.0
    return float(_round_out(low, up=False)), float(_round_out(high, up=True))


#: Recordings shorter than this (the median per entity: experiment files of minutes or hours)
#: get short windows of about 10 and 60 readings instead of the cadence's default windows.
SHORT_RECORDING_MS: Final = 24 * 3_600_000


def short_recording_features(cadence: str) -> dict[str, Any]:
    """Features of a short recording: the value, and mean and std over about 10 and 60
    readings (a 1 Hz rig: 10 s and 1 min)."""
    from features.spec import _nice, format_duration, parse_duration

    c = parse_duration(cadence)
    short, mid = (format_duration(_nice(k * c)) for k in (10, 60))
    return {
        "windows": [
            {"length": short, "aggs": ["mean", "std"]},
            {"length": mid, "aggs": ["mean", "std"]},
        ],
        "sensor_aggs": ["last"],
    }


def _nice_cadence(ms: float) -> str:
    if ms >= 86_400_000 and ms % 86_400_000 < 60_000:
        return f"{round(ms / 86_400_000)}d"
    if ms >= 3_600_000 and ms % 3_600_000 < 1000:
        return f"{round(ms / 3_600_000)}h"
    if ms >= 60_000 and ms % 60_000 < 1000:
        return f"{round(ms / 60_000)}m"
    if ms >= 1000:
        return f"{round(ms / 1000)}s"
    return f"{max(1, round(ms))}ms"


def propose_spec(name: str, files: Sequence[FileSample]) -> Proposal:
    """The spec document for `files` and what to review (see the module docstring)."""
    if not files:
        raise ValueError("no files to infer a spec from")
    inferred: list[str] = []
    review: list[str] = []
    first = files[0]
    columns: dict[str, list[pd.Series]] = {}
    sensor_of: dict[str, str] = {}
    for f in files:
        for c in f.frame.columns:
            if c in ("ts_ms", f.time_column, f.entity_column):
                continue
            columns.setdefault(c, []).append(f.frame[c])
            if c in f.sensor_names:
                sensor_of[c] = f.sensor_names[c]
    labels = [c for c, parts in columns.items() if is_label_like(c, pd.concat(parts))]
    sensors: dict[str, dict[str, Any]] = {}
    per_entity_median: dict[str, list[float]] = {}
    for c, parts in columns.items():
        if c in labels or c not in sensor_of:
            continue
        x = pd.concat(parts).to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            review.append(f"column {c!r} has no numbers: left out")
            continue
        lo, hi = float(x.min()), float(x.max())
        sensors[sensor_of[c]] = {"unit": "", "range": list(proposed_range(lo, hi))}
        inferred.append(f"sensor {sensor_of[c]} (column {c!r}): observed [{lo:.6g}, {hi:.6g}]")
        for f in files:
            if c in f.frame:
                col = f.frame[c].to_numpy(np.float64)
                med = float(np.nanmedian(np.abs(col))) if np.isfinite(col).any() else math.nan
                per_entity_median.setdefault(c, []).append(med)
    if not sensors:
        raise ValueError("no numeric sensor column found in the files")
    # cadence: median spacing within an entity
    gaps: list[np.ndarray] = []
    for f in files:
        df = f.frame
        if f.entity_column is not None:
            for _, g in df.groupby(f.entity_column, sort=False):
                gaps.append(np.diff(np.sort(g["ts_ms"].to_numpy(np.int64))))
        else:
            gaps.append(np.diff(np.sort(df["ts_ms"].to_numpy(np.int64))))
    allg = np.concatenate(gaps) if gaps else np.zeros(0)
    allg = allg[allg > 0]
    cadence = _nice_cadence(float(np.median(allg))) if allg.size else "60s"
    inferred.append(f"cadence {cadence} (median spacing of one entity's readings)")
    spec: dict[str, Any] = {
        "name": name,
        "description": f"Made by `edaml dataset init` from {len(files)} file(s).",
    }
    entity: dict[str, Any] = {"key": "device_id"}
    if first.entity_column is not None:
        entity["column"] = first.entity_column
        inferred.append(f"entity column {first.entity_column!r}")
    else:
        inferred.append(
            "entity: each file (its path relative to the files' common root): "
            + ", ".join(f.entity for f in files[:8])
            + (" ..." if len(files) > 8 else "")
        )
    spec["entity"] = entity
    spec["event_time"] = {"column": first.time_column, "past_horizon": "off"}
    inferred.append(f"time column {first.time_column!r}; delimiter {first.delimiter!r}")
    spec["cadence"] = cadence
    spec["sensors"] = sensors
    label_sources: list[dict[str, Any]] = []
    for c in labels:
        having = sum(c in f.frame for f in files)
        meaning = "changepoint" if "change" in c.lower() else "anomaly"
        source: dict[str, Any] = {"kind": "column", "column": c, "meaning": meaning}
        if having < len(files):
            source["missing"] = "normal"
            review.append(
                f"{len(files) - having} file(s) lack label column {c!r}: their rows count as "
                "normal (missing: normal); say `unlabelled` if they are not clean runs"
            )
        label_sources.append(source)
        inferred.append(f"label column {c!r} (0/1): ground truth, never a feature")
    spec["labels"] = label_sources

    def spread(meds: list[float]) -> float:
        ok = [m for m in meds if math.isfinite(m) and m > 0]
        return max(ok) / min(ok) if len(ok) > 1 else 1.0

    entities = {f.entity for f in files} if first.entity_column is None else {"several"}
    normalise = "entity" if len(entities) > 1 or first.entity_column is not None else "none"
    spec["models"] = {"anomaly": {"kind": "auto", "input": "features", "normalise": normalise}}
    widest = max((spread(m) for m in per_entity_median.values()), default=1.0)
    if normalise == "entity":
        inferred.append(
            "several entities: inputs normalised per entity against its own history "
            f"(typical levels differ up to {widest:.3g}x between entities)"
        )
    spans = [
        float(np.ptp(g["ts_ms"].to_numpy(np.int64)))
        for f in files
        for _, g in (
            f.frame.groupby(f.entity_column, sort=False)
            if f.entity_column is not None
            else [("", f.frame)]
        )
        if len(g)
    ]
    if spans and float(np.median(spans)) < SHORT_RECORDING_MS:
        spec["features"] = short_recording_features(cadence)
        inferred.append(
            "short recordings (median "
            f"{np.median(spans) / 60_000:.0f} min): features are each channel's value and its "
            f"mean and std over {spec['features']['windows'][0]['length']} and "
            f"{spec['features']['windows'][1]['length']}, not hours-long windows"
        )
    spec["files"] = [f.path for f in files]
    review.append("units are blank: fill them in (they appear in alert reasons)")
    review.append(
        "physical ranges are the observed values with a margin: values outside go to the DLQ; "
        "widen them to what the instrument can really read"
    )
    review.append("no operating limits: add `limits` per sensor for the rule fallback")
    if not labels:
        review.append("no label column found: add a label source if ground truth exists")
    return Proposal(spec, inferred, review)
