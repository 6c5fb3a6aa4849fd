"""The stack's profiles: sqlite storage by default, PostgreSQL for MLflow and Dagster in
`production` (the servers themselves run in tests/integration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from edaml.settings import Settings
from edaml.stack import Stack, dagster_config, mlflow_backend_uri

EDAML = str(Path(sys.executable).parent / "edaml")


def test_local_profile_keeps_sqlite(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.profile == "local"
    assert mlflow_backend_uri(s).startswith("sqlite:///")
    assert "storage" not in (yaml.safe_load(dagster_config(s)) or {})
    assert "postgres" not in [svc.name for svc in Stack(s).services()]


def test_production_profile_puts_mlflow_and_dagster_on_postgres(tmp_path: Path) -> None:
    # No MLflow server from the environment (the integration session exports one): ours.
    s = Settings(home=tmp_path, profile="production", postgres_port=15432, mlflow_tracking_uri=None)
    assert Stack(s).services()[0].name == "postgres"
    password = (tmp_path / "postgres" / "password").read_text().strip()
    assert (tmp_path / "postgres" / "password").stat().st_mode & 0o077 == 0
    assert mlflow_backend_uri(s).startswith("postgresql://edaml:")
    assert mlflow_backend_uri(s).endswith("@127.0.0.1:15432/mlflow")
    db = yaml.safe_load(dagster_config(s))["storage"]["postgres"]["postgres_db"]
    assert db == {
        "username": "edaml",
        "password": password,
        "hostname": "127.0.0.1",
        "port": 15432,
        "db_name": "dagster",
        "scheme": "postgresql+psycopg2",
    }


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [EDAML, "stack", "up", "--profile", "staging"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "EDAML_HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert "--profile must be local or production" in proc.stdout + proc.stderr
