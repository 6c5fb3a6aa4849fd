"""Dead-letter records: the input's key and value unchanged, with headers saying where it came
from and why it was not scored (Kafka Connect's convention, under our own prefix)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

ERROR_HEADER_PREFIX = "edaml.error."


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
    """Headers of the dead-letter copy of `m`: origin, stage, exception, field, reason, and the
    input's own headers (minus any earlier error headers)."""
    field_ = getattr(exc, "field", "")
    reason = getattr(exc, "reason", str(exc))
    h = ERROR_HEADER_PREFIX
    headers = [
        (h + "topic", (m.topic() or "").encode()),
        (h + "partition", str(m.partition()).encode()),
        (h + "offset", str(m.offset()).encode()),
        (h + "stage", stage.encode()),
        (h + "exception.class", type(exc).__name__.encode()),
        (h + "exception.message", str(exc)[:2000].encode("utf-8", "replace")),
        (h + "field", str(field_).encode("utf-8", "replace")),
        (h + "reason", str(reason)[:2000].encode("utf-8", "replace")),
        (h + "instance", instance.encode()),
    ]
    original: Any = m.headers() or []
    for k, v in original:
        if not k.startswith(h) and isinstance(v, bytes):
            headers.append((k, v))
    return headers
