"""The scorer's settings and where its features come from."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from features.contract.topics import Topics
from features.spec import DatasetSpec, load_spec
from streaming.serving.event_time import DEFAULT_FUTURE_SKEW_MS, DEFAULT_PAST_HORIZON_MS
from streaming.serving.scoring import OnlineFeaturesLike

Mode = Literal["exactly-once", "at-least-once"]


def default_instance_id() -> str:
    """A stable id across restarts of the same instance: `EDAML_INSTANCE_ID`, else the pod's
    name (`POD_NAME`, set by the Helm chart; `HOSTNAME` in a container), else the host name. A
    restarted instance with the same id fences its predecessor's transactions at once and takes
    its partitions back without waiting for a session timeout."""
    for var in ("EDAML_INSTANCE_ID", "POD_NAME", "HOSTNAME"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return socket.gethostname() or "edaml-scorer"


@dataclass(kw_only=True)
class ServeConfig:
    bootstrap: str
    topics: Topics
    group: str = "edaml-scorer"
    #: The dataset served: its contract, features, fallback limits and model names (default:
    #: the default dataset's spec, the fleet). One scorer serves one dataset.
    dataset: DatasetSpec = field(default_factory=load_spec)
    #: Registered model names; empty: the dataset's (`served_models`).
    models: tuple[str, ...] = ()
    mode: Mode = "exactly-once"
    shadow: bool = True
    #: fraction of each batch's rows the challenger scores in the shadow (0 < x <= 1)
    shadow_sample: float = 1.0
    #: None: `default_instance_id()` (stable across restarts)
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
    #: per-device state checkpointed to the state topic with the offsets, restored on
    #: assignment (the re-read is the fallback); off: every assignment re-reads
    snapshots: bool = True
    #: how often the devices changed since the last round are written (the snapshot's age)
    snapshot_interval_s: float = 10.0
    #: device records one transaction carries at most (a round spreads over transactions)
    snapshot_max_devices: int = 2000
    #: a snapshot not read to its end within this long fails the restore (retried)
    snapshot_timeout_s: float = 60.0
    #: readings whose event time is further ahead of the clock go to the DLQ
    future_skew_ms: int = DEFAULT_FUTURE_SKEW_MS
    #: readings further behind their partition's newest event time go to the DLQ (None: off)
    past_horizon_ms: int | None = DEFAULT_PAST_HORIZON_MS
    #: devices one partition's state may hold; readings of further new devices go to the DLQ
    max_devices_per_partition: int = 200_000
    #: how often devices idle for longer than the rebuild horizon are forgotten
    evict_interval_s: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 8000
    breaker_failures: int = 3
    breaker_open_s: float = 5.0
    model_timeout_s: float = 1.0
    transaction_timeout_ms: int = 30_000
    #: a stop request ends the process within this many seconds, whatever the broker's state
    shutdown_timeout_s: float = 10.0
    #: readiness fails after this many failed transactions in a row
    max_batch_failures: int = 3
    #: readiness fails when no commit happened for this long while records wait
    stuck_after_s: float = 60.0
    consumer_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def served_models(self) -> tuple[str, ...]:
        return self.models or self.dataset.model_names


FeatureSource = tuple[Callable[[], OnlineFeaturesLike], str, tuple[str, ...]]


def feature_source(kind: str = "online", spec: DatasetSpec | None = None) -> FeatureSource:
    """`online`: the dataset's streaming features (features.engine.online over `spec.feature_set`);
    `raw`: the latest sensor values only (feature set `raw/v1`), for models that need no
    history. `spec`: the dataset (default: `load_spec()`, the fleet)."""
    spec = spec or load_spec()
    if kind == "raw":
        from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures

        sensors = spec.sensor_names
        return functools.partial(RawFeatures, sensors), RAW_FEATURE_SET_VERSION, sensors
    from features.engine.online import OnlineFeatures

    fs = spec.feature_set
    return functools.partial(OnlineFeatures, fs), fs.version, tuple(fs.names)
