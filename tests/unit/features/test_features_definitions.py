"""The declarative feature set: names, version, validation."""

from __future__ import annotations

import dataclasses

import pytest

from features.definitions import FEATURE_SET, HOUR_MS, FeatureSet, Window


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


def test_dedup_horizon_defaults_to_longest_window_plus_lateness() -> None:
    assert FEATURE_SET.dedup_horizon_ms == 24 * HOUR_MS + FEATURE_SET.lateness_ms
