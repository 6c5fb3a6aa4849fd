"""Events benchmarks, each next to a ceiling measured in the same run:

- parse + validate of sensor readings (`features.contract.parse_reading`) against plain
  `orjson.loads` and `json.loads` of the same bytes;
- backfill (simulate + encode + produce) against a raw confluent-kafka produce loop of the same
  number of pre-serialised records;
- live mode at 5,000 events/s: achieved rate and lag against the target.

    .venv/bin/python bench/bench_events.py [--readings 300000] [--devices 1000] [--live-s 10]

Uses KAFKA_BOOTSTRAP_SERVERS or starts a private broker; writes `## Events` in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import time
import uuid
from collections.abc import Callable

import orjson
from stackutil import kafka_broker, replace_section

from features.contract import parse_reading
from features.contract_bulk import encode_readings_bulk, reading_prefixes
from streaming.kafka import ensure_topics, make_producer
from streaming.producers import backfill, simulate_live
from streaming.sim import SimConfig, Simulator
from streaming.topics import Topics

log = logging.getLogger("bench_events")


def _payloads(n: int, devices: int) -> tuple[list[bytes], list[bytes], list[int]]:
    sim = Simulator(SimConfig(devices=devices, seed=1, start_ms=1_767_225_600_000))
    f = sim.fleet
    prefixes = reading_prefixes(f.device_ids, f.sites, f.machine_types)
    keys = [d.encode() for d in f.device_ids]
    values: list[bytes] = []
    out_keys: list[bytes] = []
    ts: list[int] = []
    while len(values) < n:
        s = sim.step()
        values += [
            v.encode() for v in encode_readings_bulk(s.event_ids, s.ts_ms, prefixes, s.values)
        ]
        out_keys += keys
        ts += s.ts_ms.tolist()
    return values[:n], out_keys[:n], ts[:n]


def _rate(fn: Callable[[bytes], object], raws: list[bytes], repeats: int = 3) -> float:
    """Best of `repeats` single-core passes (GC paused: we time the parser, not the collector)."""
    best = float("inf")
    for _ in range(repeats):
        gc.disable()
        t = time.perf_counter()
        for raw in raws:
            fn(raw)
        best = min(best, time.perf_counter() - t)
        gc.enable()
        gc.collect()
    return len(raws) / best


def bench_parse(raws: list[bytes]) -> dict[str, float]:
    return {
        "parse_reading": _rate(parse_reading, raws),
        "orjson.loads": _rate(orjson.loads, raws),
        "json.loads": _rate(json.loads, raws),
    }


def _topics(bootstrap: str) -> Topics:
    t = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}.", partitions=6)
    ensure_topics(bootstrap, t)
    return t


def bench_raw_produce(
    bootstrap: str, values: list[bytes], keys: list[bytes], ts: list[int]
) -> float:
    topic = _topics(bootstrap).sensor_readings
    producer = make_producer(bootstrap)
    produce = producer.produce
    t = time.perf_counter()
    for v, k, s in zip(values, keys, ts, strict=True):
        while True:
            try:
                produce(topic, v, k, timestamp=s)
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(120)
    elapsed = time.perf_counter() - t
    assert left == 0, f"{left} records undelivered"
    return len(values) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=300_000, help="parse benchmark size")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--backfill-steps", type=int, default=360, help="steps of --devices")
    parser.add_argument("--repeats", type=int, default=3, help="raw/backfill rounds")
    parser.add_argument("--live-rate", type=float, default=5000.0)
    parser.add_argument("--live-s", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before = os.getloadavg()[0]

    raws, _, _ = _payloads(args.readings, args.devices)
    parse = bench_parse(raws)
    log.info("parse: %s", {k: f"{v:,.0f}/s" for k, v in parse.items()})

    n_backfill = args.devices * args.backfill_steps
    with kafka_broker() as bootstrap:
        values, keys, ts = _payloads(n_backfill, args.devices)
        # Interleaved, best of each: the machine is shared, so load drifts during the run.
        raws_: list[float] = []
        fills: list[float] = []
        for _ in range(args.repeats):
            raws_.append(bench_raw_produce(bootstrap, values, keys, ts))
            fills.append(
                backfill(
                    bootstrap,
                    _topics(bootstrap),
                    devices=args.devices,
                    days=args.backfill_steps * 60 / 86400,
                    interval_s=60,
                    seed=2,
                ).rate
            )
            log.info("raw produce %.0f/s, backfill %.0f/s", raws_[-1], fills[-1])
        del values, keys, ts
        raw, bf_rate = max(raws_), max(fills)
        live = simulate_live(
            bootstrap,
            _topics(bootstrap),
            devices=args.devices,
            rate=args.live_rate,
            seed=3,
            duration_s=args.live_s,
        )
        log.info("live: %.1f/s of %.0f", live.rate, args.live_rate)

    cpu = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    body = f"""Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on {cpu}; Python {platform.python_version()}; {load}.
Broker: {"KAFKA_BOOTSTRAP_SERVERS" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "a private single-node Kafka on the same machine"}.
Run: `.venv/bin/python bench/bench_events.py` (defaults: {args.readings:,} readings parsed,
{n_backfill:,} backfilled = {args.devices:,} devices x {args.backfill_steps} steps, live {args.live_rate:,.0f}/s for {args.live_s:.0f} s).

| what | result | ceiling (same run) | ratio |
|---|---|---|---|
| parse + validate readings, 1 core | {parse["parse_reading"]:,.0f}/s | `orjson.loads` {parse["orjson.loads"]:,.0f}/s | {parse["parse_reading"] / parse["orjson.loads"]:.2f} |
| parse + validate readings, 1 core | {parse["parse_reading"]:,.0f}/s | `json.loads` {parse["json.loads"]:,.0f}/s | {parse["parse_reading"] / parse["json.loads"]:.2f} |
| backfill (simulate + encode + produce + flush) | {bf_rate:,.0f} events/s | raw `produce()` of pre-serialised bytes {raw:,.0f}/s | {bf_rate / raw:.2f} |
| live mode at {args.live_rate:,.0f} events/s | {live.rate:,.1f} events/s ({live.readings:,} in {live.elapsed_s:.2f} s), max lag {live.max_lag_ms} ms | target {args.live_rate:,.0f}/s | {live.rate / args.live_rate:.3f} |

The parse and ceiling loops run single-threaded over the same simulator-made bytes, with the
garbage collector paused during the timed pass, best of 3. Backfill and the raw loop run
interleaved, {args.repeats} rounds each, best of each (the machine is shared with other work, so
its load drifts); they share its 2 cores with the broker and librdkafka's threads.
"""
    replace_section("Events", body)
    log.info("wrote bench/RESULTS.md ## Events")


if __name__ == "__main__":
    main()
