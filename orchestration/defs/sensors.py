"""Drift sensors: drift reports on `mlops.model-monitoring` request a retrain (with a cooldown)."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
from confluent_kafka import TopicPartition

from features.contract import DriftReport
from orchestration.defs.drift import (
    DriftCursor,
    drift_figures,
    drift_reports,
    latest_by_model,
    should_request,
)
from orchestration.defs.resources import KafkaResource
from orchestration.defs.training.plan import DEFAULT_DATASET, DatasetPlan

if TYPE_CHECKING:
    from orchestration.defs.jobs import RetrainJob

COOLDOWN_HOURS = 6.0
MAX_READ = 10_000


def read_new(kafka: KafkaResource, cursor: DriftCursor) -> list[bytes]:
    """Every monitoring event after the cursor's offsets (advancing them), at most MAX_READ."""
    topic = kafka.topics.model_monitoring
    consumer = kafka.consumer(f"edaml-drift-sensor-{uuid.uuid4().hex[:8]}")
    values: list[bytes] = []
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        todo: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            start = max(cursor.offsets.get(p, low), low)
            if start < high:
                todo[p] = high
                consumer_assign = TopicPartition(topic, p, start)
                consumer.incremental_assign([consumer_assign])
            cursor.offsets[p] = max(start, cursor.offsets.get(p, 0))
        deadline = time.monotonic() + 20
        while todo and len(values) < MAX_READ and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=1.0):
                if m.error() is not None:
                    continue
                value, part, off = m.value(), m.partition(), m.offset()
                if value is None or part is None or off is None:
                    continue
                values.append(value)
                cursor.offsets[part] = off + 1
            for tp in consumer.position([TopicPartition(topic, p) for p in todo]):
                if tp.offset >= todo[tp.partition]:
                    cursor.offsets[tp.partition] = max(cursor.offsets[tp.partition], tp.offset)
                    del todo[tp.partition]
    finally:
        consumer.close()
    return values


def champion_key(plan: DatasetPlan, model_name: str) -> dg.AssetKey:
    """The champion asset of the declared model whose registered name ends `model_name`."""
    m = next(m for m in plan.models if model_name.endswith(m.registered_name))
    return dg.AssetKey([plan.ident, m.champion_asset])


def figures_metadata(report: DriftReport) -> dict[str, Any]:
    """A drift report as asset metadata (shown on the champion asset's page)."""
    fig = drift_figures(report)
    out: dict[str, Any] = {f"drift/{k}": v for k, v in fig.items() if k != "statistics"}
    out["drift/drifted_features"] = dg.MetadataValue.json(fig["drifted_features"])
    out["drift/statistics"] = dg.MetadataValue.json(fig["statistics"])
    return out


def sensor_name(plan: DatasetPlan) -> str:
    return "drift_sensor" if plan.dataset == DEFAULT_DATASET else f"drift_sensor_{plan.ident}"


def drift_sensor_for(plan: DatasetPlan, job: "RetrainJob") -> dg.SensorDefinition:
    """The dataset's drift sensor: drift reports about its models request a retrain of
    yesterday (one per cooldown period). Running by default."""
    names = tuple(m.registered_name for m in plan.models)

    @dg.sensor(
        name=sensor_name(plan),
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"{plan.dataset}: requests a retrain when the scorer reports drift of "
            f"{', '.join(names)} (one per {COOLDOWN_HOURS:g} h cooldown)."
        ),
    )
    def drift_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SensorResult:
        cursor = DriftCursor.from_json(context.cursor)
        # Registered names may carry the deployment's prefix: match on the declared name.
        seen = [r for r in drift_reports(read_new(kafka, cursor)) if r.model_name.endswith(names)]
        observations = [
            dg.AssetObservation(asset_key=champion_key(plan, name), metadata=figures_metadata(r))
            for name, r in latest_by_model(seen).items()
        ]
        reports = [r for r in seen if r.drifted]
        now_ms = int(time.time() * 1000)
        if not should_request(reports, cursor, now_ms, int(COOLDOWN_HOURS * 3600 * 1000)):
            reason = "no drift reported" if not reports else "drift reported, retrain cooling down"
            return dg.SensorResult(
                skip_reason=dg.SkipReason(reason),
                cursor=cursor.to_json(),
                asset_events=observations,
            )
        cursor.last_request_ms = now_ms
        day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
        models = sorted({r.model_name for r in reports})
        request = dg.RunRequest(
            run_key=f"drift-{reports[-1].event_id}",
            partition_key=day,
            tags={"edaml/trigger": "drift", "edaml/drifted_models": ",".join(models)},
        )
        return dg.SensorResult(
            run_requests=[request], cursor=cursor.to_json(), asset_events=observations
        )

    return drift_sensor
