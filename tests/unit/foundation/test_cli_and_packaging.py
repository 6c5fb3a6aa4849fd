"""The command line's contract with its user, and the mlflow/ folder never shadowing MLflow."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edaml.services import StackError
from edaml.settings import Settings
from edaml.stack import Stack

ROOT = Path(__file__).resolve().parents[3]
EDAML = str(Path(sys.executable).parent / "edaml")


def test_import_mlflow_from_the_repo_root_gets_the_installed_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import mlflow; print(mlflow.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "site-packages" in out and not out.startswith(str(ROOT / "mlflow"))


def test_an_unknown_option_prints_a_usage_line_and_exits_2() -> None:
    proc = subprocess.run(
        [EDAML, "stack", "up", "--no-such-option"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Usage: edaml stack up" in proc.stderr
    assert "No such option" in proc.stderr


def test_a_taken_kafka_port_is_reported_with_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(home=tmp_path, kafka_port=port, kafka_bootstrap_servers=None)
        with pytest.raises(StackError, match=rf"port {port}.*EDAML_KAFKA_PORT"):
            Stack(settings).up(only={"kafka"})
    # Nothing was started or written for the broker.
    assert not (tmp_path / "run" / "kafka.pid").exists()


def test_the_cli_says_the_port_problem_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        proc = subprocess.run(
            [EDAML, "stack", "up", "--only", "kafka"],
            capture_output=True,
            text=True,
            env={
                "PATH": "/usr/bin:/bin",
                "EDAML_HOME": str(tmp_path),
                "EDAML_KAFKA_PORT": str(port),
            },
        )
    assert proc.returncode == 1
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "EDAML_KAFKA_PORT" in lines[0], proc.stdout


def test_external_servers_are_used_instead_of_starting_ours(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_bootstrap_servers="kafka.example:9092",
        mlflow_tracking_uri="http://mlflow.example:5000",
    )
    names = [s.name for s in Stack(settings).services()]
    assert "kafka" not in names and "mlflow" not in names
    assert settings.bootstrap == "kafka.example:9092"
    assert settings.tracking_uri == "http://mlflow.example:5000"
