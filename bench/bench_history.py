"""Replay throughput of event_history: one day of the log from Kafka into Parquet.

Backfills a fleet with the simulator, then replays each day the way the asset does
(`offsets_for_times`, batched `consume`, bulk contract decoding into columns, atomic Parquet),
next to a baseline in the same run: the same consume loop that only counts records (no parsing,
no writing). Each is timed by the wall clock and by this process's CPU time (which includes
librdkafka's threads; the broker is another process): the machine is shared, so the CPU rate is
the steadier figure. Replay and baseline run interleaved, best of `--repeats` each.
Writes section `## Orchestration` of bench/RESULTS.md.

    .venv/bin/python bench/bench_history.py [--devices 300] [--days 3] [--interval-s 60]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stackutil import kafka_broker, replace_section
from features.spec import load_spec
from orchestration.defs.history.assets import replay_day, stored_history
from orchestration.defs.history.replay import day_window, replay
from orchestration.defs.resources import HistoryStorage, KafkaResource
from streaming.kafka import ensure_topics, make_consumer
from streaming.producers import backfill
from streaming.topics import Topics

DAY_MS = 86_400_000
log = logging.getLogger("bench_history")


@dataclass(frozen=True, slots=True)
class Timing:
    events: int
    wall_s: float
    cpu_s: float

    @property
    def wall_rate(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_s


def _timed(fn: Callable[[], int]) -> Timing:
    w, c = time.perf_counter(), time.process_time()
    n = fn()
    return Timing(n, time.perf_counter() - w, time.process_time() - c)


def _best(timings: list[Timing]) -> Timing:
    return Timing(timings[0].events, min(t.wall_s for t in timings), min(t.cpu_s for t in timings))


def count_only(bootstrap: str, topic: str, day: str) -> int:
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
    try:
        replay(c, topic, *day_window(day), sink)
    finally:
        c.close()
    return n


def _replay_count(kafka: KafkaResource, storage: HistoryStorage, day: str) -> int:
    spec = load_spec()
    desc = replay_day(kafka, spec, stored_history(storage, spec.name), day)
    return int(desc["readings"]["rows"] + desc["maintenance"]["rows"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--interval-s", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=2)
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
        # Warm-up (not recorded): the first replay in a process pays one-off costs (imports,
        # Arrow's allocator and JSON reader set-up) that a run over several days pays once.
        _replay_count(kafka, storage, min(days))
        rows = []
        for day in sorted(days):
            base: list[Timing] = []
            runs: list[Timing] = []
            for _ in range(args.repeats):
                base.append(_timed(partial(count_only, bootstrap, topics.sensor_readings, day)))
                runs.append(_timed(partial(_replay_count, kafka, storage, day)))
            rows.append((day, _best(runs), _best(base)))
    load = os.getloadavg()
    lines = [
        f"event_history replay, {args.devices} devices x a reading every {args.interval_s:g} s "
        f"(3 partitions, lz4): per day, offsets_for_times + batched consume + bulk contract "
        "decoding (`features.contract_columns.decode_readings`) into columns + atomic Parquet "
        "(zstd), against a count-only consume of the readings' offsets in the same run. Events "
        "are readings + maintenance. Rates by wall clock and by this process's CPU time "
        "(librdkafka's threads included, the broker not), best of "
        f"{args.repeats} interleaved runs each after one untimed warm-up replay; {os.cpu_count()} cores shared with other work "
        f"(load average {load[0]:.1f} at the end). "
        "Run: `.venv/bin/python bench/bench_history.py`.",
        "",
        "| day | events | replay events/s wall | count-only wall | ratio | "
        "replay events/s CPU | count-only CPU | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for day, r, b in rows:
        lines.append(
            f"| {day} | {r.events:,} | {r.wall_rate:,.0f} | {b.wall_rate:,.0f} | "
            f"{r.wall_rate / b.wall_rate:.2f} | {r.cpu_rate:,.0f} | {b.cpu_rate:,.0f} | "
            f"{r.cpu_rate / b.cpu_rate:.2f} |"
        )
    body = "\n".join(lines)
    log.info("%s", body)
    if not args.no_write:
        replace_section("Orchestration", body)


if __name__ == "__main__":
    main()
