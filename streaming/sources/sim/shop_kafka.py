"""The shop simulator into Kafka: history (`backfill_shop`) and a live stream (`simulate_shop`).

Every event becomes a reading of its key (category x region) on the dataset's readings topic,
keyed by the key, with its event time as the record timestamp (our own simulator's clock, never
more than the wall clock in live mode): the same contract, codec and topics layout as the fleet's
readings (docs/shop.md). `encode_events` is the pure part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.contract import ReadingContract
from features.contract.bulk import encode_readings_bulk, reading_prefixes
from features.contract.topics import Topics
from streaming.sources.producers import EventSink, start_of_day_ms
from streaming.sources.sim.shop import (
    CATEGORIES,
    DAY_MS,
    REGIONS,
    ShopConfig,
    Surge,
    day_rates,
    keys,
    readings_frame,
    simulate_day,
    surges_table,
)

#: progress(done, total): total None when the run has no fixed end.
Progress = Callable[[int, int | None], None]

#: The readings' physical ranges (the shop's spec declares the same; a test holds them equal).
CONTRACT = ReadingContract(
    {"sessions": (0.0, 1.0), "carts": (0.0, 1.0), "orders": (0.0, 1.0), "amount": (0.0, 100_000.0)}
)
_PREFIXES = reading_prefixes(
    keys(),
    [r.name for _ in CATEGORIES for r in REGIONS],
    [c.name for c in CATEGORIES for _ in REGIONS],
)
_KEYS = [k.encode() for k in keys()]
DEFAULT: Final = ShopConfig()
_LIVE_CHUNK: Final = 2000  # events encoded at once in live mode


def encode_events(
    events: pd.DataFrame, contract: ReadingContract = CONTRACT
) -> tuple[list[str], list[bytes], list[int]]:
    """(JSON readings, record keys, record timestamps) of a frame of `simulate_day`."""
    codes = events["key"].cat.codes.to_numpy()
    r = readings_frame(events)
    values = r[list(contract.sensors)].to_numpy(dtype=np.float64)
    ts = r["ts_ms"].to_numpy(dtype=np.int64)
    json = encode_readings_bulk(
        pa.array(r["event_id"].to_numpy(), pa.string()),
        ts,
        _PREFIXES.take(pa.array(codes)),
        values,
        contract,
    )
    return json, [_KEYS[c] for c in codes], ts.tolist()


def write_surges(surges: list[Surge], path: Path) -> Path:
    """Ground truth as Parquet (`.parquet`) or CSV (anything else), like the fleet's labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = surges_table(surges)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


@dataclass(frozen=True, slots=True)
class ShopStats:
    events: int
    orders: int
    surges: int
    start_ms: int
    end_ms: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def backfill_shop(
    bootstrap: str,
    topics: Topics,
    days: int = 14,
    cfg: ShopConfig = DEFAULT,
    *,
    end_ms: int | None = None,
    labels_path: Path | None = None,
    progress: Progress | None = None,
) -> ShopStats:
    """Write `days` whole UTC days of shop events ending at `end_ms` (default: the midnight that
    started today), and the ground truth of their surges to `labels_path`."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = start_of_day_ms() if end_ms is None else end_ms
    if end % DAY_MS:
        raise ValueError("end_ms must be a UTC midnight")
    start = end - days * DAY_MS
    sink = EventSink(bootstrap)
    n = orders = 0
    surges: list[Surge] = []
    t0 = time.perf_counter()
    for day in range(start // DAY_MS, end // DAY_MS):
        events = simulate_day(cfg, day)
        values, record_keys, ts = encode_events(events)
        sink.produce_many(topics.sensor_readings, values, record_keys, ts)
        n += len(values)
        orders += int((events["kind"] == "order").sum())
        surges.extend(day_rates(cfg, day).surges)
        if progress is not None:
            progress(n, None)
    sink.close()
    if labels_path is not None:
        write_surges(surges, labels_path)
    return ShopStats(n, orders, len(surges), start, end, time.perf_counter() - t0)


def simulate_shop(
    bootstrap: str,
    topics: Topics,
    cfg: ShopConfig = DEFAULT,
    duration_s: float | None = None,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> ShopStats:
    """Produce today's shop events live: each when the wall clock reaches its event time, until
    `duration_s` has passed or `stop` is set."""
    stop = stop or threading.Event()
    sink = EventSink(bootstrap)
    now = int(time.time() * 1000)
    end = now + round(duration_s * 1000) if duration_s is not None else None
    n = orders = 0
    t0 = time.time()
    day = now // DAY_MS
    while not stop.is_set() and (end is None or day * DAY_MS < end):
        events = simulate_day(cfg, day)
        ts_all = events["ts_ms"].to_numpy()
        lo = int(np.searchsorted(ts_all, now, "left"))
        hi = len(ts_all) if end is None else int(np.searchsorted(ts_all, end, "left"))
        for first in range(lo, hi, _LIVE_CHUNK):  # encoded a chunk at a time, as time passes
            if stop.is_set():
                break
            chunk = events.iloc[first : min(first + _LIVE_CHUNK, hi)].reset_index(drop=True)
            values, record_keys, ts = encode_events(chunk)
            is_order = (chunk["kind"] == "order").to_numpy()
            done = 0
            while done < len(ts) and not stop.is_set():
                wall = int(time.time() * 1000)
                due = int(np.searchsorted(ts, wall, "right"))
                if due > done:
                    sink.produce_many(
                        topics.sensor_readings,
                        values[done:due],
                        record_keys[done:due],
                        ts[done:due],
                    )
                    n += due - done
                    orders += int(is_order[done:due].sum())
                    done = due
                    if progress is not None:
                        progress(n, None)
                else:
                    stop.wait(min((ts[done] - wall) / 1000, 0.05))
        day += 1
        now = day * DAY_MS
    sink.close()
    start_ms = round(t0 * 1000)
    return ShopStats(n, orders, 0, start_ms, end or int(time.time() * 1000), time.time() - t0)
