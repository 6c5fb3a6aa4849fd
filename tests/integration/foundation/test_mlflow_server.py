"""The tracking server the suite starts is a real one: runs, artifacts and aliases round-trip."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.integration


def test_a_run_with_an_artifact_and_an_alias_round_trips(
    mlflow_tracking_uri: str, tmp_path: Path
) -> None:
    assert httpx.get(f"{mlflow_tracking_uri}/health", timeout=5).status_code == 200
    mlflow.set_tracking_uri(mlflow_tracking_uri)
    mlflow.set_experiment(f"foundation-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_metric("f1", 0.75)
        (tmp_path / "note.txt").write_text("hello")
        mlflow.log_artifact(str(tmp_path / "note.txt"))

    client = MlflowClient(mlflow_tracking_uri)
    assert client.get_run(run.info.run_id).data.metrics["f1"] == 0.75
    got = Path(client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "dl")))
    assert got.read_text() == "hello"
    # Artifacts go through the server (--serve-artifacts), not a path on this machine.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")

    name = f"m-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/note.txt", run.info.run_id)
    client.set_registered_model_alias(name, "champion", mv.version)
    assert client.get_model_version_by_alias(name, "champion").version == mv.version
