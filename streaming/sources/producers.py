"""Producing simulated readings to Kafka: `backfill` (history, as fast as possible) and
`simulate_live` (a steady target rate with event time = wall clock).

Records are keyed by device id and carry the event time as their Kafka timestamp, so a time
window of history can be replayed with `offsets_for_times`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message

from features.contract import Maintenance, encode
from features.contract.bulk import encode_readings_bulk, reading_prefixes
from features.contract.topics import Topics
from streaming.kafka import make_producer
from streaming.sources.sim import SITES, Firmware, SimConfig, Simulator, write_labels
from streaming.sources.sim.engine import FLEET

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


def start_of_day_ms(now_ms: int | None = None) -> int:
    """Midnight UTC of the day `now_ms` (default: now) falls in: history ends there, so every
    backfilled day is whole and the same seed gives the same days whatever the hour."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return now // DAY_MS * DAY_MS


#: progress(done, total) — total is None when the run has no fixed end.
Progress = Callable[[int, int | None], None]


class DeliveryError(RuntimeError):
    """Some records could not be delivered to Kafka."""


class EventSink:
    """A producer that never drops silently: a full local queue is drained and the record
    retried; delivery failures are counted and raised by `close()`."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._errors: list[KafkaError] = []
        errors = self._errors  # the callback must not hold `self`: no cycle, prompt cleanup

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(err)

        conf: dict[str, Any] = {
            # Only failures call back: a callback per record would cost a Python call each.
            "delivery.report.only.error": True,
            "on_delivery": on_delivery,
        }
        conf.update(overrides)
        self.producer = make_producer(bootstrap, **conf)

    @property
    def failed(self) -> int:
        return len(self._errors)

    def produce_many(
        self, topic: str, values: Sequence[str | bytes], keys: Sequence[bytes], ts: Sequence[int]
    ) -> None:
        produce = self.producer.produce
        for value, key, t in zip(values, keys, ts, strict=True):
            try:
                produce(topic, value, key, timestamp=t)
            except BufferError:
                self._drain()
                produce(topic, value, key, timestamp=t)
        self.producer.poll(0)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        *,
        timestamp: int = 0,
        headers: Sequence[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self.producer.produce(
                    topic,
                    value,
                    key,
                    timestamp=timestamp,
                    headers=list(headers) if headers else None,
                )
                return
            except BufferError:
                self._drain()

    def _drain(self) -> None:
        self.producer.poll(0.05)  # local queue full: serve delivery reports until there is room

    def close(self, timeout: float = 60.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            raise DeliveryError(f"{left} records still undelivered after {timeout:.0f}s")
        if self._errors:
            raise DeliveryError(f"{self.failed} records failed, first: {self._errors[0]}")


@dataclass(frozen=True, slots=True)
class BackfillStats:
    readings: int
    maintenance: int
    devices: int
    steps: int
    start_ms: int
    end_ms: int
    elapsed_s: float
    failures: int
    labels_path: Path | None

    @property
    def rate(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def _produce_maintenance(sink: EventSink, topics: Topics, events: list[Maintenance]) -> None:
    for m in events:
        sink.produce(topics.maintenance, encode(m), m.device_id.encode(), timestamp=m.ts_ms)


def backfill(
    bootstrap: str,
    topics: Topics,
    devices: int = 1000,
    days: float = 14.0,
    interval_s: float = 60.0,
    seed: int = 0,
    *,
    end_ms: int | None = None,
    labels_path: Path | None = None,
    progress: Progress | None = None,
    producer_overrides: Mapping[str, Any] | None = None,
    firmware: Sequence[Firmware] = (),
    emit_from_ms: int | None = None,
) -> BackfillStats:
    """Write `days` of history for `devices` devices ending at `end_ms` (default: midnight UTC
    that started today, so whole days of history end yesterday): one reading per device per
    interval, plus the maintenance events. `firmware`: sensor firmware rollouts in that time.
    `emit_from_ms`: the steps before it are simulated but not written (to extend a history
    written earlier with the same seed and start: the devices go on where they were)."""
    if devices < 1 or days <= 0 or interval_s <= 0:
        raise ValueError("devices must be >= 1, days and interval_s > 0")
    interval_ms = round(interval_s * 1000)
    steps = round(days * DAY_MS / interval_ms)
    if end_ms is None:
        end_ms = start_of_day_ms()
    start_ms = end_ms - steps * interval_ms
    sim = history_simulator(devices, seed, start_ms, interval_s, firmware)
    skip = 0 if emit_from_ms is None else max(0, -(-(emit_from_ms - start_ms) // interval_ms))
    for _ in range(min(skip, steps)):
        sim.step()
    steps -= min(skip, steps)
    f = sim.fleet
    prefixes = reading_prefixes(f.device_ids, f.sites, f.machine_types)
    keys = [d.encode() for d in f.device_ids]
    sink = EventSink(bootstrap, **dict(producer_overrides or {}))
    readings = maintenance = 0
    t0 = time.perf_counter()

    def next_step() -> tuple[list[str], list[int], list[Maintenance]]:
        step = sim.step()
        values = encode_readings_bulk(
            step.event_ids, step.ts_ms, prefixes, step.values, FLEET.contract
        )
        return values, step.ts_ms.tolist(), step.maintenance

    # Pipelined: a worker simulates and encodes step k+1 (numpy and Arrow release the GIL for
    # much of it) while this thread produces step k.
    with ThreadPoolExecutor(1, thread_name_prefix="backfill-encode") as pool:
        pending = pool.submit(next_step)
        for k in range(steps):
            values, ts, events = pending.result()
            if k + 1 < steps:
                pending = pool.submit(next_step)
            sink.produce_many(topics.sensor_readings, values, keys, ts)
            _produce_maintenance(sink, topics, events)
            readings += len(values)
            maintenance += len(events)
            if progress is not None:
                progress(readings, steps * devices)
    sink.close()
    elapsed = time.perf_counter() - t0
    labels = sim.labels()
    if labels_path is not None:
        write_labels(labels, labels_path)
    stats = BackfillStats(
        readings=readings,
        maintenance=maintenance,
        devices=devices,
        steps=steps,
        start_ms=start_ms,
        end_ms=end_ms,
        elapsed_s=elapsed,
        failures=sum(x.failed for x in labels),
        labels_path=labels_path,
    )
    log.info("backfill: %d readings in %.1fs (%.0f/s)", readings, elapsed, stats.rate)
    return stats


def history_simulator(
    devices: int, seed: int, start_ms: int, interval_s: float, firmware: Sequence[Firmware] = ()
) -> Simulator:
    """The simulator `backfill` runs: the same arguments give the same devices and readings."""
    return Simulator(
        SimConfig(
            devices=devices,
            seed=seed,
            start_ms=start_ms,
            interval_s=interval_s,
            firmware=tuple(firmware),
        )
    )


def _warm_up() -> None:
    """Load Arrow's compute kernels (the first call takes a while) before the clock starts."""
    sim = Simulator(SimConfig(devices=1))
    step = sim.step()
    f = sim.fleet
    encode_readings_bulk(
        step.event_ids,
        step.ts_ms,
        reading_prefixes(f.device_ids, f.sites, f.machine_types),
        step.values,
        FLEET.contract,
    )


@dataclass(frozen=True, slots=True)
class LiveStats:
    readings: int
    maintenance: int
    target_rate: float
    elapsed_s: float
    max_lag_ms: int  # how late (wall clock minus event time) the latest record was produced

    @property
    def rate(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s > 0 else 0.0


def simulate_live(
    bootstrap: str,
    topics: Topics,
    devices: int = 1000,
    rate: float = 1000.0,
    seed: int = 0,
    duration_s: float | None = None,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    producer_overrides: Mapping[str, Any] | None = None,
    firmware: Sequence[Firmware] = (),
    held_sites: Sequence[str] = (),
    release: threading.Event | None = None,
    history_start_ms: int | None = None,
    emit_from_ms: int | None = None,
) -> LiveStats:
    """Produce readings at `rate` events/s (each device every devices/rate seconds, devices
    evenly staggered) until `duration_s` has passed or `stop` is set. Every reading is produced
    when the wall clock reaches its event time. The devices of `held_sites` are simulated but
    their readings are held back (dropped) until `release` is set (a site coming online).

    `history_start_ms`: continue the history `backfill` wrote with the same seed from that start
    at the interval devices/rate, instead of a fresh fleet: its steps before `emit_from_ms`
    (default: now) are simulated and skipped, so each device's live readings go on from its last
    written one (no seam in per-device features: same state, same phase)."""
    if devices < 1 or rate <= 0:
        raise ValueError("devices must be >= 1 and rate > 0")
    unknown = set(held_sites) - {s.name for s in SITES}
    if unknown:
        raise ValueError(f"unknown sites {sorted(unknown)}; known: {[s.name for s in SITES]}")
    release = release or threading.Event()
    stop = stop or threading.Event()
    sink = EventSink(bootstrap, **dict(producer_overrides or {}))
    _warm_up()
    now_ms = int(time.time() * 1000)  # after the slow setup: the first readings are due now
    if history_start_ms is None:
        sim = Simulator(
            SimConfig(
                devices=devices,
                seed=seed,
                start_ms=now_ms,
                interval_s=devices / rate,
                phase="even",
                firmware=tuple(firmware),
            )
        )
    else:
        sim = history_simulator(devices, seed, history_start_ms, devices / rate, firmware)
        first = now_ms if emit_from_ms is None else emit_from_ms
        while sim.step_time_ms(sim.steps_done) < first:
            sim.step()
    f = sim.fleet
    held = np.isin(np.asarray(f.sites), list(held_sites))
    held_ids = {d for d, h in zip(f.device_ids, held, strict=True) if h}
    prefixes = reading_prefixes(f.device_ids, f.sites, f.machine_types)
    keys = [d.encode() for d in f.device_ids]
    end_ms = now_ms + round(duration_s * 1000) if duration_s is not None else None
    total = round(duration_s * rate) if duration_s is not None else None
    readings = maintenance = max_lag = 0
    t0 = time.time()
    while not stop.is_set():
        step = sim.step()
        # in event-time order (a history's devices each have their own phase)
        order = np.argsort(step.ts_ms, kind="stable")
        ts = step.ts_ms[order]
        cut = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, "left"))
        if cut == 0:
            break
        encoded = encode_readings_bulk(
            step.event_ids, step.ts_ms, prefixes, step.values, FLEET.contract
        )
        values = [encoded[i] for i in order]
        step_keys = [keys[i] for i in order]
        step_held = held[order]
        events = [
            m
            for m in step.maintenance
            if (end_ms is None or m.ts_ms < end_ms)
            and (release.is_set() or m.device_id not in held_ids)
        ]
        _produce_maintenance(sink, topics, events)
        maintenance += len(events)
        ts_list = ts.tolist()
        done = 0
        while done < cut and not stop.is_set():
            wall = int(time.time() * 1000)
            due = min(int(np.searchsorted(ts, wall, "right")), cut)
            if due > done:
                if held.any() and not release.is_set():
                    send = [i for i in range(done, due) if not step_held[i]]
                    sink.produce_many(
                        topics.sensor_readings,
                        [values[i] for i in send],
                        [step_keys[i] for i in send],
                        [ts_list[i] for i in send],
                    )
                    readings += len(send)
                else:
                    sink.produce_many(
                        topics.sensor_readings,
                        values[done:due],
                        step_keys[done:due],
                        ts_list[done:due],
                    )
                    readings += due - done
                max_lag = max(max_lag, wall - ts_list[due - 1])
                done = due
                if progress is not None:
                    progress(readings, total)
            else:
                # Pacing: sleep until the next reading's event time (at most 20 ms at a time).
                stop.wait(min((ts_list[done] - wall) / 1000, 0.02))
        if cut < len(ts):
            break
    elapsed = time.time() - t0
    sink.close()
    return LiveStats(readings, maintenance, rate, elapsed, max_lag)
