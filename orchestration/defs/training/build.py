"""Pure assembly of the training set: features, raw sensors, labels and a time-based split."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchestration.defs.dataset import SPEC
from orchestration.defs.history.replay import day_window
from orchestration.defs.training.labels import anomaly_labels, time_to_next_failure

log = logging.getLogger(__name__)

KEYS = ["event_id", "device_id", "ts_ms"]


@dataclass(frozen=True, slots=True)
class Split:
    """Training rows (earlier days, minus the embargo) and hold-out rows (the latest days)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    train_days: list[str]
    holdout_days: list[str]
    #: Training ends this long before the hold-out starts (ms).
    embargo_ms: int = 0
    #: Rows dropped because they fell inside the embargo.
    embargoed_rows: int = 0


def with_sensors(features: pd.DataFrame, readings: pd.DataFrame) -> pd.DataFrame:
    """The feature rows joined with their readings' raw sensor values (`raw_<sensor>`)."""
    sensors = [s for s in SPEC.sensor_names if s in readings]
    out = features.copy() if features is readings else features
    if len(features) == len(readings) and np.array_equal(
        features["event_id"].to_numpy(), readings["event_id"].to_numpy()
    ):
        # No duplicates: the batch path keeps the input's row order, so columns align.
        for s in sensors:
            out[f"raw_{s}"] = readings[s].to_numpy()
        return out
    raw = readings.drop_duplicates("event_id")[["event_id", *sensors]]
    raw = raw.rename(columns={s: f"raw_{s}" for s in sensors})
    return features.merge(raw, on="event_id", how="left", validate="one_to_one")


def label(
    rows: pd.DataFrame,
    maintenance: pd.DataFrame,
    truth: pd.DataFrame | None,
    horizon_ms: int,
) -> pd.DataFrame:
    """Add `ttf_ms`, `y_failure` (failure within the horizon) and `y_anomaly` (ground truth; when
    no ground truth is given, the horizon before a failure stands in for it), in place."""
    out = rows
    ttf = time_to_next_failure(out, maintenance)
    out["ttf_ms"] = ttf
    out["y_failure"] = (ttf <= horizon_ms).astype(np.int8)
    if truth is not None:
        out["y_anomaly"] = anomaly_labels(out, truth)
    else:
        out["y_anomaly"] = out["y_failure"]
    return out


def split_by_days(
    rows: pd.DataFrame, days: list[str], holdout_days: int, embargo_ms: int = 0
) -> Split:
    """Train on all but the latest `holdout_days` days, hold those out (by event time).

    Rows in the `embargo_ms` before the hold-out are dropped from training: with an embargo of
    at least the labels horizon, no training label is decided by an event inside the hold-out
    (a row an hour before the cut is labelled by a failure inside the hold-out otherwise)."""
    if len(days) <= holdout_days:
        raise ValueError(f"need more than {holdout_days} days of history, got {days}")
    if embargo_ms < 0:
        raise ValueError(f"embargo must not be negative, got {embargo_ms} ms")
    train_days, hold_days = days[:-holdout_days], days[-holdout_days:]
    cut = day_window(hold_days[0])[0]
    ts = rows["ts_ms"].to_numpy()
    before = ts < cut
    train = before & (ts < cut - embargo_ms)
    return Split(
        train=rows[train].reset_index(drop=True),
        holdout=rows[~before].reset_index(drop=True),
        train_days=train_days,
        holdout_days=hold_days,
        embargo_ms=embargo_ms,
        embargoed_rows=int(np.sum(before & ~train)),
    )


def sample_rows(df: pd.DataFrame, y: str, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows: every positive of `y`, a uniform sample of the negatives, with a
    `weight` column (1 / sampling fraction) so that weighted statistics match the full set."""
    if len(df) <= max_rows:
        return df.assign(weight=1.0)
    is_pos = df[y].to_numpy() == 1
    pos, neg = df[is_pos], df[~is_pos]
    keep = min(max(max_rows - len(pos), 1000), len(neg))
    neg = neg.sample(n=keep, random_state=seed)
    out = pd.concat([pos.assign(weight=1.0), neg.assign(weight=(~is_pos).sum() / max(keep, 1))])
    return out.sort_values("ts_ms", kind="stable").reset_index(drop=True)
