"""Daily partitions that follow the data: they start on the day of the topic's first event.

A `DailyPartitionsDefinition` (UTC) keeps what a Dagster user expects of daily history: the
partition calendar in the UI, the daily schedule, range backfills and time-window partition
mappings. Its start is not a fixed date but read when the definitions load: the earliest record
timestamp (the event time) of the dataset's readings topic, read with a bounded timeout. The
start is remembered beside the history, so the code location still loads, with the same
partitions, while Kafka is down; with no data at all the partitions start today (none complete
yet). Replaying an earlier era moves the start back at the next load of the code location (every
run loads it afresh; the UI's "Reload" does it for the webserver). The last partition is
yesterday: today is not complete.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
#: How long loading the definitions may wait for Kafka before using the remembered start.
LOAD_TIMEOUT_S = 3.0
#: Records read at each end of a partition to find its first and last event times.
EDGE_RECORDS = 16


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """Record timestamps (event times, ms) of the first and the last records of a topic."""

    first_ms: int
    last_ms: int

    @property
    def first_day(self) -> str:
        return day_of(self.first_ms)

    @property
    def last_day(self) -> str:
        return day_of(self.last_ms)


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def topic_time_span(consumer: Consumer, topic: str, *, timeout: float = 10.0) -> TimeSpan | None:
    """The earliest and latest record timestamps among the first and last `EDGE_RECORDS` of each
    partition of `topic`; None when the topic is missing or empty. Raises on timeout."""
    deadline = time.monotonic() + timeout
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return None
    heads: dict[int, tuple[int, int]] = {}
    tails: dict[int, tuple[int, int]] = {}
    for p in sorted(meta.partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=max(0.1, deadline - time.monotonic())
        )
        if high > low:
            heads[p] = (low, min(high, low + EDGE_RECORDS))
            tails[p] = (max(low, high - EDGE_RECORDS), high)
    if not heads:
        return None
    first = _timestamps(consumer, topic, heads, deadline)
    last = _timestamps(consumer, topic, tails, deadline)
    if not first or not last:
        return None
    return TimeSpan(min(first), max(last))


def _timestamps(
    consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]], deadline: float
) -> list[int]:
    """Record timestamps of the offsets [start, end) of each partition."""
    todo = dict(ranges)
    consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in todo.items()])
    out: list[int] = []
    try:
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: no records within the timeout; left {todo}")
            for m in consumer.consume(num_messages=EDGE_RECORDS * len(todo), timeout=0.2):
                if m.error() is not None:
                    raise KafkaException(m.error())
                p, off = m.partition(), m.offset()
                if p in todo and off is not None and off < todo[p][1]:
                    out.append(m.timestamp()[1])
            # Positions, not the last record seen: transaction markers occupy offsets too.
            for tp in consumer.position([TopicPartition(topic, p) for p in todo]):
                if tp.offset >= todo[tp.partition][1]:
                    del todo[tp.partition]
    finally:
        consumer.unassign()
    return out


def remembered_start(cache: Path) -> str | None:
    try:
        return str(json.loads(cache.read_text())["first_day"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def remember_start(cache: Path, span: TimeSpan) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{time.monotonic_ns()}.tmp")
    tmp.write_text(json.dumps({"first_day": span.first_day, "last_day": span.last_day}))
    tmp.replace(cache)


def start_day(make_consumer: Callable[[], Consumer], topic: str, cache: Path) -> tuple[str, str]:
    """The first partition's day and where it came from (`topic`, `remembered` or `no data`).

    `make_consumer`: returns a throwaway consumer (nothing is committed)."""
    try:
        consumer = make_consumer()
        try:
            span = topic_time_span(consumer, topic, timeout=LOAD_TIMEOUT_S)
        finally:
            consumer.close()
    except (KafkaException, TimeoutError) as exc:
        log.warning("%s: first event time not read (%s); using the remembered start", topic, exc)
        span = None
    if span is not None:
        remember_start(cache, span)
        return span.first_day, "topic"
    remembered = remembered_start(cache)
    if remembered is not None:
        return remembered, "remembered"
    return day_of(int(time.time() * 1000)), "no data"


def daily_partitions(first_day: str) -> dg.DailyPartitionsDefinition:
    """Days from `first_day` to yesterday (UTC)."""
    return dg.DailyPartitionsDefinition(start_date=first_day, timezone="UTC", end_offset=0)
