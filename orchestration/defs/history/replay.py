"""Replay one event-time window of a topic: offsets_for_times at both ends, read up to the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

#: A batch parser: raw values (and their partitions and offsets) to columns it appends itself.
BatchSink = Callable[[list[bytes], list[int], list[int]], None]

DAY_MS = 24 * 3600 * 1000
#: An end time after every record: the window runs to the end of the log.
END_OF_LOG_MS = 2**62


def day_window(day: str) -> tuple[int, int]:
    """[start, end) of a UTC day `YYYY-MM-DD` in epoch milliseconds."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets [start, end) of one partition that hold the window's records."""

    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return max(0, self.end - self.start)


@dataclass(slots=True)
class ReplayStats:
    """What a replay read: the topic, its offset ranges and the record count."""

    topic: str
    ranges: list[PartitionRange] = field(default_factory=list)
    records: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partitions": [r.partition for r in self.ranges],
            "offsets": {str(r.partition): [r.start, r.end] for r in self.ranges},
            "records": self.records,
        }


def window_offsets(
    consumer: Consumer, topic: str, start_ms: int, end_ms: int, *, timeout: float = 30.0
) -> list[PartitionRange]:
    """Per partition, the offsets of the first records at or after `start_ms` and `end_ms`."""
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(f"topic {topic} not available: {meta and meta.error}")
    parts = sorted(meta.partitions)
    starts = consumer.offsets_for_times(
        [TopicPartition(topic, p, start_ms) for p in parts], timeout=timeout
    )
    ends = consumer.offsets_for_times(
        [TopicPartition(topic, p, end_ms) for p in parts], timeout=timeout
    )
    ranges: list[PartitionRange] = []
    for s, e in zip(starts, ends, strict=True):
        # -1: no record at or after that time, so the window runs to the partition's end.
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, s.partition), timeout=timeout
        )
        start = s.offset if s.offset >= 0 else high
        end = e.offset if e.offset >= 0 else high
        ranges.append(PartitionRange(s.partition, start, max(start, end)))
    return ranges


# Unbound methods of the C type: mapped over a batch, no attribute lookup per record.
_value, _partition, _offset, _error, _timestamp = (
    Message.value,
    Message.partition,
    Message.offset,
    Message.error,
    Message.timestamp,
)


def record_times(msgs: list[Message]) -> list[int]:
    """The record timestamps (ms) of consumed messages."""
    return [t for _, t in map(_timestamp, msgs)]


def _in_window(
    msgs: list[Message], todo: dict[int, PartitionRange], times: bool = False
) -> tuple[list[bytes], list[int], list[int], list[int]]:
    """Values, partitions, offsets (and with `times` the record timestamps, else []) of a
    consumed batch, without the records at or past their partition's end offset (or of a
    partition already done). Raises on an error message."""
    if not msgs:
        return [], [], [], []
    errors = [e for e in map(_error, msgs) if e is not None]
    if errors:
        raise KafkaException(errors[0])
    values: list[bytes] = list(map(_value, msgs))  # type: ignore[arg-type]
    partitions: list[int] = list(map(_partition, msgs))  # type: ignore[arg-type]
    offsets: list[int] = list(map(_offset, msgs))  # type: ignore[arg-type]
    ts = record_times(msgs) if times else []
    # A batch holds runs of each partition in offset order: only a run's last record can be
    # past the end, so one look per partition decides whether anything must go.
    last: dict[int, int] = dict(zip(partitions, offsets, strict=True))
    if all(p in todo and o < todo[p].end for p, o in last.items()):
        return values, partitions, offsets, ts
    keep = [p in todo and o < todo[p].end for p, o in zip(partitions, offsets, strict=True)]
    return (
        list(compress(values, keep)),
        list(compress(partitions, keep)),
        list(compress(offsets, keep)),
        list(compress(ts, keep)),
    )


def _run_now(sink: BatchSink, *args: list[Any]) -> Future[None]:
    done: Future[None] = Future()
    sink(*args)
    done.set_result(None)
    return done


def replay(
    consumer: Consumer,
    topic: str,
    start_ms: int,
    end_ms: int,
    sink: BatchSink,
    *,
    batch_size: int = 10_000,
    timeout: float = 30.0,
    overlap: bool = True,
    timestamps: bool = False,
) -> ReplayStats:
    """Read every record of `topic` between the window's offsets and hand them to `sink`
    (with `timestamps`, their record timestamps too, as a fourth list).

    With `overlap`, `sink` runs on a worker thread (one batch at a time, in log order) while the
    next batch is consumed."""
    ranges = window_offsets(consumer, topic, start_ms, end_ms, timeout=timeout)
    stats = ReplayStats(topic=topic, ranges=ranges)
    todo = {r.partition: r for r in ranges if r.count > 0}
    if not todo:
        return stats
    consumer.assign([TopicPartition(topic, r.partition, r.start) for r in todo.values()])
    idle_since = time.monotonic()
    # The sink of one batch runs on a worker thread while the next batch is consumed: both
    # spend most of their time outside the GIL (librdkafka's poll, Arrow's JSON reader), so
    # they overlap. One batch in flight at a time keeps the sink's calls in log order.
    pending: Future[None] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-sink") as pool:
            submit = pool.submit if overlap else _run_now
            while todo:
                # A short timeout: consume() waits for a full batch, and the window's tail is
                # smaller.
                msgs = consumer.consume(num_messages=batch_size, timeout=0.1)
                values, partitions, offsets, ts = _in_window(msgs, todo, timestamps)
                if values:
                    if pending is not None:
                        pending.result()
                    args = (
                        (values, partitions, offsets, ts)
                        if timestamps
                        else (values, partitions, offsets)
                    )
                    pending = submit(sink, *args)
                    stats.records += len(values)
                    idle_since = time.monotonic()
                # Positions, not the last record seen: transaction markers occupy offsets too.
                for tp in consumer.position([TopicPartition(topic, p) for p in todo]):
                    if tp.offset >= todo[tp.partition].end:
                        del todo[tp.partition]
                if todo and not msgs and time.monotonic() - idle_since > timeout:
                    raise TimeoutError(f"no records from {topic} within {timeout}s; left {todo}")
            if pending is not None:
                pending.result()
    finally:
        consumer.unassign()
    return stats
