"""Re-reads the recent input of partitions, by event time, to rebuild per-device state.

For each partition with a committed offset C (records before C were already scored), the
rebuild finds T, the newest event time (record timestamp) among the last records before C,
looks up the first offset whose timestamp is at least T - horizon (`offsets_for_times`), and
re-reads [that offset, C) with read_committed. A range that cannot be read to its end (the broker away, a timeout) is reported in
`RebuildStats.incomplete`: the caller must not serve that partition's state. The caller feeds
the valid readings, in each
partition's arrival order, to its features. With horizon = the feature set's
`rebuild_horizon_ms`, the rebuilt state is the state the full history would have given, for
every device whose latest reading is at T (devices idle for longer than the horizon lose
nothing that matters either; see features.engine.online).

Bad records are skipped silently here (they went to the DLQ when first consumed) and counted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from features.contract import GENERIC, ReadingContract
from features.contract.readings import SensorReading
from streaming.kafka import make_consumer

log = logging.getLogger(__name__)

TAIL_RECORDS = 16  # records before C read to find the newest event time
BATCH = 10_000  # records a consume call returns at most
IDLE_S = 1.0  # no record for this long: the rest of the range is hidden (aborted or markers)

PartitionKey = tuple[str, int]


@dataclass(slots=True)
class RebuildStats:
    """What a rebuild read: records, valid readings, skipped (bad) records, seconds."""

    partitions: int = 0
    records: int = 0
    readings: int = 0
    skipped: int = 0
    seconds: float = 0.0
    #: partitions whose range could not be read to its end (their state is incomplete)
    incomplete: list[str] = field(default_factory=list)
    #: per partition: (first offset re-read, committed offset, newest event time T in ms)
    ranges: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: "re-read" (the last horizon of input) or "snapshot" (state topic, then input since it)
    source: str = "re-read"
    #: why the snapshot was not used (a re-read that is a fallback)
    reason: str | None = None
    #: devices imported from the snapshot, and the state topic's records read for them
    devices: int = 0
    state_records: int = 0

    @property
    def complete(self) -> bool:
        return not self.incomplete

    def as_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "source": self.source,
            "reason": self.reason,
            "devices": self.devices,
            "state_records": self.state_records,
            "partitions": self.partitions,
            "records": self.records,
            "readings": self.readings,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }


def read_ranges(
    consumer: Consumer,
    ranges: dict[PartitionKey, tuple[int, int]],
    timeout_s: float,
    incomplete: list[str],
    *,
    strict: bool = False,
) -> Iterator[Message]:
    """Records of every [start, end) in `ranges` (read_committed), in each partition's order;
    partitions that could not be read to their end are added to `incomplete`. `strict`: only
    a position at the end counts as done (no stop after an idle second: a transaction still
    open is waited for until the timeout)."""
    todo = {k: v for k, v in ranges.items() if v[0] < v[1]}
    if not todo:
        return
    assigned = [TopicPartition(t, p, start) for (t, p), (start, _end) in todo.items()]
    consumer.assign(assigned)
    deadline = time.monotonic() + timeout_s
    last_msg = time.monotonic()
    seen_any = False
    try:
        while todo:
            msgs = consumer.consume(BATCH, timeout=0.2)
            done: list[PartitionKey] = []
            for m in msgs:
                if m.error() is not None:
                    continue
                key = (m.topic() or "", m.partition() or 0)
                rng = todo.get(key)
                if rng is None:
                    continue
                off = m.offset() or 0
                if off >= rng[1]:
                    done.append(key)
                    continue
                if off + 1 >= rng[1]:
                    done.append(key)
                yield m
            if msgs:
                last_msg = time.monotonic()
                seen_any = True
            # read_committed skips aborted records and transaction markers: a position at or
            # past the end also means done
            for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                if tp.offset >= todo[(tp.topic, tp.partition)][1]:
                    done.append((tp.topic, tp.partition))
            for key in set(done):
                if key in todo:
                    del todo[key]
                    consumer.pause([TopicPartition(key[0], key[1])])
            now = time.monotonic()
            idle = now - last_msg > (IDLE_S if seen_any else 10 * IDLE_S)
            if todo and idle and not strict and now <= deadline and _broker_answers(consumer, todo):
                # the broker is there and has nothing more for us: the rest of the range is
                # hidden from read_committed (aborted records, transaction markers)
                return
            if todo and ((idle and not strict) or now > deadline):
                log.warning("rebuild: stopped early on %s (nothing more readable)", sorted(todo))
                incomplete.extend(f"{t}[{p}]" for t, p in sorted(todo))
                return
    finally:
        consumer.resume(assigned)  # a pause outlives the assignment: the next read needs them
        consumer.unassign()


def _broker_answers(consumer: Consumer, parts: dict[PartitionKey, tuple[int, int]]) -> bool:
    try:
        for t, p in parts:
            consumer.get_watermark_offsets(TopicPartition(t, p), timeout=2, cached=False)
    except Exception:
        return False
    return True


def read_window(
    conf: dict[str, Any],
    committed: list[TopicPartition],
    horizon_ms: int,
    *,
    timeout_s: float = 300.0,
    stats: RebuildStats | None = None,
    contract: ReadingContract = GENERIC,
) -> Iterator[tuple[PartitionKey, SensorReading]]:
    """Valid readings of the last `horizon_ms` of event time before each partition's committed
    offset, as (partition, reading) in each partition's arrival order. Partitions without a
    committed offset (or with horizon_ms <= 0) have nothing to rebuild. `contract`: the dataset's
    reading contract, the one live consumption parses with."""
    st = stats if stats is not None else RebuildStats()
    todo = [tp for tp in committed if tp.offset > 0]
    st.partitions = len(todo)
    if not todo or horizon_ms <= 0:
        return
    consumer = _rebuild_consumer(conf)
    t0 = time.perf_counter()
    try:
        ends: dict[PartitionKey, int] = {}
        lows: dict[PartitionKey, int] = {}
        for tp in todo:
            lo, _hi = consumer.get_watermark_offsets(tp, timeout=10)
            ends[(tp.topic, tp.partition)] = tp.offset
            lows[(tp.topic, tp.partition)] = lo
        # 1. T per partition: the newest record timestamp among the last records before C
        newest: dict[PartitionKey, int] = {}
        tail = {k: (max(lows[k], c - TAIL_RECORDS), c) for k, c in ends.items()}
        for m in read_ranges(consumer, tail, timeout_s, st.incomplete):
            key = (m.topic() or "", m.partition() or 0)
            newest[key] = max(newest.get(key, -1), m.timestamp()[1])
        # 2. the first offset at or after T - horizon (records before it are all older)
        lookups = [TopicPartition(t, p, max(0, ts - horizon_ms)) for (t, p), ts in newest.items()]
        starts: dict[PartitionKey, tuple[int, int]] = {}
        if lookups:
            for tp in consumer.offsets_for_times(lookups, timeout=30):
                key = (tp.topic, tp.partition)
                first = tp.offset if tp.offset >= 0 else ends[key]
                starts[key] = (max(first, lows[key]), ends[key])
                st.ranges[f"{tp.topic}[{tp.partition}]"] = (starts[key][0], ends[key], newest[key])
        # 3. re-read [start, C)
        for key, _off, reading in _readings(consumer, starts, timeout_s, st, contract):
            yield key, reading
    finally:
        consumer.close()
        st.seconds = time.perf_counter() - t0


def _readings(
    consumer: Consumer,
    ranges: dict[PartitionKey, tuple[int, int]],
    timeout_s: float,
    st: RebuildStats,
    contract: ReadingContract,
) -> Iterator[tuple[PartitionKey, int, SensorReading]]:
    """Valid readings of `ranges` as (partition, offset, reading); bad records counted."""
    for m in read_ranges(consumer, ranges, timeout_s, st.incomplete):
        st.records += 1
        value = m.value()
        try:
            if value is None:
                raise ValueError("null value")
            reading = contract.parse_reading(value)
        except Exception:  # bad records went to the DLQ when first consumed
            st.skipped += 1
            continue
        st.readings += 1
        yield (m.topic() or "", m.partition() or 0), m.offset() or 0, reading


def read_since(
    conf: dict[str, Any],
    ranges: dict[PartitionKey, tuple[int, int]],
    *,
    timeout_s: float = 300.0,
    stats: RebuildStats | None = None,
    contract: ReadingContract = GENERIC,
) -> Iterator[tuple[PartitionKey, int, SensorReading]]:
    """Valid readings of each partition's [start, end) as (partition, offset, reading), in
    each partition's arrival order (a restore's catch-up after its snapshot)."""
    st = stats if stats is not None else RebuildStats()
    consumer = _rebuild_consumer(conf)
    try:
        yield from _readings(consumer, ranges, timeout_s, st, contract)
    finally:
        consumer.close()


def _rebuild_consumer(conf: dict[str, Any]) -> Consumer:
    overrides = {
        **{k: v for k, v in conf.items() if k not in ("bootstrap.servers", "group.id")},
        # large fetches: a rebuild reads whole hours of a partition at once
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        "fetch.max.bytes": 64 * 1024 * 1024,
    }
    group = f"{conf.get('group.id', 'edaml')}-rebuild-{uuid.uuid4().hex[:8]}"
    return make_consumer(conf["bootstrap.servers"], group, **overrides)


def group_by_partition(
    items: Iterator[tuple[PartitionKey, SensorReading]],
    feed: Callable[[PartitionKey, list[SensorReading]], None],
    batch: int = 4096,
) -> None:
    """Call `feed(partition, readings)` with chunks of each partition's readings, in order."""
    pending: dict[PartitionKey, list[SensorReading]] = {}
    for key, r in items:
        lst = pending.setdefault(key, [])
        lst.append(r)
        if len(lst) >= batch:
            feed(key, lst)
            pending[key] = []
    for key, lst in pending.items():
        if lst:
            feed(key, lst)
