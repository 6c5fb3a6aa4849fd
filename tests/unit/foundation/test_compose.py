"""docker-compose.yml cannot run here; these checks keep it consistent with the local stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    assert {"kafka", "postgres", "mlflow", "dagster-webserver", "dagster-daemon"} <= set(
        compose["services"]
    )


def test_kafka_is_the_official_kraft_image_with_single_node_transactions(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka" and tag.split(".")[0] == "4"
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert int(env[key]) == 1, key


def test_every_service_with_a_port_or_dependants_has_a_health_check(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck for {name}"
            else:
                assert cond["condition"] == "service_completed_successfully"
        if svc.get("ports"):
            assert "healthcheck" in svc, f"{name} publishes a port but has no healthcheck"


def test_published_ports_match_the_local_stack_and_do_not_clash(compose: dict[str, Any]) -> None:
    published: dict[int, str] = {}
    for name, svc in compose["services"].items():
        for mapping in svc.get("ports", []):
            host = int(str(mapping).split(":")[0])
            assert host not in published, f"{name} and {published[host]} both publish {host}"
            published[host] = name
    assert published[9092] == "kafka"
    assert published[5000] == "mlflow"
    assert published[3000] == "dagster-webserver"


def test_mlflow_is_built_from_its_folder_on_postgres(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    assert mlflow["build"] == "./mlflow"
    assert (ROOT / "mlflow" / "Dockerfile").is_file()
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert not (ROOT / "mlflow" / "__init__.py").exists()


def test_built_images_copy_files_that_exist(compose: dict[str, Any]) -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
