"""The scorer's pure safety parts: event-time policy, health, poison bisection, model deadlines,
the shadow's own breaker, trusted types, log deduplication, device eviction and cap."""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from typing import Any

import numpy as np
import pytest

from features.contract.fields import parse_ts
from features.contract.readings import SensorReading
from features.engine.raw import RAW_FEATURE_SET_VERSION, RawFeatures
from features.ml.model_card import ModelCard
from features.spec import load_spec
from streaming.registry import LoadedModel, ModelLoadError, _check_trusted, is_transient
from streaming.serving.accept import ServingModel
from streaming.serving.bisect import Bisector
from streaming.serving.breaker import DeadlineWorker
from streaming.serving.config import default_instance_id
from streaming.serving.event_time import EventTimePolicy
from streaming.serving.health import Health
from streaming.serving.logs import OncePerState
from streaming.serving.models import apply_swaps
from streaming.serving.reasons import ReferenceStats
from streaming.serving.scoring import ModelSlot, ScorerState, score_batch
from streaming.serving.watcher import ModelWatcher

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)

NOW = parse_ts("2026-11-29T12:00:00.000Z")
HOUR = 3_600_000
P0, P1 = ("t", 0), ("t", 1)


# ── event time ──────────────────────────────────────────────────────────────────────────
def test_far_future_readings_are_refused_and_do_not_move_the_watermark() -> None:
    pol = EventTimePolicy(future_skew_ms=HOUR, past_horizon_ms=24 * HOUR)
    far = parse_ts("9999-12-31T23:59:59.000Z")
    ts = np.array([NOW - 1000, far, NOW + HOUR - 1, NOW], dtype=np.int64)
    refused = pol.check(ts, [P0] * 4, NOW)
    assert [r.index for r in refused] == [1]
    assert "9999-12-31" in refused[0].reason and "ahead of the scorer's clock" in refused[0].reason
    assert pol.watermarks[P0] == NOW + HOUR - 1  # bounded by the skew, never year 9999
    # readings after the poison are all accepted
    assert pol.check(np.array([NOW + 5], dtype=np.int64), [P0], NOW) == []


def test_past_horizon_is_relative_to_the_partition_not_the_clock() -> None:
    pol = EventTimePolicy(future_skew_ms=HOUR, past_horizon_ms=24 * HOUR)
    replay = parse_ts("2014-02-14T14:30:00.000Z") + np.arange(100, dtype=np.int64) * 300_000
    assert pol.check(replay, [P1] * 100, NOW) == []  # history replay: nothing thrown away
    live = np.array([NOW, NOW - 2 * 24 * HOUR, NOW - 1], dtype=np.int64)
    refused = pol.check(live, [P0] * 3, NOW)
    assert [r.index for r in refused] == [1]
    assert "behind the newest event time of partition 0" in refused[0].reason
    # partition 1's 2014 watermark is untouched by partition 0's present
    assert pol.check(replay[-1:] + 1, [P1], NOW) == []
    off = EventTimePolicy(future_skew_ms=HOUR, past_horizon_ms=None)
    assert off.check(live, [P0] * 3, NOW) == []


def test_mixed_partitions_in_one_batch_are_checked_each_against_its_own() -> None:
    pol = EventTimePolicy(future_skew_ms=HOUR, past_horizon_ms=HOUR)
    pol.observe(P0, NOW)
    pol.observe(P1, NOW - 10 * HOUR)
    ts = np.array([NOW - 10 * HOUR, NOW - 10 * HOUR], dtype=np.int64)
    assert [r.index for r in pol.check(ts, [P0, P1], NOW)] == [0]


# ── health ──────────────────────────────────────────────────────────────────────────────
def test_health_names_why_it_is_not_ready_or_alive() -> None:
    h = Health(wedged_after_s=30, stuck_after_s=60, max_batch_failures=3)
    t = h.last_loop
    assert "no partitions assigned" in h.not_ready_reason(t)
    h.assigned = True
    assert h.not_ready_reason(t) == ""
    h.incomplete = {2}
    assert "partitions [2] is incomplete" in h.not_ready_reason(t)
    h.incomplete = set()
    for _ in range(3):
        h.failed("KafkaException: INVALID_TIMESTAMP")
    assert "failed 3 times in a row" in h.not_ready_reason(t)
    h.committed(t)
    h.lag = 500
    h.loop_tick(t + 61)  # the loop runs, but commits do not
    assert h.not_ready_reason(t + 30) == ""
    assert "no commit for 61 s with 500 records waiting" in h.not_ready_reason(t + 61)
    h.lag = 0
    h.idle(t + 61)
    assert h.not_ready_reason(t + 61) == ""
    h.loop_tick(t)
    assert "loop wedged" in h.not_alive_reason(t + 31)
    assert h.as_dict(t + 31)["alive"] is False


# ── bisection ───────────────────────────────────────────────────────────────────────────
def test_bisection_corners_the_one_record_that_breaks_its_batch() -> None:
    """Simulated loop: records 0..2999 of one partition, record 637 breaks any transaction."""
    b = Bisector(batch_size=200)
    committed, dlq, scored = 0, [], []
    for _ in range(600):
        if committed >= 3000:
            break
        batch = list(range(committed, min(3000, committed + b.limit)))
        txn = []
        for o in batch:
            if b.take_poison(("t", 0, o)) is not None:
                dlq.append(o)
            else:
                txn.append(o)
        if 637 in txn:
            only = ("t", 0, batch[0]) if len(batch) == 1 else None
            b.failed(len(batch), only, ValueError("boom"))
            continue
        scored.extend(txn)
        committed = batch[-1] + 1
        b.succeeded()
    assert dlq == [637]
    assert scored == [o for o in range(3000) if o != 637]
    assert b.limit == 200  # back to the full batch size


def test_bisection_does_not_count_one_record_transactions_towards_other_records() -> None:
    b = Bisector(batch_size=8, retries_single=2)
    b.failed(8, None, ValueError())
    assert b.limit == 4
    b.failed(1, ("t", 0, 5), ValueError())
    b.failed(1, ("t", 0, 6), ValueError())  # another record: its own streak
    assert not b.poison
    b.failed(1, ("t", 0, 6), ValueError())
    assert b.take_poison(("t", 0, 6)) is not None and not b.poison


# ── model calls ─────────────────────────────────────────────────────────────────────────
def test_a_hanging_model_call_costs_the_deadline_not_the_stream() -> None:
    w = DeadlineWorker()
    release = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        w.call(lambda: release.wait(30), 0.2)
    assert time.monotonic() - t0 < 2
    assert w.call(lambda: 42, 1.0) == 42  # a fresh worker serves the next call
    with pytest.raises(ZeroDivisionError):
        w.call(lambda: 1 / 0, 1.0)
    release.set()


def _loaded(version: str, fn: Any = None, threshold: float = 1.0) -> LoadedModel:
    """A version whose `score_samples` is `-fn(X)` (zeros when no fn)."""
    card = ModelCard(
        model_name="m",
        kind="anomaly",
        feature_set_version=RAW_FEATURE_SET_VERSION,
        feature_names=["temperature"],
        threshold=threshold,
    )

    class Predictor:
        def score_samples(self, X: np.ndarray) -> np.ndarray:
            return -np.asarray(fn(X)) if fn is not None else np.zeros(len(X))

    return LoadedModel("m", version, card, Predictor())


def _slot_with(champion_fn: Any, challenger_fn: Any) -> ModelSlot:
    def serving(version: str, fn: Any) -> ServingModel:
        loaded = _loaded(version, fn, threshold=10.0)
        return ServingModel(loaded, np.array([0]), ReferenceStats.from_reference([], {}))

    slot = ModelSlot("m", timeout_s=0.2)
    slot.set_champion(serving("1", champion_fn))
    slot.set_challenger(serving("2", challenger_fn))
    return slot


def _readings(n: int) -> list[SensorReading]:
    return [SensorReading(f"e{i}", "d", NOW + i, {"temperature": 50.0}) for i in range(n)]


def test_the_shadow_has_its_own_breaker_and_deadline() -> None:
    hang = threading.Event()
    slot = _slot_with(lambda X: np.zeros(len(X)), lambda X: hang.wait(30))
    slot.shadow_breaker.failure_threshold = 1
    state = ScorerState(RawFeatures(FLEET.sensor_names), RAW_FEATURE_SET_VERSION)
    t0 = time.monotonic()
    out = score_batch({"m": slot}, _readings(10), state)
    assert time.monotonic() - t0 < 3
    assert slot.shadow_breaker.state == "open" and "TimeoutError" in slot.shadow_breaker.last_error
    assert slot.breaker.state == "closed" and out.fallback_rows == 0
    t1 = time.monotonic()
    score_batch({"m": slot}, _readings(10), state)  # the open shadow breaker skips the call
    assert time.monotonic() - t1 < 0.15
    hang.set()


def test_the_shadow_scores_a_sample_of_the_rows() -> None:
    rows: list[int] = []
    slot = _slot_with(lambda X: np.zeros(len(X)), lambda X: rows.append(len(X)) or np.zeros(len(X)))
    slot.shadow_sample = 0.1
    state = ScorerState(RawFeatures(FLEET.sensor_names), RAW_FEATURE_SET_VERSION)
    score_batch({"m": slot}, _readings(2000), state)
    assert 100 < rows[0] < 320
    assert slot.shadow is not None and slot.shadow.n_events == rows[0]


def test_a_hanging_champion_falls_back_within_the_deadline() -> None:
    hang = threading.Event()
    slot = _slot_with(lambda X: hang.wait(30), lambda X: np.zeros(len(X)))
    state = ScorerState(RawFeatures(FLEET.sensor_names), RAW_FEATURE_SET_VERSION)
    t0 = time.monotonic()
    out = score_batch({"m": slot}, _readings(5), state)
    assert time.monotonic() - t0 < 3
    assert out.fallback_rows == 5 and "TimeoutError" in slot.breaker.last_error
    hang.set()


# ── trust ───────────────────────────────────────────────────────────────────────────────
def test_trusted_types_are_an_exact_list() -> None:
    assert _check_trusted(["sklearn.tree._tree.Tree", "numpy.dtype"])
    for bad in ("builtins.eval", "builtins.exec", "numpy.load", "sklearn.utils.Bunch", "os.system"):
        with pytest.raises(ModelLoadError, match="outside the allow-list"):
            _check_trusted(["numpy.dtype", bad])


def test_transient_and_deterministic_load_errors_are_told_apart() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST

    assert is_transient(ConnectionRefusedError())
    assert is_transient(MlflowException("boom", error_code=INTERNAL_ERROR))
    assert not is_transient(MlflowException("no", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient(ValueError("bad card"))


# ── operations ──────────────────────────────────────────────────────────────────────────
def test_repeated_client_log_lines_are_logged_once_per_change() -> None:
    f = OncePerState()
    logger = logging.getLogger("test.librdkafka")

    def rec(text: str) -> logging.LogRecord:
        return logger.makeRecord(
            logger.name, 40, "", 0, "%s [%s] %s", ("FAIL", "rdkafka#producer-1", text), None
        )

    refused = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after {}ms in state CONNECT)"
    passed = [f.filter(rec(refused.format(i))) for i in range(1930)]
    assert passed.count(True) == 1
    assert f.filter(rec("127.0.0.1:9092/bootstrap: Disconnected (after 1ms in state UP)"))
    assert f.filter(rec(refused.format(0)))  # a change of state is logged again


def test_default_instance_id_is_stable_and_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDAML_INSTANCE_ID", raising=False)
    monkeypatch.setenv("POD_NAME", "scorer-2")
    assert default_instance_id() == default_instance_id() == "scorer-2"
    monkeypatch.setenv("EDAML_INSTANCE_ID", "mine")
    assert default_instance_id() == "mine"
    monkeypatch.delenv("EDAML_INSTANCE_ID")
    monkeypatch.delenv("POD_NAME")
    monkeypatch.delenv("HOSTNAME", raising=False)
    assert default_instance_id() == default_instance_id() != ""


# ── hot swap ────────────────────────────────────────────────────────────────────────────
class _Registry:
    """An in-memory stand-in of the registry's alias lookup (unit test of the watcher's logic;
    the integration tests use the real MLflow server)."""

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def get_model_version_by_alias(self, name: str, alias: str) -> object:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        if (name, alias) not in self.aliases:
            raise MlflowException("no alias", error_code=RESOURCE_DOES_NOT_EXIST)
        return type("MV", (), {"version": self.aliases[(name, alias)]})()


def _watcher(reg: _Registry, loader: Any) -> ModelWatcher:
    return ModelWatcher(
        ("m",),
        feature_set_version=RAW_FEATURE_SET_VERSION,
        feature_names=("temperature",),
        shadow=False,
        client=reg,  # type: ignore[arg-type]
        loader=loader,
    )


def test_a_slow_load_overtaken_by_another_promotion_is_never_served() -> None:
    reg = _Registry()
    gate = threading.Event()

    def loader(name: str, version: str) -> object:
        if version == "5":
            gate.wait(10)  # v5 is slow to download
        return _loaded(version)

    w = _watcher(reg, loader)
    slots = {"m": ModelSlot("m")}
    reg.aliases[("m", "champion")] = "4"
    futures.wait(w.check_all("poll"))
    apply_swaps(w, slots, lambda *_: None)
    assert slots["m"].champion is not None and slots["m"].champion.version == "4"

    reg.aliases[("m", "champion")] = "5"
    slow = w.check_all("poll")
    reg.aliases[("m", "champion")] = "4"  # rolled back while v5 loads
    w.check_all("poll")
    gate.set()
    futures.wait(slow)
    apply_swaps(w, slots, lambda *_: None)
    assert slots["m"].champion.version == "4"
    assert w.is_wanted("m", "champion", "4")
    w.stop()


def test_a_swap_queued_before_the_alias_moved_is_not_applied() -> None:
    reg = _Registry()
    w = _watcher(reg, lambda n, v: _loaded(v))
    slots = {"m": ModelSlot("m")}
    reg.aliases[("m", "champion")] = "6"
    futures.wait(w.check_all("poll"))
    reg.aliases[("m", "champion")] = "7"
    gate = threading.Event()
    w.loader = lambda n, v: _loaded(v) if gate.wait(10) else _loaded("timeout")
    pending = w.check_all("poll")
    apply_swaps(w, slots, lambda *_: None)  # v6 queued, alias says 7
    assert slots["m"].champion is None
    gate.set()
    futures.wait(pending)
    apply_swaps(w, slots, lambda *_: None)
    assert slots["m"].champion is not None and slots["m"].champion.version == "7"
    w.stop()


def test_a_transient_load_error_is_retried_and_never_rejects_the_version() -> None:
    reg = _Registry()
    calls: list[str] = []

    def flaky(name: str, version: str) -> object:
        calls.append(version)
        if len(calls) == 1:
            raise ModelLoadError("registry unreachable", transient=True)
        return _loaded(version)

    w = _watcher(reg, flaky)
    reg.aliases[("m", "champion")] = "3"
    futures.wait(w.check_all("poll"))
    assert w.rejections.empty() and ("m", "3") not in w.refused
    assert w.check_all("poll") == []  # backing off
    w.retry[("m", "3")] = (0.0, 1.0)  # the backoff has passed
    futures.wait(w.check_all("poll"))
    assert calls == ["3", "3"] and w.swaps.qsize() == 1

    def broken(name: str, version: str) -> object:
        raise ModelLoadError("declares types outside the allow-list: ['builtins.eval']")

    w.loader = broken
    reg.aliases[("m", "champion")] = "9"
    futures.wait(w.check_all("poll"))
    assert ("m", "9") in w.refused and w.rejections.qsize() == 1
    w.stop()
