"""Two retrain runs of one dataset launched together, on a real broker, a real MLflow server and
one Dagster instance configured as the local stack's (edaml.stack.init_dagster_home): their
steps never overlap (one waits for the pool's slot), and no run promotes a version trained or
evaluated by the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from edaml.stack import init_dagster_home
from features.contract import ModelLifecycleEvent
from features.contract.topics import Topics
from orchestration.defs.promotion.assets import PROMOTED_BY_TAG
from orchestration.defs.promotion.gate import COMPARED_TAG, GATE_RUN_TAG, VERDICT_TAG
from streaming.sources.producers import backfill

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
WORKER = Path(__file__).with_name("retrain_worker.py")
REPO = Path(__file__).resolve().parents[3]


def launch(cfg: dict[str, object], home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(cfg)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def step_spans(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    """(step, start, end) of every asset step of the run (checks excluded)."""
    starts: dict[str, float] = {}
    spans = []
    for e in instance.all_logs(run_id):
        ev = e.dagster_event
        if ev is None or e.step_key is None or "gate" in e.step_key:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[e.step_key] = e.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            spans.append((e.step_key, starts[e.step_key], e.timestamp))
    return spans


@pytest.mark.timeout(1200)
def test_two_retrain_runs_launched_together_never_cross(
    kafka_bootstrap: str,
    mlflow_tracking_uri: str,
    topics: Topics,
    tmp_path: Path,
    read_lifecycle: Callable[[str, Topics], list[ModelLifecycleEvent]],
) -> None:
    home = tmp_path / "dagster"
    init_dagster_home(home)
    end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS
    days = 5
    backfill(
        kafka_bootstrap,
        topics,
        devices=60,
        days=days,
        interval_s=600,
        seed=5,
        end_ms=end_ms,
        labels_path=tmp_path / "data" / "ground_truth" / "labels.parquet",
    )
    dataset = f"conc-{uuid.uuid4().hex[:6]}"
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    name = prefix + "iot-anomaly"
    first = time.strftime("%Y-%m-%d", time.gmtime((end_ms - days * DAY_MS) / 1000))
    last = time.strftime("%Y-%m-%d", time.gmtime((end_ms - DAY_MS) / 1000))
    # Any challenger beats the champion it is compared with: both runs would promote.
    training = {
        "model_prefix": prefix,
        "holdout_days": 1,
        "window_days": days,
        "floor_pr_auc": 0.0,
        "gate_margin": -1.0,
        "gate_tolerance": 1000.0,
    }
    base = {
        "dataset": dataset,
        "bootstrap": kafka_bootstrap,
        "prefix": topics.prefix,
        "partitions": topics.partitions,
        "root": str(tmp_path / "data"),
        "mlflow": mlflow_tracking_uri,
    }
    setup = finish(
        launch(
            {
                **base,
                "history": True,
                "training": training,
                "tags": {
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            },
            home,
        )
    )
    assert setup["success"]
    client = MlflowClient(mlflow_tracking_uri)
    v1 = client.get_model_version_by_alias(name, "champion").version

    procs = [launch({**base, "training": {**training, "seed": seed}}, home) for seed in (11, 12)]
    results = [finish(p) for p in procs]
    run_ids = [str(r["run_id"]) for r in results]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        a, b = (step_spans(instance, r) for r in run_ids)
        assert a and b
        for sa in a:
            for sb in b:  # the pool has one slot: no step of one run overlaps one of the other
                assert sa[2] <= sb[1] or sb[2] <= sa[1], (sa, sb)
        failures = {
            r: [
                str(e.dagster_event.step_failure_data.error)
                for e in instance.all_logs(r, of_type=dg.DagsterEventType.STEP_FAILURE)
                if e.dagster_event and e.dagster_event.step_failure_data
            ]
            for r in run_ids
        }
    for r, ok in zip(run_ids, (res["success"] for res in results), strict=True):
        if not ok:  # the only way to stop: the champion moved after this run evaluated
            assert failures[r] and all("nothing promoted" in f for f in failures[r]), failures[r]

    promoted = [
        e
        for e in read_lifecycle(kafka_bootstrap, topics)
        if e.action == "promoted" and e.model_name == name and e.version != v1
    ]
    assert promoted, "at least the first run to reach its champion step promotes"
    for e in promoted:
        mv = client.get_model_version(name, e.version)
        run = mv.tags["dagster_run_id"]
        assert run in run_ids
        # Trained, evaluated, gated and promoted by one run, against the champion it replaced.
        assert mv.tags[GATE_RUN_TAG] == run == mv.tags[PROMOTED_BY_TAG]
        assert mv.tags[VERDICT_TAG] == "passed"
        assert mv.tags[COMPARED_TAG] == e.previous_version
