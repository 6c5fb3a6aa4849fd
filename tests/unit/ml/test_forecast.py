"""The forecasting model kind: seasonal profile, quantile forecasts, surge rule, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.ml.forecast import (
    MINUTE_MS,
    SeasonalNaive,
    SeasonalProfile,
    SurgeForecaster,
    at_minute_ends,
    bucket_targets,
    minute_counts,
    surge_rule,
    window_minutes,
)
from features.ml.forecast_eval import (
    Episode,
    alert_episodes,
    forecast_errors,
    mape,
    pinball,
    score_alerts,
)

MONDAY = 1_767_571_200_000  # 2026-01-05T00:00Z
DAY = 1440


def _rate(days: int, level: float) -> np.ndarray:
    minute = np.arange(days * DAY) % DAY
    return level * (1.0 + 0.8 * np.sin(2 * np.pi * (minute - 360) / DAY))


def _panel(days: int, seed: int, surges: list[tuple[int, int, float]]) -> dict[str, np.ndarray]:
    """Two entities; demand and a leading channel that rises 60 min before each surge."""
    rng = np.random.default_rng(seed)
    base = np.stack([_rate(days, 2.0), _rate(days, 0.5)])
    mult_d = np.ones_like(base)
    mult_l = np.ones_like(base)
    for e, start, size in surges:
        mult_d[e, start : start + 90] = size
        mult_l[e, start - 60 : start + 90] = 1 + 2 * (size - 1)
    return {
        "demand": rng.poisson(base * mult_d),
        "lead": rng.poisson(3 * base * mult_l),
    }


def _grid(counts: dict[str, np.ndarray], entities: list[str]) -> pd.DataFrame:
    """Decision rows at every minute end with the engine's column layout (window mean of the
    0/1 indicator, window event count) computed from the counts."""
    n_e, n_m = counts["demand"].shape
    rows = []
    for e in range(n_e):
        df = {"entity": entities[e], "ts_ms": MONDAY + (np.arange(n_m) + 1) * MINUTE_MS}
        for w, span in (("15m", 15), ("1h", 60)):
            cum = {ch: np.concatenate([[0], np.cumsum(c[e])]) for ch, c in counts.items()}
            hi = np.arange(n_m) + 1
            lo = np.maximum(hi - span, 0)
            n = {ch: cum[ch][hi] - cum[ch][lo] for ch in counts}
            total = sum(n.values())
            df[f"count_{w}"] = total
            for ch in counts:
                with np.errstate(invalid="ignore", divide="ignore"):
                    df[f"{ch}__mean_{w}"] = n[ch] / total
        rows.append(pd.DataFrame(df))
    return pd.concat(rows, ignore_index=True)


def test_profile_learns_the_season_and_ignores_a_surge_day() -> None:
    days = 14
    counts = _panel(days, 0, [(0, 3 * DAY + 600, 6.0)])
    prof = SeasonalProfile().fit(counts, ["a", "b"], MONDAY)
    rows = np.array([0, 1, -1])
    # Monday 12:00-13:00 of the following week: true rate sums
    end = np.full(3, MONDAY + 7 * 86_400_000 * 2 + 13 * 60 * MINUTE_MS)
    got = prof.expected("demand", rows, end, 60)
    truth = _rate(1, 1.0)[12 * 60 : 13 * 60].sum()
    assert got[0] == pytest.approx(2.0 * truth, rel=0.15)
    assert got[1] == pytest.approx(0.5 * truth, rel=0.25)
    assert np.isnan(got[2])  # an entity never seen
    # the surge day (a Thursday, 10:00-11:30) left the Thursday profile alone
    thu = prof.expected(
        "demand", rows[:1], np.array([MONDAY + 3 * 86_400_000 + 660 * MINUTE_MS]), 60
    )
    assert thu[0] < 1.3 * 2.0 * _rate(1, 1.0)[600:660].sum()
    # a window across Monday 00:00 wraps to Sunday's end
    wrap = prof.expected("demand", rows[:1], np.array([MONDAY + 30 * MINUTE_MS]), 60)
    parts = prof.expected("demand", rows[:1], np.array([MONDAY]), 30) + prof.expected(
        "demand", rows[:1], np.array([MONDAY + 30 * MINUTE_MS]), 30
    )
    assert wrap[0] == pytest.approx(parts[0])
    with pytest.raises(ValueError, match="midnight"):
        SeasonalProfile().fit(counts, ["a", "b"], MONDAY + 1)


def test_surge_rule_needs_the_multiple_and_the_excess() -> None:
    lower = np.array([15.0, 15.0, 4.0, np.nan])
    expected = np.array([10.0, 5.0, 1.0, 1.0])
    assert surge_rule(lower, expected, 1.5, 3.0).tolist() == [True, True, True, False]
    assert surge_rule(lower, expected, 2.0, 3.0).tolist() == [False, True, True, False]
    assert surge_rule(lower, expected, 1.5, 5.0).tolist() == [True, True, False, False]


def test_targets_and_counts_line_up_with_decision_times() -> None:
    counts = np.arange(2 * 120).reshape(2, 120) % 3
    X = pd.DataFrame(
        {"entity": ["a", "b", "a"], "ts_ms": MONDAY + np.array([10, 20, 100]) * MINUTE_MS}
    )
    y = bucket_targets(X, counts, ["a", "b"], MONDAY, (15, 30), 15)
    assert y[15][0] == counts[0, 10:25].sum() and y[30][1] == counts[1, 35:50].sum()
    assert np.isnan(y[30][2])  # beyond the counts
    mc = minute_counts(
        np.array([0, 0, 1, 1]), MONDAY + np.array([0, 59_999, 60_000, -1]), 2, MONDAY, 3
    )
    assert mc.tolist() == [[2, 0, 0], [0, 1, 0]]
    assert window_minutes("15m") == 15 and window_minutes("2h") == 120
    with pytest.raises(ValueError, match="15m"):
        window_minutes("15x")


def test_forecaster_predicts_surges_ahead_where_seasonal_naive_cannot() -> None:
    train_days, days = 8, 11
    rng = np.random.default_rng(1)
    surges = []
    for d in range(days):
        for _ in range(2):
            surges.append(
                (
                    int(rng.integers(2)),
                    d * DAY + int(rng.integers(480, 1200)),
                    float(rng.uniform(3, 5)),
                )
            )
    counts = _panel(days, 2, surges)
    grid = _grid(counts, ["a", "b"])
    split = MONDAY + train_days * 86_400_000
    train = grid[grid["ts_ms"] < split]
    test = grid[grid["ts_ms"] >= split].reset_index(drop=True)
    model = SurgeForecaster(
        demand="demand",
        leading=("lead",),
        max_iter=30,
        learning_rate=0.3,
        min_excess=2.0,
        sample_every=4,
    )
    model.fit(train, {ch: c[:, : train_days * DAY] for ch, c in counts.items()}, ["a", "b"], MONDAY)
    pred = model.predict(test)
    naive = SeasonalNaive(model.profile_, demand="demand", min_excess=2.0).predict(test)
    truth = pd.DataFrame(
        [
            {
                "key": "ab"[e],
                "start_ms": MONDAY + s * MINUTE_MS,
                "end_ms": MONDAY + (s + 90) * MINUTE_MS,
            }
            for e, s, _ in surges
            if s >= train_days * DAY + 240
        ]
    )
    scores = {}
    for name, p in (("model", pred), ("naive", naive)):
        flags = np.asarray(p[[f"surge_{h}m" for h in (15, 30, 60)]].to_numpy().any(axis=1))
        eps = alert_episodes(test["entity"].to_numpy(), test["ts_ms"].to_numpy(), flags)
        scores[name] = score_alerts(eps, truth, days - train_days)
    assert scores["model"].recall >= 0.8
    assert scores["naive"].recall < 0.5  # it only sees orders once they have risen
    assert scores["model"].median_lead_min >= 30
    # quantiles that mean what they say (roughly, on a small fit): few actuals below q10, about
    # half below the median, most below q90
    y = bucket_targets(test, counts["demand"], ["a", "b"], MONDAY, (60,), 15)[60]
    ok = np.isfinite(y)
    share = {q: np.mean(y[ok] <= pred[f"q{q}_60m"].to_numpy()[ok]) for q in (10, 50, 90)}
    assert 0.03 < share[10] < 0.3 and 0.3 < share[50] < 0.7 and 0.75 < share[90] < 0.99
    errs = forecast_errors(pred, {60: y}, (0.1, 0.5, 0.9))
    errs_naive = forecast_errors(naive, {60: y}, (0.1, 0.5, 0.9))
    assert errs["pinball_60m"] < errs_naive["pinball_60m"]


def test_forecaster_refuses_a_confidence_without_its_quantile() -> None:
    m = SurgeForecaster(confidence=0.8, quantiles=(0.1, 0.5, 0.9))
    with pytest.raises(ValueError, match=r"quantile 0\.2"):
        m.fit(pd.DataFrame(), {}, [], MONDAY)


def test_at_minute_ends_takes_the_state_after_the_last_event() -> None:
    feats = pd.DataFrame(
        {
            "event_id": ["1", "2", "3", "4"],
            "device_id": ["a", "a", "b", "a"],
            "ts_ms": MONDAY + np.array([5_000, 70_000, 130_000, 200_000]),
            "late": [False, False, False, True],
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    g = at_minute_ends(feats, MONDAY, 4)
    a = g[g["entity"] == "a"]
    assert a["ts_ms"].tolist() == [MONDAY + k * MINUTE_MS for k in (1, 2, 3, 4)]
    assert a["x"].tolist() == [1.0, 2.0, 2.0, 2.0]  # the late row never counts
    assert g[g["entity"] == "b"]["x"].tolist() == [3.0, 3.0]


def test_pinball_and_mape() -> None:
    y = np.array([10.0, 0.0, 20.0])
    assert pinball(y, np.array([8.0, 1.0, 20.0]), 0.9) == pytest.approx((0.9 * 2 + 0.1 * 1) / 3)
    assert mape(y, np.array([12.0, 5.0, 10.0]), min_actual=5) == pytest.approx((0.2 + 0.5) / 2)


def test_alert_episodes_and_their_score() -> None:
    t = MONDAY + np.arange(0, 600) * MINUTE_MS
    flags = np.zeros(600, dtype=bool)
    flags[100:110] = True
    flags[115:120] = True  # a gap of 5 min: the same episode
    flags[300:305] = True  # far from any surge: false
    eps = alert_episodes(np.array(["k"] * 600), t, flags, merge_gap_min=15)
    assert eps == [
        Episode("k", int(t[100]), int(t[119])),
        Episode("k", int(t[300]), int(t[304])),
    ]
    surges = pd.DataFrame(
        {
            "key": ["k", "k", "other"],
            "start_ms": [int(t[150]), int(t[500]), int(t[150])],
            "end_ms": [int(t[200]), int(t[550]), int(t[200])],
        }
    )
    s = score_alerts(eps, surges, days=0.5, lead_min=30, max_lead_min=180)
    assert s.predicted == 1 and s.recall == pytest.approx(1 / 3)
    assert s.leads_min[0] == 50 and np.isnan(s.leads_min[1])
    assert s.false_alerts == 1 and s.false_alerts_per_day == 2.0
