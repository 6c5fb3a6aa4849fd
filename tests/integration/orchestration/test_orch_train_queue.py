"""`edaml train` queues its run on the Dagster instance, like the schedule and the sensor: a
real webserver and daemon start it, and the instance's limit (one retrain run per dataset)
holds a second `edaml train` in the queue until the first is done."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edaml.cli import app
from edaml.services import free_port
from edaml.settings import Settings
from edaml.stack import dagster_daemon, dagster_webserver, init_dagster_home
from features.contract.topics import Topics
from streaming.sources.producers import backfill

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


@pytest.fixture
def dagster_stack(
    kafka_bootstrap: str,
    mlflow_tracking_uri: str,
    topics: Topics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """A Dagster webserver and daemon on a fresh instance, pointed at the test's topics."""
    env = {
        "EDAML_HOME": str(tmp_path),
        "EDAML_DAGSTER_PORT": str(free_port()),
        "EDAML_TOPIC_PREFIX": topics.prefix,
        "EDAML_PARTITIONS": str(topics.partitions),
        "EDAML_MODEL_PREFIX": f"q{uuid.uuid4().hex[:6]}-",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MLFLOW_TRACKING_URI": mlflow_tracking_uri,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    init_dagster_home(settings.home_abs / "dagster")
    services = [dagster_webserver(settings), dagster_daemon(settings)]
    try:
        for svc in services:
            svc.start()
        for svc in services:
            svc.wait_healthy()
        yield settings
    finally:
        for svc in services:
            svc.stop()


@pytest.mark.timeout(1500)
def test_edaml_train_goes_through_the_instance_queue_one_run_per_dataset(
    kafka_bootstrap: str, topics: Topics, dagster_stack: Settings
) -> None:
    import dagster as dg

    end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS
    backfill(kafka_bootstrap, topics, devices=10, days=3, interval_s=600, seed=2, end_ms=end_ms)
    runner = CliRunner()
    queued = [
        runner.invoke(app, ["train", "--days", "3", "--no-wait"], catch_exceptions=False)
        for _ in range(2)
    ]
    assert all(r.exit_code == 0 for r in queued), [r.output for r in queued]
    assert all("queued" in r.output for r in queued)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        ids = {r.run_id for r in runs}
        seen: list[set[str]] = []
        deadline = time.monotonic() + 1200
        terminal = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
        while time.monotonic() < deadline:
            runs = [instance.get_run_by_id(i) for i in ids]
            statuses = {r.run_id: r.status for r in runs if r is not None}
            started = {i for i, s in statuses.items() if s == dg.DagsterRunStatus.STARTED}
            seen.append(started)
            if all(s in terminal for s in statuses.values()):
                break
            time.sleep(1.0)  # sampling the runs' statuses until both end (deadline above)
        else:
            pytest.fail(f"runs did not finish: {statuses}")
        # Both ran, never at the same time: the second waited in the queue.
        assert max(len(s) for s in seen) == 1
        assert {i for s in seen for i in s} == ids
        for run_id in ids:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.tags["edaml/trigger"] == "cli"
            assert run.tags["edaml/retrain"] == "iot-fleet"
            types = {
                e.dagster_event_type
                for e in instance.all_logs(run_id)
                if e.dagster_event_type is not None
            }
            # Enqueued by the CLI, launched by the daemon's run queue.
            assert {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING} <= types
