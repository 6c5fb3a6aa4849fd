"""Kafka client properties from the deployment (file, EDAML_KAFKA_* variables) reach every client
edaml builds, and the topic layout (partitions per topic, replication, min ISR) is a setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer

from edaml.settings import Settings
from features.contract.topics import DLQ, SCORER_STATE, SENSOR_READINGS, TOPIC_CONFIGS, Topics
from streaming import kafka
from streaming.kafka import (
    EDAML_KAFKA_SETTINGS,
    KafkaSettingsError,
    client_config,
    consumer_config,
    deployment_properties,
    env_properties,
    parse_properties,
    producer_config,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EDAML_KAFKA_") or key == "EDAML_TOPIC_PARTITIONS":
            monkeypatch.delenv(key)


def test_properties_file_syntax() -> None:
    text = "# comment\n! also a comment\n\nsecurity.protocol = SASL_SSL\nsasl.mechanisms: SCRAM-SHA-512\nsasl.password=a=b\n"
    assert parse_properties(text) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.password": "a=b",
    }
    with pytest.raises(KafkaSettingsError, match=r"client.properties:2: expected `key=value`"):
        parse_properties("a=1\nnonsense\n", source="client.properties")


def test_variables_become_properties_except_edaml_settings() -> None:
    env = {
        "EDAML_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EDAML_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "EDAML_KAFKA_PORT": "9092",
        "EDAML_KAFKA_REPLICATION_FACTOR": "3",
        "EDAML_HOME": "/x",
    }
    assert env_properties(env) == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_reserved_names_are_exactly_the_kafka_settings() -> None:
    fields = {
        name.removeprefix("kafka_").upper()
        for name in Settings.model_fields
        if name.startswith("kafka_")
    }
    assert fields == EDAML_KAFKA_SETTINGS


def test_file_then_variables_then_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    props = tmp_path / "client.properties"
    props.write_text("security.protocol=SSL\nlinger.ms=50\nbootstrap.servers=elsewhere:1\n")
    monkeypatch.setenv("EDAML_KAFKA_PROPERTIES", str(props))
    monkeypatch.setenv("EDAML_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EDAML_KAFKA_GROUP_ID", "from-env")
    conf = producer_config("b:9092", **{"transactional.id": "t-1"})
    assert conf["security.protocol"] == "SASL_SSL"  # the variable beats the file
    assert conf["linger.ms"] == "50"  # the file beats edaml's default
    assert conf["transactional.id"] == "t-1"
    assert conf["bootstrap.servers"] == "b:9092"  # the cluster edaml was told to use
    assert consumer_config("b:9092", "scorer")["group.id"] == "scorer"  # the code's group wins
    assert client_config("b:9092")["security.protocol"] == "SASL_SSL"


def test_unreadable_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDAML_KAFKA_PROPERTIES", "/nonexistent/client.properties")
    with pytest.raises(KafkaSettingsError, match="EDAML_KAFKA_PROPERTIES=/nonexistent"):
        deployment_properties()


def test_librdkafka_receives_the_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    """The properties reach librdkafka itself: an unknown one is refused by name."""
    monkeypatch.setenv("EDAML_KAFKA_SASL_MECHANISMS", "SCRAM-SHA-512")
    Producer(producer_config("127.0.0.1:1")).flush(0)
    monkeypatch.setenv("EDAML_KAFKA_NO_SUCH_THING", "1")
    with pytest.raises(KafkaException, match=r"no\.such\.thing"):
        kafka.make_producer("127.0.0.1:1")


def test_no_client_is_built_outside_streaming_kafka() -> None:
    """Every client of edaml's code goes through streaming/kafka.py, so none misses the settings."""
    pattern = re.compile(r"\b(Producer|Consumer|AdminClient)\(")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for folder in ("edaml", "streaming", "orchestration", "features")
        for path in (REPO / folder).rglob("*.py")
        if path != REPO / "streaming" / "kafka.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_topic_layout_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDAML_TOPIC_PARTITIONS", '{"iot.sensor-readings": 12}')
    monkeypatch.setenv("EDAML_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("EDAML_KAFKA_MIN_INSYNC_REPLICAS", "2")
    topics = Settings(partitions=4).topics
    assert topics.partitions_of(SENSOR_READINGS) == 12
    assert topics.partitions_of(DLQ) == 4
    # the scorer's state topic follows the input: state of input partition p lives in p
    assert topics.partitions_of(SCORER_STATE) == 12
    assert topics.replication_factor == 3
    assert topics.config_of(DLQ)["min.insync.replicas"] == "2"
    assert "min.insync.replicas" not in Topics().config_of(DLQ)
    with pytest.raises(ValueError, match="unknown topic"):
        Topics(topic_partitions={"readings": 3})


def test_scorer_state_topic_is_compacted_and_in_the_topic_set() -> None:
    """ensure_topics creates every TOPIC_CONFIGS entry: the state topic comes with the others."""
    assert SCORER_STATE in TOPIC_CONFIGS
    conf = Topics(prefix="x.").config_of(SCORER_STATE)
    assert conf["cleanup.policy"] == "compact"
    assert "retention.ms" not in conf  # compaction, not time, decides what stays
    assert Topics(prefix="x.", partitions=5).partitions_of(SCORER_STATE) == 5
