"""`edaml stack up | status | down` brings the whole local stack up and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edaml.services import free_port, pid_alive

pytestmark = pytest.mark.integration

EDAML = str(Path(sys.executable).parent / "edaml")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDAML, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[3],
    )


def test_stack_up_status_down(tmp_path: Path) -> None:
    ports = {
        "EDAML_KAFKA_PORT": free_port(),
        "EDAML_KAFKA_CONTROLLER_PORT": free_port(),
        "EDAML_MLFLOW_PORT": free_port(),
        "EDAML_DAGSTER_PORT": free_port(),
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP_SERVERS", "MLFLOW_TRACKING_URI", "DAGSTER_HOME"}
    }
    env.update({k: str(v) for k, v in ports.items()})
    env["EDAML_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"
    try:
        up = _run(["stack", "up"], env)
        assert up.returncode == 0, up.stdout + up.stderr

        status = _run(["stack", "status"], env)
        rows = {
            line.split()[1]: line
            for line in status.stdout.splitlines()
            if "│" in line and "service" not in line
        }
        for name in ("kafka", "mlflow", "dagster-webserver", "dagster-daemon"):
            assert "healthy" in rows[name], status.stdout

        dagster = httpx.get(
            f"http://127.0.0.1:{ports['EDAML_DAGSTER_PORT']}/server_info", timeout=10
        )
        assert dagster.status_code == 200 and "dagster_webserver_version" in dagster.json()
        mlflow = httpx.get(f"http://127.0.0.1:{ports['EDAML_MLFLOW_PORT']}/health", timeout=10)
        assert mlflow.status_code == 200

        # Up again is harmless: nothing restarts, the same pids keep serving.
        pids_before = {p.name: p.read_text() for p in (tmp_path / "home" / "run").iterdir()}
        again = _run(["stack", "up"], env)
        assert again.returncode == 0, again.stdout + again.stderr
        pids_after = {p.name: p.read_text() for p in (tmp_path / "home" / "run").iterdir()}
        assert pids_after == pids_before
    finally:
        pid_files = list((tmp_path / "home" / "run").glob("*.pid"))
        pids = [int(p.read_text().split()[0]) for p in pid_files]  # `<pid> <start time>`
        down = _run(["stack", "down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert pids and not any(pid_alive(pid) for pid in pids)
    assert not list((tmp_path / "home" / "run").glob("*.pid"))
    # Nothing of ours listens any more.
    for port in ports.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
