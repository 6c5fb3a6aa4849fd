"""Replay throughput of event_history: one day of the log from Kafka into Parquet.

Backfills a fleet with the simulator, then replays each day the way the asset does
(`offsets_for_times`, batched `consume`, contract parsing into columns, atomic Parquet), next to
a baseline in the same run: the same consume loop that only counts records (no parsing, no
writing). Writes section `## Orchestration` of bench/RESULTS.md.

    .venv/bin/python bench/bench_history.py [--devices 300] [--days 3] [--interval-s 60]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stackutil import kafka_broker, replace_section
from orchestration.defs.history.assets import replay_day
from orchestration.defs.history.replay import day_window, replay
from orchestration.defs.resources import HistoryStorage, KafkaResource
from streaming.kafka import ensure_topics, make_consumer
from streaming.producers import backfill
from streaming.topics import Topics

DAY_MS = 86_400_000


def count_only(bootstrap: str, topic: str, day: str) -> tuple[int, float]:
    """The baseline: read the same offsets, touching nothing but the count."""
    n = 0

    def sink(values: list[bytes], _p: list[int], _o: list[int]) -> None:
        nonlocal n
        n += len(values)

    c = make_consumer(
        bootstrap,
        f"bench-{uuid.uuid4().hex[:6]}",
        **{"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20},
    )
    t = time.perf_counter()
    try:
        replay(c, topic, *day_window(day), sink)
    finally:
        c.close()
    return n, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--interval-s", type=float, default=60.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with kafka_broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        topics = Topics(prefix=f"bench{uuid.uuid4().hex[:6]}.", partitions=3)
        ensure_topics(bootstrap, topics)
        end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS
        backfill(
            bootstrap,
            topics,
            devices=args.devices,
            days=args.days,
            interval_s=args.interval_s,
            seed=1,
            end_ms=end_ms,
        )
        kafka = KafkaResource(bootstrap_servers=bootstrap, topic_prefix=topics.prefix, partitions=3)
        storage = HistoryStorage(root=tmp)
        days = [
            time.strftime("%Y-%m-%d", time.gmtime((end_ms - (i + 1) * DAY_MS) / 1000))
            for i in range(args.days)
        ]
        rows = []
        for day in sorted(days):
            n0, t0 = count_only(bootstrap, topics.sensor_readings, day)
            t = time.perf_counter()
            desc = replay_day(kafka, storage, day)
            dt = time.perf_counter() - t
            n = desc["readings"]["rows"] + desc["maintenance"]["rows"]
            rows.append((day, n, n / dt, n0 / t0))
    lines = [
        f"event_history replay, {args.devices} devices x a reading every {args.interval_s:g} s "
        f"(3 partitions, lz4): per day, offsets_for_times + batched consume + contract parsing "
        "into columns + atomic Parquet (zstd), against a count-only consume of the same offsets.",
        "",
        "| day | events | replay events/s | count-only events/s | ratio |",
        "|---|---|---|---|---|",
    ]
    for day, n, r, b in rows:
        lines.append(f"| {day} | {n:,} | {r:,.0f} | {b:,.0f} | {r / b:.2f} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        replace_section("Orchestration", body)


if __name__ == "__main__":
    main()
