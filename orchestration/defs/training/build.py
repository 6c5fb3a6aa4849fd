"""Pure assembly of the training set: features, raw sensors, labels and a time-based split."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.readings import SENSORS
from orchestration.defs.history.replay import day_window
from orchestration.defs.training.labels import anomaly_labels, time_to_next_failure

log = logging.getLogger(__name__)

KEYS = ["event_id", "device_id", "ts_ms"]


@dataclass(frozen=True, slots=True)
class Split:
    """Training rows (earlier days) and hold-out rows (the latest days)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    train_days: list[str]
    holdout_days: list[str]


def with_sensors(features: pd.DataFrame, readings: pd.DataFrame) -> pd.DataFrame:
    """The feature rows joined with their readings' raw sensor values (`raw_<sensor>`)."""
    raw = readings.drop_duplicates("event_id")[["event_id", *SENSORS]]
    raw = raw.rename(columns={s: f"raw_{s}" for s in SENSORS})
    return features.merge(raw, on="event_id", how="left", validate="one_to_one")


def label(
    rows: pd.DataFrame,
    maintenance: pd.DataFrame,
    truth: pd.DataFrame | None,
    horizon_ms: int,
) -> pd.DataFrame:
    """Add `ttf_ms`, `y_failure` (failure within the horizon) and `y_anomaly` (ground truth; when
    no ground truth is given, the horizon before a failure stands in for it)."""
    out = rows.copy()
    ttf = time_to_next_failure(out, maintenance)
    out["ttf_ms"] = ttf
    out["y_failure"] = (ttf <= horizon_ms).astype(np.int8)
    if truth is not None:
        out["y_anomaly"] = anomaly_labels(out, truth)
    else:
        out["y_anomaly"] = out["y_failure"]
    return out


def split_by_days(rows: pd.DataFrame, days: list[str], holdout_days: int) -> Split:
    """Train on all but the latest `holdout_days` days, hold those out (by event time)."""
    if len(days) <= holdout_days:
        raise ValueError(f"need more than {holdout_days} days of history, got {days}")
    train_days, hold_days = days[:-holdout_days], days[-holdout_days:]
    cut = day_window(hold_days[0])[0]
    ts = rows["ts_ms"].to_numpy()
    return Split(
        train=rows[ts < cut].reset_index(drop=True),
        holdout=rows[ts >= cut].reset_index(drop=True),
        train_days=train_days,
        holdout_days=hold_days,
    )


def sample_rows(df: pd.DataFrame, y: str, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows: every positive of `y`, a uniform sample of the negatives."""
    if len(df) <= max_rows:
        return df
    pos = df[df[y] == 1]
    neg = df[df[y] != 1]
    keep = max(max_rows - len(pos), min(len(neg), 1000))
    neg = neg.sample(n=min(keep, len(neg)), random_state=seed)
    return pd.concat([pos, neg]).sort_values("ts_ms", kind="stable").reset_index(drop=True)
