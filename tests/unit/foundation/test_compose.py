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
            host = int(str(mapping).split(":")[-2])
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
    for dockerfile, context in (
        (ROOT / "Dockerfile", ROOT),
        (ROOT / "docker" / "scorer.Dockerfile", ROOT),
        (ROOT / "mlflow" / "Dockerfile", ROOT / "mlflow"),
    ):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert (context / src).exists(), f"{dockerfile} copies missing {src}"


def test_kafka_serves_containers_and_the_host(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    advertised = dict(a.split("://") for a in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised == {"INTERNAL": "kafka:29092", "EXTERNAL": "localhost:9092"}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    assert compose["x-edaml-env"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"


def test_long_running_services_restart_and_one_shots_do_not_loop(
    compose: dict[str, Any],
) -> None:
    one_shot = {"topics", "backfill"}
    for name, svc in compose["services"].items():
        expected = "on-failure" if name in one_shot else "unless-stopped"
        assert svc.get("restart") == expected, name
    backfill = compose["services"]["backfill"]
    assert backfill["command"][:2] == ["edaml", "backfill"]
    assert backfill["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_exposed_uis_are_protected(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # Dagster has no login: published on the host's loopback only.
    assert services["dagster-webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    # MLflow: basic auth (the entrypoint adds --app-name basic-auth with an auth database).
    env = services["mlflow"]["environment"]
    assert env["MLFLOW_AUTH_DATABASE_URI"].startswith("postgresql://")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert "--app-name basic-auth" in (ROOT / "mlflow" / "entrypoint.sh").read_text()
    assert "boto3" in (ROOT / "mlflow" / "Dockerfile").read_text()
    assert compose["x-edaml-env"]["MLFLOW_TRACKING_USERNAME"] == "admin"


def test_the_scorer_is_slim_and_its_metrics_answer_outside_its_container(
    compose: dict[str, Any],
) -> None:
    scorer = compose["services"]["scorer"]
    assert scorer["environment"]["EDAML_HOST"] == "0.0.0.0"
    assert scorer["build"]["dockerfile"] == "docker/scorer.Dockerfile"
    assert '".[serve]"' in (ROOT / "docker" / "scorer.Dockerfile").read_text()
