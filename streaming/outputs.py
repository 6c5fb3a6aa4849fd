"""Fast encoding of the scorer's most frequent output, `iot.scored/v1` (one per reading).

`features.contract.encode` validates every event by decoding what it encoded, which costs more
than scoring the reading. A `ScoredEvent` built by `score_batch` is valid by construction
(validated inputs, finite scores), so this builds the same JSON directly; anything unusual
(a non-finite score, a field of the wrong type) goes through the full contract encoder, which
raises `ContractError` with the reason. A unit test holds both encoders byte-equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from features.contract import encode
from features.contract_bulk import iso_timestamps
from features.contract_events import ScoredEvent
from features.contract_fields import format_ts

SCHEMA = "iot.scored/v1"
LIMIT = 1e15  # the contract's range of a score (NaN fails the comparison too)


def encode_scored_many(events: list[ScoredEvent]) -> list[bytes | Exception]:
    """`encode_scored` of each event (timestamps formatted in bulk); an event the contract
    refuses gives its exception instead of bytes."""
    if not events:
        return []
    stamps = iso_timestamps(np.fromiter((e.ts_ms for e in events), np.int64, len(events)))
    out: list[bytes | Exception] = []
    for ev, ts in zip(events, stamps.to_pylist(), strict=True):
        try:
            out.append(encode_scored(ev, ts))
        except Exception as exc:
            out.append(exc)
    return out


def encode_scored(ev: ScoredEvent, ts: str | None = None) -> bytes:
    """`encode(ev)`, without the re-validation for events that are valid by construction.
    `ts`: `ev.ts_ms` already formatted (`features.contract_bulk.iso_timestamps` of a batch)."""
    scores: list[dict[str, Any]] = []
    for s in ev.scores:
        sc = s.score
        th = s.threshold
        if (
            type(sc) is not float
            or not abs(sc) <= LIMIT
            or (th is not None and (type(th) is not float or not abs(th) <= LIMIT))
        ):
            return encode(ev)  # the contract decides (and says why)
        scores.append(
            {
                "model_name": s.model_name,
                "model_version": s.model_version,
                "score": sc,
                "threshold": th,
                "flagged": s.flagged,
            }
        )
    if type(ev.ts_ms) is not int or ev.ts_ms < 0:
        return encode(ev)
    return orjson.dumps(
        {
            "schema": SCHEMA,
            "event_id": ev.event_id,
            "ts": ts if ts is not None else format_ts(ev.ts_ms),
            "reading_event_id": ev.reading_event_id,
            "device_id": ev.device_id,
            "scores": scores,
            "decision": ev.decision,
            "fallback": ev.fallback,
            "fallback_reason": ev.fallback_reason,
            "feature_set_version": ev.feature_set_version,
        }
    )
