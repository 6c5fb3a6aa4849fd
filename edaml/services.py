"""Background processes that edaml starts itself: start, wait for health, status, stop.

Each service is a process group started with its own session, its pid (and the process's
start time, so a recycled pid is never mistaken for it) kept in `<home>/run/<name>.pid` and its
output in `<home>/logs/<name>.log`. `down` stops only what edaml started, by those pids.
Processes are inspected with psutil, so this works where there is no /proc (macOS).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service could not be started or reached; the message says what to do."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int, started: float | None = None) -> bool:
    """The process exists, is not a zombie, and (when `started` is given) is the one that
    started at that time rather than a later process given the same pid."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


@dataclass
class Service:
    """One process of the stack and how to tell that it serves."""

    name: str
    command: Sequence[str]
    home: Path
    address: str
    ports: Mapping[str, tuple[str, int]]  # setting name -> (host, port) it must bind
    healthy: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 120.0
    #: Run as this user (only when edaml runs as root: PostgreSQL refuses root).
    user: str | None = None

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running service, from its pid file (`<pid> [<start time>]`)."""
        try:
            fields = self.pid_file.read_text().split()
            pid = int(fields[0])
            started = float(fields[1]) if len(fields) > 1 else None
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid, started) else None

    def running(self) -> bool:
        return self.pid() is not None

    def check_ports(self) -> None:
        """Fail with the setting to change when another program holds one of our ports."""
        for setting, (host, port) in self.ports.items():
            if not port_is_free(host, port):
                raise StackError(
                    f"{self.name}: port {port} on {host} is already in use by another program; "
                    f"stop it or choose another port with {setting}=<port>"
                )

    def start(self) -> bool:
        """Start unless already running; return True when this call started it."""
        if self.running():
            log.info("%s already running (pid %s)", self.name, self.pid())
            return False
        self.check_ports()
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,  # its own process group: `down` stops children too
                user=self.user,
            )
        try:
            started = f" {psutil.Process(proc.pid).create_time()}"
        except psutil.Error:
            started = ""
        self.pid_file.write_text(f"{proc.pid}{started}")
        self._proc = proc
        return True

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            proc: subprocess.Popen[bytes] | None = getattr(self, "_proc", None)
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {proc.returncode} while starting; "
                    f"see {self.log_file}:\n{tail(self.log_file)}"
                )
            if self.healthy():
                return
            time.sleep(0.25)  # poll pacing; readiness is decided by the health probe
        raise StackError(
            f"{self.name} did not become healthy within {self.start_timeout:.0f}s; "
            f"see {self.log_file}:\n{tail(self.log_file)}"
        )

    def request_stop(self) -> int | None:
        """Send SIGTERM to the process group edaml started; return its pid (None: not running)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        return pid

    def wait_stopped(self, pid: int, timeout: float = 30.0) -> None:
        """Wait for the group to exit after `request_stop`; SIGKILL it past the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the process group edaml started; return True when something was stopped."""
        pid = self.request_stop()
        if pid is None:
            return False
        self.wait_stopped(pid, timeout)
        return True


def _group_alive(pgid: int) -> bool:
    """Some member of process group `pgid` still runs (zombies waiting to be reaped do not)."""
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_ok(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
