"""Pure model logic shared by training and serving: anomaly detectors, thresholds, scores,
labelled evaluation, the gate's decision and the trusted types of saved models.

No Kafka, MLflow or Dagster here; only numpy, pandas, scikit-learn (and matplotlib in `plots`).

Modules:
- `detectors`: `isolation_forest`, `pca` (Hotelling T² and Q) and `robust_z` (median/MAD), each with a
  threshold at a target alert rate; `normalise="entity" | "global" | "none"`.
- `baseline`: robust per-entity baselines (unseen entity: the global baseline).
- `selection`: `train_anomaly` (what training calls: leak check, one kind or `auto`, validation\n  metrics), `fit_detector` (normal rows only when labels are known) and `select_auto`.
- `scoring.scores(model, X, kind, entities)`: the one score semantics (higher = more anomalous).
- `metrics`: per-event precision, recall, F1, false-alarm and missed-alarm rates.
- `windows`: NAB-style window scoring; `gaussian`: the windowed-Gaussian baseline.
- `plots`: figures; `gate`: challenger vs champion on a metric with a margin (ties never promote);
  `leakage`: label columns never in features; `trusted.TRUSTED_TYPES`: skops allow-list.

Defaults for a dataset spec (what `edaml dataset init` should write):
- the anomaly model `kind: auto` (fits `pca`, `robust_z`, `isolation_forest`; keeps the best validation F1
  when the validation split holds labels, else `pca`), `normalise: entity` (an entity is a file
  for file-named datasets), `alert_rate: 0.01` by default.
- For a fast multi-channel rig (1 Hz, experiments of minutes to hours, SKAB-like): features over
  short windows (about 10 s to 1 min, mean and std per channel, plus the raw value) rather than
  hours; per-file normalisation matters more than the model kind. Raw-value models (no windows)
  are possible and are the reference to beat.
- For slow single-series data (NAB, 5-minute cadence): windows of hours, per-entity
  normalisation so that one model serves series of any scale.
"""

from features.ml.detectors import ANOMALY_KINDS, AnomalyDetector, make_detector
from features.ml.scoring import scores
from features.ml.selection import fit_detector, select_auto, train_anomaly
from features.ml.thresholds import threshold_for_alert_rate
from features.ml.trusted import TRUSTED_TYPES

#: The name the scorer's registry looks up (`streaming.registry.trusted_types`).
SKOPS_TRUSTED_TYPES = TRUSTED_TYPES

__all__ = [
    "ANOMALY_KINDS",
    "SKOPS_TRUSTED_TYPES",
    "TRUSTED_TYPES",
    "AnomalyDetector",
    "fit_detector",
    "make_detector",
    "scores",
    "select_auto",
    "threshold_for_alert_rate",
    "train_anomaly",
]
