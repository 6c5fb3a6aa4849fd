"""Reads the recent input of partitions up to given offsets, to rebuild per-device state."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from features.contract import ContractError, parse_reading
from features.readings import SensorReading

log = logging.getLogger(__name__)


def read_window(
    conf: dict[str, Any], upto: list[TopicPartition], per_partition: int
) -> Iterator[SensorReading]:
    """Valid readings of the last `per_partition` records before each partition's offset in
    `upto` (partitions without a committed offset have no history to rebuild)."""
    todo = [tp for tp in upto if tp.offset > 0]
    if not todo or per_partition <= 0:
        return
    conf = {**conf, "group.id": f"{conf.get('group.id', 'edaml')}-{uuid.uuid4().hex[:8]}"}
    consumer = Consumer(conf)
    try:
        for tp in todo:
            lo, _hi = consumer.get_watermark_offsets(tp, timeout=10)
            start = max(lo, tp.offset - per_partition)
            if start >= tp.offset:
                continue
            consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
            pos = start
            while pos < tp.offset:
                msgs = consumer.consume(1000, timeout=1.0)
                if not msgs:
                    # read_committed may hide aborted records at the end of the range
                    break
                for m in msgs:
                    if m.error() is not None:
                        continue
                    off = m.offset() or 0
                    pos = off + 1
                    if off >= tp.offset:
                        break
                    try:
                        value = m.value()
                        if value is not None:
                            yield parse_reading(value)
                    except ContractError:
                        pass
    finally:
        consumer.close()
