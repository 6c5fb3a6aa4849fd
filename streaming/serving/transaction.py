"""The checkpoint: outputs and input offsets in one Kafka transaction (exactly-once), or
flushed outputs then committed offsets (at-least-once).

A fenced producer means another instance with the same `transactional.id` took over: `Fenced`
is raised and the service stops (recreating the producer would fence the successor in turn).
Other fatal errors (and a timed-out abort: librdkafka has no KIP-890) recreate the producer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streaming.kafka import make_producer
from streaming.serving.bisect import RecordId
from streaming.serving.config import ServeConfig

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 4 * 1024 * 1024 + 64 * 1024  # the DLQ carries inputs up to the topic's limit
#: bounded so that a loop waiting for an absent broker still notices a stop request
INIT_TIMEOUT_S = 10.0

FENCED_CODES = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.TRANSACTION_COORDINATOR_FENCED,
    }
)
#: errors a record itself can cause (they count towards bisecting a failing batch)
DATA_ERROR_CODES = frozenset(
    {
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError._MSG_TIMED_OUT,
    }
)


class Fenced(RuntimeError):
    """Another instance took over this instance's transactional id."""


def kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def is_fenced(exc: BaseException) -> bool:
    err = kafka_error(exc)
    return err is not None and err.code() in FENCED_CODES


def caused_by_data(exc: BaseException) -> bool:
    """Whether the failure may come from a record (a bug on some input, a refused output),
    rather than from the broker being away."""
    err = kafka_error(exc)
    if err is None:
        return not isinstance(exc, KafkaException)
    return err.code() in DATA_ERROR_CODES


class Checkpoint:
    """The producer and the open transaction's bookkeeping."""

    def __init__(self, cfg: ServeConfig, instance_id: str, client_conf: dict[str, Any]) -> None:
        self.cfg = cfg
        self.exactly_once = cfg.mode == "exactly-once"
        self.transactional_id = f"edaml-scorer-{cfg.group}-{instance_id}"
        self._client_conf = client_conf
        self.open = False
        self.records = 0
        self.started = 0.0
        self.input_ts: list[int] = []
        self.only: RecordId | None = None  # the input record, while the transaction has one
        self._producer: Producer | None = self._new_producer()

    @property
    def producer(self) -> Producer:
        """The producer, created again if the last one was given up (the broker away)."""
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def _new_producer(self) -> Producer:
        over: dict[str, Any] = {"message.max.bytes": MAX_OUTPUT_BYTES, **self._client_conf}
        if self.exactly_once:
            over["transactional.id"] = self.transactional_id
            over["transaction.timeout.ms"] = self.cfg.transaction_timeout_ms
        p = make_producer(self.cfg.bootstrap, **over)
        if self.exactly_once:
            try:
                p.init_transactions(INIT_TIMEOUT_S)
            except KafkaException as exc:
                if is_fenced(exc):
                    raise Fenced(str(exc)) from exc
                raise
        return p

    def recreate(self) -> None:
        """Give the producer up; the next transaction starts with a new one (whose
        `init_transactions` also fences any zombie of this one)."""
        log.warning("recreating the transactional producer %s", self.transactional_id)
        self._producer = None

    def begin(self) -> None:
        if self.open:
            return
        if self.exactly_once:
            self.producer.begin_transaction()
        self.open = True
        self.records = 0
        self.input_ts = []
        self.only = None
        self.started = time.monotonic()

    def outlived_timeout(self, now: float) -> bool:
        """Whether the last transaction began longer ago than `transaction.timeout.ms`.

        The coordinator aborts such a transaction and bumps the producer epoch, which
        librdkafka reports as fenced although no other instance exists (a broker away for
        longer than the timeout does this). That producer is recreated, not the process ended;
        a fence inside the timeout still means another instance took over."""
        return (
            self.exactly_once
            and self.started > 0
            and (now - self.started) * 1000 >= self.cfg.transaction_timeout_ms
        )

    def due(self, now: float) -> bool:
        return self.open and (
            self.records >= self.cfg.commit_records
            or (now - self.started) * 1000 >= self.cfg.commit_interval_ms
        )

    def positions(
        self, consumer: Consumer, assignment: list[TopicPartition]
    ) -> list[TopicPartition]:
        """The offsets this transaction commits: the consumer's positions."""
        if not assignment:
            return []
        return [tp for tp in consumer.position(assignment) if tp.offset >= 0]

    def commit(
        self,
        consumer: Consumer,
        assignment: list[TopicPartition],
        positions: list[TopicPartition] | None = None,
    ) -> None:
        if positions is None:
            positions = self.positions(consumer, assignment)
        try:
            if self.exactly_once:
                if positions:
                    self.producer.send_offsets_to_transaction(
                        positions, consumer.consumer_group_metadata(), 30
                    )
                self.producer.commit_transaction(30)
            else:
                remaining = self.producer.flush(30)
                if remaining:
                    raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "flush timed out"))
                if positions:
                    consumer.commit(offsets=positions, asynchronous=False)
        except KafkaException as exc:
            if is_fenced(exc):
                raise Fenced(str(exc)) from exc
            raise
        self.open = False

    def abort(self, timeout_s: float = 30.0) -> None:
        """Abort the open transaction (if any); recreate the producer when that fails."""
        was_open, self.open = self.open, False
        if not (self.exactly_once and was_open):
            return
        if self._producer is None:
            return
        try:
            self._producer.abort_transaction(timeout_s)
        except KafkaException as exc:
            if is_fenced(exc):
                raise Fenced(str(exc)) from exc
            # fatal, or timed out (no KIP-890 in librdkafka): start over with a new producer
            self.recreate()

    def close(self, timeout_s: float) -> None:
        """On stop: abort what is open (its records come again to whoever owns them next)."""
        p = self._producer
        if p is None:
            return
        try:
            if self.open and self.exactly_once:
                p.abort_transaction(max(0.1, timeout_s))
            self.open = False
            p.flush(max(0.1, timeout_s))
        except KafkaException as exc:
            log.warning("closing the producer: %s", exc)
