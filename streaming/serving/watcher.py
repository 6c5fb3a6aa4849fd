"""Watches the `champion` (and, for shadow scoring, `challenger`) alias of each served model.

Two triggers: polling MLflow every few seconds (catches a change made in the UI) and the
`mlops.model-lifecycle` topic (a promotion or rollback event is acted on at once). A new version
is loaded and checked on a background thread while the service keeps consuming; the result is
queued, and the service swaps it in between two transactions, if the alias still names it then
(`is_wanted`: checked when the load completes and again when the swap is applied, so a slow load
overtaken by another promotion or a rollback is never served). A version the checks refuse, or
that cannot be loaded for a deterministic reason (untrusted types, a digest that does not match,
no model card), is refused once (a `rejected` lifecycle event is queued for publishing) and the
old one keeps serving; a transient failure (the registry unreachable) is retried with a backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from confluent_kafka import OFFSET_END, TopicPartition
from mlflow import MlflowClient

from features.contract.events import ModelLifecycleEvent
from streaming.kafka import make_consumer
from streaming.registry import (
    LoadedModel,
    ModelLoadError,
    load_model_version,
    resolve_alias,
)
from streaming.serving.accept import ModelRefused, ServingModel, prepare

log = logging.getLogger(__name__)

Role = Literal["champion", "challenger"]
#: Loaded versions kept per model name for an instant swap (champion, challenger, previous).
PREPARED_KEPT = 3
RETRY_MIN_S = 1.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class Swap:
    name: str
    role: Role
    model: ServingModel
    trigger: str
    seen_at: float  # monotonic time the new version was first noticed


Loader = Callable[[str, str], LoadedModel]


class ModelWatcher:
    """Background watcher; the service reads `swaps` and `rejections` between transactions."""

    def __init__(
        self,
        names: tuple[str, ...],
        *,
        feature_set_version: str,
        feature_names: tuple[str, ...],
        shadow: bool,
        poll_interval_s: float = 3.0,
        bootstrap: str | None = None,
        lifecycle_topic: str | None = None,
        loader: Loader | None = None,
        client: MlflowClient | None = None,
        kafka_conf: dict[str, Any] | None = None,
    ) -> None:
        self.names = names
        self.roles: tuple[Role, ...] = ("champion", "challenger") if shadow else ("champion",)
        self.feature_set_version = feature_set_version
        self.feature_names = feature_names
        self.poll_interval_s = poll_interval_s
        self.bootstrap = bootstrap
        self.lifecycle_topic = lifecycle_topic
        self.kafka_conf = kafka_conf or {}  # e.g. the service's logger and error callback
        self.client = client or MlflowClient()
        self.loader: Loader = loader or (
            lambda n, v: load_model_version(n, version=v, client=self.client)
        )
        self.swaps: queue.Queue[Swap] = queue.Queue()
        self.rejections: queue.Queue[ModelLifecycleEvent] = queue.Queue()
        self.wanted: dict[tuple[str, Role], str] = {}  # what we serve or are loading
        self.refused: set[tuple[str, str]] = set()
        #: versions whose load failed transiently: (next attempt at, backoff)
        self.retry: dict[tuple[str, str], tuple[float, float]] = {}
        self.last_poll_ok: float = 0.0
        #: the last poll's error while the registry is unreachable ("" when it answers)
        self.registry_error = ""
        self.initial_done = threading.Event()
        self._wake_reason = "poll"
        # Versions already loaded and checked (e.g. the challenger served in the shadow): a
        # promotion of one of them swaps at once, without downloading it again.
        self._prepared: OrderedDict[tuple[str, str], ServingModel] = OrderedDict()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self._threads: list[threading.Thread] = []

    # ── lifecycle ───────────────────────────────────────────────────────────────────────
    def start(self) -> None:
        t = threading.Thread(target=self._poll_loop, name="model-watcher", daemon=True)
        t.start()
        self._threads.append(t)
        if self.bootstrap and self.lifecycle_topic:
            t2 = threading.Thread(
                target=self._lifecycle_loop, name="lifecycle-watcher", daemon=True
            )
            t2.start()
            self._threads.append(t2)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=2)  # daemon threads: one stuck in a registry call is left behind
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check_now(self) -> None:
        self._wake.set()

    # ── loops ───────────────────────────────────────────────────────────────────────────
    def wait_initial(self, timeout: float) -> bool:
        """Block until the first poll and the loads it started are done (or `timeout`)."""
        return self.initial_done.wait(timeout)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                trigger, self._wake_reason = self._wake_reason, "poll"
                started = self.check_all(trigger=trigger)
                self.last_poll_ok = time.monotonic()
                if self.registry_error:
                    log.info("model registry reachable again")
                    self.registry_error = ""
                if not self.initial_done.is_set():
                    futures.wait(started)
            except Exception as exc:
                if not self.registry_error:  # once per outage, not once per poll
                    log.warning(
                        "model registry poll failed (%s); keeping the current versions and "
                        "retrying quietly",
                        exc,
                    )
                self.registry_error = f"{type(exc).__name__}: {exc}"[:500]
            self.initial_done.set()  # also after a failed poll: never block serving on MLflow
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _lifecycle_loop(self) -> None:
        assert self.bootstrap and self.lifecycle_topic
        # A group of its own, never committed: it reads live records only.
        consumer = make_consumer(self.bootstrap, f"edaml-watcher-{uuid.uuid4()}", **self.kafka_conf)
        try:
            consumer.assign([TopicPartition(self.lifecycle_topic, 0, OFFSET_END)])
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                try:
                    doc = orjson.loads(msg.value() or b"null")
                except orjson.JSONDecodeError:
                    continue
                if (
                    isinstance(doc, dict)
                    and doc.get("model_name") in self.names
                    and doc.get("action") in ("promoted", "rolled_back", "validated", "registered")
                ):
                    log.info(
                        "lifecycle event %s %s: checking aliases now",
                        doc.get("action"),
                        doc.get("model_name"),
                    )
                    self._wake_reason = "lifecycle"
                    self._wake.set()
        except Exception:
            log.exception("lifecycle watcher stopped")
        finally:
            consumer.close()

    # ── checks ──────────────────────────────────────────────────────────────────────────
    def check_all(self, trigger: str) -> list[futures.Future[None]]:
        """Resolve every watched alias; start loading each new version (returns the loads)."""
        started: list[futures.Future[None]] = []
        for name in self.names:
            for role in self.roles:
                version = resolve_alias(name, role, client=self.client)
                if version is None:
                    continue
                key = (name, role)
                with self._lock:
                    if self.wanted.get(key) == version or (name, version) in self.refused:
                        continue
                    if time.monotonic() < self.retry.get((name, version), (0.0, 0.0))[0]:
                        continue
                    self.wanted[key] = version
                ready = self._prepared.get((name, version))
                if ready is not None:
                    log.info(
                        "%s %s -> version %s (%s); already loaded", name, role, version, trigger
                    )
                    self.swaps.put(Swap(name, role, ready, trigger, time.monotonic()))
                    continue
                log.info("%s %s -> version %s (%s); loading", name, role, version, trigger)
                started.append(
                    self._pool.submit(self._load, name, role, version, trigger, time.monotonic())
                )
        return started

    def _load(self, name: str, role: Role, version: str, trigger: str, seen_at: float) -> None:
        try:
            loaded = self.loader(name, version)
            model = prepare(
                loaded,
                feature_set_version=self.feature_set_version,
                feature_names=self.feature_names,
            )
        except Exception as exc:
            reason = exc.reason if isinstance(exc, ModelRefused) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ModelLoadError) and exc.transient:
                self._retry_later(name, role, version, reason)
                return
            log.warning("refusing %s version %s as %s: %s", name, version, role, reason)
            with self._lock:
                self.refused.add((name, version))
                if self.wanted.get((name, role)) == version:
                    self.wanted.pop((name, role), None)
            self.rejections.put(
                ModelLifecycleEvent.now(
                    name, version, "rejected", actor="edaml-scorer", reasons=[reason], alias=role
                )
            )
            return
        with self._lock:
            self.retry.pop((name, version), None)
            self._prepared[(name, version)] = model
            while len(self._prepared) > PREPARED_KEPT * len(self.names):
                self._prepared.popitem(last=False)
            if self.wanted.get((name, role)) != version:
                log.info(
                    "%s version %s loaded, but the %s alias has moved on: not swapping",
                    name,
                    version,
                    role,
                )
                return
        self.swaps.put(Swap(name, role, model, trigger, seen_at))

    def _retry_later(self, name: str, role: Role, version: str, reason: str) -> None:
        with self._lock:
            _at, last = self.retry.get((name, version), (0.0, 0.0))
            backoff = min(RETRY_MAX_S, max(RETRY_MIN_S, last * 2))
            self.retry[(name, version)] = (time.monotonic() + backoff, backoff)
            if self.wanted.get((name, role)) == version:
                self.wanted.pop((name, role), None)  # the next poll after the backoff retries
        log.warning(
            "could not load %s version %s as %s (%s); retrying in %.0fs",
            name,
            version,
            role,
            reason,
            backoff,
        )

    def is_wanted(self, name: str, role: Role, version: str) -> bool:
        """Whether `version` is (still) what the `role` alias of `name` names."""
        with self._lock:
            return self.wanted.get((name, role)) == version
