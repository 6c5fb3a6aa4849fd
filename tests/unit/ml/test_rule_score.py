"""One rule score: the gate's "rules" baseline is exactly the fallback the scorer serves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.readings import SensorReading
from features.ml.model_card import SensorLimits
from features.ml.reference import RULE_THRESHOLD, rule_scores, sensor_limits
from features.spec import load_spec
from orchestration.defs.promotion.evaluate import rule_metrics
from streaming.serving.fallback import FallbackRules, rule_score


def _readings(n: int, seed: int) -> pd.DataFrame:
    """Fleet-like readings, a share far outside every limit, some values missing."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "temperature": rng.normal(60, 40, n),
            "vibration": rng.gamma(2.0, 3.0, n),
            "pressure": rng.normal(3, 4, n),
            "current": rng.normal(60, 40, n),
            "rpm": rng.normal(2000, 1500, n),
        }
    )
    df = df.mask(rng.random(df.shape) < 0.05)  # dropouts
    return df


def _served(df: pd.DataFrame, limits: dict[str, SensorLimits]) -> np.ndarray:
    out = []
    for i, row in enumerate(df.to_dict("records")):
        values = {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
        reading = SensorReading(f"e{i}", "d1", i, values)
        out.append(rule_score(reading, limits)[0])
    return np.asarray(out)


def test_the_gate_baseline_scores_every_reading_as_the_scorer_fallback_does() -> None:
    df = _readings(4000, seed=1)
    spec_limits = FallbackRules.from_spec(load_spec("iot-fleet")).limits  # one-sided limits too
    trained = sensor_limits(_readings(4000, seed=2))  # two-sided, as a model card carries them
    for limits in (spec_limits, trained):
        gate = rule_scores(df, limits)
        served = _served(df, limits)
        np.testing.assert_allclose(gate, served, rtol=0, atol=1e-12)
        flagged = served > 0
        assert 0.005 < flagged.mean() < 0.95  # the test data exercises both outcomes
        np.testing.assert_array_equal(gate >= RULE_THRESHOLD, flagged)


def test_the_gate_rule_metrics_count_the_alerts_the_fallback_raises() -> None:
    df = _readings(2000, seed=3)
    limits = FallbackRules.from_spec(load_spec("iot-fleet")).limits
    served = _served(df, limits)
    holdout = df.add_prefix("raw_").assign(
        device_id="d1",
        ts_ms=np.arange(len(df), dtype=np.int64) * 60_000,
        y_anomaly=(served > 0).astype(np.int8),
    )
    failures = pd.DataFrame({"device_id": pd.Series(dtype=str), "ts_ms": pd.Series(dtype=np.int64)})
    m = rule_metrics("anomaly", limits, holdout, failures, horizon_ms=3_600_000)
    # Labels are the fallback's own alerts: the gate's baseline agrees with every one of them.
    assert m["precision"] == 1.0 and m["recall"] == 1.0
