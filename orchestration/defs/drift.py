"""Pure part of the drift sensor: which drift reports ask for a retrain, deduplicated."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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


def drifted_reports(values: list[bytes]) -> list[DriftReport]:
    """The drift reports among raw monitoring events that say the inputs drifted."""
    out: list[DriftReport] = []
    for raw in values:
        try:
            e = parse_event(raw)
        except ContractError:
            continue
        if isinstance(e, DriftReport) and e.drifted:
            out.append(e)
    return out


def should_request(
    reports: list[DriftReport], cursor: DriftCursor, now_ms: int, cooldown_ms: int
) -> bool:
    """A retrain is due when some report drifted and the last request is older than the cooldown."""
    return bool(reports) and now_ms - cursor.last_request_ms >= cooldown_ms
