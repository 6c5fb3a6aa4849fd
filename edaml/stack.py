"""The local stack: Kafka, the MLflow tracking server and Dagster, started and stopped together.

Profile `local` (the default) keeps MLflow's and Dagster's storage in sqlite files; profile
`production` runs a PostgreSQL server too and keeps both there (dagster-postgres for Dagster's
run, event log and schedule storage).

A service whose standard variable is set (KAFKA_BOOTSTRAP_SERVERS, MLFLOW_TRACKING_URI) is
external: edaml uses it and starts nothing for it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from edaml import postgres
from edaml.broker import kafka_service, prepare_kafka
from edaml.services import Service, StackError, http_ok
from edaml.settings import Settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The Dagster workspace: the checkout's at its root, an installed wheel's inside the package.
_WORKSPACES = (REPO_ROOT / "workspace.yaml", Path(__file__).resolve().with_name("workspace.yaml"))


def workspace_file() -> Path:
    """The workspace.yaml Dagster loads edaml's code location from."""
    found = next((w for w in _WORKSPACES if w.is_file()), None)
    if found is None:
        raise StackError(
            f"workspace.yaml not found (looked at {', '.join(map(str, _WORKSPACES))}); "
            "reinstall edaml"
        )
    return found


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def kafka(settings: Settings) -> Service:
    return kafka_service(
        home=settings.home_abs,
        host=settings.host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        version=settings.kafka_version,
        jar_cache=settings.jar_cache,
        heap=settings.kafka_heap,
    )


def postgres_server(settings: Settings) -> Service:
    return postgres.postgres_service(settings.home_abs, settings.host, settings.postgres_port)


def mlflow_backend_uri(settings: Settings) -> str:
    if settings.profile == "production":
        return postgres.url(settings.home_abs, settings.host, settings.postgres_port, "mlflow")
    return f"sqlite:///{settings.home_abs / 'mlflow' / 'mlflow.db'}"


def mlflow_server(settings: Settings) -> Service:
    root = settings.home_abs / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://{settings.host}:{settings.mlflow_port}"
    return Service(
        name="mlflow",
        command=[
            _bin("mlflow"),
            "server",
            "--backend-store-uri",
            mlflow_backend_uri(settings),
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--host",
            settings.host,
            "--port",
            str(settings.mlflow_port),
            "--workers",
            "1",
        ],
        home=settings.home_abs,
        address=url,
        ports={"EDAML_MLFLOW_PORT": (settings.host, settings.mlflow_port)},
        healthy=lambda: http_ok(f"{url}/health"),
        # MLflow's job runner (GenAI evaluation jobs) starts a dozen worker processes that
        # edaml never uses: on a 2-core machine they cost seconds of start-up and much memory.
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_timeout=180.0,
    )


def _dagster_env(settings: Settings) -> dict[str, str]:
    home = settings.home_abs / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "DAGSTER_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "EDAML_HOME": str(settings.home_abs),
    }


#: The local instance: every concurrency pool (`retrain-<dataset>`: the retrain assets of one
#: dataset) has one slot, and the run queue starts one retrain run per dataset at a time (run
#: tag `edaml/retrain`), so the schedule, the drift sensor, the UI and `edaml train` never
#: evaluate or promote each other's models.
DAGSTER_YAML = """telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    tag_concurrency_limits:
      - key: edaml/retrain
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def dagster_config(settings: Settings) -> str:
    """The Dagster instance's dagster.yaml: DAGSTER_YAML, with sqlite storage (local) or
    PostgreSQL storage (production)."""
    text = DAGSTER_YAML
    if settings.profile == "production":
        pw = postgres.password(settings.home_abs)
        text += (
            "storage:\n  postgres:\n    postgres_db:\n"
            f"      username: {postgres.USER}\n      password: {pw!r}\n"
            f"      hostname: {settings.host}\n      port: {settings.postgres_port}\n"
            "      db_name: dagster\n"
            # dagster-postgres needs psycopg2 (it NOTIFYs with client-side parameters);
            # SQLAlchemy 2.1 would otherwise pick psycopg 3 for postgresql://.
            "      scheme: postgresql+psycopg2\n"
        )
    return text


def init_dagster_home(home: Path, config: str = DAGSTER_YAML) -> None:
    """Write the Dagster instance's configuration (edaml manages this file) and create its
    storage once, before the webserver and the daemon start: both would otherwise migrate the
    same fresh storage at once, and a race leaves two alembic heads that break every later
    start."""
    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists() or path.read_text() != config:
        path.write_text(config)
        path.chmod(0o600)  # may hold the database password
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs_count()  # touches run storage
        list(instance.all_instigator_state())  # touches schedule storage


def dagster_webserver(settings: Settings) -> Service:
    url = f"http://{settings.host}:{settings.dagster_port}"
    return Service(
        name="dagster-webserver",
        command=[
            _bin("dagster-webserver"),
            "-w",
            str(workspace_file()),
            "-h",
            settings.host,
            "-p",
            str(settings.dagster_port),
        ],
        home=settings.home_abs,
        address=url,
        ports={"EDAML_DAGSTER_PORT": (settings.host, settings.dagster_port)},
        healthy=lambda: http_ok(f"{url}/server_info"),
        env=_dagster_env(settings),
        cwd=workspace_file().parent,
        start_timeout=180.0,
    )


def dagster_daemon(settings: Settings) -> Service:
    svc = Service(
        name="dagster-daemon",
        command=[_bin("dagster-daemon"), "run", "-w", str(workspace_file())],
        home=settings.home_abs,
        address="(background)",
        ports={},
        healthy=lambda: svc.running(),
        env=_dagster_env(settings),
        cwd=workspace_file().parent,
    )
    return svc


def scorer(settings: Settings) -> Service:
    """The streaming scorer (`edaml serve`) as a managed background service."""
    url = f"http://{settings.host}:{settings.scorer_port}"
    return Service(
        name="scorer",
        command=[_bin("edaml"), "serve", "--metrics-port", str(settings.scorer_port)],
        home=settings.home_abs,
        address=url,
        ports={"EDAML_SCORER_PORT": (settings.host, settings.scorer_port)},
        healthy=lambda: http_ok(f"{url}/healthz"),
        env={
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "EDAML_HOME": str(settings.home_abs),
        },
        cwd=workspace_file().parent,
        start_timeout=180.0,
    )


@dataclass
class Stack:
    settings: Settings

    def services(self) -> list[Service]:
        """The services edaml manages here (external ones are not in the list)."""
        out: list[Service] = []
        if self.settings.profile == "production":
            out.append(postgres_server(self.settings))
        if self.settings.kafka_bootstrap_servers is None:
            out.append(kafka(self.settings))
        if self.settings.mlflow_tracking_uri is None:
            out.append(mlflow_server(self.settings))
        out += [dagster_webserver(self.settings), dagster_daemon(self.settings)]
        return out

    def optional_services(self) -> list[Service]:
        """Services `up` starts only when named (`demo` starts the scorer); `down` stops them."""
        return [scorer(self.settings)]

    def up(self, *, only: set[str] | None = None) -> list[Service]:
        """Start what is not running, then wait for every service's health. Idempotent."""
        if only is None:
            chosen = self.services()
        else:
            chosen = [s for s in self.services() + self.optional_services() if s.name in only]
        for svc in chosen:
            if not svc.running():
                svc.check_ports()
        # PostgreSQL first: MLflow and Dagster keep their storage there.
        for svc in chosen:
            if svc.name == "postgres":
                postgres.prepare_postgres(self.settings.home_abs)
                svc.start()
                svc.wait_healthy()
                postgres.create_databases(
                    self.settings.home_abs, self.settings.host, self.settings.postgres_port
                )
        if any(svc.name.startswith("dagster") and not svc.running() for svc in chosen):
            init_dagster_home(self.settings.home_abs / "dagster", dagster_config(self.settings))
        for svc in chosen:
            if svc.name == "postgres":
                continue  # started above
            if svc.name == "kafka" and not svc.running():
                s = self.settings
                prepare_kafka(
                    svc,
                    host=s.host,
                    port=s.kafka_port,
                    controller_port=s.kafka_controller_port,
                    version=s.kafka_version,
                    jar_cache=s.jar_cache,
                )
            svc.start()
        for svc in chosen:
            svc.wait_healthy()
        return chosen

    def down(self) -> list[str]:
        """Stop what edaml started (by pid), in reverse order; return the names stopped."""
        # Signal every service first, then wait: they shut down side by side. PostgreSQL is
        # stopped whatever the profile: it may have been started under the other one.
        everything = self.services() + self.optional_services()
        if all(svc.name != "postgres" for svc in everything):
            everything.insert(0, postgres_server(self.settings))
        pending = [(svc, svc.request_stop()) for svc in reversed(everything)]
        for svc, pid in pending:
            if pid is not None:
                svc.wait_stopped(pid)
        return [svc.name for svc, pid in pending if pid is not None]

    def status(self) -> list[tuple[str, str, str]]:
        """(name, address, state) for each service, external ones included."""
        rows: list[tuple[str, str, str]] = []
        s = self.settings
        if s.kafka_bootstrap_servers is not None:
            from streaming.kafka import wait_until_ready

            try:
                wait_until_ready(s.bootstrap, timeout=5)
                rows.append(("kafka", s.bootstrap, "healthy (external)"))
            except TimeoutError:
                rows.append(("kafka", s.bootstrap, "unreachable (external)"))
        if s.mlflow_tracking_uri is not None:
            ok = http_ok(f"{s.tracking_uri.rstrip('/')}/health")
            rows.append(
                ("mlflow", s.tracking_uri, f"{'healthy' if ok else 'unreachable'} (external)")
            )
        optional = {svc.name for svc in self.optional_services()}
        for svc in self.services() + self.optional_services():
            if svc.name in optional and not svc.running():
                continue
            if not svc.running():
                state = "stopped"
            else:
                state = (
                    f"healthy (pid {svc.pid()})"
                    if svc.healthy()
                    else f"starting/unhealthy (pid {svc.pid()})"
                )
            rows.append((svc.name, svc.address, state))
        order = {
            "postgres": -1,
            "kafka": 0,
            "mlflow": 1,
            "dagster-webserver": 2,
            "dagster-daemon": 3,
            "scorer": 4,
        }
        return sorted(rows, key=lambda r: order.get(r[0], 9))
