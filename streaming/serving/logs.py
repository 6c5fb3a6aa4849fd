"""Kafka client logs without the flood: librdkafka retries a refused connection every few tens
of milliseconds and logs each attempt. Its log lines go through `LIBRDKAFKA_LOG` with a filter
that drops a line repeating the previous one of the same source (numbers aside), and the
scorer logs the broker connection once per change of state (`ConnectionState`)."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from confluent_kafka import KafkaError

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d+")


class OncePerState(logging.Filter):
    """Passes a log line only when it differs (digits aside) from its source's previous one."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        # confluent-kafka logs (facility, client name, text); other loggers: the whole message
        text = str(args[-1]) if len(args) == 3 else record.getMessage()
        source = f"{record.name}|{args[1] if len(args) == 3 else ''}|{text.split(' ', 1)[0]}"
        shape = _DIGITS.sub("#", text)
        with self._lock:
            if self._last.get(source) == shape:
                self.dropped += 1
                return False
            self._last[source] = shape
        return True


LIBRDKAFKA_LOG = logging.getLogger("edaml.librdkafka")
LIBRDKAFKA_LOG.addFilter(OncePerState())
_DEDUP = OncePerState()  # other client errors: a repeat of the previous one is dropped

#: errors that mean "the broker is unreachable", reported through the clients' error_cb
_CONNECTION_ERRORS = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}
)


class ConnectionState:
    """Logs "broker unreachable" once when the clients start failing to connect and
    "reachable again" once when the loop makes progress again."""

    def __init__(self) -> None:
        self.down_since: str = ""
        self._lock = threading.Lock()

    def error_cb(self, err: KafkaError) -> None:
        if err.code() not in _CONNECTION_ERRORS:
            if _DEDUP.filter(log.makeRecord(log.name, 30, "", 0, "%s", (err.str(),), None)):
                log.warning("kafka client error: %s", err)
            return
        with self._lock:
            if self.down_since:
                return
            self.down_since = err.str()
        log.warning("Kafka broker unreachable (%s); retrying quietly until it is back", err.str())

    def progressed(self) -> None:
        if not self.down_since:
            return
        with self._lock:
            was, self.down_since = self.down_since, ""
        if was:
            log.info("Kafka broker reachable again")

    def client_config(self) -> dict[str, Any]:
        return {"logger": LIBRDKAFKA_LOG, "error_cb": self.error_cb}
