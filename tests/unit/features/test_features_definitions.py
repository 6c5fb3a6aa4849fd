"""The declarative feature set: names, version, validation."""

from __future__ import annotations

import dataclasses

import pytest

from features.engine.definitions import HOUR_MS, FeatureSet, Window
from features.spec import load_spec

FEATURE_SET = load_spec().feature_set  # the fleet's


def test_names_are_unique_and_a_reasonable_number() -> None:
    names = FEATURE_SET.names
    assert len(set(names)) == len(names)
    assert 60 <= len(names) <= 100
    assert "vibration__slope_5m" in names and "temperature__zscore" in names
    assert FEATURE_SET.index["count_24h"] == names.index("count_24h")


def test_version_is_a_hash_of_the_definitions() -> None:
    same = dataclasses.replace(FEATURE_SET)
    assert same.version == FEATURE_SET.version
    longer = dataclasses.replace(
        FEATURE_SET,
        windows=(*FEATURE_SET.windows[:2], Window("24h", 25 * HOUR_MS, ("mean", "std", "bad"))),
    )
    assert longer.version != FEATURE_SET.version
    assert dataclasses.replace(FEATURE_SET, lateness_ms=60_000).version != FEATURE_SET.version
    assert dataclasses.replace(FEATURE_SET, revision=99).version != FEATURE_SET.version


def test_windows_must_outlast_the_lateness_bound() -> None:
    with pytest.raises(ValueError, match="longer than the lateness"):
        FeatureSet(
            sensors=("a",),
            scales=(10,),
            windows=(Window("1m", 60_000, ("mean",)),),
            lateness_ms=120_000,
        )


def test_dedup_horizon_defaults_to_five_times_the_lateness_bound() -> None:
    assert FEATURE_SET.dedup_horizon_ms == 5 * FEATURE_SET.lateness_ms
    with pytest.raises(ValueError, match="dedup_horizon_ms must be longer"):
        dataclasses.replace(FEATURE_SET, dedup_horizon_ms=FEATURE_SET.lateness_ms)


def test_windows_are_made_of_panes() -> None:
    w24 = FEATURE_SET.windows[-1]
    assert (w24.pane_ms, w24.panes) == (24 * HOUR_MS // 60, 60)  # PANES_PER_WINDOW by default
    # the window starts at the beginning of its first pane: between length - pane and length
    m = 10 * 24 * HOUR_MS + 7 * 60_000 + 123
    assert w24.start_ms(m) % w24.pane_ms == 0
    assert m - w24.length_ms < w24.start_ms(m) <= m - w24.length_ms + w24.pane_ms
    with pytest.raises(ValueError, match="pane_ms must divide"):
        dataclasses.replace(FEATURE_SET, windows=(Window("1h", HOUR_MS, ("mean",), 7_000),))
    # a pane may not eat into the lateness bound
    with pytest.raises(ValueError, match="one pane longer than the lateness"):
        dataclasses.replace(FEATURE_SET, windows=(Window("3m", 180_000, ("mean",), 90_000),))
    # pane length is part of the definitions, so of the version
    finer = (*FEATURE_SET.windows[:2], dataclasses.replace(w24, pane_ms=5 * 60_000))
    assert dataclasses.replace(FEATURE_SET, windows=finer).version != FEATURE_SET.version
