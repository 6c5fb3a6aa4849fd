"""The columnar encoder writes what the one-at-a-time contract accepts, value for value."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from features.contract import ContractError, format_ts
from features.contract.bulk import (
    encode_readings_bulk,
    iso_timestamps,
    reading_prefixes,
    uuid4_strings,
)
from features.spec import load_spec

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names
SENSOR_RANGES = FLEET.ranges


@st.composite
def columns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 20))
    cols = []
    for name in SENSORS:
        lo, hi = SENSOR_RANGES[name]
        elems = st.floats(lo, hi) | st.just(float("nan"))
        cols.append(draw(hnp.arrays(np.float64, n, elements=elems)))
    ts = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 253402300799999)))
    return np.stack(cols, axis=1), ts


@settings(max_examples=100, deadline=None)
@given(columns(), st.integers(0, 2**32))
def test_bulk_encoding_parses_back_to_the_same_readings(
    cols: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    values, ts = cols
    n = len(ts)
    devices = [f'dev "{i}" \\ ü' for i in range(n)]  # quotes, backslashes, non-ASCII
    ids = uuid4_strings(np.random.default_rng(seed), n)
    out = encode_readings_bulk(
        ids, ts, reading_prefixes(devices, ["s"] * n, ["pump"] * n), values, FLEET.contract
    )
    for i, text in enumerate(out):
        r = FLEET.contract.parse_reading(text.encode())
        assert r.event_id == ids[i].as_py()
        assert r.device_id == devices[i]
        assert r.ts_ms == int(ts[i])
        assert (r.site, r.machine_type) == ("s", "pump")
        for j, name in enumerate(SENSORS):
            v = values[i, j]
            assert r.values[name] == (None if np.isnan(v) else float(v))


def test_uuids_are_valid_v4_and_deterministic_for_a_seed() -> None:
    a = uuid4_strings(np.random.default_rng(7), 1000).to_pylist()
    b = uuid4_strings(np.random.default_rng(7), 1000).to_pylist()
    assert a == b
    assert len(set(a)) == 1000
    for s in a:
        u = uuid.UUID(s)
        assert u.version == 4 and str(u) == s


def test_out_of_range_values_are_refused() -> None:
    values = np.full((2, len(SENSORS)), 1.0)
    values[1, SENSORS.index("vibration")] = np.inf
    ids = uuid4_strings(np.random.default_rng(0), 2)
    prefixes = reading_prefixes(["a", "b"], ["", ""], ["", ""])
    with pytest.raises(ContractError) as err:
        encode_readings_bulk(ids, np.array([0, 1]), prefixes, values, FLEET.contract)
    assert err.value.field == "values.vibration"


@settings(deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 253402300799999)))
def test_vectorised_timestamps_match_the_contract_formatter(ts: np.ndarray) -> None:
    assert iso_timestamps(ts).to_pylist() == [format_ts(int(x)) for x in ts]
