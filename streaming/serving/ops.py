"""Operations surface of the scorer: Prometheus metrics and an HTTP server with `/metrics`,
`/healthz` (the loop is alive), `/readyz` (assigned, state complete, commits progressing) and
`/status` (JSON); a failing check answers 503 with its reason."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)


class BulkHistogram(Collector):
    """A Prometheus histogram fed a whole transaction's observations at once (numpy), where
    `Histogram.observe` per record costs a lock and a Python call each."""

    def __init__(self, name: str, documentation: str, *, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last: above every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        if not len(values):
            return
        idx = np.searchsorted(self.bounds, values, side="left")  # le-buckets: v <= bound
        counts = np.bincount(idx, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cum = np.cumsum(self._counts).tolist()
            total = self._sum
        labels = [*(floatToGoString(b) for b in self.bounds.tolist()), "+Inf"]
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(labels, cum, strict=True)),
            sum_value=total,
        )


class ScorerMetrics:
    """The scorer's metrics, in their own registry (several services may share a process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.events_in = Counter("edaml_scorer_events_in", "Input records consumed", registry=r)
        self.events_out = Counter(
            "edaml_scorer_events_out", "Records produced", ["topic"], registry=r
        )
        self.dlq = Counter("edaml_scorer_dlq", "Records sent to the DLQ", ["stage"], registry=r)
        self.alerts = Counter(
            "edaml_scorer_alerts", "Alerts produced", ["model", "fallback"], registry=r
        )
        self.latency = BulkHistogram(
            "edaml_scorer_latency_seconds",
            "Record timestamp to transaction commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        r.register(self.latency)
        self.batch_seconds = Histogram(
            "edaml_scorer_batch_seconds", "Scoring time of one micro-batch", registry=r
        )
        self.snapshot_seconds = Histogram(
            "edaml_scorer_snapshot_seconds",
            "Time to write one transaction's share of the state snapshot",
            registry=r,
        )
        self.lag = Gauge(
            "edaml_scorer_consumer_lag", "Records behind the high watermark", registry=r
        )
        self.model_version = Gauge(
            "edaml_scorer_model_version", "Serving version number", ["model", "role"], registry=r
        )
        self.breaker_state = Gauge(
            "edaml_scorer_breaker_state", "0 closed, 1 half-open, 2 open", ["model"], registry=r
        )
        self.fallback = Counter(
            "edaml_scorer_fallback_rows", "Readings scored by fallback rules", registry=r
        )
        self.transactions = Counter(
            "edaml_scorer_transactions", "Transactions by outcome", ["outcome"], registry=r
        )
        self.swaps = Counter(
            "edaml_scorer_model_swaps", "Model versions swapped in", ["model"], registry=r
        )
        self.rejections = Counter(
            "edaml_scorer_model_rejections", "Model versions refused", ["model"], registry=r
        )
        self.ready = Gauge(
            "edaml_scorer_ready", "1 when /readyz passes (reason in /status)", registry=r
        )
        self.alive = Gauge(
            "edaml_scorer_alive", "1 when /healthz passes (reason in /status)", registry=r
        )
        self.devices = Gauge(
            "edaml_scorer_devices", "Devices with feature state on this instance", registry=r
        )
        self.evicted = Counter(
            "edaml_scorer_evicted_devices", "Idle devices whose state was dropped", registry=r
        )
        self.batch_limit = Gauge(
            "edaml_scorer_batch_limit",
            "Records per batch (below the batch size while a failing batch is bisected)",
            registry=r,
        )


class OpsServer:
    """A small threaded HTTP server: `status()` supplies /status; `not_ready()` and
    `not_alive()` the reason /readyz and /healthz fail with ("" when they pass)."""

    def __init__(
        self,
        metrics: ScorerMetrics,
        *,
        host: str,
        port: int,
        status: Callable[[], dict[str, Any]],
        not_ready: Callable[[], str],
        not_alive: Callable[[], str],
    ) -> None:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    why = not_alive()
                    self._send(503 if why else 200, f"{why or 'ok'}\n".encode())
                elif path == "/readyz":
                    why = not_ready()
                    self._send(503 if why else 200, f"{why or 'ready'}\n".encode())
                elif path == "/status":
                    self._send(200, orjson.dumps(status(), default=str), "application/json")
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("ops: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="ops-http", daemon=True
        )
        _ = ops

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
