"""Fast encoding of the scorer's most frequent output, `iot.scored/v1` (one per reading).

`features.contract.encode` validates every event by decoding what it encoded, which costs more
than scoring the reading. A `ScoredEvent` built by `score_batch` is valid by construction
(validated inputs, finite scores), so this builds the same JSON directly; anything unusual
(a non-finite score, a field of the wrong type) goes through the full contract encoder, which
raises `ContractError` with the reason. A unit test holds both encoders byte-equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import encode
from features.contract.bulk import iso_timestamps
from features.contract.events import ScoredEvent
from features.contract.fields import format_ts

if TYPE_CHECKING:
    from streaming.serving.scoring import ScoredColumns

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
    `ts`: `ev.ts_ms` already formatted (`features.contract.bulk.iso_timestamps` of a batch)."""
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


def _json_strings(arr: pa.Array) -> pa.Array:
    """Each string as a JSON string literal, as orjson writes it: quoted, and escaped only where
    needed (`"`, `\\`, control characters: then by orjson itself, row by row)."""
    data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)
    if ((data == 0x22) | (data == 0x5C) | (data < 0x20)).any():
        return pa.array([orjson.dumps(v).decode() for v in arr.to_pylist()], type=pa.string())
    return pc.binary_join_element_wise('"', arr, '"', "")


def _floats(x: np.ndarray) -> pa.Array:
    """Each float as orjson writes it (one `orjson.dumps` of the whole column)."""
    return pa.array(orjson.dumps(x.tolist())[1:-1].decode().split(","), type=pa.string())


def encode_scored_columns(sc: ScoredColumns) -> list[bytes]:
    """`encode_scored` of every event of `sc`, byte for byte, formatted column by column by
    Arrow's string kernels (no object per event). The columns are valid by construction
    (validated readings, finite scores: `score_columns`); anything else (a score or threshold
    beyond the contract's range, a negative time) takes `encode_scored` per event, which
    defers to the contract's encoder."""
    if not len(sc):
        return []
    ok = bool((sc.ts_ms >= 0).all())
    for _n, _v, th, scores, _f in sc.models:
        ok = ok and abs(th) <= LIMIT and bool((np.abs(scores) <= LIMIT).all())
    if not ok:
        return [
            v if isinstance(v, bytes) else encode(ev)
            for ev, v in zip(sc.events(), encode_scored_many(sc.events()), strict=True)
        ]
    head = f'{{"schema":"{SCHEMA}","event_id":"'
    parts: list[Any] = [head, sc.event_id, '","ts":"', iso_timestamps(sc.ts_ms)]
    parts += ['","reading_event_id":"', sc.reading_event_id, '","device_id":']
    parts += [_json_strings(sc.device_id), ',"scores":[']
    for k, (name, version, th, scores, flagged) in enumerate(sc.models):
        lead = "," if k else ""
        parts += [
            f'{lead}{{"model_name":{orjson.dumps(name).decode()},'
            f'"model_version":{orjson.dumps(version).decode()},"score":',
            _floats(scores),
            f',"threshold":{orjson.dumps(th).decode()},"flagged":',
            pc.if_else(pa.array(flagged), "true", "false"),
            "}",
        ]
    parts += ['],"decision":"', pc.if_else(pa.array(sc.alert), "alert", "normal")]
    fsv = orjson.dumps(sc.feature_set_version).decode()
    parts += [f'","fallback":false,"fallback_reason":"","feature_set_version":{fsv}}}']
    joined = pc.binary_join_element_wise(*parts, "")
    return joined.cast(pa.binary()).to_pylist()
