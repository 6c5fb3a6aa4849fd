"""One dead-letter header schema: the scorer's and the replay's DLQ records carry the same names."""

from __future__ import annotations

from pathlib import Path

from features.contract import ContractError
from streaming.kafka import ERROR_HEADER_PREFIX, error_headers
from streaming.serving.dead_letter import Refused
from streaming.sources.replay import row_error_headers
from streaming.sources.replay_csv import RowError

COMMON = {"stage", "exception.class", "exception.message", "field", "reason"}


def _names(headers: list[tuple[str, bytes]]) -> dict[str, bytes]:
    assert all(k.startswith(ERROR_HEADER_PREFIX) for k, _ in headers)
    return {k.removeprefix(ERROR_HEADER_PREFIX): v for k, v in headers}


def test_the_scorer_and_the_replay_write_the_same_error_headers() -> None:
    scorer = _names(
        error_headers(
            "event-time",
            Refused("event-time", "ts", "2 h ahead of the clock"),
            {"topic": "iot.sensor-readings", "partition": 3, "offset": 17, "instance": "s-0"},
        )
    )
    row = RowError(
        line=12,
        raw=b"x;y",
        device_id="a/0",
        ts_ms=0,
        stage="parse",
        error=ContractError("ts", "not a time"),
    )
    replay = _names(row_error_headers(Path("runs/a/0.csv"), row))
    assert set(scorer) >= COMMON and set(replay) >= COMMON
    assert scorer["reason"] == b"2 h ahead of the clock" and scorer["field"] == b"ts"
    assert scorer["partition"] == b"3" and scorer["offset"] == b"17"
    assert replay["stage"] == b"replay.parse" and replay["row"] == b"12"
    assert replay["file"] == b"runs/a/0.csv" and replay["exception.class"] == b"ContractError"
