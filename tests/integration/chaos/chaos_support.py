"""Chaos suite helpers: a Kafka broker that can be killed with SIGKILL and restarted, `edaml
serve` subprocesses in their default configuration, and the scorer test helpers of
tests/integration/streaming (loaded under the name `scorer_test_support`). A module of its own
name: `conftest` names whichever conftest pytest imported last."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from edaml.services import Service, free_port
from features.contract.topics import Topics
from streaming.kafka import wait_until_ready

ROOT = Path(__file__).resolve().parents[3]

# The streaming tests' helpers (readings, model registration, collectors), under their own name.
_spec = importlib.util.spec_from_file_location(
    "scorer_test_support", ROOT / "tests" / "integration" / "streaming" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
support = importlib.util.module_from_spec(_spec)
sys.modules["scorer_test_support"] = support
_spec.loader.exec_module(support)


class ChaosBroker:
    """A private broker that can be killed (-9) and started again on the same ports and data."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.address = service.address

    def kill9(self) -> None:
        pid = self.service.pid()
        assert pid is not None, "the chaos broker is not running"
        os.killpg(pid, signal.SIGKILL)
        self.service.wait_stopped(pid, timeout=30)

    def restart(self) -> None:
        if not self.service.running():
            self.service.start()
        self.service.wait_healthy()
        wait_until_ready(self.address, timeout=120)


class Serve:
    """`edaml serve` in a subprocess: the default configuration, apart from the test's
    broker, registry, topics, group, models and a free metrics port."""

    def __init__(
        self, bootstrap: str, mlflow_uri: str, topics: Topics, models: str, group: str, log: Path
    ) -> None:
        self.port = free_port()
        self.log = log
        env = support.serve_env(bootstrap, mlflow_uri, topics)
        cmd = [
            *(sys.executable, "-m", "edaml.cli", "serve", "--feature-set", "raw"),
            *("--models", models, "--group", group, "--metrics-port", str(self.port)),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError as e:
            return 0, str(e).encode()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        return orjson.loads(body) if code == 200 else {}

    def wait_until(self, what: str, cond: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert self.proc.poll() is None, f"scorer exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"{what} not within {timeout}s:\n{self.tail()}"
            time.sleep(0.2)  # polling a condition with a deadline

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def terminate(self) -> float:
        """SIGTERM; returns the seconds it took to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
