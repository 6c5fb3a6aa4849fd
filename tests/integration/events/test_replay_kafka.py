"""CSV replay on a real broker: one event per NAB row with its time; broken rows to the DLQ."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from kafka_read_events import read_all, record_count

from features.contract import parse_reading
from features.contract.topics import Topics
from features.spec import DatasetSpec, load_spec
from streaming.sources.producers import backfill  # noqa: F401  (same package loads cleanly)
from streaming.sources.replay import replay_csv

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)

pytestmark = pytest.mark.integration

NAB = Path("/work/shared/data/nab")
MACHINE_TEMP = NAB / "data/realKnownCause/machine_temperature_system_failure.csv"


def _expected_rows(path: Path) -> list[tuple[int, float]]:
    with path.open() as f:
        out = []
        for row in csv.DictReader(f):
            t = dt.datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
            out.append((round(t.timestamp() * 1000), float(row["value"])))
        return out


def test_a_nab_file_lands_one_event_per_row_with_its_time(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    expected = _expected_rows(MACHINE_TEMP)
    labels = tmp_path / "labels.csv"
    stats = replay_csv(kafka_bootstrap, topics, [MACHINE_TEMP], labels_path=labels)
    assert (stats.rows, stats.produced, stats.dlq) == (len(expected), len(expected), 0)
    assert record_count(kafka_bootstrap, topics.sensor_readings) == len(expected)
    got = []
    for m in read_all(kafka_bootstrap, topics.sensor_readings, len(expected)):
        r = parse_reading(m.value() or b"")
        assert m.timestamp()[1] == r.ts_ms
        assert r.device_id == MACHINE_TEMP.stem and m.key() == r.device_id.encode()
        got.append((r.ts_ms, r.values["value"]))
    assert sorted(got) == sorted(expected)
    # NAB's labelled anomaly windows for this file travel along as ground truth.
    table = pacsv.read_csv(labels).to_pylist()
    assert len(table) == 4 and {x["fault_type"] for x in table} == {"anomaly_window"}
    assert all(x["start_ms"] < x["end_ms"] for x in table)


def test_broken_rows_go_to_the_dlq_with_their_reason(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    path = tmp_path / "press-7.csv"
    lines = [
        "time;temperature;vibration;status",
        "2026-03-01T00:00:00Z;40.5;2.0;ok",
        "2026-03-01T00:01:00Z;not-a-number;2.1;ok",  # line 3: bad number
        "2026-03-01T00:02:00Z;41.0;2.2;ok",
        "yesterday;41.2;2.2;ok",  # line 5: bad timestamp
        "2026-03-01T00:04:00Z;41.3;-5.0;ok",  # line 6: vibration below its physical range
        "2026-03-01T00:05:00Z;41.4;2.3",  # line 7: a field missing
        "2026-03-01T00:06:00Z;41.5;;FAULT",  # a dropout: valid, value null
        "2026-03-01T00:07:00Z;inf;2.4;FAULT",  # line 9: infinity
    ]
    path.write_text("\n".join(lines) + "\n")
    stats = replay_csv(
        kafka_bootstrap, topics, [path], label_columns=["status"], contract=FLEET.contract
    )
    assert (stats.rows, stats.produced, stats.dlq) == (8, 3, 5)
    dead = read_all(kafka_bootstrap, topics.dlq, 5)
    assert len(dead) == 5
    by_row: dict[int, tuple[bytes | None, dict[str, bytes]]] = {}
    for m in dead:
        received: Any = m.headers() or []  # a consumed record's headers: (name, bytes) pairs
        h = {k: v for k, v in received if isinstance(v, bytes)}
        assert h["edaml.error.file"] == str(path).encode()
        assert m.key() == b"press-7"
        by_row[int(h["edaml.error.row"])] = (m.value(), h)
    assert sorted(by_row) == [3, 5, 6, 7, 9]
    for line, (value, h) in by_row.items():
        assert value == (lines[line - 1] + "\n").encode()  # the original bytes
        assert h["edaml.error.exception.class"] == b"ContractError"
        assert h["edaml.error.exception.message"] and h["edaml.error.reason"]
    assert by_row[3][1]["edaml.error.field"] == b"temperature"
    assert by_row[5][1]["edaml.error.field"] == b"time"
    assert by_row[6][1]["edaml.error.field"] == b"values.vibration"
    assert by_row[6][1]["edaml.error.stage"] == b"replay.validate"
    assert by_row[7][1]["edaml.error.stage"] == b"replay.parse"
    assert by_row[9][1]["edaml.error.field"] == b"temperature"
    good = [
        FLEET.contract.parse_reading(m.value() or b"")
        for m in read_all(kafka_bootstrap, topics.sensor_readings, 3)
    ]
    assert sorted(r.values["vibration"] is None for r in good) == [False, False, True]


def test_a_dataset_of_many_files_replays_as_distinct_entities(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    spec = DatasetSpec.from_yaml_text(
        """
name: rig
cadence: 1s
event_time: {column: datetime}
sensors:
  accel_rms: {unit: g, range: [0, 50]}
  thermocouple: {unit: degC, range: [-200, 1300]}
labels: [{kind: column, column: anomaly, missing: normal}]
""",
        "rig.yaml",
    )
    paths = []
    for run, labelled in (("a", True), ("b", True), ("clean", False)):
        p = tmp_path / "runs" / run / "0.csv"
        p.parent.mkdir(parents=True)
        head = "datetime;Accel RMS;Thermocouple" + (";anomaly" if labelled else "")
        rows = [
            f"2014-02-0{1 + i % 2} 00:00:0{i};{1.5 + i};{20 + i}"
            + (f";{i % 2}" if labelled else "")
            for i in range(4)
        ]
        p.write_text("\n".join([head, *rows]) + "\n")
        paths.append(p)
    labels = tmp_path / "labels.csv"
    stats = replay_csv(kafka_bootstrap, topics, paths, spec=spec, labels_path=labels)
    assert (stats.rows, stats.produced, stats.dlq) == (12, 12, 0)
    assert [stats.files[str(p)].entity for p in paths] == ["a/0", "b/0", "clean/0"]
    assert [stats.files[str(p)].labels_missing for p in paths] == ["", "", "normal"]
    got = [
        spec.contract.parse_reading(m.value() or b"")
        for m in read_all(kafka_bootstrap, topics.sensor_readings, 12)
    ]
    assert len({r.event_id for r in got}) == 12  # same file name and rows: still other ids
    assert {r.device_id for r in got} == {"a/0", "b/0", "clean/0"}
    assert min(r.ts_ms for r in got) == round(
        dt.datetime(2014, 2, 1, tzinfo=dt.UTC).timestamp() * 1000
    )
    assert all(set(r.values) == {"accel_rms", "thermocouple"} for r in got)
    runs = pacsv.read_csv(labels).to_pylist()
    assert {x["device_id"] for x in runs} == {"a/0", "b/0"}  # the clean run has no anomaly
