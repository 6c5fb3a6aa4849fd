"""The retrain job on a real broker and a real MLflow server, end to end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from features.contract import ModelLifecycleEvent
from features.contract.topics import Topics
from features.spec import load_spec
from orchestration.definitions import build_defs
from orchestration.defs.datasets import dataset_bundle
from orchestration.defs.io_manager import RunStorageIOManager
from orchestration.defs.promotion.assets import PROMOTED_BY_TAG
from orchestration.defs.promotion.gate import GATE_RUN_TAG, PASSED, REJECTED, VERDICT_TAG
from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource
from orchestration.defs.settings import TrainingSettings
from streaming.sources.producers import backfill

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
DAYS = 14
BRANCH = ("_model", "_evaluation", "_champion")


def day_keys(end_ms: int, days: int) -> tuple[str, str]:
    first = time.strftime("%Y-%m-%d", time.gmtime((end_ms - days * DAY_MS) / 1000))
    last = time.strftime("%Y-%m-%d", time.gmtime((end_ms - DAY_MS) / 1000))
    return first, last


def resources(
    kafka_bootstrap: str, topics: Topics, root: Path, uri: str, **training: object
) -> dict[str, object]:
    return {
        "kafka": KafkaResource(
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topics.prefix,
            partitions=topics.partitions,
        ),
        "storage": HistoryStorage(root=str(root)),
        "mlflow": MlflowResource(tracking_uri=uri, experiment=f"test-{topics.prefix}"),
        "training": TrainingSettings(**training),  # type: ignore[arg-type]
        # One run store for every run of the test: a run that materialises only the model
        # branch reads the training set of the latest run that made one.
        "io_manager": RunStorageIOManager(root=str(root / "runs")),
    }


@pytest.mark.timeout(1800)
def test_retrain_promotes_then_a_tie_a_worse_model_and_a_lone_champion_promote_nothing(
    kafka_bootstrap: str,
    retrain_storage: tuple[str, Callable[[], dg.DagsterInstance]],
    topics: Topics,
    tmp_path: Path,
    read_lifecycle: Callable[[str, Topics], list[ModelLifecycleEvent]],
) -> None:
    # Both storage profiles: sqlite, and MLflow and Dagster on PostgreSQL (tests/conftest.py).
    mlflow_tracking_uri, new_instance = retrain_storage
    end_ms = int(time.time() * 1000) // DAY_MS * DAY_MS  # today 00:00 UTC: 14 whole days
    stats = backfill(
        kafka_bootstrap,
        topics,
        devices=300,
        days=DAYS,
        interval_s=300,
        seed=3,
        end_ms=end_ms,
        labels_path=tmp_path / "data" / "ground_truth" / "labels.parquet",
    )
    assert stats.readings == 300 * DAYS * 288
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    res = resources(
        kafka_bootstrap,
        topics,
        tmp_path / "data",
        mlflow_tracking_uri,
        model_prefix=prefix,
        max_train_rows=30_000,
        holdout_days=2,
    )
    defs = build_defs(res)
    first, last = day_keys(end_ms, DAYS)
    # One instance for the runs below: the later ones reuse this run's training set.
    instance = new_instance()
    result = defs.resolve_job_def("retrain_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )
    assert result.success
    history = [m for m in result.asset_materializations_for_node("iot_fleet__event_history")]
    assert len(history) == DAYS  # one per partition of the range
    meta = history[0].metadata
    assert meta["dagster/row_count"].value == 300 * DAYS * 288
    assert meta["topic"].value == topics.sensor_readings
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)

    client = MlflowClient(mlflow_tracking_uri)
    for base in ("iot-anomaly", "iot-failure-risk"):
        name = prefix + base
        champion = client.get_model_version_by_alias(name, "champion")
        assert client.get_model_version_by_alias(name, "challenger").version == champion.version
        assert champion.tags["dagster_run_id"] == result.run_id
        assert champion.tags["partitions"] == f"{first}..{last}"
        assert len(champion.tags["data_digest"]) == 64 and champion.tags["feature_set"]
        assert champion.run_id is not None
        run = client.get_run(champion.run_id)
        assert {
            "holdout_pr_auc",
            "holdout_precision",
            "holdout_recall",
            "holdout_f1",
            "holdout_false_alarms_per_device_day",
            "rules_holdout_pr_auc",
        } <= set(run.data.metrics)
        assert run.data.params["feature_set_version"] == champion.tags["feature_set"]
        assert run.inputs is not None
        (ds,) = run.inputs.dataset_inputs
        assert ds.dataset.source_type == "kafka" and topics.sensor_readings in ds.dataset.source
        artifacts = {a.path for a in client.list_artifacts(champion.run_id, "plots")}
        assert {"plots/precision_recall.png", "plots/confusion_matrix.png"} <= artifacts
        assert client.list_artifacts(champion.run_id, "edaml")
    events = read_lifecycle(kafka_bootstrap, topics)
    promoted = {e.model_name: e for e in events if e.action == "promoted"}
    assert set(promoted) == {prefix + "iot-anomaly", prefix + "iot-failure-risk"}
    champions = {n: client.get_model_version_by_alias(n, "champion").version for n in promoted}
    for name, version in champions.items():
        mv = client.get_model_version(name, version)
        assert mv.tags[VERDICT_TAG] == PASSED and mv.tags[GATE_RUN_TAG] == result.run_id
        assert mv.tags[PROMOTED_BY_TAG] == result.run_id
        assert "training window" in mv.description and mv.tags["data_digest"] in mv.description
        assert client.get_registered_model(name).description
    evaluation = result.asset_materializations_for_node("iot_fleet__failure_risk_evaluation")
    md = evaluation[0].metadata
    assert md["gate/verdict"].value == "passed"
    assert md["embargo_hours"].value >= 6.0 and "embargo" in md["holdout"].value
    model_md = result.asset_materializations_for_node("iot_fleet__anomaly_model")[0].metadata
    assert model_md["mlflow_version"].value.endswith(
        f"/versions/{champions[prefix + 'iot-anomaly']}"
    )

    hist, fleet = dataset_bundle(load_spec("iot-fleet"), defs.resources)
    # The same history again, failure labels shuffled: the anomaly challenger is the same model
    # (a tie), the failure-risk challenger is worse. Neither may promote.
    worse_res = {
        **res,
        "training": TrainingSettings(
            model_prefix=prefix, max_train_rows=30_000, holdout_days=2, shuffle_labels=True
        ),
    }
    out = dg.materialize(
        [hist.event_history, hist.checks, *fleet.assets, *fleet.checks],
        selection=[a for a in fleet.assets if a.key.path[-1].endswith(BRANCH)],
        resources=worse_res,
        instance=instance,
        raise_on_error=False,
    )
    assert not out.success
    gates = {c.check_name: c for c in out.get_asset_check_evaluations()}
    assert not gates["anomaly_gate"].passed and not gates["failure_risk_gate"].passed
    reasons = {n: c.metadata["reasons"].value for n, c in gates.items()}
    assert any("ties champion" in r for r in reasons["anomaly_gate"]), reasons
    assert not [m for m in out.get_asset_materialization_events() if "champion" in str(m.asset_key)]
    for name, version in champions.items():
        assert client.get_model_version_by_alias(name, "champion").version == version
    rejected = [e for e in read_lifecycle(kafka_bootstrap, topics) if e.action == "rejected"]
    assert {e.model_name for e in rejected} == set(champions)
    fr = next(e for e in rejected if e.model_name.endswith("failure-risk"))
    assert fr.reasons and fr.version != champions[fr.model_name]
    assert client.get_model_version(fr.model_name, fr.version).tags[VERDICT_TAG] == REJECTED

    # Materializing a champion alone after the rejection promotes nothing, with the reason.
    alone = dg.materialize(
        [hist.event_history, hist.checks, *fleet.assets, *fleet.checks],
        selection=[fleet.key("failure_risk_champion")],
        resources=res,
        instance=instance,
        raise_on_error=False,
    )
    assert not alone.success
    failure = next(e for e in alone.all_events if e.is_step_failure)
    assert "nothing promoted" in str(failure.step_failure_data.error)
    for name, version in champions.items():
        assert client.get_model_version_by_alias(name, "champion").version == version
    assert len(read_lifecycle(kafka_bootstrap, topics)) == len(events) + len(rejected)
