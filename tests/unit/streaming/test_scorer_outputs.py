"""The fast `iot.scored/v1` encoder is byte-equal to the contract's, and defers to it (so to its
validation) for anything unusual."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.contract import ContractError, encode
from features.contract.events import ModelScore, ScoredEvent
from streaming.serving.outputs import encode_scored, encode_scored_many

_score = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_model = st.builds(
    ModelScore,
    st.sampled_from(["iot-anomaly", "iot-failure-risk"]),
    st.sampled_from(["1", "12", "default-rules"]),
    _score,
    st.one_of(st.none(), _score),
    st.booleans(),
)


@given(
    ts=st.integers(min_value=0, max_value=4_102_444_800_000),
    scores=st.lists(_model, max_size=3),
    decision=st.sampled_from(["alert", "normal", "unknown"]),
    fallback=st.booleans(),
    reason=st.sampled_from(["", "iot-anomaly: breaker open", "a: no model; b: warming up"]),
    device=st.sampled_from(["dev-0001", "pump_7", "x"]),
)
def test_fast_encoding_equals_the_contract(
    ts: int, scores: list[ModelScore], decision: str, fallback: bool, reason: str, device: str
) -> None:
    ev = ScoredEvent(
        event_id=str(uuid.uuid4()),
        ts_ms=ts,
        reading_event_id=str(uuid.uuid4()),
        device_id=device,
        scores=scores,
        decision=decision,  # type: ignore[arg-type]
        fallback=fallback,
        fallback_reason=reason,
        feature_set_version="fs-0123456789ab",
    )
    assert encode_scored(ev) == encode(ev)
    assert encode_scored_many([ev, ev]) == [encode(ev), encode(ev)]


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e300])
def test_unusual_scores_go_through_the_contract_which_refuses_them(bad: float) -> None:
    ev = ScoredEvent(
        event_id=str(uuid.uuid4()),
        ts_ms=1,
        reading_event_id=str(uuid.uuid4()),
        device_id="d",
        scores=[ModelScore("m", "1", bad, 0.5, False)],
        decision="normal",
    )
    with pytest.raises(ContractError):
        encode_scored(ev)
    (got,) = encode_scored_many([ev])
    assert isinstance(got, ContractError)
