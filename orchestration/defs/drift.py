"""Pure part of the drift sensor: which drift reports ask for a retrain, deduplicated."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from features.contract import ContractError, DriftReport, parse_event


@dataclass(slots=True)
class DriftCursor:
    """Next offset per partition of the monitoring topic and when a retrain was last requested."""

    offsets: dict[int, int] = field(default_factory=dict)
    last_request_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"offsets": {str(k): v for k, v in self.offsets.items()}, "last": self.last_request_ms}
        )

    @classmethod
    def from_json(cls, text: str | None) -> DriftCursor:
        if not text:
            return cls()
        d = json.loads(text)
        return cls({int(k): int(v) for k, v in d.get("offsets", {}).items()}, int(d.get("last", 0)))


def drift_reports(values: list[bytes]) -> list[DriftReport]:
    """The drift reports among raw monitoring events (other events and bad records skipped)."""
    out: list[DriftReport] = []
    for raw in values:
        try:
            e = parse_event(raw)
        except ContractError:
            continue
        if isinstance(e, DriftReport):
            out.append(e)
    return out


def latest_by_model(reports: list[DriftReport]) -> dict[str, DriftReport]:
    """The latest report (by window end) of each model."""
    out: dict[str, DriftReport] = {}
    for r in reports:
        if r.model_name not in out or r.window_end_ms >= out[r.model_name].window_end_ms:
            out[r.model_name] = r
    return out


def drift_figures(report: DriftReport) -> dict[str, Any]:
    """What an asset page shows of a drift report: the window, the verdict, the drifted
    features and each feature's statistic against its threshold."""
    worst = max(
        report.features, key=lambda f: f.value / f.threshold if f.threshold else 0.0, default=None
    )
    return {
        "model_version": report.model_version,
        "window_start_ms": report.window_start_ms,
        "window_end_ms": report.window_end_ms,
        "events": report.n_events,
        "drifted": report.drifted,
        "drifted_features": [f.feature for f in report.features if f.drifted],
        "worst_feature": worst.feature if worst else "",
        "worst_value": float(worst.value) if worst else 0.0,
        "statistics": {
            f.feature: {"statistic": f.statistic, "value": f.value, "threshold": f.threshold}
            for f in report.features
        },
    }


def should_request(
    reports: list[DriftReport], cursor: DriftCursor, now_ms: int, cooldown_ms: int
) -> bool:
    """A retrain is due when some report drifted and the last request is older than the cooldown."""
    return bool(reports) and now_ms - cursor.last_request_ms >= cooldown_ms
