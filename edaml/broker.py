"""A single-node Apache Kafka 4 broker (KRaft, combined broker and controller) run from the jars
that Maven fetches from Maven Central; no Docker needed.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from edaml.services import Service, StackError

POM = Path(__file__).with_name("kafka_pom.xml")

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def fetch_jars(version: str, cache: Path) -> Path:
    """Copy the broker's jars (and a Log4j2 backend) into `cache/<version>` once."""
    target = cache / version
    marker = target / ".complete"
    if marker.exists():
        return target
    missing = missing_tools()
    if missing:
        raise StackError(
            f"{' and '.join(missing)} not found: install Java 17+ and Maven "
            "(e.g. `apt-get install openjdk-17-jre-headless maven`) to run Kafka locally, "
            "or use docker-compose.yml on a machine with Docker, or point "
            "KAFKA_BOOTSTRAP_SERVERS at an existing cluster"
        )
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={target}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(
            f"Maven could not fetch Kafka {version}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    marker.touch()
    return target


def server_properties(data_dir: Path, host: str, port: int, controller_port: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # One node holds one replica of everything; internal topics default to three.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "6",
        # Without these two, transactions hang on a single node.
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "num.partitions": "3",
        # Consumer groups start at once instead of waiting for more members.
        "group.initial.rebalance.delay.ms": "0",
        # Event history is replayed by time: keep it (per-topic retention can narrow this).
        "log.retention.hours": "-1",
        "message.max.bytes": str(4 * 1024 * 1024),
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def kafka_service(
    *,
    home: Path,
    host: str,
    port: int,
    controller_port: int,
    version: str,
    jar_cache: Path,
    heap: str = "512m",
    name: str = "kafka",
) -> Service:
    """Describe the broker; `prepare_kafka` must run before `Service.start`."""
    from streaming.kafka import wait_until_ready

    root = home / name
    config = root / "config"

    def healthy() -> bool:
        try:
            wait_until_ready(f"{host}:{port}", timeout=2.0)
        except (TimeoutError, Exception):  # any client error means: not ready yet
            return False
        return True

    classpath = str(jar_cache / version / "*")
    java = [
        "java",
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={root / 'logs'}",
        f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}",
        "-cp",
        classpath,
    ]
    return Service(
        name=name,
        command=[*java, "kafka.Kafka", str(config / "server.properties")],
        home=home,
        address=f"{host}:{port}",
        ports={
            "EDAML_KAFKA_PORT": (host, port),
            "EDAML_KAFKA_CONTROLLER_PORT": (host, controller_port),
        },
        healthy=healthy,
        start_timeout=120.0,
    )


def prepare_kafka(
    service: Service, *, host: str, port: int, controller_port: int, version: str, jar_cache: Path
) -> None:
    """Fetch jars, write the configuration, and format the storage the first time."""
    jars = fetch_jars(version, jar_cache)
    root = service.home / service.name
    config, data = root / "config", root / "data"
    config.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (config / "server.properties").write_text(server_properties(data, host, port, controller_port))
    (config / "log4j2.properties").write_text(LOG4J2)
    if (data / "meta.properties").exists():
        return
    proc = subprocess.run(
        [
            "java",
            "-cp",
            str(jars / "*"),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            "-c",
            str(config / "server.properties"),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def start_private_kafka(
    home: Path, *, version: str, jar_cache: Path, heap: str = "768m"
) -> Service:
    """A broker of its own on free ports under `home` (tests, benchmarks), started and healthy.
    The caller stops it with `Service.stop()`."""
    from edaml.services import free_port

    host, port, controller = "127.0.0.1", free_port(), free_port()
    svc = kafka_service(
        home=home,
        host=host,
        port=port,
        controller_port=controller,
        version=version,
        jar_cache=jar_cache,
        heap=heap,
    )
    prepare_kafka(
        svc, host=host, port=port, controller_port=controller, version=version, jar_cache=jar_cache
    )
    svc.start()
    try:
        svc.wait_healthy()
    except BaseException:
        svc.stop()
        raise
    return svc
