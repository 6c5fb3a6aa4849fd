"""A per-entity anomaly model (features.ml) is served with each reading's entity key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.readings import SensorReading
from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures
from features.ml.detectors import make_detector
from features.ml.model_card import ModelCard
from features.ml.reference import histograms
from features.spec import load_spec
from streaming.registry import LoadedModel
from streaming.serving.accept import ServingModel, prepare
from streaming.serving.scoring import ModelSlot, ScorerState, score_batch

SENSORS = load_spec().sensor_names  # the simulated fleet's (datasets/iot-fleet.yaml)

LOW = np.array([20.0, 1.0, 2.0, 10.0, 500.0])  # entity "small" runs here
HIGH = LOW * 50  # entity "large" runs here, 50 times the scale


def _serving() -> ServingModel:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(LOW, LOW * 0.02, (500, 5)), rng.normal(HIGH, HIGH * 0.02, (500, 5))])
    entities = np.array(["small"] * 500 + ["large"] * 500)
    model = make_detector("robust_z", alert_rate=0.01).fit(X, entities=entities)
    reference = histograms(pd.DataFrame(X, columns=list(SENSORS)), list(SENSORS))
    card = ModelCard(
        model_name="anomaly",
        kind="anomaly",
        feature_set_version=RAW_FEATURE_SET_VERSION,
        feature_names=list(SENSORS),
        threshold=model.threshold_,
        reference=reference,
    )
    loaded = LoadedModel("anomaly", "1", card, model)
    return prepare(loaded, feature_set_version=RAW_FEATURE_SET_VERSION, feature_names=SENSORS)


def _reading(i: int, device: str, values: np.ndarray) -> SensorReading:
    return SensorReading(
        f"e{i}", device, 1000 + i, dict(zip(SENSORS, map(float, values), strict=True))
    )


def test_scores_use_each_rows_entity_baseline() -> None:
    serving = _serving()
    assert serving.needs_entities
    X = np.vstack([LOW, HIGH])
    by_entity = serving.scores(X, np.array(["small", "large"]))
    assert np.all(by_entity < serving.threshold)  # each at its own normal level
    swapped = serving.scores(X, np.array(["large", "small"]))
    assert np.all(swapped > 10 * serving.threshold)


def test_score_batch_passes_device_ids_to_a_per_entity_model() -> None:
    slot = ModelSlot("anomaly")
    slot.set_champion(_serving())
    readings = [_reading(0, "small", LOW), _reading(1, "large", HIGH), _reading(2, "small", HIGH)]
    out = score_batch(
        {"anomaly": slot}, readings, ScorerState(RawFeatures(SENSORS), RAW_FEATURE_SET_VERSION)
    )
    assert [a.reading_event_id for a in out.alerts] == ["e2"]  # the large value on the small device
