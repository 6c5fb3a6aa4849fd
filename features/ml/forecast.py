"""The forecasting model kind: demand per entity at several horizons, with quantiles, and a surge
rule on top (pure: numpy, pandas, scikit-learn).

Inputs are what the platform already computes, so training and serving see the same values:
the feature engine's vectors (`features.engine.batch` / `features.engine.online`) of an entity's event stream
whose channels are 0/1 indicators of the event's kind (see docs/shop.md). Events of a kind in a
window are `<channel>__mean_<w> x count_<w>` (exact: both come from integer pane sums). The
model is told which channel is the demand (`demand`) and which announce it (`leading`); it names
no domain field itself.

- `SeasonalProfile`: the expected events per entity, channel and minute of the week (a median
  over training days of the same day type, so a surge on one day does not raise it), learned at
  training time and kept in the model, like the anomaly models' per-entity baselines.
- `SurgeForecaster`: for each horizon h (minutes), the demand in the bucket `(t + h - bucket,
  t + h]`, as quantiles, from one gradient-boosting model per horizon and quantile (scikit-
  learn's `HistGradientBoostingRegressor`, loss "quantile"). It learns the log ratio of demand to
  its seasonal expectation, so one model serves entities of any size. Inputs: per channel and
  window, log(observed / expected); the seasonal trajectory ahead; minute of day and weekday.
- The surge rule (`surge_rule`): a surge is predicted at horizon h when the lower quantile
  (demand exceeded with probability `confidence`) is at least `surge_multiple` times the
  seasonal expectation and at least `min_excess` events above it.
- `SeasonalNaive`: the baseline: the seasonal expectation scaled by the ratio of the last
  window's demand to its expectation, with Poisson quantiles, judged by the same rule.

Evaluation lives in `features.ml.forecast_eval`, figures in `features.ml.forecast_plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

MINUTE_MS: Final = 60_000
DAY_MIN: Final = 1440
WEEK_MIN: Final = 7 * DAY_MIN
#: Day types of the seasonal profile by UTC weekday (Monday = 0): Monday to Thursday alike;
#: Friday, Saturday and Sunday each their own.
DAY_TYPES: Final = (0, 0, 0, 0, 1, 2, 3)
_Z: Final = {0.05: 1.6449, 0.1: 1.2816, 0.2: 0.8416, 0.25: 0.6745, 0.5: 0.0}


def window_minutes(name: str) -> int:
    """`15m` -> 15, `1h` -> 60 (the feature set's window names)."""
    unit = {"m": 1, "h": 60, "d": DAY_MIN}
    if len(name) < 2 or name[-1] not in unit or not name[:-1].isdigit():
        raise ValueError(f"window {name!r}: expected minutes, hours or days such as 15m or 1h")
    return int(name[:-1]) * unit[name[-1]]


def minute_counts(
    entity_codes: np.ndarray, ts_ms: np.ndarray, n_entities: int, start_ms: int, minutes: int
) -> np.ndarray:
    """(entities, minutes) event counts; events outside `[start, start + minutes)` are left out."""
    m = (np.asarray(ts_ms, dtype=np.int64) - start_ms) // MINUTE_MS
    ok = (m >= 0) & (m < minutes)
    flat = np.asarray(entity_codes, dtype=np.int64)[ok] * minutes + m[ok]
    return np.bincount(flat, minlength=n_entities * minutes).reshape(n_entities, minutes)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over the last axis (circular: a day's profile wraps)."""
    if width <= 1:
        return x
    pad = width // 2
    ext = np.concatenate([x[..., -pad:], x, x[..., : width - 1 - pad]], axis=-1)
    c = np.cumsum(ext, axis=-1)
    c = np.concatenate([np.zeros((*c.shape[:-1], 1)), c], axis=-1)
    return np.asarray((c[..., width:] - c[..., :-width]) / width)


class SeasonalProfile(BaseEstimator):
    """Expected events per entity, channel and minute of the (UTC) week."""

    def __init__(self, smooth_min: int = 15) -> None:
        self.smooth_min = smooth_min

    def fit(self, counts: Mapping[str, np.ndarray], entities: Sequence[str], start_ms: int) -> Self:
        """`counts[channel]`: (entities, minutes) counts of whole UTC days from `start_ms`."""
        if start_ms % (DAY_MIN * MINUTE_MS):
            raise ValueError("the profile's history must start at a UTC midnight")
        self.entities_ = list(entities)
        self.channels_ = list(counts)
        day0 = start_ms // (DAY_MIN * MINUTE_MS)
        week: dict[str, np.ndarray] = {}
        for ch, c in counts.items():
            n_days = c.shape[1] // DAY_MIN
            if n_days < 1 or c.shape[0] != len(self.entities_):
                raise ValueError(f"{ch}: need (entities, whole days of minutes) counts")
            days = _smooth(c[:, : n_days * DAY_MIN].reshape(len(entities), n_days, DAY_MIN), 15)
            dtype = np.array([DAY_TYPES[(day0 + d + 3) % 7] for d in range(n_days)])
            overall = np.median(days, axis=1)
            prof = np.empty((len(entities), 4, DAY_MIN))
            for g in range(4):
                sel = dtype == g
                prof[:, g] = np.median(days[:, sel], axis=1) if sel.any() else overall
            prof = _smooth(prof, self.smooth_min)
            wk = np.concatenate([prof[:, DAY_TYPES[wd]] for wd in range(7)], axis=1)
            week[ch] = wk.astype(np.float32)
        #: (entities, minutes of the week), Monday 00:00 UTC first
        self.week_ = week
        self._index = {e: i for i, e in enumerate(self.entities_)}
        return self

    def entity_index(self, entities: np.ndarray | pd.Series) -> np.ndarray:
        """Row of each entity in the profile; -1 for one not seen in training."""
        index = getattr(self, "_index", None) or {e: i for i, e in enumerate(self.entities_)}
        self._index = index
        return np.array([index.get(str(e), -1) for e in entities], dtype=np.int64)

    def expected(
        self, channel: str, rows: np.ndarray, end_ms: np.ndarray, minutes: int
    ) -> np.ndarray:
        """Expected events of `channel` in `(end - minutes, end]` per row (NaN: unknown entity)."""
        wk = self.week_[channel].astype(np.float64)
        cum = np.concatenate([np.zeros((wk.shape[0], 1)), np.cumsum(wk, axis=1)], axis=1)
        total = cum[:, -1]
        # minute of the week (Monday 00:00 = 0); the epoch was a Thursday
        end = (np.asarray(end_ms, dtype=np.int64) // MINUTE_MS + 3 * DAY_MIN) % WEEK_MIN
        start = end - minutes
        r = np.where(rows < 0, 0, rows)
        wraps = start < 0
        s = np.where(wraps, start + WEEK_MIN, start)
        out = cum[r, end] - cum[r, s] + np.where(wraps, total[r], 0.0)
        return np.where(rows < 0, np.nan, out)


def _z(q: float) -> float:
    """The standard normal's q-quantile for the levels in `_Z` and their complements."""
    return -_Z[q] if q in _Z else _Z[round(1 - q, 6)]


def surge_rule(
    lower: np.ndarray, expected: np.ndarray, multiple: float, min_excess: float
) -> np.ndarray:
    """A predicted surge: the lower quantile of demand at least `multiple` x the seasonal
    expectation and `min_excess` events above it (NaN never is one)."""
    with np.errstate(invalid="ignore"):
        return np.asarray((lower >= multiple * expected) & (lower - expected >= min_excess))


def _log_ratio(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.asarray(np.log((observed + 1.0) / (expected + 1.0)))


class _Forecast(BaseEstimator):
    """What both forecasters share: the profile, the columns they read and their output."""

    profile_: SeasonalProfile
    horizons_min: tuple[int, ...]
    bucket_min: int
    demand: str
    windows: tuple[str, ...]
    confidence: float
    surge_multiple: float
    min_excess: float

    def observed(self, X: pd.DataFrame, channel: str, window: str) -> np.ndarray:
        """Events of `channel` in the engine's window `window`: mean of the 0/1 indicator times
        the window's event count."""
        mean = X[f"{channel}__mean_{window}"].to_numpy(dtype=np.float64)
        count = X[f"count_{window}"].to_numpy(dtype=np.float64)
        return np.nan_to_num(mean * count, nan=0.0)

    def expected_ahead(self, rows: np.ndarray, ts: np.ndarray) -> dict[int, np.ndarray]:
        return {
            h: self.profile_.expected(self.demand, rows, ts + h * MINUTE_MS, self.bucket_min)
            for h in self.horizons_min
        }

    @property
    def lower_q(self) -> float:
        return round(1.0 - self.confidence, 6)

    def _frame(
        self,
        expected: dict[int, np.ndarray],
        quantiles: dict[int, dict[float, np.ndarray]],
        index: pd.Index,
    ) -> pd.DataFrame:
        cols: dict[str, np.ndarray] = {}
        for h in self.horizons_min:
            e = expected[h]
            qs = quantiles[h]
            cols[f"expected_{h}m"] = e
            for q, v in qs.items():
                cols[f"q{round(q * 100):02d}_{h}m"] = v
            lo = qs[self.lower_q]
            cols[f"surge_{h}m"] = surge_rule(lo, e, self.surge_multiple, self.min_excess)
            mid = qs.get(0.5, lo)
            with np.errstate(divide="ignore", invalid="ignore"):
                cols[f"size_{h}m"] = mid / np.maximum(e, 1e-9)
        return pd.DataFrame(cols, index=index)


class SurgeForecaster(_Forecast):
    """Quantile forecasts of an entity's demand at `horizons_min`, and the surge rule.

    `fit(X, counts, start_ms)`: `X` holds one row per decision time (`entity`, `ts_ms`, the
    engine's features `<channel>__mean_<w>` and `count_<w>`); `counts[channel]` the
    (entities, minutes) event counts from `start_ms` (whole UTC days), from which the profile
    and the targets come. `predict(X)` gives per horizon the expectation, the quantiles
    (`q10_60m`, ...), the surge flag and the expected size (median / expectation).
    """

    def __init__(
        self,
        *,
        demand: str = "demand",
        leading: tuple[str, ...] = (),
        windows: tuple[str, ...] = ("15m", "1h"),
        horizons_min: tuple[int, ...] = (15, 30, 60),
        bucket_min: int = 15,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        confidence: float = 0.9,
        surge_multiple: float = 1.5,
        min_excess: float = 3.0,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        sample_every: int = 1,
        informative: float = 0.3,
        seed: int = 0,
    ) -> None:
        self.demand = demand
        self.leading = leading
        self.windows = windows
        self.horizons_min = horizons_min
        self.bucket_min = bucket_min
        self.quantiles = quantiles
        self.confidence = confidence
        self.surge_multiple = surge_multiple
        self.min_excess = min_excess
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.sample_every = sample_every
        self.informative = informative
        self.seed = seed

    @property
    def channels(self) -> tuple[str, ...]:
        return (self.demand, *self.leading)

    def _check(self) -> None:
        if self.lower_q not in self.quantiles:
            raise ValueError(
                f"confidence {self.confidence} needs the quantile {self.lower_q} among "
                f"quantiles {self.quantiles}; add it"
            )
        if min(self.horizons_min) < self.bucket_min:
            raise ValueError("every horizon must be at least one bucket long")

    def design(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """(model inputs, profile rows, seasonal expectation per horizon) of `X`'s rows."""
        rows = self.profile_.entity_index(X["entity"])
        ts = X["ts_ms"].to_numpy(dtype=np.int64)
        cols: list[np.ndarray] = []
        first = self.windows[0]
        for ch in self.channels:
            ratios = []
            for w in self.windows:
                e = self.profile_.expected(ch, rows, ts, window_minutes(w))
                ratios.append(_log_ratio(self.observed(X, ch, w), e))
            cols.extend(ratios)
            cols.append(ratios[0] - ratios[-1])  # short against long: the trend
        e_now = self.profile_.expected(self.demand, rows, ts, window_minutes(first))
        cols.append(np.log1p(e_now))
        ahead = self.expected_ahead(rows, ts)
        for h in self.horizons_min:
            cols.append(_log_ratio(ahead[h], e_now * self.bucket_min / window_minutes(first)))
        minute = (ts // MINUTE_MS) % DAY_MIN
        cols.append(np.sin(2 * np.pi * minute / DAY_MIN))
        cols.append(np.cos(2 * np.pi * minute / DAY_MIN))
        cols.append(((ts // (DAY_MIN * MINUTE_MS) + 3) % 7).astype(np.float64))
        return np.column_stack(cols), rows, ahead

    def targets(
        self, X: pd.DataFrame, counts: np.ndarray, entities: Sequence[str], start_ms: int
    ) -> dict[int, np.ndarray]:
        """Demand in `(t + h - bucket, t + h]` per row and horizon (NaN beyond the counts)."""
        return bucket_targets(X, counts, entities, start_ms, self.horizons_min, self.bucket_min)

    def _sample(self, A: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows to train on and their weights: every row where a channel's shortest window is
        off its expectation by more than `informative` (log ratio; the rare rows surges are
        made of), one in `sample_every` of the others with weight `sample_every` (the loss
        stays an unbiased estimate of the full one)."""
        n_ch = len(self.channels)
        per = len(self.windows) + 1
        short = np.abs(A[:, [c * per for c in range(n_ch)]]).max(axis=1)
        rare = short > self.informative
        every = max(1, self.sample_every)
        sampled = (ts // MINUTE_MS) % every == 0
        keep = rare | sampled
        return keep, np.where(rare, 1.0, float(every))

    def fit(
        self,
        X: pd.DataFrame,
        counts: Mapping[str, np.ndarray],
        entities: Sequence[str],
        start_ms: int,
    ) -> Self:
        self._check()
        missing = [ch for ch in self.channels if ch not in counts]
        if missing:
            raise ValueError(f"counts lack the channels {missing}")
        self.profile_ = SeasonalProfile().fit(
            {ch: counts[ch] for ch in self.channels}, entities, start_ms
        )
        A, _, ahead = self.design(X)
        ys = self.targets(X, counts[self.demand], entities, start_ms)
        keep, weight = self._sample(A, X["ts_ms"].to_numpy(dtype=np.int64))
        self.n_train_rows_ = int(keep.sum())
        self.models_: dict[str, HistGradientBoostingRegressor] = {}
        for h in self.horizons_min:
            y = _log_ratio(ys[h], ahead[h])
            ok = np.isfinite(y) & keep
            for q in self.quantiles:
                m = HistGradientBoostingRegressor(
                    loss="quantile",
                    quantile=q,
                    max_iter=self.max_iter,
                    learning_rate=self.learning_rate,
                    early_stopping=False,
                    random_state=self.seed,
                )
                # One OpenMP thread: on a shared 2-core machine more threads spin, and a fit of
                # a few thousand rows took 10x longer under load (as in the failure-risk fit).
                with threadpool_limits(limits=1, user_api="openmp"):
                    self.models_[f"{h}:{q}"] = m.fit(A[ok], y[ok], sample_weight=weight[ok])
        self.n_features_in_ = A.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        A, _, ahead = self.design(X)
        quantiles: dict[int, dict[float, np.ndarray]] = {}
        for h in self.horizons_min:
            e = ahead[h]
            preds = np.column_stack([self.models_[f"{h}:{q}"].predict(A) for q in self.quantiles])
            preds = np.sort(preds, axis=1)  # no crossing quantiles
            demand = np.maximum(np.exp(preds) * (e[:, None] + 1.0) - 1.0, 0.0)
            quantiles[h] = {q: demand[:, i] for i, q in enumerate(self.quantiles)}
        return self._frame(ahead, quantiles, X.index)


class SeasonalNaive(_Forecast):
    """The baseline: seasonal expectation x (last window's demand / its expectation), Poisson
    quantiles (normal approximation), the same surge rule."""

    def __init__(
        self,
        profile: SeasonalProfile,
        *,
        demand: str = "demand",
        window: str = "15m",
        horizons_min: tuple[int, ...] = (15, 30, 60),
        bucket_min: int = 15,
        confidence: float = 0.9,
        surge_multiple: float = 1.5,
        min_excess: float = 3.0,
    ) -> None:
        self.profile = profile
        self.demand = demand
        self.window = window
        self.horizons_min = horizons_min
        self.bucket_min = bucket_min
        self.confidence = confidence
        self.surge_multiple = surge_multiple
        self.min_excess = min_excess
        self.profile_ = profile
        self.windows = (window,)
        if self.lower_q not in _Z:
            raise ValueError(f"confidence must be one of {sorted(round(1 - q, 6) for q in _Z)}")

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        rows = self.profile_.entity_index(X["entity"])
        ts = X["ts_ms"].to_numpy(dtype=np.int64)
        e_now = self.profile_.expected(self.demand, rows, ts, window_minutes(self.window))
        level = np.clip(
            (self.observed(X, self.demand, self.window) + 1.0) / (e_now + 1.0), 0.1, 20.0
        )
        ahead = self.expected_ahead(rows, ts)
        levels = sorted({0.1, 0.5, 0.9, self.lower_q, round(1 - self.lower_q, 6)})
        quantiles = {}
        for h in self.horizons_min:
            f = ahead[h] * level
            sd = np.sqrt(np.maximum(f, 0.0))
            quantiles[h] = {q: np.maximum(f + _z(q) * sd, 0.0) for q in levels}
        return self._frame(ahead, quantiles, X.index)


def bucket_targets(
    X: pd.DataFrame,
    counts: np.ndarray,
    entities: Sequence[str],
    start_ms: int,
    horizons_min: Sequence[int],
    bucket_min: int,
) -> dict[int, np.ndarray]:
    """Actual demand in `(t + h - bucket, t + h]` for each row of `X` (`entity`, `ts_ms` at
    minute boundaries) from (entities, minutes) `counts` starting at `start_ms`; NaN where the
    bucket leaves the counts or the entity is not in `entities`."""
    index = {e: i for i, e in enumerate(entities)}
    rows = np.array([index.get(str(e), -1) for e in X["entity"]], dtype=np.int64)
    cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
    m = (X["ts_ms"].to_numpy(dtype=np.int64) - start_ms) // MINUTE_MS
    out = {}
    for h in horizons_min:
        hi, lo = m + h, m + h - bucket_min
        ok = (rows >= 0) & (lo >= 0) & (hi <= counts.shape[1])
        r, a, b = (
            np.where(ok, rows, 0),
            np.clip(lo, 0, counts.shape[1]),
            np.clip(hi, 0, counts.shape[1]),
        )
        out[h] = np.where(ok, cum[r, b] - cum[r, a], np.nan)
    return out


def at_minute_ends(
    features: pd.DataFrame, start_ms: int, minutes: int, entity_column: str = "device_id"
) -> pd.DataFrame:
    """The engine's features as a decision grid: per entity and minute end `t = start + (m+1)
    min`, the row of the entity's last event before t (its state at t); minutes before its
    first event are left out. Output columns: `entity`, `ts_ms` (= t), the feature columns."""
    feats = features[~features["late"]] if "late" in features.columns else features
    value_cols = [c for c in feats.columns if c not in ("event_id", entity_column, "ts_ms", "late")]
    ends = start_ms + (np.arange(minutes, dtype=np.int64) + 1) * MINUTE_MS
    parts = []
    for entity, g in feats.groupby(entity_column, sort=True, observed=True):
        ts = g["ts_ms"].to_numpy(dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        last = np.searchsorted(ts[order], ends, side="left") - 1
        ok = last >= 0
        rows = g[value_cols].to_numpy()[order][last[ok]]
        part = pd.DataFrame(rows, columns=value_cols)
        part.insert(0, "ts_ms", ends[ok])
        part.insert(0, "entity", str(entity))
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def params_of(model: _Forecast) -> dict[str, Any]:
    """The rule's parameters (for a model card or MLflow)."""
    return {
        "horizons_min": list(model.horizons_min),
        "bucket_min": model.bucket_min,
        "confidence": model.confidence,
        "surge_multiple": model.surge_multiple,
        "min_excess": model.min_excess,
    }
