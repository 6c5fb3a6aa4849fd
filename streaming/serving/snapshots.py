"""State snapshots: per-device feature state in a compacted topic, written in the same Kafka
transaction as the input offsets, restored on assignment (the Kafka Streams / Quix Streams way).

Layout: input partition p's state lives in partition p of the state topic (`Topics.scorer_state`).
Keys `d:<device>` hold one device's state (`features.engine.snapshot`), prefixed with the snapshot's
generation and the input offset `o` it is valid at (the device's readings before `o` are in it,
none after); a tombstone forgets a device. The key `m` holds the partition's marker (JSON): the
generation, the feature-set version, and the input offset M every device record is valid at (a
device whose record is older had no reading between its `o` and M).

Writing, bounded by time and size: every `snapshot_interval_s` the devices changed since the last
round are taken (and M's candidate is the input position at that moment); each committed
transaction then carries at most `snapshot_max_devices` of them, and the marker goes with the
last. Records written in a transaction that aborts are written again.

Restoring a partition committed at C: read its state partition to the end (read_committed),
import the devices of the marker's generation, then re-read the input [M, C), feeding a device
only the readings at or after its own `o`. The re-read of the last `rebuild_horizon_ms`
(`streaming.serving.rebuild`) is the fallback: no marker, a corrupt record, another feature-set version,
or M before the input's first retained offset. After a fallback the partition starts a new
generation (every device written again, the old generation's keys deleted).
"""

from __future__ import annotations

import json
import logging
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from features.engine.snapshot import SnapshotError
from streaming.kafka import make_consumer
from streaming.serving.device_state import PartitionedFeatures, PartitionKey
from streaming.serving.rebuild import read_ranges

log = logging.getLogger(__name__)

MARKER = b"m"
DEVICE = b"d:"
_PREFIX = struct.Struct(">16sq")  # generation, input offset the record is valid at

Produce = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Marker:
    gen: str
    group: str
    feature_set: str
    offset: int
    watermark: int | None
    written_ms: int

    def encode(self) -> bytes:
        return json.dumps(
            {
                "gen": self.gen,
                "group": self.group,
                "feature_set": self.feature_set,
                "offset": self.offset,
                "watermark": self.watermark,
                "written_ms": self.written_ms,
            }
        ).encode()

    @staticmethod
    def decode(raw: bytes) -> Marker:
        try:
            d = json.loads(raw)
            return Marker(
                str(d["gen"]),
                str(d["group"]),
                str(d["feature_set"]),
                int(d["offset"]),
                None if d["watermark"] is None else int(d["watermark"]),
                int(d["written_ms"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"unreadable marker: {exc}") from exc


@dataclass(slots=True)
class Restored:
    """What was read of one partition's snapshot."""

    marker: Marker | None = None
    #: device -> (input offset its record is valid at, state record) of the marker's generation
    devices: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    #: device keys of other generations (deleted by the next round)
    stale: set[str] = field(default_factory=set)
    error: str | None = None
    #: records read from the partition (every copy the cleaner has not removed yet)
    records: int = 0


@dataclass(slots=True)
class _Track:
    """One owned partition's snapshot bookkeeping."""

    gen: str
    pending: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    #: input position when `pending` was taken: the next marker's offset
    candidate: int | None = None
    last_take: float = 0.0
    last_marker: int | None = None
    #: input position at the last transaction
    seen: int | None = None
    #: (devices, removed, marker offset) written in the open transaction
    inflight: tuple[list[str], list[str], int | None] | None = None


class Snapshots:
    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group: str,
        feature_set: str,
        interval_s: float,
        max_devices: int,
        timeout_s: float,
        client_conf: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.feature_set = feature_set
        self.interval_s = interval_s
        self.max_devices = max_devices
        self.timeout_s = timeout_s
        self.client_conf = client_conf or {}
        self._tracks: dict[PartitionKey, _Track] = {}
        #: records and bytes written (committed or not), for metrics and the bench
        self.records_written = 0
        self.bytes_written = 0
        self.devices_written = 0

    # ── bookkeeping ─────────────────────────────────────────────────────────────────────
    def forget(self, keys: Iterable[PartitionKey]) -> None:
        for k in keys:
            self._tracks.pop(k, None)

    def restored(self, key: PartitionKey, r: Restored) -> None:
        """Track a partition restored from its snapshot `r`."""
        assert r.marker is not None
        self._tracks[key] = _Track(
            gen=r.marker.gen,
            removed=set(r.stale),
            last_take=time.monotonic(),
            last_marker=r.marker.offset,
        )

    def rebuilt(self, key: PartitionKey, position: int, devices: list[str], old: Restored) -> None:
        """Track a partition rebuilt by a re-read (ready at input `position`): a new
        generation, every device written again, the old generation's keys deleted."""
        self._tracks[key] = _Track(
            gen=new_generation(),
            pending=set(devices),
            removed=(old.stale | set(old.devices)) - set(devices),
            candidate=max(position, 0),
            last_take=time.monotonic(),
        )

    def has_work(self, now: float) -> bool:
        """Whether a transaction should carry snapshot records although no input came: a
        round in progress, or a marker behind the input once a round is due."""
        return any(
            t.pending
            or t.removed
            or t.candidate is not None
            or (now - t.last_take >= self.interval_s and t.seen != t.last_marker)
            for t in self._tracks.values()
        )

    def behind(self) -> int:
        """Partitions whose committed marker is not at their input position."""
        return sum(
            1
            for t in self._tracks.values()
            if t.pending or t.candidate is not None or t.seen != t.last_marker
        )

    # ── writing ─────────────────────────────────────────────────────────────────────────
    def write(
        self,
        produce: Produce,
        features: PartitionedFeatures,
        positions: dict[PartitionKey, int],
        watermarks: dict[PartitionKey, int],
        now: float,
    ) -> None:
        """Produce this transaction's share of each ready partition's snapshot."""
        budget = self.max_devices
        for key, tr in self._tracks.items():
            pos = positions.get(key)
            inst = features.instances.get(key)
            if pos is None or inst is None:
                continue
            tr.seen = pos
            if tr.candidate is None and now - tr.last_take >= self.interval_s:
                changed, removed = inst.take_changes()
                tr.last_take = now
                tr.pending.update(changed)
                tr.removed.update(removed)
                if changed or removed or pos != tr.last_marker:
                    tr.candidate = pos
            if tr.candidate is None:
                continue
            part = key[1]
            batch = sorted(tr.pending)[: max(0, budget)]
            budget -= len(batch)
            known = [d for d in batch if inst.has_device(d)]
            # forgotten devices (also those forgotten since they were taken) are deleted
            gone = [d for d in tr.removed if d not in tr.pending]
            gone += [d for d in batch if not inst.has_device(d)]
            for d in gone:
                produce(self.topic, key=DEVICE + d.encode(), value=None, partition=part)
            prefix = _PREFIX.pack(tr.gen.encode(), pos)
            for d, rec in zip(known, inst.export_devices(known), strict=True):
                value = prefix + rec
                produce(self.topic, key=DEVICE + d.encode(), value=value, partition=part)
                self.bytes_written += len(value)
            self.records_written += len(known) + len(gone)
            self.devices_written += len(known)
            tr.pending.difference_update(batch)
            tr.removed.clear()
            marker: int | None = None
            if not tr.pending:
                marker = tr.candidate
                m = Marker(
                    tr.gen, self.group, self.feature_set, marker, watermarks.get(key), _now_ms()
                )
                produce(self.topic, key=MARKER, value=m.encode(), partition=part)
                tr.candidate = None
                self.records_written += 1
            tr.inflight = (batch, gone, marker)

    def committed(self) -> None:
        for tr in self._tracks.values():
            if tr.inflight is not None and tr.inflight[2] is not None:
                tr.last_marker = tr.inflight[2]
            tr.inflight = None

    def aborted(self) -> None:
        """The open transaction's records are gone: write them again."""
        for tr in self._tracks.values():
            if tr.inflight is None:
                continue
            batch, gone, marker = tr.inflight
            tr.pending.update(batch)
            tr.removed.update(gone)
            if marker is not None and tr.candidate is None:
                tr.candidate = marker
            tr.inflight = None

    # ── restoring ───────────────────────────────────────────────────────────────────────
    def read(self, keys: list[PartitionKey]) -> dict[PartitionKey, Restored]:
        """The snapshot of each partition in `keys`, read to its end. Raises when it cannot be
        read completely (the broker away, a transaction still open): never partial state."""
        out = {k: Restored() for k in keys}
        consumer = make_consumer(
            self.bootstrap,
            f"{self.group}-restore-{uuid.uuid4().hex[:8]}",
            **{
                **self.client_conf,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                "fetch.max.bytes": 64 * 1024 * 1024,
            },
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if meta is None or meta.error is not None:
                for r in out.values():
                    r.error = f"no state topic {self.topic}"
                return out
            ranges: dict[PartitionKey, tuple[int, int]] = {}
            for t, p in keys:
                if p not in meta.partitions:
                    out[(t, p)].error = f"state topic {self.topic} has no partition {p}"
                    continue
                lo, hi = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                ranges[(self.topic, p)] = (lo, hi)
            latest, counts = self._read_latest(consumer, ranges)
        finally:
            consumer.close()
        for (_t, p), r in out.items():
            if r.error is None:
                r.records = counts.get(p, 0)
                self._decode(latest.get(p, {}), r)
        return out

    def _read_latest(
        self, consumer: Consumer, ranges: dict[PartitionKey, tuple[int, int]]
    ) -> tuple[dict[int, dict[bytes, bytes | None]], dict[int, int]]:
        latest: dict[int, dict[bytes, bytes | None]] = {}
        counts: dict[int, int] = {}
        incomplete: list[str] = []
        for m in read_ranges(consumer, ranges, self.timeout_s, incomplete, strict=True):
            p = m.partition() or 0
            latest.setdefault(p, {})[m.key() or b""] = m.value()
            counts[p] = counts.get(p, 0) + 1
        if incomplete:
            raise TimeoutError(f"state snapshot not read to its end: {incomplete}")
        return latest, counts

    def _decode(self, latest: dict[bytes, bytes | None], r: Restored) -> None:
        raw = latest.get(MARKER)
        try:
            r.marker = Marker.decode(raw) if raw is not None else None
        except SnapshotError as exc:
            r.error = str(exc)
            return
        want = r.marker.gen.encode() if r.marker else b""
        for k, v in latest.items():
            if not k.startswith(DEVICE) or v is None:
                continue
            d = k[len(DEVICE) :].decode(errors="replace")
            if len(v) < _PREFIX.size:
                r.error = f"device record of {d} too short"
                return
            gen, off = _PREFIX.unpack_from(v)
            if gen.rstrip(b"\0") == want:
                r.devices[d] = (off, v[_PREFIX.size :])
            else:
                r.stale.add(d)

    def why_not(self, r: Restored, committed: int, low: int) -> str | None:
        """Why a partition's snapshot cannot be used (None: it can)."""
        if r.error is not None:
            return r.error
        m = r.marker
        if m is None:
            return "no snapshot"
        if committed < 0:
            return "no committed offset"
        if m.group != self.group:
            return f"snapshot of consumer group {m.group}"
        if m.feature_set != self.feature_set:
            return f"snapshot of feature set {m.feature_set}, serving {self.feature_set}"
        if m.offset > committed:
            return f"snapshot at offset {m.offset}, past the committed offset {committed}"
        if m.offset < low:
            return f"snapshot at offset {m.offset}, before the input's retention ({low})"
        return None


def new_generation() -> str:
    return uuid.uuid4().hex[:16]


def _now_ms() -> int:
    return int(time.time() * 1000)
