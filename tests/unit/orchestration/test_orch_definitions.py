from __future__ import annotations

import warnings
from typing import Any

import dagster as dg
import pytest

from features.contract import DriftReport, FeatureDrift
from features.spec import load_spec
from orchestration.definitions import defs
from orchestration.defs.datasets import dataset_bundle
from orchestration.defs.drift import DriftCursor, drift_figures, latest_by_model, should_request
from orchestration.defs.resources import default_resources
from orchestration.defs.sensors import champion_key
from orchestration.defs.settings import RetrainConfig, TrainingSettings
from orchestration.defs.training.factory import model_assets
from orchestration.defs.training.params import resolve
from orchestration.defs.training.plan import DatasetPlan, plan_from_spec

HISTORY, FLEET = dataset_bundle(load_spec("iot-fleet"), default_resources())


def test_every_job_schedule_and_sensor_resolves() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading and resolving must not warn
        jobs = defs.resolve_all_job_defs()
        assert "retrain_job" in {j.name for j in jobs}
        schedule = defs.resolve_schedule_def("daily_retrain_schedule")
        assert schedule.job_name == "retrain_job"
        assert schedule.cron_schedule == "0 1 * * *"
        sensor = defs.resolve_sensor_def("drift_sensor")
        assert sensor.job_name == "retrain_job"
        job = defs.resolve_job_def("retrain_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    per_model = ("model", "evaluation", "champion")
    assert keys == {
        "iot_fleet/event_history",
        "iot_fleet/feature_table",
        "iot_fleet/training_set",
        *(f"iot_fleet/{m}_{a}" for m in ("anomaly", "failure_risk") for a in per_model),
    }
    checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert {"anomaly_gate", "failure_risk_gate", "history_sensor_ranges"} <= checks


def test_loop_runs_by_default_and_retrains_one_run_at_a_time() -> None:
    assert defs.resolve_schedule_def("daily_retrain_schedule").default_status == (
        dg.DefaultScheduleStatus.RUNNING
    )
    assert defs.resolve_sensor_def("drift_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert len(FLEET.assets) == 8
    for a in FLEET.assets:
        assert a.op.pool == "retrain-iot-fleet", a.key
        spec = next(iter(a.specs))
        assert spec.code_version and spec.owners == ["team:edaml-ml"], a.key
        assert spec.group_name == "iot_fleet" and a.key.path[0] == "iot_fleet", a.key


def test_history_is_grouped_with_the_dataset_and_partitioned_from_its_data() -> None:
    spec = next(iter(HISTORY.event_history.specs))
    assert HISTORY.event_history.key == dg.AssetKey(["iot_fleet", "event_history"])
    assert spec.group_name == "iot_fleet" and spec.owners == ["team:edaml-data"]
    assert spec.code_version and HISTORY.event_history.partitions_def == HISTORY.partitions_def
    assert HISTORY.start_source in ("topic", "remembered", "no data")
    checks = {k.name for k in HISTORY.checks.check_keys}
    assert {"history_invalid_records", "history_unique_event_ids", "maintenance_valid"} <= checks
    io = defs.resources["io_manager"]
    assert type(io).__name__ == "RunStorageIOManager"


def test_a_dataset_without_failure_labels_trains_the_anomaly_model_alone() -> None:
    plan = DatasetPlan("nab", "", plan_from_spec(load_spec("iot-fleet")).models[:1])
    bundle = model_assets(load_spec("iot-fleet"), plan=plan, history=dg.AssetKey("nab_history"))
    names = {a.key.to_user_string() for a in bundle.assets}
    assert names == {f"nab/{n}" for n in ("feature_table", "training_set")} | {
        f"nab/anomaly_{a}" for a in ("model", "evaluation", "champion")
    }
    assert [c.check_key.name for c in bundle.checks] == ["anomaly_gate"]
    assert bundle.jobs[0].name == "retrain_nab"
    assert [s.name for s in bundle.sensors] == ["drift_sensor_nab"]


def test_every_check_on_the_path_to_training_is_blocking() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).blocking, key


def test_drift_cursor_round_trip_and_cooldown() -> None:
    c = DriftCursor({0: 5, 2: 9}, last_request_ms=1000)
    assert DriftCursor.from_json(c.to_json()) == c
    assert DriftCursor.from_json(None) == DriftCursor()
    assert not should_request([], c, now_ms=10**12, cooldown_ms=0)


def test_definitions_are_a_definitions_object() -> None:
    assert isinstance(defs, dg.Definitions)


def test_the_code_location_does_not_import_edaml() -> None:
    import subprocess
    import sys

    code = "import sys, orchestration.definitions; print('edaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_urls_come_from_the_environment_as_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.defs.resources import default_resources

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:19092")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res: Any = default_resources()
    assert isinstance(res["kafka"].bootstrap_servers, dg.EnvVar)
    assert res["kafka"].bootstrap_servers.get_value() == "broker:19092"
    assert res["mlflow"].tracking_uri == "http://127.0.0.1:5000"


def test_drift_figures_name_the_drifted_features_and_the_latest_report_wins() -> None:
    def report(end: int, value: float) -> DriftReport:
        f = [
            FeatureDrift("t__mean_1h", "psi", value, 0.2, value > 0.2),
            FeatureDrift("v", "psi", 0.1, 0.2, False),
        ]
        return DriftReport(str(end), end, "x-iot-anomaly", "4", end - 10, end, 500, f, value > 0.2)

    latest = latest_by_model([report(20, 0.5), report(10, 0.01)])
    assert latest["x-iot-anomaly"].window_end_ms == 20
    fig = drift_figures(latest["x-iot-anomaly"])
    assert fig["drifted"] and fig["drifted_features"] == ["t__mean_1h"]
    assert fig["worst_feature"] == "t__mean_1h" and fig["statistics"]["v"]["value"] == 0.1
    assert champion_key(FLEET.plan, "x-iot-anomaly") == dg.AssetKey(
        ["iot_fleet", "anomaly_champion"]
    )


def test_the_embargo_is_at_least_the_labels_horizon_where_failures_are_labels() -> None:
    fleet = load_spec("iot-fleet")
    assert resolve(fleet, TrainingSettings(horizon_hours=6)).embargo_ms == 6 * 3_600_000
    assert resolve(fleet, TrainingSettings(horizon_hours=6, embargo_hours=8)).embargo_ms == (
        8 * 3_600_000
    )
    # No failure labels: no horizon to wait for (a few hours of 1 Hz data keep their rows).
    rig = fleet.model_copy(update={"labels": ()})
    assert resolve(rig, TrainingSettings(horizon_hours=6)).embargo_ms == 0


def test_run_config_overrides_the_settings_which_override_the_spec() -> None:
    fleet = load_spec("iot-fleet")
    spec = resolve(fleet, TrainingSettings())
    assert (spec.window_days, spec.holdout_days, spec.holdout) == (14, None, 0.2)
    assert (spec.alert_rate, spec.anomaly_kind, spec.horizon_hours) == (0.02, "isolation_forest", 6)
    base = TrainingSettings(window_days=14, holdout_days=2, horizon_hours=6, model_prefix="p-")
    assert RetrainConfig().apply(base) is base
    run = RetrainConfig(window_days=7, embargo_hours=12, alert_rate=0.05).apply(base)
    assert (run.window_days, run.holdout_days, run.model_prefix) == (7, 2, "p-")
    p = resolve(fleet, run)
    assert (p.embargo_ms, p.alert_rate, p.window_days) == (12 * 3_600_000, 0.05, 7)
    assert resolve(fleet, RetrainConfig(embargo_hours=1).apply(base)).embargo_ms == 6 * 3_600_000
    with pytest.raises(ValueError, match="anomaly kind 'forest'"):
        resolve(fleet, TrainingSettings(anomaly_kind="forest"))


def test_a_champion_materialized_alone_promotes_nothing_and_says_why() -> None:
    from orchestration.defs.resources import HistoryStorage, KafkaResource, MlflowResource

    out = dg.materialize(
        [*FLEET.assets, *FLEET.checks],
        selection=[FLEET.key("anomaly_champion")],
        resources={
            # Never reached: the refusal comes before any broker or MLflow call.
            "kafka": KafkaResource(bootstrap_servers="127.0.0.1:9"),
            "mlflow": MlflowResource(tracking_uri="http://127.0.0.1:9"),
            "storage": HistoryStorage(root="/nonexistent"),
            "training": TrainingSettings(),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not out.success
    failure = next(e for e in out.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "nothing promoted" in message and "anomaly_evaluation" in message
