"""`edaml serve --workers N`: N scorer processes, each with its own instance id (so its own
transactional id) and metrics port, in the same consumer group; the parent waits for them all
and passes on their failure."""

from __future__ import annotations

import signal
import sys

from typer.testing import CliRunner

from edaml.cli import app
from edaml.commands.serve import run_workers, worker_commands


def test_each_worker_gets_its_own_instance_id_and_port() -> None:
    argv = ["edaml", "serve", "--dataset", "rig", "--workers", "3", "--instance-id=pod-a"]
    argv += ["--metrics-port", "9100", "--mode", "at-least-once"]
    cmds = worker_commands(argv, 3, "pod-a", 9100)
    assert len(cmds) == 3
    for k, cmd in enumerate(cmds):
        args = cmd[cmd.index("serve") :]
        assert args[:5] == ["serve", "--dataset", "rig", "--mode", "at-least-once"]
        assert args[5:] == ["--workers", "1", "--instance-id", f"pod-a-{k}", "--metrics-port",
                            str(9100 + k)]  # fmt: skip
    # metrics off (-1) or any free port (0) stay so for every worker
    assert {c[-1] for c in worker_commands(argv, 2, "x", -1)} == {"-1"}
    assert {c[-1] for c in worker_commands(argv, 2, "x", 0)} == {"0"}


def test_the_parent_waits_for_every_worker_and_returns_a_failure() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        ok = [sys.executable, "-c", "pass"]
        bad = [sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"]
        assert run_workers([ok, bad, ok]) == 3
        assert run_workers([ok, ok]) == 0
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])


def test_workers_below_one_is_a_one_line_error() -> None:
    res = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert res.exit_code != 0
    assert "--workers must be >= 1" in res.output
