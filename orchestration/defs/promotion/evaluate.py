"""Score challenger, champion and the rule baseline on the same hold-out (pure but for loading)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from features.ml.model_card import SensorLimits
from features.ml.reference import RULE_THRESHOLD, rule_scores
from orchestration.defs.training.evaluation import evaluate
from orchestration.defs.training.plan import LABEL
from streaming.registry import LoadedModel

log = logging.getLogger(__name__)


def holdout_scores(model: LoadedModel, holdout: pd.DataFrame) -> np.ndarray:
    """The version's scores of the hold-out rows, as the scorer computes them: a detector that
    normalises per entity gets each row's entity key."""
    keys = (
        holdout["device_id"].astype(str).to_numpy()
        if getattr(model.model, "needs_entities", False)
        else None
    )
    return model.predict_scores(holdout[list(model.card.feature_names)].to_numpy(np.float64), keys)


def labelled_rows(holdout: pd.DataFrame) -> np.ndarray:
    """Rows whose label is known (rows of a file without the label column, when the spec says
    such rows are `unlabelled`, are left out of every labelled figure)."""
    if "y_known" not in holdout:
        return np.ones(len(holdout), dtype=bool)
    return holdout["y_known"].to_numpy(bool)


def model_metrics(
    model: LoadedModel,
    holdout: pd.DataFrame,
    failures: pd.DataFrame,
    horizon_ms: int,
    scores: np.ndarray | None = None,
) -> dict[str, float]:
    """Hold-out metrics of one loaded version (with its own threshold); `scores`: already
    computed `holdout_scores`."""
    if scores is None:
        scores = holdout_scores(model, holdout)
    known = labelled_rows(holdout)
    rows = holdout[known]
    return evaluate(
        y=rows[LABEL[model.card.kind]].to_numpy(),
        scores=scores[known],
        threshold=model.card.threshold,
        device_ids=rows["device_id"].astype(str).to_numpy(),
        ts_ms=rows["ts_ms"].to_numpy(np.int64),
        failures=failures,
        horizon_ms=horizon_ms,
    )


def rule_metrics(
    kind: str,
    limits: dict[str, SensorLimits],
    holdout: pd.DataFrame,
    failures: pd.DataFrame,
    horizon_ms: int,
) -> dict[str, float]:
    """The static per-sensor threshold baseline on the same rows and labels."""
    rows = holdout[labelled_rows(holdout)]
    raw_cols = [c for c in rows.columns if c.startswith("raw_")]
    raw = rows[raw_cols].rename(columns=lambda c: c.removeprefix("raw_"))
    return evaluate(
        y=rows[LABEL[kind]].to_numpy(),
        scores=rule_scores(raw, limits),
        threshold=RULE_THRESHOLD,
        device_ids=rows["device_id"].astype(str).to_numpy(),
        ts_ms=rows["ts_ms"].to_numpy(np.int64),
        failures=failures,
        horizon_ms=horizon_ms,
    )


def comparable(champion: LoadedModel | None, challenger: LoadedModel) -> bool:
    """A champion is compared only when it reads the same feature set."""
    return (
        champion is not None
        and champion.card.feature_set_version == challenger.card.feature_set_version
        and champion.card.feature_names == challenger.card.feature_names
    )


def failures_of(maintenance: pd.DataFrame) -> pd.DataFrame:
    return maintenance.loc[maintenance["kind"] == "failure", ["device_id", "ts_ms"]].reset_index(
        drop=True
    )


def summary(metrics: dict[str, Any]) -> str:
    keys = ("pr_auc", "precision", "recall", "failure_recall_1h", "false_alarms_per_device_day")
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys if k in metrics)
