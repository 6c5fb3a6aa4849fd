"""Restart-to-ready of the scorer's feature state: from the state snapshot vs by re-reading the input.

For each fleet size (1,000 and 10,000 devices, a reading a minute) and two service ages (hours of
history the scorer processed), the scorer (`ScorerService`, online features, snapshots on) scores
the whole history and writes its snapshots; once it has stopped and the state topic's cleaner has
compacted it, the bench times what an instance does when it is assigned the partitions (the
`on_assign` recovery that gates readiness): `PartitionStates.assigned` with snapshots (the state
topic, then the input since the marker) and without (the re-read of the rebuild horizon, the
path before snapshots), in interleaved rounds. Model loading and process start are the same for
both and not included. The same data also measures what writing snapshots costs the scorer:
its throughput over the history with snapshots on and off, interleaved.

    .venv/bin/python bench/bench_restore.py   (about 25 min on 2 busy cores; quick mode under
                                               `make bench`: shorter ages, 2 rounds)
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from typing import Any

from _harness import Section, Stat, interleave, quick, ratio, table
from confluent_kafka import Consumer, TopicPartition
from stackutil import kafka_broker, mlflow_tracking

from features.contract.topics import SCORER_STATE, TOPIC_CONFIGS, Topics
from features.spec import load_spec
from streaming.kafka import (
    consumer_config,
    create_topic,
    ensure_topics,
    make_admin,
    wait_for_leaders,
)
from streaming.serving import ScorerService, ServeConfig, feature_source
from streaming.serving.partitions import PartitionStates
from streaming.serving.rebuild import read_ranges
from streaming.sources.producers import backfill

log = logging.getLogger("bench_restore")

PARTITIONS = 6
INTERVAL_S = 60.0
#: the bench's state topic rolls segments fast so that the cleaner compacts within the run
#: (production: 10 min segments, see features/contract/topics.py)
BENCH_STATE_CONFIG = {**TOPIC_CONFIGS[SCORER_STATE], "segment.ms": "5000", "segment.bytes": str(16 << 20),
                      "min.cleanable.dirty.ratio": "0.01"}  # fmt: skip


def fresh_topics(bootstrap: str) -> Topics:
    t = Topics(prefix=f"r{uuid.uuid4().hex[:8]}.", partitions=PARTITIONS)
    create_topic(bootstrap, t.scorer_state, partitions=PARTITIONS, config=BENCH_STATE_CONFIG)
    ensure_topics(bootstrap, t)
    return t


def history(bootstrap: str, topics: Topics, devices: int, hours: float) -> int:
    end_ms = int(time.time() * 1000) // 60_000 * 60_000
    st = backfill(
        bootstrap, topics, devices=devices, days=hours / 24, interval_s=INTERVAL_S, seed=3,
        end_ms=end_ms,
    )  # fmt: skip
    return int(st.readings)


def serve(
    bootstrap: str, topics: Topics, *, snapshots: bool, total: int
) -> tuple[str, float, float]:
    """Score the whole history: (group, readings/s, mean bytes of a device's state record);
    with snapshots, stop once the snapshot has caught up with the input."""
    cfg = ServeConfig(
        bootstrap=bootstrap,
        topics=topics,
        group=f"bench-{uuid.uuid4().hex[:6]}",
        shadow=False,
        metrics_port=None,
        report_interval_s=3600,
        initial_load_timeout_s=5,
        snapshots=snapshots,
    )
    svc = ScorerService(cfg)
    t = threading.Thread(target=svc.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 1800
    while svc.processed == 0:
        assert time.monotonic() < deadline and t.is_alive(), "the scorer did not start"
        time.sleep(0.01)  # polling a condition with a deadline
    t0, n0 = time.perf_counter(), svc.processed
    while svc.processed < total:
        assert time.monotonic() < deadline and t.is_alive(), "the scorer stalled"
        time.sleep(0.01)
    rate = (svc.processed - n0) / (time.perf_counter() - t0)
    snaps = svc.parts.snapshots
    while snaps is not None and snaps.behind():
        assert time.monotonic() < deadline, "the snapshot did not catch up"
        time.sleep(0.1)
    written = (snaps.devices_written, snaps.bytes_written) if snaps else (0, 0)
    svc.stop()
    t.join(120)
    log.info("scored %d at %.0f/s, snapshot records %s", total, rate, written)
    return cfg.group, rate, written[1] / max(1, written[0])


def state_records(bootstrap: str, topics: Topics) -> int:
    """Records left in the state topic (read, not offsets: compaction leaves offset gaps)."""
    c = Consumer(consumer_config(bootstrap, f"count-{uuid.uuid4().hex[:6]}"))
    try:
        ranges = {}
        for p in range(PARTITIONS):
            tp = TopicPartition(topics.scorer_state, p)
            ranges[(topics.scorer_state, p)] = c.get_watermark_offsets(tp, timeout=10)
        incomplete: list[str] = []
        n = sum(1 for _m in read_ranges(c, ranges, 120.0, incomplete, strict=True))
        assert not incomplete, incomplete
        return n
    finally:
        c.close()


def wait_compacted(bootstrap: str, topics: Topics, devices: int, timeout: float = 90.0) -> int:
    """Wait (deadline) until the cleaner has left about one record per device; returns the
    records left. Compaction leaves the newest segment alone, so some copies remain."""
    deadline = time.monotonic() + timeout
    while True:
        n = state_records(bootstrap, topics)
        if n <= 1.5 * devices + 64 or time.monotonic() > deadline:
            return n
        time.sleep(5.0)  # the cleaner runs every 15 s (log.cleaner.backoff.ms)


def recover(bootstrap: str, topics: Topics, group: str, *, snapshots: bool) -> Any:
    """Seconds for an instance to make the state of every partition ready, and its stats."""
    cfg = ServeConfig(
        bootstrap=bootstrap, topics=topics, group=group, metrics_port=None, snapshots=snapshots
    )
    make, _v, _n = feature_source("online", cfg.dataset)
    parts = PartitionStates(cfg, make)
    consumer = Consumer(consumer_config(bootstrap, group))
    tps = [TopicPartition(topics.sensor_readings, p) for p in range(PARTITIONS)]
    try:
        t0 = time.perf_counter()
        parts.assigned(consumer, tps)
        took = time.perf_counter() - t0
        assert not parts.pending, f"state not ready: {parts.last_error}"
        return took, parts.rebuilds, parts.device_count()
    finally:
        consumer.close()


def measure_restore(
    bootstrap: str, topics: Topics, group: str, devices: int, rounds: int
) -> tuple[dict[str, Stat], dict[str, list[Any]]]:
    """Interleaved rounds of both recoveries; (seconds, the stats of each round)."""
    got: dict[str, list[Any]] = {"snapshot": [], "re-read": []}

    def case(snap: bool) -> float:
        took, stats, n = recover(bootstrap, topics, group, snapshots=snap)
        assert n == devices, (n, devices)
        got["snapshot" if snap else "re-read"].append(stats)
        return took

    st = interleave({"snapshot": lambda: case(True), "re-read": lambda: case(False)}, rounds=rounds)
    return st, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2 if quick() else 3)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument(
        "--ages",
        default="0.25,0.5" if quick() else "0.5,1",
        help="hours of history the scorer processed",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    sizes = [int(x) for x in args.sizes.split(",")]
    ages = [float(x) for x in args.ages.split(",")]
    sec = Section(
        "Scorer restore", command="make bench  (or .venv/bin/python bench/bench_restore.py)"
    )
    rows: list[list[str]] = []
    cost_case: tuple[Topics, int, int, float] | None = None
    cost: list[list[str]] = []
    spec = load_spec()
    horizon_h = spec.feature_set.rebuild_horizon_ms / 3_600_000
    feature_source("online", spec)[0]()  # the kernel compiled before anything is timed
    with kafka_broker(heap="2g") as bootstrap, mlflow_tracking():
        admin = make_admin(bootstrap)
        for devices in sizes:
            for hours in ages:
                topics = fresh_topics(bootstrap)
                wait_for_leaders(admin, [topics.scorer_state])
                total = history(bootstrap, topics, devices, hours)
                group, _rate, per_device = serve(bootstrap, topics, snapshots=True, total=total)
                if devices == sizes[0]:
                    cost_case = (topics, total, devices, hours)
                wait_compacted(bootstrap, topics, devices)
                st, got = measure_restore(bootstrap, topics, group, devices, args.rounds)
                r = ratio(st, "re-read", "snapshot")
                snap_stats = got["snapshot"][-1]
                catch_up = sum(s.records for s in snap_stats)
                n_state = sum(s.state_records for s in snap_stats)
                reread = sum(s.records for s in got["re-read"][-1])
                rows.append(
                    [f"{devices:,}", f"{hours:g} h ({total:,} readings)",
                     st["snapshot"].fmt("{:.2f} s"), st["re-read"].fmt("{:.2f} s"),
                     r.fmt("{:.1f}x"), f"{n_state:,}", f"{per_device / 1024:.1f} KB", f"{catch_up:,}",
                     f"{reread:,}"]
                )  # fmt: skip
                log.info("%s", rows[-1])
        # what writing snapshots costs: the smallest fleet's longest history scored again from
        # the start, with snapshots on and off, interleaved
        assert cost_case is not None
        c_topics, c_total, c_devices, c_hours = cost_case
        tp = interleave(
            {
                "on": lambda: serve(bootstrap, c_topics, snapshots=True, total=c_total)[1],
                "off": lambda: serve(bootstrap, c_topics, snapshots=False, total=c_total)[1],
            },
            rounds=args.rounds,
        )
        cost.append(
            [f"{c_devices:,}", f"{c_hours:g} h ({c_total:,} readings)", tp["on"].fmt("{:,.0f}/s"),
             tp["off"].fmt("{:,.0f}/s"), ratio(tp, "on", "off").fmt("{:.2f}")]
        )  # fmt: skip
    body = "\n\n".join(
        [
            f"Restart-to-ready of the feature state of {PARTITIONS} partitions (what one "
            "instance does on assignment before it is ready): from the state snapshot (read "
            "the compacted state topic, import the devices, re-read the input since the marker) "
            "vs by re-reading the input of the rebuild horizon "
            f"({horizon_h:g} h; the only path before snapshots). A reading per device a minute; "
            "the service age is the history the scorer processed before the restart. Medians of "
            f"{args.rounds} interleaved rounds (min–max). State records read: what the restore "
            "read of the state topic after the cleaner had up to 90 s to compact it (copies "
            "in the newest segments stay until the next pass); the bench's state topic rolls "
            "segments every 5 s (production: 10 min).",
            table(
                [
                    "devices",
                    "service age",
                    "from snapshot",
                    "re-read",
                    "re-read / snapshot",
                    "state records read",
                    "state a device",
                    "input records since the snapshot",
                    "input records re-read",
                ],
                rows,
            ),
            "What writing snapshots costs the scorer: the smallest fleet's longest history above scored again from "
            "the start by new consumer groups, with snapshots on and off, in interleaved rounds "
            "(fallback rules, no model; snapshot interval 10 s, at most 2,000 devices a "
            "transaction):",
            table(["devices", "service age", "snapshots on", "off", "on / off"], cost),
        ]
    )
    print(sec.write(body))


if __name__ == "__main__":
    main()
