"""Evaluation metrics of one scorer on a hold-out: classification, alarms and lead time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from features.ml.metrics import event_metrics
from features.ml.windows import WindowScores, combine, window_scores, windows_from_labels

HOUR_MS = 3600 * 1000


def alert_episodes(device_ids: np.ndarray, ts_ms: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Row indices where an alert episode starts (a flag after an unflagged row of the device)."""
    order = np.lexsort((ts_ms, device_ids))
    f = flagged[order].astype(bool)
    d = device_ids[order]
    prev_f = np.concatenate([[False], f[:-1]])
    same = np.concatenate([[False], d[1:] == d[:-1]])
    starts = f & ~(prev_f & same)
    return order[starts]


def lead_times_ms(
    device_ids: np.ndarray,
    ts_ms: np.ndarray,
    flagged: np.ndarray,
    failures: pd.DataFrame,
    horizon_ms: int,
) -> np.ndarray:
    """Per failure inside the scored time range: failure time minus its first alert within the
    horizon before it (NaN when no alert came)."""
    if len(ts_ms) == 0:
        return np.array([])
    lo, hi = int(ts_ms.min()), int(ts_ms.max())
    fails = failures[(failures["ts_ms"] > lo + horizon_ms // 4) & (failures["ts_ms"] <= hi)]
    flagged_rows = pd.DataFrame({"device_id": device_ids[flagged], "ts_ms": ts_ms[flagged]})
    by_device = {d: g["ts_ms"].to_numpy() for d, g in flagged_rows.groupby("device_id")}
    out = []
    for dev, fail_ms in zip(fails["device_id"], fails["ts_ms"], strict=True):
        alerts = by_device.get(dev)
        if alerts is None:
            out.append(np.nan)
            continue
        hit = alerts[(alerts >= fail_ms - horizon_ms) & (alerts < fail_ms)]
        out.append(float(fail_ms - hit.min()) if hit.size else np.nan)
    return np.asarray(out, dtype=np.float64)


def labelled_windows(
    device_ids: np.ndarray, ts_ms: np.ndarray, y: np.ndarray, flagged: np.ndarray
) -> WindowScores:
    """NAB-style window scores over every device: each run of positive labels of a device is a
    window; detected windows, alert episodes outside any window (false alarms) and the lead time
    from a window's start to its first alert."""
    order = np.lexsort((ts_ms, device_ids))
    d, t, yy, f = device_ids[order], ts_ms[order], y[order], flagged[order]
    cuts = np.flatnonzero(d[1:] != d[:-1]) + 1
    parts = []
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(d)], strict=True):
        if hi > lo:
            parts.append(
                window_scores(t[lo:hi], f[lo:hi], windows_from_labels(t[lo:hi], yy[lo:hi]))
            )
    return combine(parts)


def evaluate(
    *,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    device_ids: np.ndarray,
    ts_ms: np.ndarray,
    failures: pd.DataFrame,
    horizon_ms: int,
    min_lead_ms: int = HOUR_MS,
) -> dict[str, float]:
    """Per-event precision, recall, F1, false-alarm rate (FP / negatives) and missed-alarm rate
    (FN / positives), PR-AUC, NAB-style window scores (a window: a run of positive labels of a
    device), alert episodes, false alarms per device-day and lead time of alerts before failures."""
    y = y.astype(bool)
    flagged = scores >= threshold
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = int(np.sum(~flagged & y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pr_auc = float(average_precision_score(y, scores)) if y.any() and (~y).any() else 0.0
    episodes = alert_episodes(device_ids, ts_ms, flagged)
    false_episodes = int(np.sum(~y[episodes]))
    # An alert episode is right when it starts inside a positive label's span.
    alert_precision = (len(episodes) - false_episodes) / len(episodes) if len(episodes) else 0.0
    span_days = (
        max((int(ts_ms.max()) - int(ts_ms.min())) / (24 * HOUR_MS), 1 / 24) if len(ts_ms) else 1.0
    )
    device_days = max(len(np.unique(device_ids)) * span_days, 1e-9)
    leads = lead_times_ms(device_ids, ts_ms, flagged, failures, horizon_ms)
    caught = leads[~np.isnan(leads)]
    per_event = event_metrics(y, flagged)
    win = labelled_windows(device_ids, ts_ms, y, flagged) if len(y) else None
    return {
        "far": per_event.far,
        "mar": per_event.mar,
        "windows": float(win.windows) if win else 0.0,
        "windows_detected": float(win.detected) if win else 0.0,
        "window_recall": win.detected / win.windows if win and win.windows else 0.0,
        "window_false_alarms_per_day": win.false_alarms_per_day if win else 0.0,
        "window_lead_time_median_h": win.median_lead_time_h if win and win.lead_times_h else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "pr_auc": pr_auc,
        "base_rate": float(np.mean(y)) if len(y) else 0.0,
        "alert_precision": alert_precision,
        "alerts": float(len(episodes)),
        "alert_rate": float(np.mean(flagged)) if len(flagged) else 0.0,
        "false_alarms_per_device_day": false_episodes / device_days,
        "failures": float(len(leads)),
        "failures_caught": float(caught.size),
        "failure_recall_1h": float(np.mean(leads >= min_lead_ms)) if leads.size else 0.0,
        "lead_time_median_h": float(np.median(caught) / HOUR_MS) if caught.size else 0.0,
    }
