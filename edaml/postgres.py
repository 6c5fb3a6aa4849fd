"""A PostgreSQL server for the local stack's production profile, from the machine's PostgreSQL
binaries (`initdb`, `postgres` on PATH; Debian's `postgresql` package): a cluster under
`<home>/postgres`, a password of its own, and the databases of MLflow and Dagster.

PostgreSQL refuses to run as root: when edaml runs as root, the server runs as the `postgres`
user (the package creates it), which must be able to reach `<home>`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from edaml.services import Service, StackError

USER = "edaml"
DATABASES = ("mlflow", "dagster")


def tool(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian's packages put it (not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    debian = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return str(debian[-1]) if debian else None


def missing_tools() -> list[str]:
    return [name for name in ("initdb", "postgres") if tool(name) is None]


def _run_as() -> str | None:
    """The account the server runs as: None (the current one) unless we are root."""
    return "postgres" if os.geteuid() == 0 else None


def _reachable_by(user: str, path: Path) -> bool:
    """Every directory above `path` lets `user` (not its owner, not root) pass through."""
    uid = pwd.getpwnam(user).pw_uid
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            return False
    return True


def root_dir(home: Path) -> Path:
    return home / "postgres"


def password(home: Path) -> str:
    """The `edaml` role's password, made on first use and kept in `<home>/postgres/password`."""
    path = root_dir(home) / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def url(home: Path, host: str, port: int, database: str, *, driver: str = "postgresql") -> str:
    return f"{driver}://{USER}:{quote(password(home))}@{host}:{port}/{database}"


def postgres_service(home: Path, host: str, port: int) -> Service:
    """Describe the server; `prepare_postgres` must run before `Service.start`."""
    data = root_dir(home) / "data"
    sockets = root_dir(home) / "run"
    return Service(
        name="postgres",
        command=[
            tool("postgres") or "postgres",
            "-D",
            str(data),
            "-h",
            host,
            "-p",
            str(port),
            "-k",
            str(sockets),
        ],
        home=home,
        address=f"{host}:{port}",
        ports={"EDAML_POSTGRES_PORT": (host, port)},
        healthy=lambda: _accepts(home, host, port),
        user=_run_as(),
        start_timeout=60.0,
    )


def _accepts(home: Path, host: str, port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(url(home, host, port, "postgres"), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def prepare_postgres(home: Path) -> None:
    """Create the cluster the first time (`initdb`, password authentication over TCP)."""
    missing = missing_tools()
    if missing:
        raise StackError(
            f"{' and '.join(missing)} not found: the production profile needs PostgreSQL's "
            "server (`apt-get install postgresql`; `make install` does it where it can), "
            "or point MLFLOW_TRACKING_URI and DAGSTER_HOME at existing servers"
        )
    root = root_dir(home)
    data = root / "data"
    if (data / "PG_VERSION").exists():
        return
    user = _run_as()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise StackError(
                "PostgreSQL cannot run as root and there is no `postgres` user: install "
                "Debian's `postgresql` package (it creates one) or run edaml as another user"
            ) from None
    root.mkdir(parents=True, exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    pwfile = root / "pwfile"
    pwfile.write_text(password(home) + "\n")
    if user is not None:
        if not _reachable_by(user, root):
            raise StackError(
                f"PostgreSQL runs as user {user!r} (edaml runs as root), which cannot enter "
                f"{root}: choose an EDAML_HOME whose parent directories others may traverse"
            )
        info = pwd.getpwnam(user)
        for path in (root, root / "run", pwfile):
            os.chown(path, info.pw_uid, info.pw_gid)
    try:
        proc = subprocess.run(
            [
                tool("initdb") or "initdb",
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise StackError(f"initdb failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def create_databases(home: Path, host: str, port: int) -> list[str]:
    """Create MLflow's and Dagster's databases where missing; return the created."""
    import psycopg
    from psycopg import sql

    created: list[str] = []
    with psycopg.connect(
        url(home, host, port, "postgres"), connect_timeout=10, autocommit=True
    ) as conn:
        for name in DATABASES:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                continue
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            created.append(name)
    return created
