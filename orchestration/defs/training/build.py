"""Pure assembly of the training set: features, raw sensors, labels and a time-based split."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def with_sensors(
    features: pd.DataFrame, readings: pd.DataFrame, sensor_names: tuple[str, ...] | list[str]
) -> pd.DataFrame:
    """The feature rows joined with their readings' raw sensor values (`raw_<sensor>`)."""
    sensors = [s for s in sensor_names if s in readings]
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
    unlabelled: frozenset[str] | set[str] = frozenset(),
) -> pd.DataFrame:
    """Add `ttf_ms`, `y_failure` (failure within the horizon), `y_anomaly` (ground truth
    intervals; when no ground truth is given, the horizon before a failure stands in for it) and
    `y_known` (0 for rows of the `unlabelled` entities: no anomaly label is known), in place."""
    out = rows
    ttf = time_to_next_failure(out, maintenance)
    out["ttf_ms"] = ttf
    out["y_failure"] = (ttf <= horizon_ms).astype(np.int8)
    if truth is not None:
        out["y_anomaly"] = anomaly_labels(out, truth)
    else:
        out["y_anomaly"] = out["y_failure"]
    known = ~out["device_id"].astype(str).isin(list(unlabelled)).to_numpy()
    out["y_known"] = known.astype(np.int8)
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


def split_by_time(
    rows: pd.DataFrame,
    days: list[str],
    *,
    holdout_days: int | None,
    holdout: float,
    embargo_ms: int = 0,
    min_days_for_whole_days: int = 5,
) -> Split:
    """The hold-out: the latest `holdout_days` whole days when given; else the latest `holdout`
    share of the rows by event time, cut at a day boundary when the window has at least
    `min_days_for_whole_days` days (months of 5-minute data, the fleet's two weeks), else
    anywhere in the day (a few hours of 1 Hz data, short experiment files). Training ends
    `embargo_ms` before the cut, as in `split_by_days`."""
    if holdout_days is not None:
        return split_by_days(rows, days, holdout_days, embargo_ms=embargo_ms)
    if embargo_ms < 0:
        raise ValueError(f"embargo must not be negative, got {embargo_ms} ms")
    ts = np.sort(rows["ts_ms"].to_numpy(np.int64))
    if len(ts) < 10:
        raise ValueError(f"need at least 10 rows to hold some out, got {len(ts)}")
    cut = int(ts[min(len(ts) - 1, int(np.floor(len(ts) * (1.0 - holdout))))])
    if len(days) >= min_days_for_whole_days:
        starts = [day_window(d)[0] for d in days]
        later = [s for s in starts if s >= cut and s > starts[0]]
        cut = later[0] if later else max(s for s in starts if s <= cut)
        if cut <= starts[0]:
            cut = starts[-1]
    all_ts = rows["ts_ms"].to_numpy(np.int64)
    before = all_ts < cut
    train = before & (all_ts < cut - embargo_ms)
    if not train.any() or before.all():
        raise ValueError(
            f"holdout {holdout:g} of {len(ts)} rows leaves no training or no hold-out rows"
        )
    day_of = {d: day_window(d) for d in days}
    return Split(
        train=rows[train].reset_index(drop=True),
        holdout=rows[~before].reset_index(drop=True),
        train_days=[d for d, (s, _) in day_of.items() if s < cut - embargo_ms],
        holdout_days=[d for d, (_, e) in day_of.items() if e > cut],
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
