"""The dataset spec: validation with one-line errors, the loader, and what is derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contract import ContractError
from features.spec import DatasetSpec, SpecError, default_windows, list_datasets, load_spec

BASE = """name: x
cadence: 5m
sensors:
  value: {range: [0, 80]}
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_yaml_text(text, "datasets/x.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE.replace("[0, 80]", "[120, 80]"), "sensors.value.range: low 120 > high 80; swap them"),
        (BASE + "cadense: 1m\n", "cadense: unknown key; remove it or use one of: cadence,"),
        (BASE + "  value: {}\n", "sensors.value: listed twice (lines 4 and 5); keep one"),
        (
            BASE + "models: {anomaly: {kind: lstm}}\n",
            "models.anomaly.kind: must be 'isolation_forest', 'pca', 'robust_z' or 'auto'",
        ),
        (
            BASE + "sensors2: {}\n",
            "sensors2: unknown key; remove it or use one of:",
        ),
        (
            BASE + "labels: [{kind: column, column: value}]\n",
            "sensors: ['value'] is both a label column and a sensor",
        ),
        (
            BASE.replace("{range: [0, 80]}", "{limits: {low: 3, high: 1}}"),
            "sensors.value.limits: low 3 > high 1; swap them",
        ),
        (
            BASE + "features: {ratios: [{name: r, numerator: value, denominator: b}]}\n",
            "features.ratios: r uses unknown sensor 'b'; use one of value",
        ),
        (BASE.replace("cadence: 5m", "cadence: soon"), "cadence: 'soon' is not a duration"),
    ],
)
def test_a_bad_spec_is_refused_with_file_key_and_fix(text: str, expected: str) -> None:
    msg = _error(text)
    assert msg.startswith("datasets/x.yaml: "), msg
    assert expected in msg, msg
    assert all(line.startswith("datasets/x.yaml: ") for line in msg.splitlines())


def test_the_fleet_spec_declares_todays_fleet() -> None:
    fleet = load_spec()
    assert fleet.name == "iot-fleet"
    assert fleet.sensor_names == ("temperature", "vibration", "pressure", "current", "rpm")
    fs = fleet.feature_set
    assert [(w.name, w.length_ms) for w in fs.windows] == [
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("24h", 86_400_000),
    ]
    assert fs.lateness_ms == 120_000
    assert "vibration_per_current__mean_5m" in fs.names
    assert fleet.model_names == ("iot-anomaly", "iot-failure-risk")
    assert fleet.topics().sensor_readings == "iot.sensor-readings"
    assert fleet.topics("t1-").dlq == "t1-iot.dlq"


def test_operating_limits_differ_per_machine_type() -> None:
    fleet = load_spec()
    assert fleet.limits_for("pump")["pressure"].low == 0.5
    # a fan's healthy pressure (0.1-0.4 bar) is inside the fan's limits, not the default's
    fan = fleet.limits_for("fan")["pressure"]
    assert fan.low is not None and fan.low < 0.1
    assert fleet.limits_for(None) == fleet.fallback_limits
    assert set(fleet.group_limits) == {"fan"}


def test_the_contract_refuses_values_outside_the_declared_range() -> None:
    spec = DatasetSpec.from_yaml_text(BASE, "x.yaml")
    reading = (
        b'{"schema":"iot.sensor_reading/v1","event_id":"00000000-0000-0000-0000-000000000001",'
        b'"ts":"2014-02-01T00:00:00.000Z","device_id":"m","values":{"value":%s}}'
    )
    assert spec.contract.parse_reading(reading % b"79.5").values == {"value": 79.5}
    with pytest.raises(ContractError) as info:
        spec.contract.parse_reading(reading % b"81.0")
    assert info.value.field == "values.value"


def test_default_windows_follow_the_cadence() -> None:
    def spans(cadence_ms: int) -> list[str]:
        return [w.name for w in default_windows(cadence_ms)]

    assert spans(60_000) == ["5m", "1h", "24h"]
    assert spans(1000) == ["5s", "1m", "30m"]
    assert spans(300_000) == ["30m", "6h", "7d"]
    rig = DatasetSpec.from_yaml_text(BASE.replace("5m", "1s"), "x.yaml").feature_set
    assert rig.lateness_ms == 2000 and rig.windows[0].length_ms == 5000


def test_a_dataset_gets_its_own_topics_and_models() -> None:
    spec = DatasetSpec.from_yaml_text(BASE, "x.yaml")
    assert spec.topics().sensor_readings == "x.iot.sensor-readings"
    assert spec.model_names == ("x.anomaly",)  # no failure labels: no failure-risk model
    failing = DatasetSpec.from_yaml_text(
        BASE + "labels: [{kind: events, topic: iot.maintenance, meaning: failure}]\n", "x.yaml"
    )
    assert failing.model_names == ("x.anomaly", "x.failure-risk")


def test_the_loader_takes_a_name_or_a_path(tmp_path: Path) -> None:
    (tmp_path / "rig.yaml").write_text(BASE.replace("name: x", "name: rig"))
    assert load_spec("rig", root=tmp_path).name == "rig"
    assert load_spec(tmp_path / "rig.yaml").name == "rig"
    assert list_datasets(tmp_path) == ["rig"]
    with pytest.raises(SpecError, match="no such dataset spec; known datasets: rig"):
        load_spec("nope", root=tmp_path)
    assert "iot-fleet" in list_datasets()


@pytest.mark.parametrize("kind", ["isolation_forest", "pca", "robust_z", "auto"])
def test_every_model_kind_of_the_spec_is_a_detector_kind(kind: str) -> None:
    from features.ml.detectors import ANOMALY_KINDS, make_detector

    spec = DatasetSpec.from_yaml_text(BASE + f"models: {{anomaly: {{kind: {kind}}}}}\n", "x")
    kinds = spec.models.anomaly.detector_kinds
    assert kinds and set(kinds) <= set(ANOMALY_KINDS)
    for k in kinds:
        make_detector(k)


def test_the_past_horizon_is_a_spec_setting() -> None:
    assert load_spec().event_time.past_horizon_ms == 7 * 86_400_000
    spec = DatasetSpec.from_yaml_text(BASE + "event_time: {past_horizon: off}\n", "x")
    assert spec.event_time.past_horizon_ms is None
    spec = DatasetSpec.from_yaml_text(BASE + "event_time: {past_horizon: 2d}\n", "x")
    assert spec.event_time.past_horizon_ms == 2 * 86_400_000
