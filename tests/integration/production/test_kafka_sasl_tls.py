"""Acceptance of #13: the scorer against a broker that requires SASL/SCRAM over TLS.

The test makes its own TLS certificate (keytool, from the JDK that runs Kafka), starts one node
whose client and inter-broker listener is SASL_SSL with ACLs enforced (StandardAuthorizer, only
the admin is a super user), bootstraps the admin's SCRAM credentials at format time, then creates
the scorer's user and ACLs that allow only its own topics (by prefix), its consumer group and its
transactional ids. The scorer reads its security settings from a properties file and its
password from EDAML_KAFKA_SASL_PASSWORD. A wrong password: one error line, exit code 1.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from production_support import produce_readings, register, scored_ids, start_scorer, stop_scorer

from edaml.broker import kafka_service, prepare_kafka, server_properties
from edaml.services import Service, free_port
from edaml.settings import Settings
from features.contract.topics import Topics
from streaming.kafka import create_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOST = "127.0.0.1"
ADMIN_PASSWORD = f"admin-{uuid.uuid4().hex}"
SCORER_PASSWORD = f"scorer-{uuid.uuid4().hex}"
MECHANISM = "SCRAM-SHA-512"


def _certificate(folder: Path) -> tuple[Path, Path, Path, str]:
    """A self-signed certificate for 127.0.0.1/localhost: (PKCS12 keystore, PKCS12 truststore
    for the broker's own inter-broker connections, PEM CA for clients, store password)."""
    password = uuid.uuid4().hex
    keystore, truststore, ca = folder / "broker.p12", folder / "trust.p12", folder / "ca.pem"
    keytool = ["keytool", "-noprompt", "-storepass", password, "-keystore", str(keystore)]
    subprocess.run(
        [
            *keytool,
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "2",
            "-storetype",
            "PKCS12",
            "-keypass",
            password,
            "-dname",
            "CN=localhost",
            "-ext",
            "SAN=dns:localhost,ip:127.0.0.1",
            "-ext",
            "bc=ca:true",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(ca)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "keytool",
            "-noprompt",
            "-importcert",
            "-alias",
            "ca",
            "-file",
            str(ca),
            "-storetype",
            "PKCS12",
            "-keystore",
            str(truststore),
            "-storepass",
            password,
        ],
        check=True,
        capture_output=True,
    )
    return keystore, truststore, ca, password


def _client(ca: Path, user: str, password: str) -> dict[str, Any]:
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.location": str(ca),
    }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A SASL_SSL broker with ACLs: (bootstrap, CA file)."""
    home = tmp_path_factory.mktemp("secured")
    keystore, truststore, ca, store_password = _certificate(home)
    settings = Settings()
    port, controller = free_port(), free_port()
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{ADMIN_PASSWORD}";'
    )
    overrides = {
        "listeners": f"SASL_SSL://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
        "advertised.listeners": f"SASL_SSL://{HOST}:{port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(keystore),
        "ssl.keystore.password": store_password,
        "ssl.key.password": store_password,
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(truststore),
        "ssl.truststore.password": store_password,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The admin, and the controller listener (plaintext on loopback, used only by the
        # node itself), may do anything; every other principal only what an ACL allows.
        "super.users": "User:admin;User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }
    admin_client = _client(ca, "admin", ADMIN_PASSWORD)
    svc: Service = kafka_service(
        home=home,
        host=HOST,
        port=port,
        controller_port=controller,
        version=settings.kafka_version,
        jar_cache=settings.jar_cache,
        heap="384m",
        client=admin_client,
    )
    prepare_kafka(
        svc,
        host=HOST,
        port=port,
        controller_port=controller,
        version=settings.kafka_version,
        jar_cache=settings.jar_cache,
        properties=server_properties(
            home / svc.name / "data", HOST, port, controller, overrides=overrides
        ),
        format_args=["--add-scram", f"{MECHANISM}=[name=admin,password={ADMIN_PASSWORD}]"],
    )
    svc.start()
    try:
        svc.wait_healthy()
        yield svc.address, ca
    finally:
        svc.stop()


def _grant_scorer(admin: AdminClient, prefix: str, group: str) -> None:
    """The scorer's user and its ACLs: its topics, its group, its transactional ids."""
    admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(
                "scorer",
                ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                SCORER_PASSWORD.encode(),
            )
        ]
    )["scorer"].result(30)
    allow = AclPermissionType.ALLOW
    prefixed = ResourcePatternType.PREFIXED

    def acl(kind: ResourceType, name: str, op: AclOperation) -> AclBinding:
        return AclBinding(kind, name, prefixed, "User:scorer", "*", op, allow)

    bindings = [
        *(
            acl(ResourceType.TOPIC, prefix, op)
            for op in (
                AclOperation.READ,
                AclOperation.WRITE,
                AclOperation.DESCRIBE,
                AclOperation.CREATE,
            )
        ),
        *(acl(ResourceType.GROUP, group, op) for op in (AclOperation.READ, AclOperation.DESCRIBE)),
        *(
            acl(ResourceType.TRANSACTIONAL_ID, f"edaml-scorer-{group}", op)
            for op in (
                AclOperation.WRITE,
                AclOperation.DESCRIBE,
            )
        ),
    ]
    for fut in admin.create_acls(bindings).values():
        fut.result(30)


def test_the_scorer_works_through_sasl_scram_tls_with_only_its_acls(
    secured: tuple[str, Path], mlflow_tracking_uri: str, tmp_path: Path
) -> None:
    bootstrap, ca = secured
    admin_conf = _client(ca, "admin", ADMIN_PASSWORD)
    admin = AdminClient({**admin_conf, "bootstrap.servers": bootstrap})
    topics = Topics(prefix=f"s{uuid.uuid4().hex[:8]}.", partitions=2)
    group = f"g-{uuid.uuid4().hex[:6]}"
    _grant_scorer(admin, topics.prefix, group)
    # A topic outside the scorer's prefix, with a record in it.
    other = f"other-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, other, client=admin_conf)
    produce_readings(bootstrap, other, 0, 1, client=admin_conf)

    # Security from a properties file, the password from a variable.
    props = tmp_path / "client.properties"
    props.write_text(
        f"security.protocol=SASL_SSL\nsasl.mechanisms={MECHANISM}\nsasl.username=scorer\n"
        f"ssl.ca.location={ca}\n"
    )
    env = {"EDAML_KAFKA_PROPERTIES": str(props), "EDAML_KAFKA_SASL_PASSWORD": SCORER_PASSWORD}
    model = f"iot-anomaly-{uuid.uuid4().hex[:6]}"
    register(model, "anomaly")
    log = tmp_path / "serve.log"
    proc = start_scorer(bootstrap, mlflow_tracking_uri, topics, model, log, group=group, env=env)

    def alive() -> None:
        assert proc.poll() is None, "scorer exited:\n" + log.read_text()[-4000:]

    try:
        # The scorer creates its topics itself (CREATE on its prefix); wait for them.
        deadline = time.monotonic() + 300
        while not _exists(admin, topics.sensor_readings):
            alive()
            assert time.monotonic() < deadline, "the scorer did not create its topics"
            time.sleep(0.5)  # pacing between metadata requests
        ids = produce_readings(bootstrap, topics.sensor_readings, 0, 2000, client=admin_conf)
        got = scored_ids(
            bootstrap,
            topics.scored,
            topics.partitions,
            want=len(ids),
            timeout=300,
            alive=alive,
            client=admin_conf,
        )
    finally:
        stop_scorer(proc)
    counts = Counter(got)
    assert set(counts) == ids and max(counts.values()) == 1

    # The scorer's user may see its own topics and nothing else.
    scorer_conf = _client(ca, "scorer", SCORER_PASSWORD)
    as_scorer = AdminClient({**scorer_conf, "bootstrap.servers": bootstrap})
    own = as_scorer.list_topics(topics.scored, timeout=30).topics[topics.scored]
    assert own.error is None and len(own.partitions) == topics.partitions
    foreign = as_scorer.list_topics(other, timeout=30).topics[other]
    assert foreign.error is not None
    assert foreign.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, foreign.error


def _exists(admin: AdminClient, topic: str) -> bool:
    try:
        return topic in admin.list_topics(timeout=10).topics
    except KafkaException:  # a reconnect on a loaded machine: ask again
        return False


def test_a_wrong_password_is_one_error_line_and_exit_1(
    secured: tuple[str, Path], mlflow_tracking_uri: str, tmp_path: Path
) -> None:
    bootstrap, ca = secured
    topics = Topics(prefix=f"w{uuid.uuid4().hex[:8]}.", partitions=1)
    env = {
        "EDAML_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EDAML_KAFKA_SASL_MECHANISMS": MECHANISM,
        "EDAML_KAFKA_SASL_USERNAME": "scorer",
        "EDAML_KAFKA_SASL_PASSWORD": "not-the-password",
        "EDAML_KAFKA_SSL_CA_LOCATION": str(ca),
    }
    log = tmp_path / "serve.log"
    proc = start_scorer(
        bootstrap,
        mlflow_tracking_uri,
        topics,
        "unused",
        log,
        group="g",
        env=env,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert proc.returncode == 1, err.decode()
    assert len(lines) == 1, lines
    assert "refused the connection as 'scorer'" in lines[0]
    assert "EDAML_KAFKA_SASL_PASSWORD" in lines[0]
