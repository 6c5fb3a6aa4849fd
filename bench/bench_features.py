"""Feature paths: streaming readings/s and batch rows/s, next to a naive implementation.

The naive implementation (`features._naive`) recomputes every window from the raw readings for
every reading; it is measured in the same run on a subset and reported per reading. Memory per
device is measured on devices whose 24 h window is full, at 1 reading/min and 1 reading/s, and
the kernel's compile time in fresh interpreters (cold, then from numba's cache). Writes section
`## Features` of bench/RESULTS.md.

    .venv/bin/python bench/bench_features.py [--devices 200] [--per-device 1000]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba

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


def _memory_per_device(devices: int, per_device: int, cadence_ms: int) -> tuple[float, float]:
    """(memory_bytes() per device, all state arrays / devices) after `per_device` readings at
    `cadence_ms` (26 h of them fill the 24 h window)."""
    df = synthetic_readings(devices, per_device, seed=3, cadence_ms=cadence_ms)
    readings = list(to_readings(df))
    on = OnlineFeatures()
    for i in range(0, len(readings), 2000):
        on.update_many(readings[i : i + 2000])
    st = on._st
    arrays = (st.dev, st.sums, st.bts, st.bx, st.bbad, st.qm, st.qts, st.qv, st.ht)
    return on.memory_bytes(), sum(a.nbytes for a in arrays) / devices


def _compile_seconds() -> tuple[float, float]:
    """(cold compile, load from numba's cache) of the kernel, each in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter(); "
        "from features.online import OnlineFeatures; OnlineFeatures(); "
        "print(time.perf_counter() - t)"
    )
    root = Path(__file__).resolve().parents[1]
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(root)}
        for _ in range(2):  # first run compiles into the empty cache, second loads it
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            out.append(float(res.stdout.strip().splitlines()[-1]))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--per-device", type=int, default=1000)
    ap.add_argument("--naive-readings", type=int, default=1500)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    t_cold, t_cached = _compile_seconds()
    OnlineFeatures()  # load the kernel before any timed region
    df = synthetic_readings(args.devices, args.per_device, seed=1)
    readings = list(to_readings(df))
    n = len(readings)
    log.info("%d readings, %d devices, %d features", n, args.devices, len(FEATURE_SET.names))

    def stream_single() -> None:
        on = OnlineFeatures()
        upd = on.update
        for r in readings:
            upd(r)

    def stream_micro(size: int) -> None:
        on = OnlineFeatures()
        for i in range(0, n, size):
            on.update_many(readings[i : i + size])

    t_single = _best(stream_single)
    t_micro = _best(lambda: stream_micro(500))
    t_micro2k = _best(lambda: stream_micro(2000))
    t_batch = _best(lambda: compute_features(df))
    t_vec = _best(lambda: compute_features(df, engine="vectorised"))
    rows = n - int(df.duplicated(["device_id", "event_id"]).sum())

    sub = readings[: args.naive_readings]  # all devices interleaved: ~history of a few readings
    sub_dev = [r for r in readings if r.device_id == readings[0].device_id][: args.naive_readings]
    t_naive = _best(lambda: naive_features(sub, FEATURE_SET), repeat=1)
    t_naive_dev = _best(lambda: naive_features(sub_dev, FEATURE_SET), repeat=1)

    mem_min, pool_min = _memory_per_device(200, 1560, 60_000)  # 26 h at 1 reading/min
    mem_sec, pool_sec = _memory_per_device(4, 93_600, 1_000)  # 26 h at 1 reading/s

    r_single = _rate(n, t_single)
    r_micro, r_micro2k = _rate(n, t_micro), _rate(n, t_micro2k)
    r_batch, r_vec = _rate(rows, t_batch), _rate(rows, t_vec)
    r_naive, r_naive_dev = _rate(len(sub), t_naive), _rate(len(sub_dev), t_naive_dev)

    def row(label: str, rate: float, unit: str) -> str:
        return f"| {label} | {rate:,.0f} {unit} | {rate / r_naive_dev:,.0f}x |"

    lines = [
        f"Synthetic stream: {n} readings from {args.devices} devices (30 s cadence, 1% out of "
        f"order, 0.2% late, 0.5% duplicates, 2% dropouts), feature set "
        f"`{FEATURE_SET.version}` ({len(FEATURE_SET.names)} features). One core, "
        f"{platform.python_implementation()} {platform.python_version()}, numba "
        f"{numba.__version__}, {os.cpu_count()} CPUs; best of 2 runs, CPU time of this "
        f"process; load average {os.getloadavg()[0]:.1f} during the run (other work shares "
        "the machine). The kernel is compiled and loaded before the timed regions.",
        "",
        "| path | rate | vs naive |",
        "|---|---|---|",
        row("streaming `update` (one reading per call)", r_single, "readings/s"),
        row("streaming `update_many` (micro-batches of 500)", r_micro, "readings/s"),
        row("streaming `update_many` (micro-batches of 2000)", r_micro2k, "readings/s"),
        row("batch `compute_features` (compiled kernel, default)", r_batch, "rows/s"),
        row("batch `compute_features(engine='vectorised')` (numpy)", r_vec, "rows/s"),
        row(
            f"naive, one device's first {len(sub_dev)} readings (windows fill up)",
            r_naive_dev,
            "readings/s",
        ),
        f"| naive, first {len(sub)} readings of the fleet (near-empty windows) | "
        f"{r_naive:,.0f} readings/s | — |",
        "",
        "Memory per device with a full 24 h window (26 h of readings; `memory_bytes()`: the "
        "device's chunk capacities, sums and fields, and its share of the event-id table; "
        "in brackets all state arrays of the process divided by the devices, pool slack "
        f"included): {mem_min / 1e6:.3f} MB ({pool_min / 1e6:.3f} MB) at 1 reading/min "
        f"(200 devices), {mem_sec / 1e6:.2f} MB ({pool_sec / 1e6:.2f} MB) at 1 reading/s "
        f"(4 devices). A 10,000-device fleet at 1 reading/min: about "
        f"{pool_min * 10_000 / 1e9:.1f} GB.",
        "",
        f"Kernel compile time (numba, fresh interpreter): {t_cold:.1f} s cold, "
        f"{t_cached:.1f} s when loaded from numba's on-disk cache (`cache=True`); paid once "
        "per process, at the first `OnlineFeatures()` or `compute_features`.",
        "",
        "Targets: streaming >= 100k readings/s (floor 50k), batch >= 500k rows/s.",
        "",
        NOTES,
    ]
    body = "\n".join(lines)
    log.info("%s", body)
    if args.write:
        from stackutil import replace_section

        replace_section("Features", body)


NOTES = (
    "Notes. Streaming and batch run one numba kernel (`features._nbstate`) over per-device "
    "state held in flat numpy arrays: a sorted buffer of the readings of the 24 h window "
    "(event time, raw values, bad bits: 52 bytes a reading), exact running integer sums per "
    "window (add on arrival, subtract on eviction), min/max monotonic deques per sensor over "
    "the 1 h window, and a hashed event-id table. The parity tests compare it with the "
    "independent vectorised numpy batch path (`engine='vectorised'`) and the naive reference; "
    "all agree (200k readings, rtol 1e-9; in practice bit for bit). `update` pays a Python "
    "call and array set-up per reading; the scorer would gain from calling `update_many` on its "
    "micro-batches. Memory is the buffered readings of the 24 h window: bounded by the window "
    "but proportional to the reading rate, so 1 reading/s costs ~60x what 1 reading/min does "
    "(a bound independent of the rate would need pane-based 24 h sums: a change of the "
    "definitions)."
)


if __name__ == "__main__":
    main()
