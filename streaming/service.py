"""`edaml serve`: the thin Kafka loop around the scoring core.

consume a micro-batch → parse (bad records to the DLQ) → `score_batch` → produce scored events
and alerts → commit. Exactly-once (default): outputs and input offsets in one Kafka transaction,
committed every `commit_interval_ms` or `commit_records`; at-least-once: flush, then commit offsets.
Model swaps, drift and shadow reports and rejection events happen between/inside transactions
so every output names the version that was serving when its transaction committed.
Feature state is kept per input partition (`streaming.device_state`): on assignment, and for
the partitions an abort rewinds, it is rebuilt from the input before the committed offsets by
event time (`streaming.rebuild`) before anything is emitted; partitions kept through a
rebalance keep theirs.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from features.contract import ContractError, encode, parse_reading
from features.readings import SensorReading
from streaming.breaker import STATE_CODES
from streaming.device_state import PartitionedFeatures, PartitionKey
from streaming.kafka import consumer_config, make_consumer, make_producer
from streaming.ops import OpsServer, ScorerMetrics
from streaming.outputs import encode_scored_many
from streaming.rebuild import RebuildStats, group_by_partition, read_window
from streaming.scoring import (
    ModelSlot,
    OnlineFeaturesLike,
    ScorerState,
    collect_reports,
    score_batch,
)
from streaming.topics import Topics
from streaming.watcher import ModelWatcher

log = logging.getLogger(__name__)

Mode = Literal["exactly-once", "at-least-once"]
ERROR_HEADER_PREFIX = "edaml.error."
MAX_OUTPUT_BYTES = 4 * 1024 * 1024 + 64 * 1024  # the DLQ carries inputs up to the topic's limit


@dataclass(kw_only=True)
class ServeConfig:
    bootstrap: str
    topics: Topics
    group: str = "edaml-scorer"
    models: tuple[str, ...] = ("iot-anomaly", "iot-failure-risk")
    mode: Mode = "exactly-once"
    shadow: bool = True
    instance_id: str | None = None
    batch_size: int = 2000
    commit_interval_ms: int = 200
    commit_records: int = 20_000
    alias_poll_s: float = 3.0
    initial_load_timeout_s: float = 60.0
    report_interval_s: float = 30.0
    #: event time of input re-read per partition to rebuild feature state (None: the feature
    #: set's `rebuild_horizon_ms`, which makes the rebuilt features exact; less is faster)
    rebuild_horizon_ms: int | None = None
    rebuild_timeout_s: float = 300.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 8000
    breaker_failures: int = 3
    breaker_open_s: float = 5.0
    model_timeout_s: float = 1.0
    transaction_timeout_ms: int = 30_000
    consumer_overrides: dict[str, Any] = field(default_factory=dict)


FeatureSource = tuple[Callable[[], OnlineFeaturesLike], str, tuple[str, ...]]


def feature_source(kind: str = "online") -> FeatureSource:
    """`online`: the platform's streaming features (features.online); `raw`: the latest sensor
    values only (feature set `raw/v1`), for models that need no history."""
    if kind == "raw":
        from streaming.raw_features import RAW_FEATURE_NAMES, RAW_FEATURE_SET_VERSION, RawFeatures

        return RawFeatures, RAW_FEATURE_SET_VERSION, RAW_FEATURE_NAMES
    from features.definitions import FEATURE_SET
    from features.online import OnlineFeatures

    return OnlineFeatures, FEATURE_SET.version, tuple(FEATURE_SET.names)


class ScorerService:
    def __init__(
        self,
        cfg: ServeConfig,
        *,
        features: FeatureSource | None = None,
        watcher: ModelWatcher | None = None,
    ) -> None:
        self.cfg = cfg
        self.make_features, self.fs_version, self.fs_names = features or feature_source()
        self.instance_id = cfg.instance_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.metrics = ScorerMetrics()
        self.slots = {n: ModelSlot(n) for n in cfg.models}
        for s in self.slots.values():
            s.breaker.failure_threshold = cfg.breaker_failures
            s.breaker.open_seconds = cfg.breaker_open_s
            s.timeout_s = cfg.model_timeout_s
        self.features = PartitionedFeatures(self.make_features)
        self.state = ScorerState(self.features, self.fs_version, shadow_enabled=cfg.shadow)
        # partitions whose state took records not yet committed (dropped if they are rewound)
        self._dirty: set[PartitionKey] = set()
        self.rebuilds: list[RebuildStats] = []
        self.watcher = watcher or ModelWatcher(
            cfg.models,
            feature_set_version=self.fs_version,
            feature_names=self.fs_names,
            shadow=cfg.shadow,
            poll_interval_s=cfg.alias_poll_s,
            bootstrap=cfg.bootstrap,
            lifecycle_topic=cfg.topics.model_lifecycle,
        )
        self._running = threading.Event()
        self._stopped = threading.Event()
        self._txn_open = False
        self._txn_records = 0
        self._txn_started = 0.0
        self._txn_ts: list[int] = []
        self._assignment: list[TopicPartition] = []
        self._ready = False
        self._rebalanced = False
        self._last_loop = time.monotonic()
        self._last_report = time.monotonic()
        self.processed = 0
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.ops: OpsServer | None = None
        # (model, role, version, trigger, seconds from noticed to serving)
        self.swap_log: list[tuple[str, str, str, str, float]] = []

    # ── public ──────────────────────────────────────────────────────────────────────────
    def stop(self) -> None:
        self._running.clear()

    def run(self) -> None:
        cfg = self.cfg
        self._running.set()
        if cfg.metrics_port is not None:
            self.ops = OpsServer(
                self.metrics,
                host=cfg.metrics_host,
                port=cfg.metrics_port,
                status=self.status,
                ready=lambda: self._ready,
                alive=lambda: time.monotonic() - self._last_loop < 30,
            )
            self.ops.start()
        self.watcher.start()
        # Serve from the first record with the current champions, not with fallback rules
        # while they load (bounded: an unreachable registry must not stop the stream).
        if not self.watcher.wait_initial(cfg.initial_load_timeout_s):
            log.warning(
                "models not loaded after %.0fs; starting anyway", cfg.initial_load_timeout_s
            )
        self._apply_swaps()
        self.producer = self._new_producer()
        over: dict[str, Any] = {"client.id": f"edaml-scorer-{self.instance_id}"}
        if cfg.instance_id:
            # Static membership: a restarted instance (same id) takes its partitions back at
            # once instead of waiting for the dead member's session to time out (45 s).
            over["group.instance.id"] = f"edaml-scorer-{cfg.instance_id}"
        self.consumer = make_consumer(
            cfg.bootstrap, cfg.group, **{**over, **cfg.consumer_overrides}
        )
        self.consumer.subscribe(
            [cfg.topics.sensor_readings],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("scorer %s serving %s in %s mode", self.instance_id, cfg.models, cfg.mode)
        try:
            while self._running.is_set():
                self._step()
            if self._txn_open:
                self._commit()  # finish the open transaction on a clean stop
        finally:
            self._close()

    # ── the loop ────────────────────────────────────────────────────────────────────────
    def _step(self) -> None:
        assert self.consumer is not None
        self._last_loop = time.monotonic()
        if not self._txn_open:
            self._apply_swaps()
        self._rebalanced = False
        msgs = self.consumer.consume(self.cfg.batch_size, timeout=0.05)
        if self._rebalanced and msgs:
            # A rebalance ran inside this call: some records may have been fetched before it
            # (from positions past the committed offsets of an aborted transaction). The
            # rebalance left every owned partition's state at its committed offset, so drop
            # the batch and read again from there: nothing is lost, nothing scored twice.
            msgs = []
            self._seek_committed()
        try:
            if msgs:
                self._begin()
                self._process(msgs)
            self._maybe_control()
            if self._txn_open and (
                self._txn_records >= self.cfg.commit_records
                or (time.monotonic() - self._txn_started) * 1000 >= self.cfg.commit_interval_ms
            ):
                self._commit()
        except KafkaException as exc:
            self._on_kafka_error(exc)
        except Exception as exc:  # never crash on one batch: abort it and retry from the commit
            log.exception("unexpected error in the loop; aborting the open transaction")
            self._on_kafka_error(KafkaException(KafkaError(KafkaError._FAIL, repr(exc))))

    def _begin(self) -> None:
        if self._txn_open:
            return
        assert self.producer is not None
        if self.cfg.mode == "exactly-once":
            self.producer.begin_transaction()
        self._txn_open = True
        self._txn_records = 0
        self._txn_ts = []
        self._txn_started = time.monotonic()

    def _process(self, msgs: list[Message]) -> None:
        readings: list[SensorReading] = []
        sources: list[Message] = []
        keys: list[PartitionKey] = []
        add_key = keys.append
        append_ts = self._txn_ts.append
        n_in = 0
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("consumer error: %s", err)
                continue
            n_in += 1
            append_ts(m.timestamp()[1])
            try:
                raw = m.value()
                if raw is None:
                    raise ContractError("$", "null value (a tombstone is not a reading)")
                readings.append(parse_reading(raw))
                sources.append(m)
                add_key((m.topic() or "", m.partition() or 0))
            except Exception as exc:  # ContractError, or a parser bug: neither stops the service
                self._dlq(m, "parse", exc)
        self._dirty.update(keys)
        self.metrics.events_in.inc(n_in)
        self._txn_records += n_in
        if not readings:
            return
        t0 = time.perf_counter()
        try:
            out = score_batch(self.slots, readings, self.state, partitions=keys)
        except Exception as exc:
            # A bug in the core must neither stop the service nor loop on the same batch.
            log.exception("scoring core failed on a batch of %d", len(readings))
            for m in sources:
                self._dlq(m, "score", exc)
            return
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        self.metrics.fallback.inc(out.fallback_rows)
        topics = self.cfg.topics
        produce = self.producer.produce if self.producer is not None else None
        scored_topic = topics.scored
        for ev, value in zip(out.scored, encode_scored_many(out.scored), strict=True):
            if isinstance(value, Exception):  # the contract refuses the output: keep the input
                by_id = {r.event_id: m for r, m in zip(readings, sources, strict=True)}
                self._dlq(by_id[ev.reading_event_id], "encode", value)
                continue
            try:
                assert produce is not None
                produce(scored_topic, value, ev.device_id, timestamp=ev.ts_ms)
            except BufferError:
                self._produce(scored_topic, ev.device_id, value, ev.ts_ms)
        for al in out.alerts:
            try:
                alert_value = encode(al)
            except Exception:
                log.exception("alert for %s could not be encoded", al.reading_event_id)
                continue
            self._produce(topics.alerts, al.device_id, alert_value, al.ts_ms)
            self.metrics.alerts.labels(al.model_name, str(al.fallback).lower()).inc()
        self.metrics.events_out.labels("scored").inc(len(out.scored))
        self.metrics.events_out.labels("alerts").inc(len(out.alerts))
        self.processed += len(readings)

    def _produce(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        ts_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        assert self.producer is not None
        kwargs: dict[str, Any] = {"key": key, "value": value}
        if ts_ms is not None and ts_ms > 0:
            kwargs["timestamp"] = ts_ms
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self.producer.produce(topic, **kwargs)
                return
            except BufferError:
                self.producer.poll(0.05)  # local queue full: let deliveries drain

    def _dlq(self, m: Message, stage: str, exc: BaseException) -> None:
        field_ = getattr(exc, "field", "")
        reason = getattr(exc, "reason", str(exc))
        h = ERROR_HEADER_PREFIX
        headers = [
            (h + "topic", (m.topic() or "").encode()),
            (h + "partition", str(m.partition()).encode()),
            (h + "offset", str(m.offset()).encode()),
            (h + "stage", stage.encode()),
            (h + "exception.class", type(exc).__name__.encode()),
            (h + "exception.message", str(exc)[:2000].encode("utf-8", "replace")),
            (h + "field", str(field_).encode("utf-8", "replace")),
            (h + "reason", str(reason)[:2000].encode("utf-8", "replace")),
            (h + "instance", self.instance_id.encode()),
        ]
        original: Any = m.headers() or []
        for k, v in original:
            if not k.startswith(h) and isinstance(v, bytes):
                headers.append((k, v))
        self._produce(self.cfg.topics.dlq, m.key(), m.value() or b"", None, headers)
        self.metrics.dlq.labels(stage).inc()
        self.metrics.events_out.labels("dlq").inc()

    def _maybe_control(self) -> None:
        """Publish rejections and periodic reports (inside the open transaction)."""
        pending: list[Any] = []
        while True:
            try:
                pending.append(self.watcher.rejections.get_nowait())
            except Exception:
                break
        now = time.monotonic()
        if now - self._last_report >= self.cfg.report_interval_s:
            self._last_report = now
            pending.extend(collect_reports(self.slots))
        if not pending:
            return
        self._begin()
        for ev in pending:
            topic = (
                self.cfg.topics.model_lifecycle
                if type(ev).__name__ == "ModelLifecycleEvent"
                else self.cfg.topics.model_monitoring
            )
            self._produce(topic, ev.model_name, encode(ev))
            if topic == self.cfg.topics.model_lifecycle:
                self.metrics.rejections.labels(ev.model_name).inc()

    def _commit(self) -> None:
        assert self.producer is not None and self.consumer is not None
        positions = (
            [tp for tp in self.consumer.position(self._assignment) if tp.offset >= 0]
            if self._assignment
            else []
        )
        if self.cfg.mode == "exactly-once":
            if positions:
                self.producer.send_offsets_to_transaction(
                    positions, self.consumer.consumer_group_metadata(), 30
                )
            self.producer.commit_transaction(30)
        else:
            remaining = self.producer.flush(30)
            if remaining:
                raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "flush timed out"))
            if positions:
                self.consumer.commit(offsets=positions, asynchronous=False)
        now_ms = time.time() * 1000
        lat = (now_ms - np.asarray(self._txn_ts, dtype=np.float64)) / 1000
        self.metrics.latency.observe_many(np.maximum(lat, 0.0))
        self.metrics.transactions.labels("committed").inc()
        self._txn_open = False
        self._txn_ts = []
        self._dirty.clear()
        self._update_lag()

    def _on_kafka_error(self, exc: KafkaException) -> None:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        log.warning("transaction failed: %s", err or exc)
        self.metrics.transactions.labels("aborted").inc()
        assert self.producer is not None
        if self.cfg.mode == "exactly-once":
            fatal = err is not None and err.fatal()
            if not fatal:
                try:
                    self.producer.abort_transaction(30)
                except KafkaException:
                    fatal = True
            if fatal:
                # fenced, fatal, or a timed-out commit (no KIP-890 in librdkafka): start over
                log.warning("recreating the transactional producer")
                self.producer = self._new_producer()
        self._txn_open = False
        self._rewind()

    def _rewind(self) -> None:
        """Back to the committed offsets, with the state of the partitions that had moved past
        them rebuilt up to them."""
        self._forget_dirty()
        committed = self._seek_committed()
        if committed:
            self._rebuild(committed)

    def _seek_committed(self) -> list[TopicPartition]:
        """Seek every owned partition to its committed offset; return those offsets."""
        assert self.consumer is not None
        if not self._assignment:
            return []
        committed: list[TopicPartition] = self.consumer.committed(self._assignment, timeout=30)
        for tp in committed:
            target = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, target))
        return committed

    def _forget_dirty(self) -> None:
        """Drop the state of partitions that took records of an aborted transaction."""
        self.features.drop(self._dirty)
        self._dirty.clear()

    # ── rebalance ───────────────────────────────────────────────────────────────────────
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        self._assignment = list(partitions)
        self._forget_dirty()
        # partitions kept through the rebalance keep their state; revoked ones are forgotten
        self.features.keep_only((p.topic, p.partition) for p in partitions)
        committed = consumer.committed(partitions, timeout=30) if partitions else []
        self._rebuild(committed)
        self._ready = True
        log.info("assigned %s", [p.partition for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        if self._txn_open and self.producer is not None:
            if self.cfg.mode == "exactly-once":
                try:
                    self.producer.abort_transaction(30)
                except KafkaException:
                    self.producer = self._new_producer()
            self._txn_open = False
        # also at-least-once: records since the last commit come again after the rebalance
        self._forget_dirty()
        self._assignment = []
        self._ready = False
        log.info("revoked %s", [p.partition for p in partitions])

    def _rebuild(self, committed: list[TopicPartition]) -> None:
        """Rebuild the state of the partitions in `committed` that have none, from the input
        before their committed offsets (see streaming.rebuild)."""
        have = self.features.partitions
        todo = [tp for tp in committed if (tp.topic, tp.partition) not in have]
        if not todo:
            return
        for tp in todo:  # a fresh, empty state even when there is nothing to re-read
            self.features.reset((tp.topic, tp.partition))
        horizon = self.cfg.rebuild_horizon_ms
        if horizon is None:
            horizon = self.features.rebuild_horizon_ms
        stats = RebuildStats()
        conf = consumer_config(self.cfg.bootstrap, f"{self.cfg.group}-rebuild")
        items = read_window(conf, todo, horizon, timeout_s=self.cfg.rebuild_timeout_s, stats=stats)
        group_by_partition(items, self.features.feed)
        self.rebuilds.append(stats)
        log.info(
            "rebuilt feature state of partitions %s from %d records (%d valid, %d skipped) "
            "in %.2fs",
            sorted(tp.partition for tp in todo),
            stats.records,
            stats.readings,
            stats.skipped,
            stats.seconds,
        )

    # ── models ──────────────────────────────────────────────────────────────────────────
    def _apply_swaps(self) -> None:
        while True:
            try:
                swap = self.watcher.swaps.get_nowait()
            except Exception:
                return
            slot = self.slots[swap.name]
            if swap.role == "champion":
                slot.set_champion(swap.model)
                if slot.challenger is not None and slot.challenger.version == swap.model.version:
                    slot.set_challenger(None)
            elif slot.champion is None or slot.champion.version != swap.model.version:
                slot.set_challenger(swap.model)
            delay = time.monotonic() - swap.seen_at
            self.swap_log.append((swap.name, swap.role, swap.model.version, swap.trigger, delay))
            self.metrics.swaps.labels(swap.name).inc()
            self.metrics.model_version.labels(swap.name, swap.role).set(
                float(swap.model.version) if swap.model.version.isdigit() else -1
            )
            log.info(
                "now serving %s %s version %s (%s, %.2fs after noticed)",
                swap.name,
                swap.role,
                swap.model.version,
                swap.trigger,
                delay,
            )

    # ── helpers ─────────────────────────────────────────────────────────────────────────
    def _new_producer(self) -> Producer:
        cfg = self.cfg
        over: dict[str, Any] = {"message.max.bytes": MAX_OUTPUT_BYTES}
        if cfg.mode == "exactly-once":
            over["transactional.id"] = f"edaml-scorer-{cfg.group}-{self.instance_id}"
            over["transaction.timeout.ms"] = cfg.transaction_timeout_ms
        p = make_producer(cfg.bootstrap, **over)
        if cfg.mode == "exactly-once":
            p.init_transactions(60)
        return p

    def _update_lag(self) -> None:
        assert self.consumer is not None
        lag = 0
        try:
            for tp in self.consumer.position(self._assignment):
                _lo, hi = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and hi >= 0:
                    lag += max(0, hi - tp.offset)
        except KafkaException:
            return
        self.metrics.lag.set(lag)
        for name, slot in self.slots.items():
            self.metrics.breaker_state.labels(name).set(STATE_CODES[slot.breaker.state])

    def status(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "mode": self.cfg.mode,
            "ready": self._ready,
            "processed": self.processed,
            "assignment": [p.partition for p in self._assignment],
            "rebuild": {
                "count": len(self.rebuilds),
                "records": sum(r.records for r in self.rebuilds),
                "seconds": round(sum(r.seconds for r in self.rebuilds), 3),
                "last": self.rebuilds[-1].as_dict() if self.rebuilds else None,
            },
            "models": {
                n: {
                    "champion": s.champion.version if s.champion else None,
                    "challenger": s.challenger.version if s.challenger else None,
                    "breaker": s.breaker.state,
                    "last_error": s.breaker.last_error,
                }
                for n, s in self.slots.items()
            },
        }

    def _close(self) -> None:
        self.watcher.stop()
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:
                log.exception("consumer close failed")
        if self.producer is not None:
            self.producer.flush(10)
        if self.ops is not None:
            self.ops.stop()
        self._stopped.set()
        log.info("scorer %s stopped after %d readings", self.instance_id, self.processed)
