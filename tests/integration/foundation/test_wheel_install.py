"""The built wheel carries what the stack needs outside a checkout: the Dagster workspace and the
Maven pom, and Dagster loads edaml's code location from the installed copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _uv() -> str:
    uv = BIN / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    assert found, "uv is installed by `make install`"
    return found


@pytest.mark.integration
@pytest.mark.slow
def test_the_installed_wheel_runs_the_stack_from_its_own_files(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [_uv(), "build", "--wheel", "-q", "-o", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("edaml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "edaml/workspace.yaml",
        "edaml/kafka_pom.xml",
        "orchestration/definitions.py",
        "features/datasets/iot-fleet.yaml",
    } <= names

    target = tmp_path / "site"
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "DAGSTER_HOME": str(tmp_path / "dg")}
    (tmp_path / "dg").mkdir()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from edaml.stack import workspace_file; from edaml.broker import POM; "
            "from features.spec import load_spec; "
            "print(workspace_file()); print(POM.is_file()); print(load_spec().name)",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    workspace, pom_found, dataset = probe.stdout.split()
    assert Path(workspace) == target / "edaml" / "workspace.yaml" and pom_found == "True"
    assert dataset == "iot-fleet"  # the spec shipped in the wheel

    validate = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", workspace],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # importing Dagster, MLflow and GE on a loaded 2-core machine
    )
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]
    assert "Validation successful for code location edaml" in validate.stdout + validate.stderr
