"""What a registered model version carries besides its weights: the contract between the
training side (Dagster) and the serving side (the scorer).

Training writes it as the JSON artifact `edaml/model_card.json` of the model's MLflow run (and
the key fields as model-version tags); the scorer reads it before it accepts a version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

ModelKind = Literal["anomaly", "failure-risk"]

#: Artifact path of the card inside the model version's run.
MODEL_CARD_ARTIFACT = "edaml/model_card.json"


@dataclass(frozen=True, slots=True)
class Histogram:
    """A reference distribution for drift: bin edges (len n+1) and the fraction in each bin."""

    edges: list[float]
    fractions: list[float]


@dataclass(frozen=True, slots=True)
class SensorLimits:
    """Static per-sensor thresholds for rule-based fallback scoring (None: no limit)."""

    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Metadata of one model version that serving needs.

    `score` semantics: for `anomaly`, higher is more anomalous (the negated IsolationForest
    `score_samples`); for `failure-risk`, the probability of a failure within `horizon_hours`.
    A reading is flagged when its score is >= `threshold`.
    """

    model_name: str
    kind: ModelKind
    feature_set_version: str
    feature_names: list[str]
    threshold: float
    horizon_hours: float | None = None
    reference: dict[str, Histogram] = field(default_factory=dict)
    fallback_limits: dict[str, SensorLimits] = field(default_factory=dict)
    reference_alert_rate: float | None = None
    training_data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelCard:
        d = orjson.loads(raw)
        d["reference"] = {k: Histogram(**v) for k, v in d.get("reference", {}).items()}
        d["fallback_limits"] = {
            k: SensorLimits(**v) for k, v in d.get("fallback_limits", {}).items()
        }
        return cls(**d)
