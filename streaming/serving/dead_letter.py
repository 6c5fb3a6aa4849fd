"""Dead-letter records: the input's key and value unchanged, with headers saying where it came
from and why it was not scored (Kafka Connect's convention, under our own prefix)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

from streaming.kafka import ERROR_HEADER_PREFIX, error_headers


class Refused(Exception):
    """A valid reading the scorer will not score (`stage` and `field` say which check)."""

    def __init__(self, stage: str, field: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.field = field
        self.reason = reason


def dlq_headers(
    m: Message, stage: str, exc: BaseException, instance: str
) -> list[tuple[str, bytes]]:
    """Headers of the dead-letter copy of `m` (`streaming.kafka.error_headers`: its origin, the
    stage, exception, field and reason), then the input's own headers minus earlier error ones."""
    origin = {"topic": m.topic() or "", "partition": m.partition(), "offset": m.offset()}
    headers = error_headers(stage, exc, {**origin, "instance": instance})
    original: Any = m.headers() or []
    for k, v in original:
        if not k.startswith(ERROR_HEADER_PREFIX) and isinstance(v, bytes):
            headers.append((k, v))
    return headers
