"""Apache Kafka 4 brokers (KRaft, combined broker and controller nodes) run from the jars that
Maven fetches from Maven Central; no Docker needed. One node for the local stack; a cluster of
several nodes on one machine (own ports and directories) for replication and failure tests.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
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


#: Bumped when kafka_pom.xml changes: jars fetched with an older pom go to another folder.
POM_REVISION = 2


def jar_dir(cache: Path, version: str) -> Path:
    return cache / f"{version}-r{POM_REVISION}"


def fetch_jars(version: str, cache: Path) -> Path:
    """Copy the broker's jars (and a Log4j2 backend) into `jar_dir(cache, version)` once."""
    target = jar_dir(cache, version)
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


def server_properties(
    data_dir: Path,
    host: str,
    port: int,
    controller_port: int,
    *,
    node_id: int = 1,
    voters: str | None = None,
    replication: int = 1,
    min_isr: int = 1,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The node's server.properties. A single node (the default) holds one replica of
    everything; in a cluster `voters` lists every controller (`id@host:port,...`), internal topics
    get `replication` copies and acknowledged writes need `min_isr` of them. `overrides` replace
    or add properties (listeners and security of a secured broker)."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters or f"{node_id}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Internal topics default to three copies: a single node must say one.
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "6",
        # Without these two matching the node count, transactions hang.
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "num.partitions": "3",
        # Consumer groups start at once instead of waiting for more members.
        "group.initial.rebalance.delay.ms": "0",
        # Event history is replayed by time: keep it (per-topic retention can narrow this).
        "log.retention.hours": "-1",
        "message.max.bytes": str(4 * 1024 * 1024),
        "auto.create.topics.enable": "false",
    }
    props.update(overrides or {})
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
    client: Mapping[str, str] | None = None,
) -> Service:
    """Describe the broker; `prepare_kafka` must run before `Service.start`. `client`: the
    properties a client needs to reach it (security), used by the health probe."""
    from streaming.kafka import wait_until_ready

    root = home / name
    config = root / "config"

    def healthy() -> bool:
        try:
            wait_until_ready(f"{host}:{port}", timeout=2.0, client=client)
        except (TimeoutError, Exception):  # any client error means: not ready yet
            return False
        return True

    classpath = str(jar_dir(jar_cache, version) / "*")
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
    service: Service,
    *,
    host: str,
    port: int,
    controller_port: int,
    version: str,
    jar_cache: Path,
    properties: str | None = None,
    cluster_id: str | None = None,
    format_args: Sequence[str] = (),
) -> None:
    """Fetch jars, write the configuration, and format the storage the first time.
    `properties` (default: a single node's) and `cluster_id` are given for a cluster's nodes;
    `format_args` adds StorageTool options (`--add-scram ...` for bootstrap credentials)."""
    jars = fetch_jars(version, jar_cache)
    root = service.home / service.name
    config, data = root / "config", root / "data"
    config.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    if properties is None:
        properties = server_properties(data, host, port, controller_port)
    (config / "server.properties").write_text(properties)
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
            # one argument: a random id may start with "-", which argparse takes for an option
            f"--cluster-id={cluster_id or new_cluster_id()}",
            "-c",
            str(config / "server.properties"),
            *format_args,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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


def start_private_cluster(
    home: Path,
    *,
    nodes: int,
    version: str,
    jar_cache: Path,
    min_isr: int = 2,
    heap: str = "384m",
) -> list[Service]:
    """A cluster of `nodes` combined broker/controller nodes on free ports under `home`
    (`kafka-1`, `kafka-2`, ...), internal topics replicated on every node, started and healthy.
    The caller stops each with `Service.stop()`; a node is restarted with `Service.start()`."""
    from edaml.services import free_port

    host = "127.0.0.1"
    ports = [(free_port(), free_port()) for _ in range(nodes)]
    voters = ",".join(f"{i}@{host}:{c}" for i, (_, c) in enumerate(ports, 1))
    cluster_id = new_cluster_id()
    services: list[Service] = []
    for i, (port, controller) in enumerate(ports, 1):
        svc = kafka_service(
            home=home,
            host=host,
            port=port,
            controller_port=controller,
            version=version,
            jar_cache=jar_cache,
            heap=heap,
            name=f"kafka-{i}",
        )
        props = server_properties(
            home / svc.name / "data",
            host,
            port,
            controller,
            node_id=i,
            voters=voters,
            replication=nodes,
            min_isr=min_isr,
        )
        prepare_kafka(
            svc,
            host=host,
            port=port,
            controller_port=controller,
            version=version,
            jar_cache=jar_cache,
            properties=props,
            cluster_id=cluster_id,
        )
        services.append(svc)
    try:
        for svc in services:
            svc.start()
        for svc in services:
            svc.wait_healthy()
    except BaseException:
        for svc in services:
            svc.stop()
        raise
    return services
