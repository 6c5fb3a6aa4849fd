"""The scorer's columnar hot path keeps the answers: `score_columns` over decoded columns gives
the events and alerts `score_batch` gives over the parsed readings (windowed features, several
partitions, duplicates, the fallback path), and `encode_scored_columns` writes the contract
encoder's bytes."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pyarrow as pa
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from features.contract import encode
from features.contract.bulk import encode_readings_bulk, reading_prefixes
from features.contract.columns import decode_readings
from features.contract.events import Alert, ScoredEvent
from features.engine.online import OnlineFeatures
from features.ml.model_card import ModelCard
from features.spec import load_spec
from streaming.registry import LoadedModel
from streaming.serving.accept import prepare
from streaming.serving.device_state import PartitionedFeatures
from streaming.serving.fallback import FallbackRules
from streaming.serving.outputs import encode_scored_columns
from streaming.serving.scoring import (
    BatchOutputs,
    ModelSlot,
    ReadingColumns,
    ScoredColumns,
    ScorerState,
    score_batch,
    score_columns,
)
from streaming.sources.sim import SimConfig, Simulator

FLEET = load_spec()
FS = FLEET.feature_set


def _records(devices: int = 12, steps: int = 60) -> list[bytes]:
    sim = Simulator(SimConfig(devices=devices, seed=3, interval_s=60.0))
    f = sim.fleet
    prefixes = reading_prefixes(f.device_ids, f.sites, f.machine_types)
    out: list[bytes] = []
    for _ in range(steps):
        s = sim.step()
        values = encode_readings_bulk(s.event_ids, s.ts_ms, prefixes, s.values, FLEET.contract)
        out += [v.encode() if isinstance(v, str) else v for v in values]
    out += out[-30:-20]  # redeliveries within the dedup horizon: duplicates the features drop
    return out


def _model(records: list[bytes]) -> LoadedModel:
    st = PartitionedFeatures(functools.partial(OnlineFeatures, FS))
    readings = [FLEET.contract.parse_reading(r) for r in records]
    X = st.update_routed(readings, [("t", 0)] * len(readings)).values
    model = make_pipeline(
        SimpleImputer(keep_empty_features=True), IsolationForest(n_estimators=20, random_state=0)
    ).fit(X)
    threshold = float(np.quantile(-model.score_samples(X), 0.9))  # some alerts
    card = ModelCard(
        model_name="m",
        kind="anomaly",
        feature_set_version=FS.version,
        feature_names=list(FS.names),
        threshold=threshold,
        reference={},
    )
    return LoadedModel("m", "4", card, model)


def _slots(loaded: LoadedModel | None) -> dict[str, ModelSlot]:
    slot = ModelSlot("m", rules=FallbackRules.from_spec(FLEET))
    if loaded is not None:
        slot.set_champion(prepare(loaded, feature_set_version=FS.version, feature_names=FS.names))
    return {"m": slot}


def _state() -> ScorerState:
    return ScorerState(PartitionedFeatures(functools.partial(OnlineFeatures, FS)), FS.version)


def _columns(records: list[bytes]) -> ReadingColumns:
    dec, errors = decode_readings(records, FLEET.contract)
    assert not errors
    parse = FLEET.contract.parse_reading
    return ReadingColumns(
        dec.event_id, dec.device_id, dec.ts_ms, dec.sensors, lambda i: parse(records[i])
    )


def _same(a: list[ScoredEvent] | list[Alert], b: list[ScoredEvent] | list[Alert]) -> None:
    """Equal but for the output's own random event id."""
    assert len(a) == len(b)
    assert [replace(x, event_id="") for x in a] == [replace(x, event_id="") for x in b]


def _both(
    records: list[bytes], loaded: LoadedModel | None, batch: int = 97
) -> tuple[list[BatchOutputs], list[BatchOutputs]]:
    rows, cols = _state(), _state()
    slots_r, slots_c = _slots(loaded), _slots(loaded)
    got_r, got_c = [], []
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        readings = [FLEET.contract.parse_reading(r) for r in chunk]
        # three partitions, a device always in the same one (as Kafka's keyed records)
        keys = [("t", sum(map(ord, r.device_id)) % 3) for r in readings]
        got_r.append(score_batch(slots_r, readings, rows, now=1.0, partitions=keys))
        got_c.append(score_columns(slots_c, _columns(chunk), cols, now=1.0, partitions=keys))
    assert rows.duplicates == cols.duplicates > 0
    return got_r, got_c


def test_columns_give_score_batch_events_and_alerts() -> None:
    records = _records()
    got_r, got_c = _both(records, _model(records))
    assert all(o.columns is not None and not o.scored for o in got_c)  # the columnar path ran
    _same([e for o in got_r for e in o.scored], [e for o in got_c for e in o.scored_events()])
    alerts = [a for o in got_r for a in o.alerts]
    assert alerts
    _same(alerts, [a for o in got_c for a in o.alerts])


def test_columns_fall_back_like_score_batch_without_a_model() -> None:
    records = _records(devices=5, steps=30)
    got_r, got_c = _both(records, None)
    assert all(o.columns is None for o in got_c)  # rules: the general path
    _same([e for o in got_r for e in o.scored], [e for o in got_c for e in o.scored])
    _same([a for o in got_r for a in o.alerts], [a for o in got_c for a in o.alerts])
    assert sum(o.fallback_rows for o in got_c) == sum(o.fallback_rows for o in got_r) > 0


def test_encode_scored_columns_is_the_contract_encoder() -> None:
    n = 6
    devices = ["plain-1", 'q"uote', "back\\slash", "ünïcode", "sp ace", "x"]
    a_scores = [0.1, 0.5, 1e-7, 0.56, 123456.789, 0.3]
    a_flags = [False, False, False, True, True, False]
    r_scores = [0.0, 1.0, 0.25, 0.5, 1 / 3, 2e-300]
    r_flags = [False, True, False, True, False, False]
    sc = ScoredColumns(
        pa.array([f"00000000-0000-4000-8000-00000000000{i}" for i in range(n)]),
        np.array([0, 1, 1_700_000_000_123, 1_700_000_000_999, 86_399_999, 5], dtype=np.int64),
        pa.array([f"11111111-1111-4111-8111-11111111111{i}" for i in range(n)]),
        pa.array(devices),
        [
            ("anomaly", "12", 0.55, np.array(a_scores), np.array(a_flags)),
            ("risk", "3", 0.5, np.array(r_scores), np.array(r_flags)),
        ],
        np.array([False, True, False, True, True, False]),
        "fs-abc",
    )
    events = sc.events()
    assert encode_scored_columns(sc) == [encode(e) for e in events]
    plain = replace(sc, device_id=pa.array(["d"] * n))  # no escaping needed: the Arrow path
    assert encode_scored_columns(plain) == [encode(e) for e in plain.events()]
