"""Feature state per owned input partition, and its recovery.

A partition's state is *ready* once it has been rebuilt up to the partition's committed offset
(`streaming.serving.rebuild`). Until then the partition is paused: nothing of it is scored on partial
state, readiness says which partitions wait, and the loop retries the recovery with a backoff
(a broker that does not answer the committed-offset request, a rebuild that stopped early).
Partitions that took records of a transaction that then aborted are *dirty*: their state is
dropped and recovered again. Devices idle for longer than the rebuild horizon are forgotten,
and a partition holds at most `max_devices` devices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from features.contract.readings import SensorReading
from features.engine.snapshot import SnapshotError
from streaming.kafka import consumer_config
from streaming.serving.config import ServeConfig
from streaming.serving.device_state import PartitionedFeatures, PartitionKey
from streaming.serving.event_time import EventTimePolicy
from streaming.serving.rebuild import RebuildStats, group_by_partition, read_since, read_window
from streaming.serving.snapshots import Restored, Snapshots

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.5
RETRY_MAX_S = 15.0


class PartitionStates:
    def __init__(
        self,
        cfg: ServeConfig,
        make_features: Callable[[], Any],
        client_conf: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.client_conf = client_conf or {}
        self.features = PartitionedFeatures(make_features)
        self.event_time = EventTimePolicy(cfg.future_skew_ms, cfg.past_horizon_ms)
        self.horizon_ms = (
            cfg.rebuild_horizon_ms
            if cfg.rebuild_horizon_ms is not None
            else self.features.rebuild_horizon_ms
        )
        self.assignment: list[TopicPartition] = []
        self.dirty: set[PartitionKey] = set()
        #: owned partitions whose state is not ready (paused until it is)
        self.pending: set[PartitionKey] = set()
        self.rebuilds: list[RebuildStats] = []
        self.evicted = 0
        #: why the last recovery failed (None: it did not)
        self.last_error: str | None = None
        self.snapshots: Snapshots | None = None
        if cfg.snapshots and self.features.supports_snapshots:
            self.snapshots = Snapshots(
                bootstrap=cfg.bootstrap,
                topic=cfg.topics.scorer_state,
                group=cfg.group,
                feature_set=self.features.version,
                interval_s=cfg.snapshot_interval_s,
                max_devices=cfg.snapshot_max_devices,
                timeout_s=cfg.snapshot_timeout_s,
                client_conf=self.client_conf,
            )
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S
        self._last_evict = time.monotonic()

    # ── assignment ──────────────────────────────────────────────────────────────────────
    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """New assignment: kept partitions keep their state, new ones are recovered (paused
        until then)."""
        self.forget_dirty()
        keys = {(p.topic, p.partition) for p in partitions}
        self.drop([k for k in self.features.partitions if k not in keys])
        self.assignment = list(partitions)
        new = {k for k in keys if k not in self.features.partitions}
        self.pending = (self.pending & keys) | new
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S
        # recovered before the assignment takes effect: the consumer then starts each
        # partition at its committed offset, where the rebuilt state ends
        self.recover(consumer, seek=False)
        consumer.assign(partitions)
        if self.pending:
            consumer.pause([TopicPartition(t, p) for t, p in self.pending])

    def revoked(self) -> None:
        self.forget_dirty()
        self.assignment = []
        self.pending.clear()

    def lost(self) -> None:
        """Partitions lost without a clean revocation: other members may have advanced them
        since, so no state of them is kept."""
        self.drop(list(self.features.partitions))
        self.revoked()

    def drop(self, keys: Iterable[PartitionKey]) -> None:
        ks = list(keys)
        self.features.drop(ks)
        self.event_time.forget(ks)
        if self.snapshots is not None:
            self.snapshots.forget(ks)

    def forget_dirty(self) -> None:
        """Drop the state of partitions that took records of an aborted transaction."""
        self.drop(self.dirty)
        self.dirty.clear()

    def rewind(self, consumer: Consumer) -> None:
        """After an abort: dirty partitions lose their state and are recovered; every owned
        partition goes back to its committed offset."""
        dirty = set(self.dirty)
        self.forget_dirty()
        self.pending |= dirty & {(p.topic, p.partition) for p in self.assignment}
        if self.pending:
            consumer.pause([TopicPartition(t, p) for t, p in self.pending])
        ready = [p for p in self.assignment if (p.topic, p.partition) not in self.pending]
        self.seek_committed(consumer, ready)
        self._retry_at = 0.0
        self.recover(consumer)

    def seek_committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        for tp in consumer.committed(partitions, timeout=10):
            target = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, target))

    # ── recovery ────────────────────────────────────────────────────────────────────────
    def recover(self, consumer: Consumer, *, seek: bool = True) -> None:
        """Try to make the pending partitions' state ready (a no-op until the retry time);
        `seek`: move the (assigned) partitions to the offsets the state reached."""
        if not self.pending or time.monotonic() < self._retry_at:
            return
        todo = [TopicPartition(t, p) for t, p in sorted(self.pending)]
        try:
            committed = consumer.committed(todo, timeout=10)
            for tp in committed:
                self.features.reset((tp.topic, tp.partition))
                self.event_time.forget([(tp.topic, tp.partition)])
            if self.snapshots is None:
                stats = self._rebuild(committed)
                if not stats.complete:
                    raise TimeoutError(f"rebuild stopped early on {stats.incomplete}")
            else:
                self._restore(consumer, committed, self.snapshots)
            for tp in committed if seek else []:  # resume where the state ends
                target = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                consumer.seek(TopicPartition(tp.topic, tp.partition, target))
        except Exception as exc:  # the broker away, a rebuild cut short: retry later
            for tp in todo:  # never partial state: what was restored is dropped again
                self.features.drop([(tp.topic, tp.partition)])
                if self.snapshots is not None:
                    self.snapshots.forget([(tp.topic, tp.partition)])
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._retry_at = time.monotonic() + self._backoff
            log.warning(
                "state of partitions %s not recovered (%s); retrying in %.1fs",
                sorted(p for _t, p in self.pending),
                exc,
                self._backoff,
            )
            self._backoff = min(RETRY_MAX_S, self._backoff * 2)
            return
        if seek:
            consumer.resume(todo)
        self.pending.clear()
        self.last_error = None
        self._backoff = RETRY_MIN_S

    def _restore(
        self, consumer: Consumer, committed: list[TopicPartition], snaps: Snapshots
    ) -> None:
        """Each partition from its snapshot and the input since; the others by a re-read."""
        t0 = time.perf_counter()
        keys = [(tp.topic, tp.partition) for tp in committed]
        got = snaps.read(keys)  # raises when a snapshot cannot be read to its end
        usable: dict[PartitionKey, tuple[int, Restored]] = {}
        fallback: list[tuple[TopicPartition, str]] = []
        for tp in committed:
            key = (tp.topic, tp.partition)
            r = got[key]
            low, _hi = consumer.get_watermark_offsets(TopicPartition(*key), timeout=10)
            reason = snaps.why_not(r, tp.offset, low)
            if reason is None:
                try:
                    devices = list(r.devices)
                    self.features.instances[key].import_devices(
                        devices, [r.devices[d][1] for d in devices]
                    )
                except SnapshotError as exc:
                    self.features.reset(key)
                    reason = f"corrupt snapshot: {exc}"
            if reason is None:
                usable[key] = (tp.offset, r)
            else:
                fallback.append((tp, reason))
        if usable:
            self._catch_up(usable, snaps, t0)
        if fallback:
            reasons = "; ".join(f"{tp.partition}: {why}" for tp, why in fallback)
            log.info("state of partitions %s re-read from the input (%s)",
                     [tp.partition for tp, _ in fallback], reasons)  # fmt: skip
            stats = self._rebuild([tp for tp, _ in fallback], reason=reasons)
            if not stats.complete:
                raise TimeoutError(f"rebuild stopped early on {stats.incomplete}")
            for tp, _ in fallback:
                key = (tp.topic, tp.partition)
                inst = self.features.instances[key]
                inst.take_changes()  # all of them go in the new generation's first round
                snaps.rebuilt(key, tp.offset, inst.devices(), got[key])

    def _catch_up(
        self, usable: dict[PartitionKey, tuple[int, Restored]], snaps: Snapshots, t0: float
    ) -> None:
        """Input since each snapshot's marker, each device from its own record's offset on."""
        stats = RebuildStats(source="snapshot", partitions=len(usable))
        stats.devices = sum(len(r.devices) for _c, r in usable.values())
        stats.state_records = sum(r.records for _c, r in usable.values())
        for key, (_c, r) in usable.items():
            assert r.marker is not None
            if r.marker.watermark is not None:
                self.event_time.observe(key, r.marker.watermark)
        ranges = {k: (r.marker.offset, c) for k, (c, r) in usable.items() if r.marker}
        since = {
            k: {d: off for d, (off, _rec) in r.devices.items()} for k, (_c, r) in usable.items()
        }
        conf = consumer_config(self.cfg.bootstrap, f"{self.cfg.group}-rebuild", **self.client_conf)
        items = read_since(
            conf, ranges, timeout_s=self.cfg.rebuild_timeout_s, stats=stats,
            contract=self.cfg.dataset.contract,
        )  # fmt: skip

        def fresh() -> Any:
            for key, off, reading in items:
                first = since[key].get(reading.device_id)
                if first is None or off >= first:
                    yield key, reading

        group_by_partition(fresh(), self._feed)
        stats.seconds = time.perf_counter() - t0
        self.rebuilds.append(stats)
        if not stats.complete:
            raise TimeoutError(f"catch-up after the snapshot stopped early on {stats.incomplete}")
        for key, (_c, r) in usable.items():
            snaps.restored(key, r)
        log.info(
            "restored feature state of partitions %s from their snapshots (%d devices) and "
            "%d records since, in %.2fs",
            sorted(k[1] for k in usable), stats.devices, stats.records, stats.seconds,
        )  # fmt: skip

    def _feed(self, key: PartitionKey, readings: list[SensorReading]) -> None:
        self.features.feed(key, readings)
        limit = self._future_limit()
        ok = [r.ts_ms for r in readings if r.ts_ms <= limit]
        if ok:
            self.event_time.observe(key, max(ok))

    def _rebuild(self, committed: list[TopicPartition], reason: str | None = None) -> RebuildStats:
        stats = RebuildStats(reason=reason)
        conf = consumer_config(self.cfg.bootstrap, f"{self.cfg.group}-rebuild", **self.client_conf)
        items = read_window(
            conf,
            committed,
            self.horizon_ms,
            timeout_s=self.cfg.rebuild_timeout_s,
            stats=stats,
            contract=self.cfg.dataset.contract,
        )
        group_by_partition(items, self._feed)
        self.rebuilds.append(stats)
        log.info(
            "rebuilt feature state of partitions %s from %d records (%d valid, %d skipped) "
            "in %.2fs",
            sorted(tp.partition for tp in committed),
            stats.records,
            stats.readings,
            stats.skipped,
            stats.seconds,
        )
        return stats

    def _future_limit(self) -> int:
        return int(time.time() * 1000) + self.cfg.future_skew_ms

    # ── limits ──────────────────────────────────────────────────────────────────────────
    def over_cap(self, device_ids: Sequence[str], keys: Sequence[PartitionKey]) -> list[int]:
        """Indexes (into `device_ids`) of readings of devices a partition has no room for (`max_devices`).
        Only looked at reading by reading when a partition is near its cap."""
        cap = self.cfg.max_devices_per_partition
        parts = self.features.instances
        out: list[int] = []
        near = {
            k
            for k in set(keys)
            if (inst := parts.get(k)) is not None
            and getattr(inst, "device_count", 0) + len(device_ids) > cap
        }
        if not near:
            return out
        for k in near:
            inst = parts[k]
            known: Any = getattr(inst, "_slots", {})
            count = len(known)
            new: set[str] = set()
            for i, (d, rk) in enumerate(zip(device_ids, keys, strict=True)):
                if rk != k or d in known or d in new:
                    continue
                if count + len(new) >= cap:
                    out.append(i)
                else:
                    new.add(d)
        return sorted(out)

    def maybe_evict(self, now: float) -> int:
        """Forget devices idle for longer than the rebuild horizon (by their partition's event
        time), every `evict_interval_s`; returns how many."""
        if now - self._last_evict < self.cfg.evict_interval_s or self.horizon_ms <= 0:
            return 0
        self._last_evict = now
        n = 0
        for key, inst in self.features.instances.items():
            wm = self.event_time.watermarks.get(key)
            drop_idle = getattr(inst, "drop_idle", None)
            if wm is not None and drop_idle is not None:
                n += int(drop_idle(wm - self.horizon_ms))
        self.evicted += n
        if n:
            log.info("forgot %d devices idle for longer than %d ms", n, self.horizon_ms)
        return n

    def device_count(self) -> int:
        return sum(int(getattr(i, "device_count", 0)) for i in self.features.instances.values())
