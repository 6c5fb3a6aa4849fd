"""`edaml dataset init | list | show` without Kafka: the sniffer's proposal, and bad specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edaml.commands.dataset import register
from features.spec import load_spec

NAB = Path("/work/shared/data/nab/data/realKnownCause")


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # keeps typer from collapsing to a single command
        pass

    return app


def _rig_file(path: Path, seed: int, labelled: bool) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "Zeit;Accel RMS;Thermocouple 1;volume_flow" + (";anomaly" if labelled else "")
    lines = [head]
    for i in range(600):
        t = f"2014-03-01 10:{i // 60:02d}:{i % 60:02d}"
        row = f"{t};{rng.normal(2, 0.1):.4f};{rng.normal(80, 1):.3f};{rng.normal(40, 2):.3f}"
        lines.append(row + (f";{int(300 <= i < 320)}" if labelled else ""))
    path.write_text("\n".join(lines) + "\n")


def test_init_proposes_a_spec_from_files_and_says_what_to_review(tmp_path: Path) -> None:
    files = [tmp_path / "runs" / "exp1" / "0.csv", tmp_path / "runs" / "exp2" / "0.csv"]
    files.append(tmp_path / "runs" / "clean" / "0.csv")
    for i, f in enumerate(files):
        _rig_file(f, i, labelled="clean" not in str(f))
    out = tmp_path / "rig.yaml"
    args = ["dataset", "init", *map(str, files), "--name", "rig", "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "review:" in result.output and "units are blank" in result.output
    assert "1 file(s) lack label column 'anomaly'" in result.output
    spec = load_spec(out)
    assert spec.sensor_names == ("accel_rms", "thermocouple_1", "volume_flow")
    assert "anomaly" not in spec.sensors and spec.label_columns == ("anomaly",)
    assert spec.missing_labels == "normal"
    assert spec.cadence_ms == 1000 and spec.event_time.column == "Zeit"
    assert spec.event_time.past_horizon_ms is None  # 2014 data must serve
    lo, hi = spec.ranges["thermocouple_1"]
    assert lo < 75 and hi > 85
    # Ten-minute recordings: short windows (the value, mean and std over 10 s and 1 min).
    assert [w.name for w in spec.feature_set.windows] == ["10s", "1m"]
    assert "accel_rms__last" in spec.feature_set.names
    assert "accel_rms__std_1m" in spec.feature_set.names
    assert "short recordings" in result.output
    assert len(spec.files) == 3
    # a second init does not overwrite the reviewed spec
    again = CliRunner().invoke(_app(), args)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr


def test_show_refuses_a_bad_spec_with_file_key_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\ncadence: 5m\nsensors:\n  value: {range: [120, 80]}\n")
    result = CliRunner().invoke(_app(), ["dataset", "show", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("sensors.value.range: low 120 > high 80; swap them")
    assert len(result.stderr.strip().splitlines()) == 1


def test_list_and_show_the_fleet() -> None:
    listed = CliRunner().invoke(_app(), ["dataset", "list"])
    assert listed.exit_code == 0 and "iot-fleet" in listed.output
    shown = CliRunner().invoke(_app(), ["dataset", "show", "iot-fleet"])
    assert shown.exit_code == 0
    assert load_spec().feature_set.version in shown.output


@pytest.mark.skipif(not NAB.is_dir(), reason="NAB data not on this machine")
def test_init_on_nab_finds_the_entities_the_cadence_and_the_windows(tmp_path: Path) -> None:
    files = sorted(NAB.glob("*.csv"))
    out = tmp_path / "nab.yaml"
    args = ["dataset", "init", *map(str, files), "--name", "nab", "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    spec = load_spec(out)
    assert spec.sensor_names == ("value",) and spec.cadence_ms == 300_000
    assert spec.windows_file is not None and spec.windows_file.name == "combined_windows.json"
    assert spec.models.anomaly.normalise == "entity"  # a temperature and taxi counts


def test_serve_refuses_a_bad_spec_before_starting_anything(tmp_path: Path) -> None:
    from edaml.commands.serve import register as register_serve

    app = _app()
    register_serve(app)
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\ncadence: 5m\nsensors:\n  value: {}\nmodels: {anomaly: {kind: lstm}}\n")
    result = CliRunner().invoke(app, ["serve", "--dataset", str(bad)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: models.anomaly.kind: must be 'isolation_forest'")
