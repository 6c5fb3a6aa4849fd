"""Services are tracked by pid files with the process's start time and stopped as a group,
through psutil (no /proc needed)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil

from edaml.services import Service


def _sleeper(home: Path) -> Service:
    # A shell with a child of its own: stopping must take the whole process group.
    return Service(
        name="sleeper",
        command=["/bin/sh", "-c", "sleep 300 & sleep 300; wait"],
        home=home,
        address="(none)",
        ports={},
        healthy=lambda: True,
    )


def _group_once_forked(pgid: int, timeout_s: float = 10.0) -> list[psutil.Process]:
    """The processes of the group, once the shell has started its children (it forks them
    after `start` returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        group = []
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(p.pid) == pgid:
                    group.append(p)
        if len(group) >= 2 or time.monotonic() > deadline:
            return group


def _alive(p: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    return False


def test_a_service_group_is_stopped_with_its_children(tmp_path: Path) -> None:
    svc = _sleeper(tmp_path)
    assert svc.start()
    pid = svc.pid()
    assert pid is not None
    pid_text, started = svc.pid_file.read_text().split()
    assert int(pid_text) == pid
    assert abs(float(started) - psutil.Process(pid).create_time()) < 1.0
    group = _group_once_forked(pid)
    assert len(group) >= 2  # the shell and its sleeps
    assert svc.stop(timeout=10)
    assert not svc.pid_file.exists()
    deadline = time.monotonic() + 10  # the group got SIGTERM; its children end on their own
    while any(_alive(p) for p in group) and time.monotonic() < deadline:
        psutil.wait_procs(group, timeout=0.2)
    assert not any(_alive(p) for p in group)
    assert svc.pid() is None and not svc.stop()


def test_a_recycled_pid_is_not_taken_for_the_service(tmp_path: Path) -> None:
    svc = _sleeper(tmp_path)
    svc.pid_file.parent.mkdir(parents=True)
    me = psutil.Process()
    svc.pid_file.write_text(f"{me.pid} {me.create_time() - 3600}")
    assert svc.pid() is None and not svc.running()
    svc.pid_file.write_text(f"{me.pid} {me.create_time()}")
    assert svc.pid() == me.pid
