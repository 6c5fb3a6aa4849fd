"""Evaluation of demand forecasts and surge alerts (pure).

- `pinball(y, pred, q)`: the quantile (pinball) loss, mean over rows with a known actual.
- `mape(y, pred, min_actual)`: mean absolute percentage error of the median forecast over rows
  whose actual is at least `min_actual` (a percentage of nearly nothing means nothing).
- `alert_episodes(frame, flags)`: per entity, runs of minutes with any surge flag raised (gaps
  up to `merge_gap_min` merged): what a scorer emitting `surge-predicted` on entering the
  state would send, one event per episode.
- `score_alerts(episodes, surges, ...)`: surge recall at a lead time (an episode on the surge's
  entity active between `max_lead` and `lead` minutes before its start), the lead of each
  surge, and false alerts (episodes on no surge's `[start - max_lead, end]`) per day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

MINUTE_MS: Final = 60_000


def pinball(y: np.ndarray, pred: np.ndarray, q: float) -> float:
    ok = np.isfinite(y) & np.isfinite(pred)
    d = y[ok] - pred[ok]
    return float(np.mean(np.maximum(q * d, (q - 1) * d))) if ok.any() else float("nan")


def mape(y: np.ndarray, pred: np.ndarray, min_actual: float = 5.0) -> float:
    ok = np.isfinite(y) & np.isfinite(pred) & (y >= min_actual)
    return float(np.mean(np.abs(pred[ok] - y[ok]) / y[ok])) if ok.any() else float("nan")


@dataclass(frozen=True, slots=True)
class Episode:
    entity: str
    start_ms: int
    end_ms: int  # last flagged minute


def alert_episodes(
    entity: np.ndarray, ts_ms: np.ndarray, flags: np.ndarray, merge_gap_min: int = 15
) -> list[Episode]:
    """Runs of flagged decision times per entity (rows at minute steps, any order)."""
    df = pd.DataFrame({"e": entity, "t": ts_ms, "f": flags}).loc[lambda d: d["f"]]
    out: list[Episode] = []
    gap = merge_gap_min * MINUTE_MS
    for e, g in df.groupby("e", sort=True):
        t = np.sort(g["t"].to_numpy(dtype=np.int64))
        breaks = np.flatnonzero(np.diff(t) > gap + MINUTE_MS)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(t) - 1]])
        out.extend(Episode(str(e), int(t[a]), int(t[b])) for a, b in zip(starts, ends, strict=True))
    return out


@dataclass(frozen=True, slots=True)
class SurgeScore:
    surges: int
    predicted: int  # at `lead_min` or more ahead
    recall: float
    median_lead_min: float  # of the surges predicted at any lead (NaN: none)
    leads_min: tuple[float, ...]  # per surge: minutes from the first alert to the start (NaN: none)
    alerts: int
    false_alerts: int
    false_alerts_per_day: float


def score_alerts(
    episodes: Sequence[Episode],
    surges: pd.DataFrame,
    days: float,
    lead_min: float = 30.0,
    max_lead_min: float = 180.0,
) -> SurgeScore:
    """`surges`: columns `key`, `start_ms`, `end_ms` (ground truth on the evaluated days)."""
    by_entity: dict[str, list[Episode]] = {}
    for ep in episodes:
        by_entity.setdefault(ep.entity, []).append(ep)
    max_lead = round(max_lead_min * MINUTE_MS)
    leads: list[float] = []
    predicted = 0
    for key, start in zip(surges["key"], surges["start_ms"], strict=True):
        eps = [
            ep
            for ep in by_entity.get(str(key), [])
            if ep.start_ms <= start and ep.end_ms >= start - max_lead
        ]
        if not eps:
            leads.append(float("nan"))
            continue
        # the alert raised earliest inside the horizon (an older one still on counts from
        # the horizon's edge)
        first = min(max(ep.start_ms, start - max_lead) for ep in eps)
        lead = (int(start) - first) / MINUTE_MS
        leads.append(lead)
        predicted += lead >= lead_min
    false = 0
    for ep in episodes:
        mine = surges[surges["key"] == ep.entity]
        hit = ((mine["start_ms"] - max_lead <= ep.end_ms) & (mine["end_ms"] >= ep.start_ms)).any()
        false += not bool(hit)
    n = len(surges)
    got = [x for x in leads if np.isfinite(x)]
    return SurgeScore(
        surges=n,
        predicted=predicted,
        recall=predicted / n if n else float("nan"),
        median_lead_min=float(np.median(got)) if got else float("nan"),
        leads_min=tuple(leads),
        alerts=len(episodes),
        false_alerts=false,
        false_alerts_per_day=false / days if days > 0 else float("nan"),
    )


def forecast_errors(
    pred: pd.DataFrame,
    actual: dict[int, np.ndarray],
    quantiles: Sequence[float],
    min_actual: float = 5.0,
) -> dict[str, float]:
    """Pinball loss (mean over `quantiles`) and MAPE of the median per horizon:
    `pinball_<h>m`, `mape_<h>m`."""
    out: dict[str, float] = {}
    for h, y in actual.items():
        losses = [pinball(y, pred[f"q{round(q * 100):02d}_{h}m"].to_numpy(), q) for q in quantiles]
        out[f"pinball_{h}m"] = float(np.mean(losses))
        out[f"mape_{h}m"] = mape(y, pred[f"q50_{h}m"].to_numpy(), min_actual)
    return out
