"""`score_batch` with real (tiny) scikit-learn models: the fast path (every model scored every
reading) gives the models' own scores, decisions and alerts in reading order, and the same model
outputs as the general path (taken when another slot falls back)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression

from features.contract.readings import SensorReading
from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures
from features.ml.model_card import ModelCard
from features.ml.reference import histograms
from features.spec import load_spec
from streaming.registry import LoadedModel
from streaming.serving.accept import ServingModel, prepare
from streaming.serving.scoring import (
    DRIFT_MIN_EVENTS,
    BatchOutputs,
    ModelSlot,
    ScorerState,
    collect_reports,
    score_batch,
)

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

NOMINAL = np.array([60.0, 2.5, 6.0, 40.0, 1500.0])
SPREAD = np.array([5.0, 0.5, 0.5, 4.0, 50.0])


def _card(name: str, kind: str, X: np.ndarray, threshold: float) -> ModelCard:
    ref = histograms(pd.DataFrame(X, columns=list(SENSORS)), list(SENSORS))
    return ModelCard(
        model_name=name,
        kind=kind,  # type: ignore[arg-type]
        feature_set_version=RAW_FEATURE_SET_VERSION,
        feature_names=list(SENSORS),
        threshold=threshold,
        reference=ref,
    )


def _models() -> tuple[ServingModel, ServingModel]:
    X = np.random.default_rng(0).normal(NOMINAL, SPREAD, (400, 5))
    iforest = IsolationForest(n_estimators=10, random_state=0).fit(X)
    y = (X[:, 0] > NOMINAL[0] + SPREAD[0]).astype(int)
    logit = LogisticRegression().fit((X - NOMINAL) / SPREAD, y)
    a_thr = float(np.quantile(-iforest.score_samples(X), 0.95))
    a = LoadedModel("anomaly", "3", _card("anomaly", "anomaly", X, a_thr), iforest)
    # the logistic model sees raw values: good enough to give varied probabilities
    r = LoadedModel("risk", "7", _card("risk", "failure-risk", X, 0.5), logit)
    fs = (RAW_FEATURE_SET_VERSION, tuple(SENSORS))
    return (
        prepare(a, feature_set_version=fs[0], feature_names=fs[1]),
        prepare(r, feature_set_version=fs[0], feature_names=fs[1]),
    )


def _readings(n: int) -> list[SensorReading]:
    rng = np.random.default_rng(1)
    X = rng.normal(NOMINAL, SPREAD * 1.5, (n, 5))
    return [
        SensorReading(
            f"e{i}", f"d{i % 7}", 1000 + i, dict(zip(SENSORS, map(float, X[i]), strict=True))
        )
        for i in range(n)
    ]


def _run(slots: dict[str, ModelSlot], readings: list[SensorReading]) -> BatchOutputs:
    return score_batch(slots, readings, ScorerState(RawFeatures(SENSORS), RAW_FEATURE_SET_VERSION))


def test_fast_path_scores_decisions_and_alerts_are_the_models() -> None:
    a, r = _models()
    slots = {"anomaly": ModelSlot("anomaly"), "risk": ModelSlot("risk")}
    slots["anomaly"].set_champion(a)
    slots["risk"].set_champion(r)
    readings = _readings(300)
    X = np.array([[x.values[s] for s in SENSORS] for x in readings])
    want = {"anomaly": a.scores(X), "risk": r.scores(X)}
    out = _run(slots, readings)
    assert [e.reading_event_id for e in out.scored] == [x.event_id for x in readings]
    flagged: list[tuple[str, str]] = []
    for i, ev in enumerate(out.scored):
        assert not ev.fallback and ev.feature_set_version == RAW_FEATURE_SET_VERSION
        by = {s.model_name: s for s in ev.scores}
        for m, model in (("anomaly", a), ("risk", r)):
            assert by[m].score == want[m][i] and by[m].model_version == model.version
            assert by[m].flagged == (want[m][i] >= model.threshold)
            if by[m].flagged:
                flagged.append((ev.reading_event_id, m))
        assert ev.decision == ("alert" if any(s.flagged for s in ev.scores) else "normal")
    assert flagged, "the data should make some alerts"
    assert sorted(flagged) == sorted((al.reading_event_id, al.model_name) for al in out.alerts)
    order = [int(al.reading_event_id[1:]) for al in out.alerts]
    assert order == sorted(order)
    assert all(al.reasons for al in out.alerts if al.kind == "anomaly")


def test_general_path_gives_the_same_model_outputs() -> None:
    a, r = _models()
    fast = {"anomaly": ModelSlot("anomaly"), "risk": ModelSlot("risk")}
    general = {**{k: ModelSlot(k) for k in fast}, "absent": ModelSlot("absent")}
    for slots in (fast, general):
        slots["anomaly"].set_champion(a)
        slots["risk"].set_champion(r)
    readings = _readings(200)
    f, g = _run(fast, readings), _run(general, readings)
    assert all(e.fallback for e in g.scored)  # the model-less slot forces the general path
    for ef, eg in zip(f.scored, g.scored, strict=True):
        assert ef.scores == eg.scores[:2]
    model_alerts = [
        (x.reading_event_id, x.model_name, x.score, x.reasons) for x in g.alerts if not x.fallback
    ]
    assert [
        (x.reading_event_id, x.model_name, x.score, x.reasons) for x in f.alerts
    ] == model_alerts


def test_drift_window_fills_to_its_floor_before_a_report() -> None:
    """A window of a few readings is not reported (its PSI would be noise); it keeps filling
    across calls and is reported, then reset, once it holds `DRIFT_MIN_EVENTS` readings."""
    a, _ = _models()
    slots = {"anomaly": ModelSlot("anomaly")}
    slots["anomaly"].set_champion(a)
    small = DRIFT_MIN_EVENTS // 2
    _run(slots, _readings(small))
    assert collect_reports(slots) == []
    _run(slots, _readings(DRIFT_MIN_EVENTS - small))
    reports = collect_reports(slots)
    assert [r.n_events for r in reports] == [DRIFT_MIN_EVENTS]
    assert reports[0].model_version == a.version and reports[0].features
    assert collect_reports(slots) == []  # reset: the next window starts empty
