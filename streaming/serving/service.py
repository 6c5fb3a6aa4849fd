"""`edaml serve`: the thin Kafka loop around the scoring core.

consume a micro-batch → parse and check event times (refused records to the DLQ) →
`score_batch` → produce scored events and alerts → commit. The seams live next door:
the checkpoint and its transaction (`transaction`), partition state and its recovery
(`partitions`), dead letters (`dead_letter`), event-time policy (`event_time`), model slots
and swaps (`models`), health (`health`), poison isolation (`bisect`), client logs (`logs`).
Outputs are stamped with processing time (the broker never refuses them); event time travels
in the payload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from features.contract import ContractError, encode
from features.contract.columns import decode_readings
from features.contract.readings import SensorReading
from streaming.kafka import make_consumer
from streaming.serving.bisect import Bisector
from streaming.serving.breaker import STATE_CODES
from streaming.serving.config import FeatureSource, ServeConfig, default_instance_id, feature_source
from streaming.serving.dead_letter import Refused, dlq_headers
from streaming.serving.device_state import PartitionKey
from streaming.serving.health import Health
from streaming.serving.logs import ConnectionState
from streaming.serving.models import apply_swaps, make_slots
from streaming.serving.ops import OpsServer, ScorerMetrics
from streaming.serving.outputs import encode_scored_columns, encode_scored_many
from streaming.serving.partitions import PartitionStates
from streaming.serving.scoring import (
    ReadingColumns,
    ScorerState,
    collect_reports,
    columns_of,
    score_columns,
)
from streaming.serving.transaction import Checkpoint, Fenced, caused_by_data, is_fenced
from streaming.serving.watcher import ModelWatcher, Swap

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 1.0


class ConsumerFailed(RuntimeError):
    """The group consumer hit a fatal error: it is replaced by a new one."""


class ScorerService:
    def __init__(
        self,
        cfg: ServeConfig,
        *,
        features: FeatureSource | None = None,
        watcher: ModelWatcher | None = None,
    ) -> None:
        self.cfg = cfg
        self.spec = cfg.dataset
        self.contract = cfg.dataset.contract
        self.make_features, self.fs_version, self.fs_names = features or feature_source(
            "online", cfg.dataset
        )
        self.instance_id = cfg.instance_id or default_instance_id()
        self.metrics = ScorerMetrics()
        self.slots = make_slots(cfg)
        self.connection = ConnectionState()
        self.parts = PartitionStates(cfg, self.make_features, self.connection.client_config())
        self.features = self.parts.features
        self.state = ScorerState(self.features, self.fs_version, shadow_enabled=cfg.shadow)
        self.health = Health(
            stuck_after_s=cfg.stuck_after_s, max_batch_failures=cfg.max_batch_failures
        )
        self.bisect = Bisector(cfg.batch_size)
        self.watcher = watcher or ModelWatcher(
            cfg.served_models,
            feature_set_version=self.fs_version,
            feature_names=self.fs_names,
            shadow=cfg.shadow,
            poll_interval_s=cfg.alias_poll_s,
            bootstrap=cfg.bootstrap,
            lifecycle_topic=cfg.topics.model_lifecycle,
            kafka_conf=self.connection.client_config(),
        )
        self._running = threading.Event()
        self._stopped = threading.Event()
        self._rebalanced = False
        self._last_housekeeping = time.monotonic()
        self._last_report = time.monotonic()
        self.fenced = False
        self.processed = 0
        self.consumer: Consumer | None = None
        self.txn: Checkpoint | None = None
        self.ops: OpsServer | None = None
        # (model, role, version, trigger, seconds from noticed to serving)
        self.swap_log: list[tuple[str, str, str, str, float]] = []

    @property
    def _assignment(self) -> list[TopicPartition]:
        return self.parts.assignment

    @property
    def rebuilds(self) -> list[Any]:
        return self.parts.rebuilds

    # ── public ──────────────────────────────────────────────────────────────────────────
    def stop(self, *, hard_exit_after_s: float | None = None) -> None:
        """Ask the loop to stop. `hard_exit_after_s`: end the process after that long if the
        loop has not finished by then (a broker that does not answer must not hold a pod
        past its grace period)."""
        self._running.clear()
        if hard_exit_after_s is None:
            return

        def watchdog() -> None:
            if not self._stopped.wait(hard_exit_after_s):
                log.error("did not stop within %.0fs; exiting now", hard_exit_after_s)
                logging.shutdown()
                os._exit(1)

        threading.Thread(target=watchdog, name="stop-watchdog", daemon=True).start()

    def run(self) -> None:
        cfg = self.cfg
        self._running.set()
        if cfg.metrics_port is not None:
            self.ops = OpsServer(
                self.metrics,
                host=cfg.metrics_host,
                port=cfg.metrics_port,
                status=self.status,
                not_ready=lambda: self.health.not_ready_reason(time.monotonic()),
                not_alive=lambda: self.health.not_alive_reason(time.monotonic()),
            )
            self.ops.start()
        try:
            self.watcher.start()
            self._wait_initial_models()
            self._apply_swaps()
            client = self.connection.client_config()
            if self._running.is_set():
                self.txn = Checkpoint(cfg, self.instance_id, client)
                self._new_consumer()
                log.info(
                    "scorer %s serving %s (%s) in %s mode",
                    self.instance_id,
                    self.spec.name,
                    ", ".join(cfg.served_models),
                    cfg.mode,
                )
            while self._running.is_set():
                try:
                    self._step()
                except Fenced as exc:
                    if not self.txn or not self.txn.outlived_timeout(time.monotonic()):
                        raise
                    self._after_timeout_abort(exc)
        except Fenced as exc:
            self.fenced = True
            log.error(
                "fenced: another instance took over transactional id %s (%s); stopping",
                self.txn.transactional_id if self.txn else "?",
                exc,
            )
        finally:
            self._close()

    def _new_consumer(self) -> None:
        """(Re)create the group consumer. A consumer that hit a fatal error (e.g. "static
        consumer fenced" after the group coordinator moved) cannot be used again."""
        cfg = self.cfg
        if self.consumer is not None:
            log.warning("recreating the consumer after a fatal error")
            self.parts.lost()
            self.health.assigned = False
            with contextlib.suppress(Exception):
                self.consumer.close()
        self.consumer = make_consumer(
            cfg.bootstrap,
            cfg.group,
            **{
                "client.id": f"edaml-scorer-{self.instance_id}",
                # Static membership: a restarted instance (same id) takes its partitions
                # back at once instead of after the session timeout.
                "group.instance.id": f"edaml-scorer-{self.instance_id}",
                **self.connection.client_config(),
                **cfg.consumer_overrides,
            },
        )
        self.consumer.subscribe(
            [cfg.topics.sensor_readings],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _consume(self) -> list[Message]:
        assert self.consumer is not None
        try:
            return self.consumer.consume(self.bisect.limit, timeout=0.05)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.fatal():
                raise ConsumerFailed(err.str()) from exc
            raise

    def _wait_initial_models(self) -> None:
        """Serve from the first record with the current champions, not with fallback rules
        while they load (bounded: an unreachable registry must not stop the stream)."""
        deadline = time.monotonic() + self.cfg.initial_load_timeout_s
        while self._running.is_set() and not self.watcher.wait_initial(0.2):
            self.health.loop_tick(time.monotonic())
            if time.monotonic() > deadline:
                log.warning(
                    "models not loaded after %.0fs; starting anyway",
                    self.cfg.initial_load_timeout_s,
                )
                return

    # ── the loop ────────────────────────────────────────────────────────────────────────
    def _step(self) -> None:
        assert self.consumer is not None and self.txn is not None
        now = time.monotonic()
        self.health.loop_tick(now)
        if not self.txn.open:
            self._apply_swaps()
        self._rebalanced = False
        bisecting = self.bisect.limit < self.cfg.batch_size
        try:
            msgs = self._consume()
            if self._rebalanced and msgs:
                # A rebalance ran inside this call: records fetched before it may lie past the
                # committed offsets of an aborted transaction. Read again from the commit.
                msgs = []
                self.parts.seek_committed(self.consumer, self._assignment)
            if msgs:
                self.txn.begin()
                self._process(msgs)
            self._maybe_control()
            # while bisecting, a transaction holds one batch: its failure points at its records
            if self.txn.due(time.monotonic()) or (bisecting and self.txn.open):
                self._commit()
        except Fenced:
            raise
        except ConsumerFailed as exc:
            self._on_failure(exc)
            self._new_consumer()
        except Exception as exc:  # never crash on one batch: abort it and retry from the commit
            if is_fenced(exc):
                raise Fenced(str(exc)) from exc
            self._on_failure(exc)
        if now - self._last_housekeeping >= HOUSEKEEPING_S:
            self._housekeeping(now)

    def _process(self, msgs: list[Message]) -> None:
        assert self.txn is not None
        values: list[bytes] = []
        sources: list[Message] = []
        keys: list[PartitionKey] = []
        txn = self.txn
        append_ts = txn.input_ts.append
        n_in = 0
        take_poison = self.bisect.take_poison
        rid = ("", -1, -1)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise ConsumerFailed(err.str())
                self.connection.error_cb(err)  # logged once per change of state
                continue
            n_in += 1
            append_ts(m.timestamp()[1])
            key = (m.topic() or "", m.partition() or 0)
            rid = (key[0], key[1], m.offset() or 0)
            poison = take_poison(rid)
            if poison is not None:
                self._dlq(m, "poison", poison)
                continue
            raw = m.value()
            if raw is None:
                self._dlq(
                    m, "parse", ContractError("$", "null value (a tombstone is not a reading)")
                )
                continue
            values.append(raw)
            sources.append(m)
            keys.append(key)
        self.metrics.events_in.inc(n_in)
        txn.records += n_in
        if txn.records == 1 and n_in == 1:
            txn.only = rid
        if not values:
            return
        batch, values, sources, keys = self._decode(values, sources, keys)
        self.parts.dirty.update(keys)
        if len(batch):
            batch, sources, keys = self._admit(batch, sources, keys)
        if not len(batch):
            return
        t0 = time.perf_counter()
        out = score_columns(self.slots, batch, self.state, partitions=keys)
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        self.metrics.fallback.inc(out.fallback_rows)
        self._emit(out, batch, sources)
        self.processed += len(batch)

    def _decode(
        self, values: list[bytes], sources: list[Message], keys: list[PartitionKey]
    ) -> tuple[ReadingColumns, list[bytes], list[Message], list[PartitionKey]]:
        """The dataset's contract over the batch, in bulk (`decode_readings`: the records it
        refuses go to the DLQ with the contract's error). Should the bulk decoder itself fail,
        each record is parsed on its own, so one bad record never stops the service."""
        parse = self.contract.parse_reading
        try:
            dec, errors = decode_readings(values, self.contract)
        except Exception:
            log.exception("bulk decoding failed; parsing the batch record by record")
            return self._decode_each(values, sources, keys)
        if errors:
            for i, exc in errors:
                self._dlq(sources[i], "parse", exc)
            idx = dec.index.tolist()
            values = [values[i] for i in idx]
            sources = [sources[i] for i in idx]
            keys = [keys[i] for i in idx]
        kept = values
        batch = ReadingColumns(
            dec.event_id, dec.device_id, dec.ts_ms, dec.sensors, lambda i: parse(kept[i])
        )
        return batch, values, sources, keys

    def _decode_each(
        self, values: list[bytes], sources: list[Message], keys: list[PartitionKey]
    ) -> tuple[ReadingColumns, list[bytes], list[Message], list[PartitionKey]]:
        readings: list[SensorReading] = []
        kept: tuple[list[bytes], list[Message], list[PartitionKey]] = ([], [], [])
        for v, m, k in zip(values, sources, keys, strict=True):
            try:
                readings.append(self.contract.parse_reading(v))
            except Exception as exc:  # ContractError, or a parser bug
                self._dlq(m, "parse", exc)
                continue
            for col, x in zip(kept, (v, m, k), strict=True):
                col.append(x)  # type: ignore[attr-defined]
        return columns_of(readings, self.contract.sensors), *kept

    def _admit(
        self, batch: ReadingColumns, sources: list[Message], keys: list[PartitionKey]
    ) -> tuple[ReadingColumns, list[Message], list[PartitionKey]]:
        """Readings that pass the event-time policy and the device cap (the others to the DLQ)."""
        refused = {
            r.index: Refused("event-time", "ts", r.reason)
            for r in self.parts.event_time.check(batch.ts_ms, keys, int(time.time() * 1000))
        }
        for i in self.parts.over_cap(batch.device_id.to_pylist(), keys):
            cap = self.cfg.max_devices_per_partition
            refused.setdefault(
                i,
                Refused(
                    "device-cap",
                    "device_id",
                    f"partition {keys[i][1]} already holds the maximum of {cap} devices",
                ),
            )
        if not refused:
            return batch, sources, keys
        for i, exc in sorted(refused.items()):
            self._dlq(sources[i], exc.stage, exc)
        keep = [i for i in range(len(batch)) if i not in refused]
        rows = np.asarray(keep, dtype=np.int64)
        return batch.take(rows), [sources[i] for i in keep], [keys[i] for i in keep]

    def _emit(self, out: Any, batch: ReadingColumns, sources: list[Message]) -> None:
        """Produce the scored events and alerts of a batch (stamped with processing time)."""
        assert self.txn is not None
        topics = self.cfg.topics
        produce = self.txn.producer.produce
        scored_topic = topics.scored
        if out.columns is not None:  # the common case: encoded column by column
            sc = out.columns
            encoded = encode_scored_columns(sc)
            for data, dev in zip(encoded, sc.device_id.to_pylist(), strict=True):
                try:
                    produce(scored_topic, data, dev)
                except BufferError:
                    self._produce(scored_topic, dev, data)
            n_scored = len(sc)
        else:
            n_scored = len(out.scored)
            by_id: dict[str, Message] | None = None
            for ev, value in zip(out.scored, encode_scored_many(out.scored), strict=True):
                if isinstance(value, Exception):  # the contract refuses the output: keep the input
                    if by_id is None:
                        by_id = dict(zip(batch.event_id.to_pylist(), sources, strict=True))
                    self._dlq(by_id[ev.reading_event_id], "encode", value)
                    continue
                try:
                    produce(scored_topic, value, ev.device_id)
                except BufferError:
                    self._produce(scored_topic, ev.device_id, value)
        for al in out.alerts:
            try:
                alert_value = encode(al)
            except Exception:
                log.exception("alert for %s could not be encoded", al.reading_event_id)
                continue
            self._produce(topics.alerts, al.device_id, alert_value)
            self.metrics.alerts.labels(al.model_name, str(al.fallback).lower()).inc()
        self.metrics.events_out.labels("scored").inc(n_scored)
        self.metrics.events_out.labels("alerts").inc(len(out.alerts))

    def _produce(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Produce one record, stamped with processing time (no event time ever becomes a
        record timestamp: the broker refuses those more than an hour ahead)."""
        assert self.txn is not None
        kwargs: dict[str, Any] = {"key": key, "value": value}
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self.txn.producer.produce(topic, **kwargs)
                return
            except BufferError:
                self.txn.producer.poll(0.05)  # local queue full: let deliveries drain

    def _produce_state(
        self, topic: str, *, key: bytes, value: bytes | None, partition: int
    ) -> None:
        """One record of the state snapshot (a tombstone when `value` is None)."""
        assert self.txn is not None
        while True:
            try:
                self.txn.producer.produce(topic, key=key, value=value, partition=partition)
                return
            except BufferError:
                self.txn.producer.poll(0.05)

    def _dlq(self, m: Message, stage: str, exc: BaseException) -> None:
        headers = dlq_headers(m, stage, exc, self.instance_id)
        self._produce(self.cfg.topics.dlq, m.key(), m.value() or b"", headers)
        self.metrics.dlq.labels(stage).inc()
        self.metrics.events_out.labels("dlq").inc()

    def _maybe_control(self) -> None:
        """Publish rejections and periodic reports (inside the open transaction)."""
        assert self.txn is not None
        pending: list[Any] = []
        while True:
            try:
                pending.append(self.watcher.rejections.get_nowait())
            except Exception:
                break
        now = time.monotonic()
        snaps = self.parts.snapshots
        if not self.txn.open and snaps is not None and snaps.has_work(now):
            self.txn.begin()  # a snapshot to write (after a re-read) with no input to carry it
        if now - self._last_report >= self.cfg.report_interval_s:
            self._last_report = now
            pending.extend(collect_reports(self.slots))
        if not pending:
            return
        self.txn.begin()
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
        assert self.consumer is not None and self.txn is not None
        input_ts = self.txn.input_ts
        positions = self.txn.positions(self.consumer, self._assignment)
        snaps = self.parts.snapshots
        if snaps is not None:  # the state, valid at these positions, in the same transaction
            t0 = time.perf_counter()
            ready = {
                (tp.topic, tp.partition): tp.offset
                for tp in positions
                if (tp.topic, tp.partition) not in self.parts.pending
            }
            snaps.write(
                self._produce_state, self.features, ready, self.parts.event_time.watermarks,
                time.monotonic(),
            )  # fmt: skip
            self.metrics.snapshot_seconds.observe(time.perf_counter() - t0)
        self.txn.commit(self.consumer, self._assignment, positions)
        if snaps is not None:
            snaps.committed()
        now = time.monotonic()
        lat = (time.time() * 1000 - np.asarray(input_ts, dtype=np.float64)) / 1000
        self.metrics.latency.observe_many(np.maximum(lat, 0.0))
        self.metrics.transactions.labels("committed").inc()
        self.parts.dirty.clear()
        self.bisect.succeeded()
        self.health.committed(now)
        self.connection.progressed()

    def _on_failure(self, exc: BaseException) -> None:
        """Abort the open transaction and go back to the committed offsets."""
        assert self.txn is not None and self.consumer is not None
        if isinstance(exc, KafkaException):
            log.warning("transaction failed: %s", exc)
        else:
            log.exception("error in the loop; aborting the open transaction", exc_info=exc)
        self.metrics.transactions.labels("aborted").inc()
        self.health.failed(f"{type(exc).__name__}: {exc}")
        if caused_by_data(exc) and not isinstance(exc, ConsumerFailed):
            self.bisect.failed(self.txn.records, self.txn.only, exc)
        self._guard(self.txn.abort)
        self._snapshot_aborted()
        self._guard(lambda: self.parts.rewind(self.consumer))

    def _after_timeout_abort(self, exc: Fenced) -> None:
        """The coordinator aborted a transaction that outlived its timeout (epoch bumped): a
        new producer, and the records again from the committed offsets."""
        assert self.txn is not None and self.consumer is not None
        log.warning(
            "transaction outlived transaction.timeout.ms and was aborted by the coordinator "
            "(%s); recreating the producer and re-reading from the committed offsets",
            exc,
        )
        self.metrics.transactions.labels("aborted").inc()
        self.health.failed(f"transaction timed out: {exc}")
        self.txn.open = False
        self.txn.started = 0.0
        self.txn.recreate()
        self._snapshot_aborted()
        self._guard(lambda: self.parts.rewind(self.consumer))

    def _guard(self, action: Any) -> None:
        """Run a recovery step; if the broker fails it, every owned partition waits for the
        recovery retried by the loop (nothing stops the process)."""
        try:
            action()
        except Fenced:
            raise
        except Exception as exc:
            if is_fenced(exc):
                raise Fenced(str(exc)) from exc
            log.warning("recovery step failed (%s); retrying from the committed offsets", exc)
            assert self.consumer is not None
            self.parts.dirty |= {(p.topic, p.partition) for p in self._assignment}
            self.parts.pending |= self.parts.dirty
            self.parts.forget_dirty()
            with contextlib.suppress(KafkaException):
                self.consumer.pause(self._assignment)

    def _housekeeping(self, now: float) -> None:
        assert self.consumer is not None
        self._last_housekeeping = now
        self._guard(lambda: self.parts.recover(self.consumer))
        self.health.incomplete = {p for _t, p in self.parts.pending}
        evicted = self.parts.maybe_evict(now)
        if evicted:
            self.metrics.evicted.inc(evicted)
        self.metrics.devices.set(self.parts.device_count())
        self._update_lag()
        if self.txn is not None and not self.txn.open:
            self.health.idle(now)
        self.metrics.ready.set(0 if self.health.not_ready_reason(now) else 1)
        self.metrics.alive.set(0 if self.health.not_alive_reason(now) else 1)
        self.metrics.batch_limit.set(self.bisect.limit)

    # ── rebalance ───────────────────────────────────────────────────────────────────────
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        self.parts.assigned(consumer, partitions)
        self.health.assigned = True
        self.health.incomplete = {p for _t, p in self.parts.pending}
        log.info("assigned %s", [p.partition for p in partitions])

    def _abort_on_rebalance(self) -> None:
        self._rebalanced = True
        if self.txn is not None and self.txn.open:
            try:
                self.txn.abort()
            except Fenced:
                self._running.clear()  # raised again by the next commit attempt, if any
                self.fenced = True
        self._snapshot_aborted()

    def _snapshot_aborted(self) -> None:
        if self.parts.snapshots is not None:
            self.parts.snapshots.aborted()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._abort_on_rebalance()
        # also at-least-once: records since the last commit come again after the rebalance
        self.parts.revoked()
        self.health.assigned = False
        log.info("revoked %s", [p.partition for p in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._abort_on_rebalance()
        self.parts.lost()
        self.health.assigned = False
        log.warning("lost %s: their state is dropped", [p.partition for p in partitions])

    # ── models ──────────────────────────────────────────────────────────────────────────
    def _apply_swaps(self) -> None:
        apply_swaps(self.watcher, self.slots, self._swapped)

    def _swapped(self, swap: Swap, delay: float) -> None:
        v = swap.model.version
        self.swap_log.append((swap.name, swap.role, v, swap.trigger, delay))
        self.metrics.swaps.labels(swap.name).inc()
        self.metrics.model_version.labels(swap.name, swap.role).set(float(v) if v.isdigit() else -1)

    # ── helpers ─────────────────────────────────────────────────────────────────────────
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
        self.health.lag = lag
        self.metrics.lag.set(lag)
        for name, slot in self.slots.items():
            self.metrics.breaker_state.labels(name).set(STATE_CODES[slot.breaker.state])

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        rebuilds = self.parts.rebuilds
        return {
            "instance": self.instance_id,
            "mode": self.cfg.mode,
            "ready": not self.health.not_ready_reason(now),
            "health": self.health.as_dict(now),
            "processed": self.processed,
            "assignment": [p.partition for p in self._assignment],
            "devices": self.parts.device_count(),
            "evicted_devices": self.parts.evicted,
            "batch_limit": self.bisect.limit,
            "registry_error": self.watcher.registry_error,
            "restore_error": self.parts.last_error,
            "snapshots": None
            if self.parts.snapshots is None
            else {
                "topic": self.parts.snapshots.topic,
                "records_written": self.parts.snapshots.records_written,
                "bytes_written": self.parts.snapshots.bytes_written,
                "partitions_behind": self.parts.snapshots.behind(),
            },
            "rebuild": {
                "count": len(rebuilds),
                "records": sum(r.records for r in rebuilds),
                "seconds": round(sum(r.seconds for r in rebuilds), 3),
                "last": rebuilds[-1].as_dict() if rebuilds else None,
            },
            # the last recoveries: from a snapshot, or re-read (with the reason)
            "restores": [r.as_dict() for r in rebuilds[-8:]],
            "models": {
                n: {
                    "champion": s.champion.version if s.champion else None,
                    "challenger": s.challenger.version if s.challenger else None,
                    "breaker": s.breaker.state,
                    "last_error": s.breaker.last_error,
                    "shadow_breaker": s.shadow_breaker.state,
                }
                for n, s in self.slots.items()
            },
        }

    def _close(self) -> None:
        deadline = time.monotonic() + self.cfg.shutdown_timeout_s
        self.watcher.stop()
        if self.txn is not None:
            self.txn.close(min(5.0, max(0.1, deadline - time.monotonic()) / 2))
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:
                log.exception("consumer close failed")
        if self.ops is not None:
            self.ops.stop()
        self._stopped.set()
        log.info("scorer %s stopped after %d readings", self.instance_id, self.processed)
