"""The pure scoring core: `score_batch(models, readings, state) -> BatchOutputs`, without Kafka.

For every reading: update the device's streaming features, score them with each model's
champion (behind its circuit breaker), fall back to the version's per-sensor limits when the
model is unavailable or fails, optionally score the challenger in the shadow, and emit one
`ScoredEvent` per reading plus one `Alert` per flagging model. Drift and shadow windows
accumulate here; `collect_reports` turns them into monitoring events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from features.contract.bulk import uuid4_strings
from features.contract.events import (
    Alert,
    DriftReport,
    FeatureDrift,
    ModelScore,
    ReasonCode,
    ScoredEvent,
    ShadowReport,
)
from features.contract.readings import SensorReading
from features.ml.model_card import SensorLimits
from streaming.serving.accept import ServingModel
from streaming.serving.breaker import CircuitBreaker, DeadlineWorker
from streaming.serving.drift import PSI_THRESHOLD, DriftWindow, monitored
from streaming.serving.fallback import FallbackRules, rule_score
from streaming.serving.reasons import model_reasons
from streaming.serving.shadow import ShadowWindow

_ID_RNG = np.random.default_rng()  # seeded from the OS's entropy

#: The version named by outputs that no model version scored (rules with the spec's limits).
NO_MODEL_VERSION = "default-rules"


class FeatureUpdateLike(Protocol):
    values: np.ndarray | None
    duplicate: bool
    late: bool


class OnlineFeaturesLike(Protocol):
    def update(self, reading: SensorReading) -> Any: ...


@dataclass(slots=True)
class ModelSlot:
    """Everything the service holds about one configured model name."""

    name: str
    champion: ServingModel | None = None
    challenger: ServingModel | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    timeout_s: float = 1.0
    #: the challenger's own breaker: a failing shadow never costs the champion's time twice
    shadow_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    #: fraction of each batch's rows the challenger scores
    shadow_sample: float = 1.0
    caller: DeadlineWorker = field(default_factory=lambda: DeadlineWorker("model-call"))
    shadow_caller: DeadlineWorker = field(default_factory=lambda: DeadlineWorker("shadow-call"))
    drift: DriftWindow | None = None
    shadow: ShadowWindow | None = None
    #: The dataset's operating limits and units (from its spec), for rules and reason texts.
    rules: FallbackRules = field(default_factory=FallbackRules)

    def limits_for(self, reading: SensorReading) -> dict[str, SensorLimits]:
        """The champion card's limits, else the spec's for the reading's group."""
        if self.champion is not None and self.champion.loaded.card.fallback_limits:
            return self.champion.loaded.card.fallback_limits
        return self.rules.limits_for(reading)

    @property
    def kind(self) -> str:
        if self.champion is not None:
            return self.champion.loaded.card.kind
        return "failure-risk" if "risk" in self.name else "anomaly"

    def set_champion(self, model: ServingModel) -> None:
        self.champion = model
        self.breaker.reset()
        card = model.loaded.card
        self.drift = DriftWindow(
            reference=monitored(card.reference),
            feature_index={n: i for i, n in enumerate(card.feature_names)},
        )
        self._reset_shadow()

    def set_challenger(self, model: ServingModel | None) -> None:
        self.challenger = model
        self.shadow_breaker.reset()
        self._reset_shadow()

    def deadline(self, rows: int) -> float:
        """Seconds a model call on `rows` rows may take (`timeout_s` per 1,000 rows)."""
        return self.timeout_s * max(1.0, rows / 1000)

    def _reset_shadow(self) -> None:
        if self.champion is not None and self.challenger is not None:
            self.shadow = ShadowWindow(self.champion.version, self.challenger.version)
        else:
            self.shadow = None


@dataclass(slots=True)
class ScorerState:
    features: OnlineFeaturesLike
    feature_set_version: str
    shadow_enabled: bool = True
    duplicates: int = 0
    late: int = 0


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """A micro-batch of valid readings as columns, in input order (the scorer's hot path: no
    object per reading). `reading(i)` gives row i as a `SensorReading`, for the rare rows that
    need one (an alert's fields, fallback rules)."""

    event_id: pa.Array  # strings
    device_id: pa.Array  # strings
    ts_ms: np.ndarray  # int64
    sensors: Mapping[str, np.ndarray]  # float64 per sensor, NaN where missing
    reading: Callable[[int], SensorReading]

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, rows: np.ndarray) -> ReadingColumns:
        """The rows `rows` (positions, ascending) as a batch of their own."""
        pick = pa.array(rows)
        at = self.reading
        return ReadingColumns(
            self.event_id.take(pick),
            self.device_id.take(pick),
            self.ts_ms[rows],
            {k: v[rows] for k, v in self.sensors.items()},
            lambda i: at(int(rows[i])),
        )


def columns_of(readings: list[SensorReading], sensors: Sequence[str]) -> ReadingColumns:
    """Readings already parsed, as a `ReadingColumns` of `sensors`."""
    return ReadingColumns(
        pa.array([r.event_id for r in readings], type=pa.string()),
        pa.array([r.device_id for r in readings], type=pa.string()),
        np.fromiter((r.ts_ms for r in readings), np.int64, len(readings)),
        {s: np.array([r.values.get(s) for r in readings], dtype=np.float64) for s in sensors},
        readings.__getitem__,
    )


@dataclass(frozen=True, slots=True)
class ScoredColumns:
    """The `ScoredEvent`s of a batch every model scored, as columns (`events()` builds the
    objects; `streaming.serving.outputs.encode_scored_columns` encodes them without)."""

    event_id: pa.Array
    ts_ms: np.ndarray
    reading_event_id: pa.Array
    device_id: pa.Array
    #: per model: name, version, threshold, scores, flagged
    models: list[tuple[str, str, float, np.ndarray, np.ndarray]]
    alert: np.ndarray  # any model flagged the row
    feature_set_version: str

    def __len__(self) -> int:
        return len(self.ts_ms)

    def events(self) -> list[ScoredEvent]:
        cols = [(n, v, th, sc.tolist(), fl.tolist()) for n, v, th, sc, fl in self.models]
        return [
            ScoredEvent(
                eid,
                ts,
                rid,
                dev,
                [ModelScore(n, v, sl[i], th, fl[i]) for n, v, th, sl, fl in cols],
                "alert" if a else "normal",
                False,
                "",
                self.feature_set_version,
            )
            for i, (eid, ts, rid, dev, a) in enumerate(
                zip(
                    self.event_id.to_pylist(),
                    self.ts_ms.tolist(),
                    self.reading_event_id.to_pylist(),
                    self.device_id.to_pylist(),
                    self.alert.tolist(),
                    strict=True,
                )
            )
        ]


@dataclass(slots=True)
class BatchOutputs:
    scored: list[ScoredEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    model_errors: list[tuple[str, str]] = field(default_factory=list)  # (model, error)
    fallback_rows: int = 0
    #: `score_columns`' common case: the scored events as columns (then `scored` is empty)
    columns: ScoredColumns | None = None

    def scored_events(self) -> list[ScoredEvent]:
        """Every scored event of the batch as objects, whichever form holds them."""
        return self.columns.events() if self.columns is not None else self.scored


def _confidence(kind: str, score: float, threshold: float) -> float:
    """How sure a flag is: a probability for failure-risk; for anomaly, how far past the
    threshold the score lies (0.5 at the threshold, approaching 1 at twice its margin)."""
    if kind == "failure-risk":
        return round(min(max(score, 0.0), 1.0), 4)
    margin = abs(threshold) or 1.0
    return round(min(1.0, 0.5 + 0.5 * (score - threshold) / margin), 4)


def _predict(
    slot: ModelSlot, X: np.ndarray, now: float, entities: Callable[[], np.ndarray]
) -> np.ndarray | None:
    """Champion scores for X, or None when the breaker is open or the call failed.
    `entities()`: each row's entity key, asked for only by a per-entity model."""
    if slot.champion is None or not slot.breaker.allow(now):
        return None
    champion = slot.champion
    keys = entities() if champion.needs_entities else None
    try:
        s = slot.caller.call(lambda: champion.scores(X, keys), slot.deadline(len(X)))
        if np.shape(s) != (len(X),):
            raise ValueError(f"returned shape {np.shape(s)} for {len(X)} rows")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{int(np.sum(~np.isfinite(s)))} NaN/inf scores")
    except Exception as exc:
        slot.breaker.record_failure(now, f"{type(exc).__name__}: {exc}")
        return None
    slot.breaker.record_success()
    return s


def _features(
    state: ScorerState,
    readings: list[SensorReading],
    partitions: Sequence[tuple[str, int]] | None = None,
) -> tuple[list[SensorReading], np.ndarray, np.ndarray]:
    """(kept readings, their feature rows, warm mask): duplicates dropped, in input order."""
    routed = getattr(state.features, "update_routed", None)
    many = getattr(state.features, "update_many", None)
    if routed is not None or many is not None:
        if routed is not None:
            fb = routed(
                readings, partitions if partitions is not None else [("", -1)] * len(readings)
            )
        else:
            assert many is not None
            fb = many(readings)
        dup = np.asarray(fb.duplicate, dtype=bool)
        late = np.asarray(fb.late, dtype=bool)
        state.duplicates += int(dup.sum())
        state.late += int(late.sum())
        if not dup.any():
            X = np.asarray(fb.values, dtype=np.float64)
            return readings, X, np.ones(len(readings), dtype=bool)
        keep = np.flatnonzero(~dup)
        X = np.asarray(fb.values, dtype=np.float64)[keep]
        return [readings[i] for i in keep], X, np.ones(len(keep), dtype=bool)
    kept: list[SensorReading] = []
    rows: list[np.ndarray | None] = []
    for r in readings:
        upd = state.features.update(r)
        if upd.duplicate:
            state.duplicates += 1
            continue
        if upd.late:
            state.late += 1
        kept.append(r)
        rows.append(upd.values)
    warm = np.asarray([v is not None for v in rows], dtype=bool)
    width = next((len(v) for v in rows if v is not None), 0)
    X = np.full((len(kept), width), np.nan)
    for i, v in enumerate(rows):
        if v is not None:
            X[i] = v
    return kept, X, warm


def score_batch(
    models: dict[str, ModelSlot],
    readings: list[SensorReading],
    state: ScorerState,
    *,
    now: float | None = None,
    partitions: Sequence[tuple[str, int]] | None = None,
) -> BatchOutputs:
    """Score `readings` (in input order) with every slot in `models`. `partitions`: each
    reading's input partition, for features that keep their state per partition.

    Vectorised across the micro-batch: one feature update call, one model call per slot; the
    per-reading loop only assembles outputs (and reason codes for the few flagged rows).
    """
    now = time.monotonic() if now is None else now
    out = BatchOutputs()
    kept, X_all, warm = _features(state, readings, partitions)
    if not kept:
        return out
    per_model, fallback_any = _score_models(models, X_all, warm, state, now, out, kept)
    ok_idx = np.flatnonzero(warm)
    if len(ok_idx) == len(kept) and not fallback_any.any():
        _assemble_all_scored(out, kept, X_all, state.feature_set_version, per_model)
    else:
        _assemble(out, kept, X_all, warm, fallback_any, per_model, state.feature_set_version)
    return out


def score_columns(
    models: dict[str, ModelSlot],
    batch: ReadingColumns,
    state: ScorerState,
    *,
    now: float | None = None,
    partitions: Sequence[tuple[str, int]] | None = None,
) -> BatchOutputs:
    """`score_batch` of readings given as columns, with the same outputs. In the common case
    (every model scored every reading) no object is made per reading: the scored events come
    back as `BatchOutputs.columns`. Otherwise, or when the features take no columns, the rows
    become `SensorReading`s and take `score_batch`'s general path."""
    now = time.monotonic() if now is None else now
    n = len(batch)
    keys = partitions if partitions is not None else [("", -1)] * n
    routed = getattr(state.features, "update_routed_columns", None)
    fb = None
    if routed is not None and n:
        eh = np.fromiter(map(hash, batch.event_id.to_pylist()), np.int64, n)
        fb = routed(keys, batch.device_id.to_pylist(), batch.ts_ms, eh, batch.sensors)
    if fb is None:
        readings = [batch.reading(i) for i in range(n)]
        return score_batch(models, readings, state, now=now, partitions=partitions)
    out = BatchOutputs()
    dup = np.asarray(fb.duplicate, dtype=bool)
    state.duplicates += int(dup.sum())
    state.late += int(np.count_nonzero(fb.late))
    X = np.asarray(fb.values, dtype=np.float64)
    if dup.any():
        keep = np.flatnonzero(~dup)
        batch, X = batch.take(keep), X[keep]
    n = len(batch)
    if not n:
        return out
    warm = np.ones(n, dtype=bool)
    rows = _LazyRows(batch)
    per_model, fallback_any = _score_models(models, X, warm, state, now, out, rows)
    if fallback_any.any():
        kept = [batch.reading(i) for i in range(n)]
        _assemble(out, kept, X, warm, fallback_any, per_model, state.feature_set_version)
        return out
    ids = uuid4_strings(_ID_RNG, n)
    cols: list[tuple[str, str, float, np.ndarray, np.ndarray]] = []
    any_flag = np.zeros(n, dtype=bool)
    for slot, scores, _ok in per_model:
        champ = slot.champion
        assert champ is not None
        flagged = scores >= champ.threshold
        any_flag |= flagged
        cols.append((slot.name, champ.version, champ.threshold, scores, flagged))
    _alerts_of(out, rows, X, per_model)
    out.columns = ScoredColumns(
        ids, batch.ts_ms, batch.event_id, batch.device_id, cols, any_flag,
        state.feature_set_version,
    )  # fmt: skip
    return out


class _LazyRows(Sequence[SensorReading]):
    """Rows of a `ReadingColumns` as readings, made only when asked for (alerts, entities)."""

    def __init__(self, batch: ReadingColumns) -> None:
        self._batch = batch
        self._ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self._batch)

    def __getitem__(self, i: Any) -> Any:
        return self._batch.reading(i)

    def device_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = self._batch.device_id.to_pylist()
        return self._ids


def _score_models(
    models: dict[str, ModelSlot],
    X_all: np.ndarray,
    warm: np.ndarray,
    state: ScorerState,
    now: float,
    out: BatchOutputs,
    kept: Sequence[SensorReading],
) -> tuple[list[tuple[ModelSlot, np.ndarray, np.ndarray]], np.ndarray]:
    """Per model: (slot, scores with NaN where not scored, whether it scored each row), and
    the rows some model did not score. Drift and shadow windows are fed here."""
    now_ms = int(time.time() * 1000)
    n = len(kept)
    ok_idx = np.flatnonzero(warm)
    X = X_all if len(ok_idx) == n else X_all[ok_idx]
    entity_keys: list[np.ndarray] = []

    def entities() -> np.ndarray:
        """Entity keys of the rows of X (built once, only when a per-entity model asks)."""
        if not entity_keys:
            ids = kept.device_ids() if isinstance(kept, _LazyRows) else None
            if ids is not None:
                entity_keys.append(np.array(ids, dtype=object)[ok_idx])
            else:
                entity_keys.append(
                    np.array([kept[i].device_id for i in ok_idx.tolist()], dtype=object)
                )
        return entity_keys[0]

    # per model: scores (NaN = not scored by the model), whether the model scored each row
    per_model: list[tuple[ModelSlot, np.ndarray, np.ndarray]] = []
    fallback_any = np.zeros(n, dtype=bool)
    for slot in models.values():
        scores = np.full(n, np.nan)
        model_ok = np.zeros(n, dtype=bool)
        if len(ok_idx):
            s = _predict(slot, X, now, entities)
            if s is not None:
                scores[ok_idx] = s
                model_ok[ok_idx] = True
                if slot.drift is not None and slot.champion is not None:
                    slot.drift.add(
                        X[:, slot.champion.columns], s >= slot.champion.threshold, now_ms
                    )
                if state.shadow_enabled and slot.challenger is not None:
                    _shadow(slot, X, s, now_ms, entities)
            elif slot.breaker.last_error and slot.champion is not None:
                out.model_errors.append((slot.name, slot.breaker.last_error))
        fallback_any |= ~model_ok
        per_model.append((slot, scores, model_ok))

    return per_model, fallback_any


def _assemble(
    out: BatchOutputs,
    kept: list[SensorReading],
    X_all: np.ndarray,
    warm: np.ndarray,
    fallback_any: np.ndarray,
    per_model: list[tuple[ModelSlot, np.ndarray, np.ndarray]],
    fsv: str,
) -> None:
    """The general case of `score_batch`: some rows fall back to rules (warming up, no model,
    an open breaker)."""
    n = len(kept)
    ok_idx = np.flatnonzero(warm)
    X = X_all if len(ok_idx) == n else X_all[ok_idx]
    pos = np.full(n, -1, dtype=np.intp)  # row of X for each kept reading
    pos[ok_idx] = np.arange(len(ok_idx))
    ids = new_event_ids(n)
    scored = out.scored
    # Hoisted per model: plain Python lists are much faster to index in the loop than arrays.
    cols = [
        (slot, scores.tolist(), model_ok.tolist(), (scores >= slot.champion.threshold).tolist())
        if slot.champion is not None
        else (slot, scores.tolist(), model_ok.tolist(), [False] * n)
        for slot, scores, model_ok in per_model
    ]
    warm_l = warm.tolist()
    fb_l = fallback_any.tolist()
    for i, r in enumerate(kept):
        mscores: list[ModelScore] = []
        flagged_any = False
        fb_reasons: list[str] = []
        for slot, sc_l, ok_l, fl_l in cols:
            champ = slot.champion
            if ok_l[i]:
                assert champ is not None
                sc = sc_l[i]
                flagged = fl_l[i]
                mscores.append(ModelScore(slot.name, champ.version, sc, champ.threshold, flagged))
                if flagged:
                    reasons = model_reasons(
                        champ.stats, X[pos[i], champ.columns], units=slot.rules.units
                    )
                    out.alerts.append(
                        _alert(
                            r,
                            slot.name,
                            champ.version,
                            slot.kind,
                            sc,
                            champ.threshold,
                            _confidence(slot.kind, sc, champ.threshold),
                            reasons,
                            False,
                        )
                    )
            else:
                sc, reasons = rule_score(r, slot.limits_for(r), slot.rules.units)
                flagged = sc > 0
                version = champ.version if champ is not None else NO_MODEL_VERSION
                why = (
                    "warming up"
                    if not warm_l[i]
                    else "no model"
                    if champ is None
                    else f"breaker {slot.breaker.state}"
                )
                fb_reasons.append(f"{slot.name}: {why}")
                mscores.append(ModelScore(slot.name, version, sc, 0.0, flagged))
                if flagged:
                    out.alerts.append(
                        _alert(
                            r,
                            slot.name,
                            version,
                            slot.kind,
                            sc,
                            0.0,
                            round(min(1.0, 0.5 + sc), 4),
                            reasons,
                            True,
                        )
                    )
            flagged_any |= flagged
        fallback = fb_l[i]
        out.fallback_rows += fallback
        scored.append(
            ScoredEvent(
                event_id=ids[i],
                ts_ms=r.ts_ms,
                reading_event_id=r.event_id,
                device_id=r.device_id,
                scores=mscores,
                decision="alert" if flagged_any else ("unknown" if not warm_l[i] else "normal"),
                fallback=fallback,
                fallback_reason="; ".join(fb_reasons),
                feature_set_version=fsv,
            )
        )


def _assemble_all_scored(
    out: BatchOutputs,
    kept: list[SensorReading],
    X: np.ndarray,
    fsv: str,
    per_model: list[tuple[ModelSlot, np.ndarray, np.ndarray]],
) -> None:
    """The common case of `score_batch`: every model scored every reading (row i of X)."""
    n = len(kept)
    ids = new_event_ids(n)
    any_flag = np.zeros(n, dtype=bool)
    cols: list[tuple[str, str, float, list[float], list[bool]]] = []
    for slot, scores, _ok in per_model:
        champ = slot.champion
        assert champ is not None
        flagged = scores >= champ.threshold
        any_flag |= flagged
        cols.append((slot.name, champ.version, champ.threshold, scores.tolist(), flagged.tolist()))
    _alerts_of(out, kept, X, per_model)
    decision = ["alert" if f else "normal" for f in any_flag.tolist()]
    if len(cols) == 1:
        (name, ver, th, sl, fl) = cols[0]
        out.scored.extend(
            ScoredEvent(
                ids[i],
                r.ts_ms,
                r.event_id,
                r.device_id,
                [ModelScore(name, ver, sl[i], th, fl[i])],
                decision[i],  # type: ignore[arg-type]
                False,
                "",
                fsv,
            )
            for i, r in enumerate(kept)
        )
        return
    out.scored.extend(
        ScoredEvent(
            ids[i],
            r.ts_ms,
            r.event_id,
            r.device_id,
            [ModelScore(name, ver, sl[i], th, fl[i]) for name, ver, th, sl, fl in cols],
            decision[i],  # type: ignore[arg-type]
            False,
            "",
            fsv,
        )
        for i, r in enumerate(kept)
    )


def _alerts_of(
    out: BatchOutputs,
    rows: Sequence[SensorReading],
    X: np.ndarray,
    per_model: list[tuple[ModelSlot, np.ndarray, np.ndarray]],
) -> None:
    """The alerts of a batch every model scored (row i of X is `rows[i]`), in reading order;
    reason codes are computed only for the flagged rows (rare)."""
    alerts: list[tuple[int, Alert]] = []
    for slot, scores, _ok in per_model:
        champ = slot.champion
        assert champ is not None
        for i in np.flatnonzero(scores >= champ.threshold).tolist():
            sc = float(scores[i])
            reasons = model_reasons(champ.stats, X[i, champ.columns], units=slot.rules.units)
            conf = _confidence(slot.kind, sc, champ.threshold)
            alert = _alert(
                rows[i], slot.name, champ.version, slot.kind, sc, champ.threshold, conf, reasons,
                False,
            )  # fmt: skip
            alerts.append((i, alert))
    alerts.sort(key=lambda a: a[0])  # reading order, as the general path emits them
    out.alerts.extend(a for _i, a in alerts)


def _shadow(
    slot: ModelSlot,
    X: np.ndarray,
    champion_scores: np.ndarray,
    now_ms: int,
    entities: Callable[[], np.ndarray],
) -> None:
    """The challenger on a sample of the rows, behind its own breaker and deadline; its
    failures are recorded (status shows them) and never affect serving."""
    challenger, champion = slot.challenger, slot.champion
    assert challenger is not None and champion is not None
    now = time.monotonic()
    if not slot.shadow_breaker.allow(now):
        return
    keys = entities() if challenger.needs_entities else None
    if slot.shadow_sample < 1.0:
        rows = np.flatnonzero(_ID_RNG.random(len(X)) < slot.shadow_sample)
        if not len(rows):
            return
        X, champion_scores = X[rows], champion_scores[rows]
        keys = None if keys is None else keys[rows]
    try:
        c = slot.shadow_caller.call(lambda: challenger.scores(X, keys), slot.deadline(len(X)))
        if np.shape(c) != np.shape(champion_scores):
            raise ValueError(f"returned shape {np.shape(c)} for {len(X)} rows")
    except Exception as exc:
        slot.shadow_breaker.record_failure(now, f"{type(exc).__name__}: {exc}")
        return
    slot.shadow_breaker.record_success()
    if slot.shadow is not None:
        slot.shadow.add(champion_scores, c, champion.threshold, challenger.threshold, now_ms)


def new_event_ids(n: int) -> list[str]:
    """`n` random version-4 UUID strings, generated in bulk (uuid.uuid4 per output is slow)."""
    return uuid4_strings(_ID_RNG, n).to_pylist()


def _alert(
    r: SensorReading,
    name: str,
    version: str,
    kind: str,
    score: float,
    threshold: float,
    confidence: float,
    reasons: list[ReasonCode],
    fallback: bool,
) -> Alert:
    return Alert(
        event_id=str(uuid.uuid4()),
        ts_ms=r.ts_ms,
        reading_event_id=r.event_id,
        device_id=r.device_id,
        kind=kind,  # type: ignore[arg-type]
        model_name=name,
        model_version=version,
        score=score,
        threshold=threshold,
        confidence=confidence,
        reasons=reasons,
        fallback=fallback,
    )


#: Scored readings a drift window holds before it is reported. PSI over a handful of readings is
#: noise (one empty reference bin adds about 0.7, far past the 0.25 threshold), so a window
#: keeps filling across report intervals until it holds this many.
DRIFT_MIN_EVENTS = 200


def collect_reports(
    models: dict[str, ModelSlot], *, min_events: int = 1, min_drift_events: int = DRIFT_MIN_EVENTS
) -> list[DriftReport | ShadowReport]:
    """Drift reports of the windows holding at least `min_drift_events` readings and shadow
    reports of those holding `min_events`; the windows reported are reset, the others keep
    filling."""
    now_ms = int(time.time() * 1000)
    out: list[DriftReport | ShadowReport] = []
    for slot in models.values():
        champ = slot.champion
        if (
            champ is not None
            and slot.drift is not None
            and slot.drift.n_events >= max(min_events, min_drift_events)
        ):
            d = slot.drift
            feats = [
                FeatureDrift(f, "psi", round(v, 6), PSI_THRESHOLD, v > PSI_THRESHOLD)
                for f, v in sorted(d.psi_by_feature().items())
            ]
            ref_rate = champ.loaded.card.reference_alert_rate
            feats.append(
                FeatureDrift(
                    "alert_rate",
                    "rate",
                    round(d.alert_rate, 6),
                    float(ref_rate) if ref_rate is not None else 0.0,
                    ref_rate is not None and d.alert_rate > 3 * max(ref_rate, 1e-3),
                )
            )
            out.append(
                DriftReport(
                    event_id=str(uuid.uuid4()),
                    ts_ms=now_ms,
                    model_name=slot.name,
                    model_version=champ.version,
                    window_start_ms=d.start_ms,
                    window_end_ms=now_ms,
                    n_events=d.n_events,
                    features=feats,
                    drifted=any(f.drifted for f in feats),
                )
            )
            d.reset()
        sh = slot.shadow
        if sh is not None and sh.n_events >= min_events:
            s = sh.summary()
            out.append(
                ShadowReport(
                    event_id=str(uuid.uuid4()),
                    ts_ms=now_ms,
                    model_name=slot.name,
                    champion_version=sh.champion_version,
                    challenger_version=sh.challenger_version,
                    window_start_ms=sh.start_ms,
                    window_end_ms=now_ms,
                    n_events=sh.n_events,
                    agreement=s["agreement"],
                    champion_alert_rate=s["champion_alert_rate"],
                    challenger_alert_rate=s["challenger_alert_rate"],
                    mean_abs_score_diff=s["mean_abs_score_diff"],
                    metrics={"max_abs_score_diff": s["max_abs_score_diff"]},
                )
            )
            slot.shadow = ShadowWindow(sh.champion_version, sh.challenger_version)
    return out
