"""Feature paths: streaming readings/s and batch rows/s, next to a naive implementation.

The naive implementation (`features._naive`) recomputes every window from the raw readings for
every reading; it is measured in the same run on a subset and reported per reading. Memory per
device is measured with tracemalloc on devices whose 24 h window is full. Writes section
`## Features` of bench/RESULTS.md.

    .venv/bin/python bench/bench_features.py [--devices 200] [--per-device 1000]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features._naive import naive_features
from features._synth import synthetic_readings, to_readings
from features.batch import compute_features
from features.definitions import FEATURE_SET
from features.online import OnlineFeatures

log = logging.getLogger("bench_features")


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _best(fn, repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()  # CPU time: other processes share the 2 cores
        fn()
        best = min(best, time.process_time() - t)
    return best


def _memory_per_device(devices: int, per_device: int, cadence_ms: int) -> tuple[int, int]:
    """(bytes measured by tracemalloc, bytes estimated by memory_bytes) per device."""
    readings = list(
        to_readings(synthetic_readings(devices, per_device, seed=3, cadence_ms=cadence_ms))
    )
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    on = OnlineFeatures()
    for r in readings:
        on._advance(r)  # state only; the per-reading outputs are not kept
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used // devices, on.memory_bytes()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--per-device", type=int, default=1000)
    ap.add_argument("--naive-readings", type=int, default=1500)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    df = synthetic_readings(args.devices, args.per_device, seed=1)
    readings = list(to_readings(df))
    n = len(readings)
    log.info("%d readings, %d devices, %d features", n, args.devices, len(FEATURE_SET.names))

    def stream_single() -> None:
        on = OnlineFeatures()
        upd = on.update
        for r in readings:
            upd(r)

    def stream_micro() -> None:
        on = OnlineFeatures()
        for i in range(0, n, 500):
            on.update_many(readings[i : i + 500])

    sub1 = readings[:20_000]

    def stream_numpy_single() -> None:  # the numpy kernel on one reading at a time
        on = OnlineFeatures()
        for r in sub1:
            on.update_many([r])

    def batch() -> None:
        compute_features(df)

    t_single = _best(stream_single)
    t_micro = _best(stream_micro)
    t_batch = _best(batch)
    t_np1 = _best(stream_numpy_single, repeat=1)
    rows = n - int(df.duplicated(["device_id", "event_id"]).sum())

    sub = readings[: args.naive_readings]  # all devices interleaved: ~history of a few readings
    sub_dev = [r for r in readings if r.device_id == readings[0].device_id][: args.naive_readings]
    t_naive = _best(lambda: naive_features(sub, FEATURE_SET), repeat=1)
    t_naive_dev = _best(lambda: naive_features(sub_dev, FEATURE_SET), repeat=1)

    mem_meas, mem_est = _memory_per_device(10, 3200, 30_000)  # 26 h at 30 s: full 24 h window
    mem_meas5, _ = _memory_per_device(20, 320, 300_000)  # 26 h at 5 min

    r_single, r_micro = _rate(n, t_single), _rate(n, t_micro)
    r_np1 = _rate(len(sub1), t_np1)
    r_batch = _rate(rows, t_batch)
    r_naive, r_naive_dev = _rate(len(sub), t_naive), _rate(len(sub_dev), t_naive_dev)
    lines = [
        f"Synthetic stream: {n} readings from {args.devices} devices (30 s cadence, 1% out of "
        f"order, 0.2% late, 0.5% duplicates, 2% dropouts), feature set "
        f"`{FEATURE_SET.version}` ({len(FEATURE_SET.names)} features). One core, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"best of 2 runs, CPU time of this process; load average {os.getloadavg()[0]:.1f} "
        "during the run (other work shares the machine).",
        "",
        "| path | rate | vs naive |",
        "|---|---|---|",
        f"| streaming `update` (one reading per call) | {r_single:,.0f} readings/s | "
        f"{r_single / r_naive_dev:,.0f}x |",
        f"| streaming `update_many` (micro-batches of 500) | {r_micro:,.0f} readings/s | "
        f"{r_micro / r_naive_dev:,.0f}x |",
        f"| streaming, numpy kernel per reading (`update_many([r])`, first {len(sub1)}) | "
        f"{r_np1:,.0f} readings/s | {r_np1 / r_naive_dev:,.0f}x |",
        f"| batch `compute_features` | {r_batch:,.0f} rows/s | {r_batch / r_naive_dev:,.0f}x |",
        f"| naive, one device's first {len(sub_dev)} readings (windows fill up) | "
        f"{r_naive_dev:,.0f} readings/s | 1x |",
        f"| naive, first {len(sub)} readings of the fleet (near-empty windows) | "
        f"{r_naive:,.0f} readings/s | — |",
        "",
        f"Memory per device with full windows (tracemalloc): {mem_meas / 1e6:.2f} MB at a "
        f"30 s cadence (2,880 readings per 24 h; `memory_bytes()` estimates "
        f"{mem_est / 1e6:.2f} MB), {mem_meas5 / 1e3:.0f} kB at a 5 min cadence.",
        "",
        "Targets: streaming >= 100k readings/s (floor 50k), batch >= 500k rows/s.",
        "",
        "Notes. Both paths agree bit for bit (tests/unit/features: parity on 200k readings). "
        "The streaming path is pure Python and misses both its target and its floor on this "
        "machine: per reading it runs dedup, a sorted insert with exact integer prefix sums, "
        "ten monotonic deques (min/max of 5 sensors) and the scalar kernel. Profiled: the "
        "deque queries (cache misses over many small per-device objects) and the kernel are "
        "the largest parts; the numpy kernel per reading is ~10x slower than the scalar one "
        "(per-call overhead), and `update_many` amortises the kernel but not the state "
        "updates, so it only breaks even. Dropping min/max raises throughput by roughly a "
        "third (measured informally). Scaling out is per partition (one scorer process per "
        "core). The batch path's time is mostly the kernel and the min/max sparse table. "
        "Memory is dominated by one tuple of 36 exact prefix sums per buffered reading.",
    ]
    body = "\n".join(lines)
    log.info("%s", body)
    if args.write:
        from stackutil import replace_section

        replace_section("Features", body)


if __name__ == "__main__":
    main()
