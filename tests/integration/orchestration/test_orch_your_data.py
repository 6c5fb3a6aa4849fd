"""Your data, end to end on real servers: a dataset spec made by `edaml dataset init` from CSV
files, replayed into Kafka, trained, gated and promoted by its Dagster retrain job, and served
by a scorer that raises alerts on a replay of the same files. No code knows the dataset.

- the rig: `tests/generators/rig.py` (SKAB-shaped: `;`-delimited, a `datetime` column, 8
  channels at 1 Hz with names like `Volume Flow RateRMS`, `anomaly` and `changepoint` columns,
  short experiment files and an anomaly-free file without label columns);
- NAB's 7 realKnownCause files with their windows file, when /work/shared/data/nab is present
  (collected only then: the suite never needs it).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pytest
from confluent_kafka import Consumer
from mlflow import MlflowClient
from typer.testing import CliRunner

from edaml.cli import app
from features.contract.topics import Topics
from features.spec import DatasetSpec, load_spec
from orchestration.defs.datasets import dataset_bundle
from orchestration.defs.io_manager import RunStorageIOManager
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from streaming.kafka import ensure_topics
from streaming.serving import ScorerService, ServeConfig, feature_source
from streaming.sources.replay import replay_csv
from tests.generators.rig import write_rig

pytestmark = pytest.mark.integration

NAB = Path("/work/shared/data/nab")
DATASETS = ["rig"] + (["nab"] if (NAB / "data" / "realKnownCause").is_dir() else [])


def make_files(dataset: str, tmp: Path) -> list[Path]:
    if dataset == "rig":
        written = write_rig(tmp / "rig", hours=0.5, experiments=6, seed=1)
        return [w.path for w in written]
    data = tmp / "nab" / "data" / "realKnownCause"
    shutil.copytree(NAB / "data" / "realKnownCause", data)
    shutil.copytree(NAB / "labels", tmp / "nab" / "labels")
    return sorted(data.glob("*.csv"))


def init_spec(files: list[Path], name: str, out: Path) -> DatasetSpec:
    """`edaml dataset init FILES --name NAME --out OUT`, as a user runs it."""
    result = CliRunner().invoke(
        app, ["dataset", "init", *map(str, files), "--name", name, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return load_spec(out)


def days_of(bootstrap: str, topic: str) -> tuple[str, str]:
    from orchestration.defs.history.partitions import topic_time_span
    from streaming.kafka import make_consumer

    c = make_consumer(bootstrap, f"span-{uuid.uuid4().hex[:8]}")
    try:
        span = topic_time_span(c, topic, timeout=20.0)
    finally:
        c.close()
    assert span is not None
    return span.first_day, span.last_day


def alerts_seen(bootstrap: str, topic: str, want: int, timeout: float) -> list[dict[str, Any]]:
    """Alerts on `topic` (read_committed) until `want` of them or the deadline."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"a-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(out) < want:
            out += [orjson.loads(m.value() or b"{}") for m in c.consume(500, 0.5) if not m.error()]
    finally:
        c.close()
    return out


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("dataset", DATASETS)
def test_init_replay_train_promote_and_serve_with_no_code_for_the_dataset(
    dataset: str,
    kafka_bootstrap: str,
    mlflow_tracking_uri: str,
    tmp_path: Path,
) -> None:
    # A fresh deployment prefix with no topic created: only what the commands create exists
    # (the dataset's topics by the replay, the lifecycle topic by the first promotion).
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=3)
    files = make_files(dataset, tmp_path)
    spec = init_spec(files, dataset, tmp_path / f"{dataset}.yaml")
    dtopics = spec.topics(topics.prefix, topics.partitions)
    ensure_topics(kafka_bootstrap, dtopics)
    stats = replay_csv(kafka_bootstrap, dtopics, files, spec=spec)
    assert stats.produced == stats.rows and stats.dlq == 0

    prefix = f"t{uuid.uuid4().hex[:6]}-"
    res: dict[str, Any] = {
        "kafka": KafkaResource(
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topics.prefix,
            partitions=topics.partitions,
        ),
        "storage": HistoryStorage(root=str(tmp_path / "data")),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri, experiment=f"t-{dataset}"),
        "training": TrainingSettings(model_prefix=prefix),
        "io_manager": RunStorageIOManager(root=str(tmp_path / "runs")),
    }
    history, models = dataset_bundle(spec, res)
    defs = dg.Definitions(
        assets=[history.event_history, *models.assets],
        asset_checks=[history.checks, *models.checks],
        jobs=models.jobs,
        resources=res,
    )
    # `edaml train --dataset NAME` with no dates: every day with data.
    first, last = days_of(kafka_bootstrap, dtopics.sensor_readings)
    result = defs.resolve_job_def(models.plan.job_name).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )
    assert result.success
    name = f"{prefix}{dataset}.anomaly"
    client = MlflowClient(mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(name, "champion")
    run = client.get_run(str(champion.run_id))
    m, p = run.data.metrics, run.data.params
    # Labelled figures of the hold-out: per event and NAB-style windows.
    for key in ("f1", "precision", "recall", "far", "mar", "windows_detected", "pr_auc"):
        assert f"holdout_{key}" in m, key
    assert m["holdout_windows"] >= 1 and m["holdout_windows_detected"] >= 1
    assert p["anomaly_kind"] == "auto" and p["chosen_kind"] in (
        "pca",
        "robust_z",
        "isolation_forest",
    )
    assert p["normalise"] == "entity"
    if dataset == "rig":
        # Per-file normalised window features find the episodes in the latest experiments;
        # the static per-sensor rule baseline on the same rows does worse.
        assert m["holdout_f1"] >= 0.3
        assert m["holdout_f1"] > m["rules_holdout_f1"]

    # Serve: the dataset's scorer scores the replayed history and raises alerts.
    cfg = ServeConfig(
        bootstrap=kafka_bootstrap,
        topics=dtopics,
        dataset=spec,
        models=(name,),
        group=f"g-{uuid.uuid4().hex[:8]}",
        metrics_port=None,
        alias_poll_s=1.0,
        past_horizon_ms=spec.event_time.past_horizon_ms,
    )
    service = ScorerService(cfg, features=feature_source("online", spec))
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            service.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        alerts = alerts_seen(kafka_bootstrap, dtopics.alerts, want=5, timeout=240)
    finally:
        service.stop()
        thread.join(60)
    assert not errors, errors
    assert len(alerts) >= 5
    # Alerts of the trained champion, not of the rule fallback.
    model_alerts = [a for a in alerts if not a.get("fallback")]
    assert model_alerts and {a["model_name"] for a in model_alerts} == {name}
    assert {a["model_version"] for a in model_alerts} == {str(champion.version)}
