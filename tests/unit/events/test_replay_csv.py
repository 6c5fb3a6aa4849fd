"""CSV layout detection and row parsing for replay (no Kafka)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from features.contract import ContractError
from features.spec import DatasetSpec, load_spec
from streaming.sources.replay_csv import (
    LabelRuns,
    RowError,
    RowOk,
    anomaly_windows,
    detect_layout,
    entity_of,
    find_windows_file,
    layout_for_spec,
    parse_timestamp,
    read_rows,
    relative_paths,
    sensor_name,
)

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)

NAB = Path("/work/shared/data/nab")


def _ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    return round(dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2013-12-02 21:15:00", _ms(2013, 12, 2, 21, 15)),
        ("2013-12-02T21:15:00Z", _ms(2013, 12, 2, 21, 15)),
        ("2013-12-02T22:15:00+01:00", _ms(2013, 12, 2, 21, 15)),
        ("2013-12-02 21:15:00.250", _ms(2013, 12, 2, 21, 15) + 250),
        ("12/02/2013 21:15", _ms(2013, 12, 2, 21, 15)),
        ("1386018900", _ms(2013, 12, 2, 21, 15)),
        ("1386018900000", _ms(2013, 12, 2, 21, 15)),
    ],
)
def test_timestamps_in_common_spellings(text: str, expected: int) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2013-13-02 00:00:00", "nan", "-5", "inf"])
def test_bad_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_sensor_names_are_normalised_to_the_contract() -> None:
    assert sensor_name("Temperature", 0) == "temperature"
    assert sensor_name("Motor Current (A)", 3) == "motor_current_a"
    assert sensor_name("%%%", 4) == "column_4"
    assert len(sensor_name("x" * 100, 0)) == 64


def test_layout_of_a_semicolon_file_with_device_label_and_text_columns(tmp_path: Path) -> None:
    p = tmp_path / "plant.csv"
    p.write_text(
        "Zeit;machine_id;Temperature;Motor Current (A);firmware;machine_status\n"
        "2026-01-01 00:00:00;m-1;40.1;12.0;v1;NORMAL\n"
        "2026-01-01 00:01:00;m-2;40.2;;v1;BROKEN\n"
    )
    layout = detect_layout(p)
    assert layout.delimiter == ";"
    assert layout.timestamp_column == "Zeit"  # found by its values, not its name
    assert layout.device_id_column == "machine_id"
    assert layout.sensors == {"Temperature": "temperature", "Motor Current (A)": "motor_current_a"}
    assert layout.text_columns == ("firmware",)
    assert layout.label_columns == ("machine_status",)
    rows = list(read_rows(p, layout))
    assert all(isinstance(r, RowOk) for r in rows)
    a, b = (r.reading for r in rows if isinstance(r, RowOk))
    assert (a.device_id, b.device_id) == ("m-1", "m-2")
    assert a.values == {"temperature": 40.1, "motor_current_a": 12.0}
    assert b.values["motor_current_a"] is None
    assert a.extra == {"firmware": "v1"}
    assert [r.labels for r in rows if isinstance(r, RowOk)] == [
        {"machine_status": "NORMAL"},
        {"machine_status": "BROKEN"},
    ]


def test_named_columns_must_exist(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("t,v\n2026-01-01,1\n")
    with pytest.raises(ValueError, match="nope"):
        detect_layout(p, timestamp_column="nope")
    with pytest.raises(ValueError, match="timestamp"):
        (tmp_path / "y.csv").write_text("a,b\n1,2\n")
        detect_layout(tmp_path / "y.csv")


def test_event_ids_are_stable_per_file_and_row(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,2\n")
    layout = detect_layout(p)
    first = [r.reading.event_id for r in read_rows(p, layout) if isinstance(r, RowOk)]
    again = [r.reading.event_id for r in read_rows(p, layout) if isinstance(r, RowOk)]
    assert first == again and len(set(first)) == 2


def test_every_broken_row_is_reported_with_its_bytes(tmp_path: Path) -> None:
    p = tmp_path / "pump-3.csv"
    good = [f"2025-12-31 23:5{i}:00,1.5,2\n".encode() for i in range(5)]
    body = [
        b"timestamp,rpm,pressure\n",
        *good,
        b"2026-01-01 00:01:00,1e999,2\n",  # infinity
        b"2026-01-01 00:02:00,\xff\xfe,2\n",  # not UTF-8
        b"2026-01-01 00:03:00,200000,2\n",  # rpm beyond its range
        b"\n",  # blank: not a row
        b'2026-01-01 00:04:00,"3,5",2\n',  # quoted comma: not a number
        b"2026-01-01 00:05:00,1\n",  # short row
    ]
    p.write_bytes(b"".join(body))
    rows = list(read_rows(p, detect_layout(p), contract=FLEET.contract))
    assert [type(r).__name__ for r in rows] == ["RowOk"] * 5 + ["RowError"] * 5
    errors = [r for r in rows if isinstance(r, RowError)]
    assert [e.line for e in errors] == [i + 1 for i in (6, 7, 8, 10, 11)]  # 1-based lines
    assert [e.raw for e in errors] == [body[i] for i in (6, 7, 8, 10, 11)]
    assert all(isinstance(e.error, ContractError) for e in errors)
    assert [e.error.field for e in errors] == ["rpm", "$", "values.rpm", "rpm", "$"]  # type: ignore[attr-defined]
    assert [e.stage for e in errors] == ["parse", "parse", "validate", "parse", "parse"]
    assert {e.device_id for e in errors} == {"pump-3"}


def test_nab_windows_are_found_and_matched() -> None:
    csv_path = NAB / "data/realKnownCause/machine_temperature_system_failure.csv"
    wfile = find_windows_file(csv_path)
    assert wfile == NAB / "labels/combined_windows.json"
    raw = json.loads(wfile.read_text())
    spans = anomaly_windows(raw, csv_path)
    key = "realKnownCause/machine_temperature_system_failure.csv"
    assert len(spans) == len(raw[key]) == 4
    assert spans[0][0] == parse_timestamp(raw[key][0][0])
    assert anomaly_windows(raw, Path("/elsewhere/other.csv")) == []


def test_label_columns_become_runs_of_non_normal_values() -> None:
    runs = LabelRuns()
    for t, v in enumerate(["ok", "BROKEN", "BROKEN", "RECOVERING", "ok", "BROKEN"]):
        runs.add("m-1", t, {"status": v})
    assert runs.close() == [
        ("m-1", "status:BROKEN", 1, 2),
        ("m-1", "status:RECOVERING", 3, 3),
        ("m-1", "status:BROKEN", 5, 5),
    ]


def test_every_nab_file_has_a_timestamp_and_one_value_sensor() -> None:
    files = sorted((NAB / "data").glob("*/*.csv"))
    assert len(files) >= 50
    for path in files:
        layout = detect_layout(path)
        assert layout.timestamp_column == "timestamp", path
        assert layout.sensors == {"value": "value"}, path
        assert layout.device_id_column is None and not layout.label_columns


RIG = DatasetSpec.from_yaml_text(
    """
name: rig
cadence: 1s
event_time: {column: zeit}
sensors:
  accel_rms: {unit: g, range: [0, 50]}
  volume_flow: {unit: l/min, range: [0, 500]}
labels:
  - {kind: column, column: anomaly, missing: normal}
""",
    "rig.yaml",
)


def test_files_of_the_same_name_in_other_folders_are_other_entities_with_other_ids(
    tmp_path: Path,
) -> None:
    paths = []
    for run in ("a", "b"):
        (tmp_path / "runs" / run).mkdir(parents=True)
        p = tmp_path / "runs" / run / "0.csv"
        p.write_text("zeit;Accel RMS;volume_flow;anomaly\n2014-02-01 00:00:00;1.5;3;0\n")
        paths.append(p)
    rel = relative_paths(paths)
    assert [entity_of(rel[p]) for p in paths] == ["a/0", "b/0"]
    ids, devices = [], []
    for p in paths:
        layout = layout_for_spec(p, RIG)
        assert layout.sensors == {"Accel RMS": "accel_rms", "volume_flow": "volume_flow"}
        assert layout.label_columns == ("anomaly",) and layout.timestamp_column == "zeit"
        for row in read_rows(p, layout, device_id=entity_of(rel[p]), id_key=rel[p]):
            assert isinstance(row, RowOk)
            ids.append(row.reading.event_id)
            devices.append(row.reading.device_id)
    assert devices == ["a/0", "b/0"] and len(set(ids)) == 2
    # one file alone keeps its name, so its ids are those of a replay by file name
    assert relative_paths(paths[:1]) == {paths[0]: "0.csv"}
    assert relative_paths(paths[:1], roots=paths) == {paths[0]: "a/0.csv"}


def test_a_file_without_the_label_column_replays_and_the_spec_contract_applies(
    tmp_path: Path,
) -> None:
    p = tmp_path / "clean.csv"
    p.write_text(
        "zeit;accel_rms;volume_flow;operator\n"
        "2014-02-01 00:00:00;1.5;3;ann\n"
        "2014-02-01 00:00:01;99;3;ann\n"  # outside accel_rms's range [0, 50]
    )
    layout = layout_for_spec(p, RIG)
    assert layout.label_columns == () and layout.text_columns == ()
    rows = list(read_rows(p, layout, contract=RIG.contract))
    assert isinstance(rows[0], RowOk) and rows[0].reading.values == {
        "accel_rms": 1.5,
        "volume_flow": 3.0,
    }
    assert rows[0].reading.ts_ms == _ms(2014, 2, 1)
    assert isinstance(rows[1], RowError) and rows[1].error.field == "values.accel_rms"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="none of the spec's sensors"):
        (tmp_path / "other.csv").write_text("zeit;x\n2014-02-01 00:00:00;1\n")
        layout_for_spec(tmp_path / "other.csv", RIG)
